"""Accuracy matrix of the fully connected sketches (issue 12).

Every cell is one activation, one input scale, one depth, NNGP or NTK, dense
or CSR input and one ``n_components`` ``m``.  On ``n`` rows of ``d`` features
(half the entries zero, so that the same data is given dense and as CSR) the
cell draws ``--seeds`` sketches and checks three lines:

(a) unbiased: with ``G_s = Z_s Z_s^T`` and ``D = diag(K)``, two per-seed
    statistics whose expectation is 1 under an unbiased sketch:

    * diagonal:  ``t_s = mean_i G_s[i, i] / K[i, i]`` (every row's squared
      norm relative to its exact value, each row weighted alike whatever its
      scale);
    * aggregate: ``a_s = <C_s, R> / <R, R>`` with ``C_s = D^-1/2 G_s D^-1/2``
      and ``R = D^-1/2 K D^-1/2`` (the projection of the normalized estimate
      on the normalized kernel, all pairs, scale-free).

    The cell is biased when ``|mean_s t_s - 1|`` or ``|mean_s a_s - 1|`` exceeds
    4 standard errors (``std_s / sqrt(seeds)``) plus ``1e-9`` (rounding of an
    exact feature map).
(b) error: the root mean square over seeds of ``||G_s - K||_F / ||K||_F`` is at
    most the bound ``1.5 sqrt((1 + tr(K)^2 / ||K||_F^2) / m)`` (the error of an
    ideal Gaussian random-feature map with ``m`` features, times 1.5).
(c) error estimate: ``error_estimate_`` of each fitted sketch, with the
    subsample of ``fit`` set to a third of the rows (so that the
    extrapolation to ``n`` is exercised, as on a training set larger than the
    subsample), against that sketch's measured error on all ``n`` rows
    ("own") and against the RMS error over seeds ("RMS"); the worst ratio
    over seeds (as ``max(r, 1/r)``) against its own error must be at most 2.

When a cell fails the table says why, from the spread of the seeds: biased;
heavy-tailed (the worst seed's error is several times the median's); one row
carries most of the squared error (a scale the features do not follow); or a
uniform variance above the ideal one.

Run subsets with ``--acts`` (names or prefixes: ``monomial`` takes every
degree), ``--scales``, ``--depths``, ``--kernels``, ``--formats``,
``--components``; ``--quick`` is a small default grid.  Single process::

    PYTHONPATH=. python benchmarks/accuracy_matrix.py --quick
    PYTHONPATH=. python benchmarks/accuracy_matrix.py --acts relu,erf --scales 1,1e4
"""

from __future__ import annotations

import argparse
import math
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import scipy.sparse as sp

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine_facts, threads

import sklearn_ntk._error_estimate as error_estimate
from sklearn_ntk import NNGPSketch, NTKSketch, nngp_kernel, ntk_kernel
from sklearn_ntk.activations import available, get

SCALES = ["1e-4", "1e-2", "1", "1e2", "1e4", "1e8", "mix3", "mix"]
#: Rows of a "mix" data set cycle over these ||x||^2 / d.
MIXES = {"mix3": [1e-2, 1.0, 1e2], "mix": [1e-4, 1e-2, 1.0, 1e2, 1e4, 1e8]}


def activation_cells() -> dict[str, object]:
    """Label -> activation: every registered name at its defaults (aliases
    dropped), then the parametrized families of issue 12."""
    cells: dict[str, object] = {}
    seen = set()
    for name in available():
        act = get(name)
        key = repr(act)
        if key in seen:
            continue
        seen.add(key)
        cells[name] = act
    for k in range(2, 7):
        cells[f"monomial({k})"] = get("monomial", degree=k)
    for k in range(2, 7):
        cells[f"rectified_monomial({k})"] = get("rectified_monomial", degree=k)
    for k in range(1, 7):
        cells[f"hermite({k})"] = get("hermite", degree=k)
    for g in (0.1, 1.0, 10.0, 100.0, 1000.0):
        cells[f"exp_normalized({g:g})"] = get("exp_normalized", gamma=g)
    cells["polynomial(1,1,0.5)"] = get("polynomial", coef=(1.0, 1.0, 0.5))
    return cells


def make_data(scale: str, n: int, d: int, seed: int = 0) -> np.ndarray:
    """``n`` rows, half the entries zero (at least one kept per row), each
    row rescaled to its ``||x||^2 / d`` (one value, or a cycle for mixes)."""
    rng = np.random.RandomState(seed)
    X = rng.randn(n, d)
    mask = rng.rand(n, d) < 0.5
    mask[np.arange(n), rng.randint(d, size=n)] = True
    X *= mask
    X /= np.sqrt((X**2).sum(1, keepdims=True) / d)
    targets = MIXES[scale] if scale in MIXES else [float(scale)]
    s2 = np.array([targets[i % len(targets)] for i in range(n)])
    return X * np.sqrt(s2)[:, None]


@dataclass
class Cell:
    act: str
    scale: str
    depth: int
    kernel: str
    fmt: str
    m: int
    err: float = math.nan
    bound: float = math.nan
    z_diag: float = math.nan
    z_agg: float = math.nan
    est_fit: float = math.nan
    est_sub: float = math.nan
    why: str = ""
    seconds: float = 0.0
    failures: list = field(default_factory=list)

    @property
    def ratio(self) -> float:
        return self.err / self.bound


def _z(values: np.ndarray) -> float:
    """Signed standard errors between the mean of ``values`` and 1."""
    se = values.std(ddof=1) / math.sqrt(len(values))
    return float((values.mean() - 1.0) / (se + 1e-9))


def run_cell(act, cell: Cell, n: int, d: int, seeds: int) -> Cell:
    rows = error_estimate.FC_ROWS
    error_estimate.FC_ROWS = max(n // 3, 2)  # fit extrapolates from a third
    try:
        return _run_cell(act, cell, n, d, seeds)
    finally:
        error_estimate.FC_ROWS = rows


def _run_cell(act, cell: Cell, n: int, d: int, seeds: int) -> Cell:
    t0 = time.perf_counter()
    X = make_data(cell.scale, n, d)
    ntk = cell.kernel == "ntk"
    try:
        K = (ntk_kernel if ntk else nngp_kernel)(X, act=act, depth=cell.depth)
    except (OverflowError, ValueError) as exc:
        cell.why = f"exact kernel refused: {type(exc).__name__}"
        cell.failures.append("exact")
        return cell
    K = np.asarray(K, dtype=np.float64)
    Xin = sp.csr_matrix(X) if cell.fmt == "csr" else X
    dk = np.diag(K).copy()
    inv = 1.0 / np.sqrt(np.where(dk > 0, dk, 1.0))
    R = K * inv[:, None] * inv[None, :]
    kf = np.linalg.norm(K)
    cell.bound = 1.5 * math.sqrt((1.0 + np.trace(K) ** 2 / kf**2) / cell.m)
    errs, tdiag, tagg, est_fit, row_share = [], [], [], [], []
    Est = NTKSketch if ntk else NNGPSketch
    for s in range(seeds):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                est = Est(
                    act=act, depth=cell.depth, n_components=cell.m, random_state=s
                ).fit(Xin)
                Z = np.asarray(est.transform(Xin), dtype=np.float64)
            except (OverflowError, ValueError, FloatingPointError) as exc:
                cell.why = f"sketch raised {type(exc).__name__}: {exc}"[:120]
                cell.failures.append("raised")
                return cell
        with np.errstate(all="ignore"):
            G = Z @ Z.T
            E = G - K
            errs.append(np.linalg.norm(E) / kf)
            rows = (E * E).sum(1)
            row_share.append(float(rows.max() / max(rows.sum(), 1e-300)))
            tdiag.append(float(np.mean(np.diag(G) * inv * inv)))
            C = G * inv[:, None] * inv[None, :]
            tagg.append(float((C * R).sum() / (R * R).sum()))
        est_fit.append(getattr(est, "error_estimate_", math.nan))
    errs = np.array(errs)
    cell.err = float(np.sqrt(np.mean(errs**2)))
    cell.z_diag, cell.z_agg = _z(np.array(tdiag)), _z(np.array(tagg))

    def worst(r: np.ndarray) -> float:
        with np.errstate(all="ignore"):
            return float(np.max(np.maximum(r, 1.0 / r)))

    # Each sketch against its own measured error, and against the RMS.
    cell.est_fit = worst(np.array(est_fit) / errs)
    cell.est_sub = worst(np.array(est_fit) / cell.err)
    if not (abs(cell.z_diag) <= 4 and abs(cell.z_agg) <= 4):
        cell.failures.append("bias")
    if not cell.ratio <= 1.0:
        cell.failures.append("bound")
    if not cell.est_fit <= 2.0:
        cell.failures.append("estimate")
    med = float(np.median(errs))
    if "bias" in cell.failures:
        cell.why = (
            f"biased: diag {np.mean(tdiag):.3g} ({cell.z_diag:+.1f} SE), "
            f"aggregate {np.mean(tagg):.3g} ({cell.z_agg:+.1f} SE)"
        )
    elif cell.failures and (not np.isfinite(errs.max()) or errs.max() > 3 * med):
        cell.why = f"heavy-tailed: worst seed {errs.max():.3g} vs median {med:.3g}"
    elif cell.failures and np.median(row_share) > 0.3:
        cell.why = (
            f"one row carries {np.median(row_share):.0%} of the squared error "
            "(median over seeds)"
        )
    elif "bound" in cell.failures:
        cell.why = f"variance {cell.ratio:.2g}x the ideal bound, spread evenly"
    elif cell.failures:
        cell.why = "estimate off: the error varies from seed to seed or row to row"
    cell.seconds = time.perf_counter() - t0
    return cell


def select(labels: list[str], wanted: str | None) -> list[str]:
    if not wanted:
        return labels
    keys = [w.strip() for w in wanted.split(",") if w.strip()]
    return [
        lab for lab in labels if any(lab == k or lab.startswith(k + "(") for k in keys)
    ]


def summarize(cells: list[Cell]) -> list[str]:
    lines = [
        "| activation | cells | worst error / bound (cell) | bound fails | "
        "bias fails | worst estimate ratio (own / RMS) |",
        "|---|---:|---|---:|---:|---|",
    ]
    by_act: dict[str, list[Cell]] = {}
    for c in cells:
        by_act.setdefault(c.act, []).append(c)
    for act, cs in by_act.items():
        ok = [c for c in cs if np.isfinite(c.err)]
        if ok:
            w = max(ok, key=lambda c: c.ratio)
            worst = f"{w.ratio:.3g} ({w.scale}, depth {w.depth}, {w.kernel}, {w.fmt}, m={w.m})"
            est = f"{max(c.est_fit for c in ok):.3g} / {max(c.est_sub for c in ok):.3g}"
        else:
            worst, est = "n/a", "n/a"
        nb = sum("bound" in c.failures for c in cs)
        nbias = sum("bias" in c.failures for c in cs)
        nraise = sum(("raised" in c.failures) or ("exact" in c.failures) for c in cs)
        extra = f" (+{nraise} raised)" if nraise else ""
        lines.append(f"| {act} | {len(cs)} | {worst} | {nb}{extra} | {nbias} | {est} |")
    return lines


def cell_table(cells: list[Cell], only_failures: bool) -> list[str]:
    lines = [
        "| activation | scale | depth | kernel | input | m | error | bound | "
        "error/bound | z diag | z aggregate | est. ratio own / RMS | fails | why |",
        "|---|---|---:|---|---|---:|---:|---:|---:|---:|---:|---|---|---|",
    ]
    for c in cells:
        if only_failures and not c.failures:
            continue
        lines.append(
            f"| {c.act} | {c.scale} | {c.depth} | {c.kernel} | {c.fmt} | {c.m} | "
            f"{c.err:.3g} | {c.bound:.3g} | {c.ratio:.3g} | {c.z_diag:+.1f} | "
            f"{c.z_agg:+.1f} | {c.est_fit:.2f} / {c.est_sub:.2f} | "
            f"{','.join(c.failures) or 'ok'} | {c.why} |"
        )
    return lines


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--acts", default=None, help="comma-separated labels or families")
    p.add_argument("--scales", default=None, help=f"subset of {','.join(SCALES)}")
    p.add_argument("--depths", default="1,2,3")
    p.add_argument("--kernels", default="nngp,ntk")
    p.add_argument("--formats", default="dense,csr")
    p.add_argument("--components", default="512,2048,8192")
    p.add_argument("--seeds", type=int, default=20)
    p.add_argument("--n", type=int, default=80)
    p.add_argument("--d", type=int, default=16)
    p.add_argument(
        "--quick", action="store_true", help="scales 1,1e4,mix; depths 1,2; m=1024"
    )
    p.add_argument("--out", default=None, help="markdown file (default: print only)")
    p.add_argument("--all-cells", action="store_true", help="list passing cells too")
    args = p.parse_args(argv)
    if args.quick:
        args.scales = args.scales or "1,1e4,mix"
        args.depths, args.components, args.formats = "1,2", "1024", "dense"
    acts = activation_cells()
    labels = select(list(acts), args.acts)
    scales = args.scales.split(",") if args.scales else SCALES
    cells = []
    t0 = time.perf_counter()
    with threads(1):
        for lab in labels:
            for scale in scales:
                for depth in map(int, args.depths.split(",")):
                    for kern in args.kernels.split(","):
                        for fmt in args.formats.split(","):
                            for m in map(int, args.components.split(",")):
                                c = run_cell(
                                    acts[lab],
                                    Cell(lab, scale, depth, kern, fmt, m),
                                    args.n,
                                    args.d,
                                    args.seeds,
                                )
                                cells.append(c)
                                print(
                                    f"{lab:24s} {scale:>5s} d{depth} {kern} {fmt} m={m:5d} "
                                    f"err {c.err:.3g} bound {c.bound:.3g} "
                                    f"zd {c.z_diag:+.1f} za {c.z_agg:+.1f} "
                                    f"est {c.est_fit:.2f}/{c.est_sub:.2f} "
                                    f"{','.join(c.failures) or 'ok'} {c.why} "
                                    f"({c.seconds:.1f}s)",
                                    flush=True,
                                )
    total = time.perf_counter() - t0
    out = [
        "# Accuracy matrix (issue 12)",
        "",
        f"Command: `PYTHONPATH=. python benchmarks/accuracy_matrix.py "
        f"{' '.join(argv if argv is not None else sys.argv[1:])}`",
        "",
        machine_facts().replace("threads fixed to 2", "threads fixed to 1"),
        "",
        f"n = {args.n} rows, d = {args.d} (half the entries zero), {args.seeds} "
        f"seeds per cell, {len(cells)} cells, {total:.0f} s. Definitions in the "
        "script's docstring: bias = |mean - 1| of the diagonal and aggregate "
        "statistics over 4 standard errors; bound = 1.5 sqrt((1 + tr(K)^2/||K||_F^2)/m); "
        "estimate ratio = worst over seeds of max(r, 1/r), r = estimate / measured "
        "error (own: of the same sketch; RMS: over seeds), with fit's subsample set to a third of the rows.",
        "",
        "## Worst cell per activation",
        "",
        *summarize(cells),
        "",
        "## Cells" + ("" if args.all_cells else " that fail"),
        "",
        *cell_table(cells, only_failures=not args.all_cells),
        "",
    ]
    text = "\n".join(out)
    if args.out:
        Path(args.out).write_text(text)
        print(f"wrote {args.out}")
    else:
        print(text)


if __name__ == "__main__":
    main()
