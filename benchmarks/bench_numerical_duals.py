"""Numerically integrated duals: speed against relu, GP fit time, accuracy.

Writes ``benchmarks/results/numerical_duals.md``:

* NTK of 2000 x 100 Gaussian inputs at depth 3 (``ntk_kernel``) for relu
  and every numerically integrated activation plus a user callable
  (``np.arctan`` with its derivative), best and median of 3 after a
  warm-up, the activations alternating with relu within each repetition;
* exact CNNGP/CNTK (Myrtle-5 and conv_stack depth 3) of 40 digits 8 x 8
  (digits / 16 as in ``bench_cntk.py``, and raw digits 0..16), tanh
  against relu, alternating, best of 3;
* ``GaussianProcessRegressor(NTKKernel(act="tanh") + WhiteKernel())`` with
  its default optimizer on the first 200 standardized diabetes samples;
* the worst error of every activation over the reference grid of
  ``tests/data/numerical_dual_reference.npz``.

Threads are fixed to 1 (threadpoolctl).  Run, with the BLAS variables of
this machine unset (see shared/reference/benchmarking.md)::

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE PYTHONPATH=. python benchmarks/bench_numerical_duals.py

``--quick`` uses 1000 rows and one repetition; ``--conv-only`` reruns only
the convolutional figure and replaces its section of the results file.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _common import machine_facts, markdown_table, threads

from sklearn_ntk import (
    NTKKernel,
    activations,
    cnngp_kernel,
    cntk_kernel,
    nngp_kernel,
    ntk_kernel,
)
from sklearn_ntk import _quadrature as Q

ROOT = Path(__file__).resolve().parents[1]
OUT = Path(__file__).parent / "results" / "numerical_duals.md"


def _arctan_deriv(x):
    return 1.0 / (1.0 + x * x)


USER = activations.Numerical(np.arctan, derivative=_arctan_deriv)
FC_ACTS = ["tanh", "softplus", "silu", "mish", "elu", "selu", "sigmoid", USER]


def _name(act):
    return act if isinstance(act, str) else "user np.arctan"


def _timed(fn):
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def bench_fc(n, reps):
    X = np.random.RandomState(0).randn(n, 100)
    for act in ["relu", *FC_ACTS]:  # warm-up: caches, octave tables
        ntk_kernel(X[:64], act=act, depth=3)
    times = {a: [] for a in ["relu", *map(_name, FC_ACTS)]}
    for _ in range(reps):
        for act in FC_ACTS:
            times["relu"].append(_timed(lambda: ntk_kernel(X, act="relu", depth=3)))
            times[_name(act)].append(
                _timed(lambda a=act: ntk_kernel(X, act=a, depth=3))
            )
    relu = min(times["relu"])
    rows = []
    for name, ts in times.items():
        rows.append(
            [
                name,
                f"{min(ts):.3f}",
                f"{statistics.median(ts):.3f}",
                f"{min(ts) / relu:.2f}",
            ]
        )
        print(rows[-1], flush=True)
    return rows


#: Convolutional figure: (architecture, depth) and the image sets.
CONV_NETS = [("myrtle", 5), ("conv_stack", 3)]
CONV_IMAGES = 40


def bench_conv(reps):
    """cnngp/cntk tanh against relu on 40 digits (8 x 8), normalized and raw."""
    from sklearn.datasets import load_digits

    D = load_digits().data[:CONV_IMAGES]
    sets = {"digits / 16": D / 16.0, "raw digits (0..16)": D}
    rows = []
    for arch, depth in CONV_NETS:
        for label, X in sets.items():
            for fn in (cnngp_kernel, cntk_kernel):

                def call(act, fn=fn, X=X, arch=arch, depth=depth):
                    return fn(X, act=act, architecture=arch, depth=depth)

                t0 = time.perf_counter()
                call("tanh")  # warm-up: builds the per-activation tables
                warm = time.perf_counter() - t0
                call("relu")
                tr, tt = [], []
                for _ in range(reps):
                    tr.append(_timed(lambda: call("relu")))
                    for k in Q.stats:
                        Q.stats[k] = 0
                    tt.append(_timed(lambda: call("tanh")))
                rows.append(
                    [
                        f"{arch}-{depth}",
                        label,
                        fn.__name__,
                        f"{min(tr):.3f}",
                        f"{min(tt):.3f}",
                        f"{min(tt) / min(tr):.1f}",
                        f"{warm:.1f}",
                        f"{Q.stats['hard']} / {Q.stats['gathered']} / "
                        f"{Q.stats['pairs']}",
                    ]
                )
                print(rows[-1], flush=True)
    return rows


def bench_gp():
    from sklearn.datasets import load_diabetes
    from sklearn.gaussian_process import GaussianProcessRegressor
    from sklearn.gaussian_process.kernels import WhiteKernel
    from sklearn.preprocessing import StandardScaler

    X, y = load_diabetes(return_X_y=True)
    X = StandardScaler().fit_transform(X)[:200]
    y = (y[:200] - y[:200].mean()) / y[:200].std()
    rows = []
    for act in ("tanh", "relu"):
        kernel = (
            NTKKernel(
                act=act,
                W_std=1.0,
                b_std=0.1,
                W_std_bounds=(0.05, 20.0),
                b_std_bounds=(1e-3, 10.0),
            )
            + WhiteKernel()
        )
        gp = GaussianProcessRegressor(kernel, random_state=0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            t = _timed(lambda gp=gp: gp.fit(X, y))
        rows.append(
            [
                act,
                f"{t:.2f}",
                str(gp.kernel_),
                f"{gp.log_marginal_likelihood_value_:.3f}",
            ]
        )
        print(rows[-1], flush=True)
    return rows


def accuracy():
    sys.path.insert(0, str(ROOT / "tests"))
    from test_numerical_duals import ACTS

    rows = []
    with np.load(ROOT / "tests" / "data" / "numerical_dual_reference.npz") as z:
        kxx, kxy, kyy = z["kxx"], z["kxy"], z["kyy"]
        for name, act in ACTS.items():
            S, Sd = act.dual(kxx, kxy, kyy)
            errs = []
            for kind, ours in (("s", S), ("d", Sd)):
                scale = np.sqrt(z[f"{name}_{kind}_dxx"] * z[f"{name}_{kind}_dyy"])
                errs.append(np.max(np.abs(ours - z[f"{name}_{kind}"]) / scale))
            rows.append([name, f"{errs[0]:.1e}", f"{errs[1]:.1e}"])
        checks = {k: float(z[f"check_{k}"]) for k in ("erf", "relu", "sign")}
        n = kxx.size
    return rows, checks, n


def issue_examples():
    """The figures quoted in the issue, measured again."""
    from sklearn.gaussian_process import GaussianProcessRegressor

    from sklearn_ntk import NNGPKernel

    rows = []
    for k, exact in ((100.0, "1.90 (true 6.23)"), (1e6, "1.0 (true 532)")):
        v = ntk_kernel(np.array([[np.sqrt(k)]]), act="tanh")[0, 0]
        rows.append([f"ntk_kernel([[{np.sqrt(k):g}]], act='tanh')", f"{v:.7f}", exact])
    rng = np.random.RandomState(0)
    X = rng.randn(200, 10) * np.exp(rng.uniform(np.log(0.3), np.log(3), (200, 1)))
    t = _timed(lambda: ntk_kernel(X, act="tanh", depth=3))
    K = ntk_kernel(X, act="tanh", depth=3)
    asym = np.abs(K - K.T).max() / np.abs(K).max()
    rows.append(
        ["200 x 10, rows scaled 0.3..3, tanh NTK depth 3: time", f"{t:.3f} s", "58 s"]
    )
    rows.append(["same: max abs(K - K.T) / max abs(K)", f"{asym:.1e}", "1.4e-3"])
    X40 = rng.randn(40, 5)
    y40 = np.sin(X40[:, 0])
    gp = GaussianProcessRegressor(NNGPKernel(act="tanh"))
    t = _timed(lambda: gp.fit(X40, y40))
    rows.append(
        [
            "GaussianProcessRegressor(NNGPKernel(act='tanh')), 40 points",
            f"{t:.3f} s",
            "384 s",
        ]
    )
    return rows


def oracle_tanh():
    """The neural-tangents oracle's tanh cases: ours, the oracle (120-node
    Gauss-Hermite) and the high-precision recomputation."""
    import json

    data = ROOT / "tests" / "data"
    cases = [
        c
        for c in json.loads((data / "oracle.json").read_text())
        if c["kind"] == "fc" and c["act"]["name"] == "tanh"
    ]
    rows = []
    with (
        np.load(data / "oracle.npz") as orc,
        np.load(data / "numerical_dual_reference.npz") as hp,
    ):
        for c in cases:
            for name, fn in (("nngp", nngp_kernel), ("ntk", ntk_kernel)):
                ours = fn(
                    orc[c["key"] + "_X"],
                    act="tanh",
                    depth=c["depth"],
                    W_std=c["W_std"],
                    b_std=c["b_std"],
                )
                ref, truth = orc[f"{c['key']}_{name}"], hp[f"oracle_{c['key']}_{name}"]
                scale = np.abs(truth).max()
                rows.append(
                    [
                        f"{c['key']} {name} (depth {c['depth']}, W_std {c['W_std']}, "
                        f"b_std {c['b_std']})",
                        f"{np.abs(ours - truth).max() / scale:.1e}",
                        f"{np.abs(ref - truth).max() / scale:.1e}",
                        f"{np.abs(ours - ref).max() / scale:.1e}",
                    ]
                )
    return rows


def conv_section(conv, reps) -> list[str]:
    """The markdown of the convolutional figure."""
    return [
        f"## Exact CNNGP / CNTK, {CONV_IMAGES} digits (8 x 8), tanh against relu",
        "",
        "Best of "
        f"{reps} after a warm-up, relu and tanh alternating; the ratio is best "
        "tanh / best relu (target <= 5).  'first call' is the warm-up tanh call, "
        "which builds the activation's tables (cached for the process).  The "
        "last column counts the pixel pairs of one tanh call (all its layers): "
        "those that needed the 2-D rule (large scales with |rho| near 1), those "
        "continued by the higher-degree series, and all pairs.",
        "",
        *markdown_table(
            [
                "network",
                "images",
                "kernel",
                "relu (s)",
                "tanh (s)",
                "ratio",
                "first call (s)",
                "2-D / gathered / pairs",
            ],
            conv,
        ),
        "",
    ]


def conv_only(reps) -> None:
    """Reruns the convolutional figure alone and splices it into ``OUT``."""
    load0 = os.getloadavg()[0]
    with threads(1):
        conv = bench_conv(reps)
    load1 = os.getloadavg()[0]
    head = f"## Exact CNNGP / CNTK, {CONV_IMAGES} digits (8 x 8), tanh against relu"
    text = OUT.read_text()
    start = text.index(head)
    end = text.index("\n## ", start + len(head)) + 1
    note = [
        f"Rerun alone (`--conv-only`, {reps} repetitions): "
        + machine_facts().replace("threads fixed to 2", "threads fixed to 1")
        + f"  1-minute load average at start / end: {load0:.1f} / {load1:.1f}.",
        "",
    ]
    section = conv_section(conv, reps)
    lines = section[:2] + note + section[2:]
    OUT.write_text(text[:start] + "\n".join(lines) + "\n" + text[end:])
    print(f"wrote {OUT}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument(
        "--conv-only",
        action="store_true",
        help="run only the convolutional figure and replace its section of "
        "the results file (the other sections are kept as they are)",
    )
    parser.add_argument("--reps", type=int, default=None, help="repetitions")

    args = parser.parse_args()
    n, reps = (1000, 1) if args.quick else (2000, 3)
    reps = args.reps or reps
    if args.conv_only:
        conv_only(reps)
        return
    load0 = os.getloadavg()[0]
    with threads(1):
        fc = bench_fc(n, reps)
        conv = bench_conv(reps)
        gp = bench_gp()
        issue = issue_examples()
    acc, checks, npts = accuracy()
    orc = oracle_tanh()
    load1 = os.getloadavg()[0]
    lines = [
        "# Numerically integrated duals (tanh, sigmoid, softplus, silu, mish, elu, selu, callables)",
        "",
        machine_facts().replace("threads fixed to 2", "threads fixed to 1"),
        f"1-minute load average at start / end: {load0:.1f} / {load1:.1f} (2 cores, shared).",
        "",
        f"## NTK, {n} x 100 inputs, depth 3 (float64)",
        "",
        "Best and median of "
        f"{reps} after a warm-up; relu runs before each activation in every "
        "repetition, and the ratio is best / best relu.",
        "",
        *markdown_table(["activation", "best (s)", "median (s)", "vs relu"], fc),
        "",
        *conv_section(conv, reps),
        "## Gaussian process, 200 diabetes samples (standardized)",
        "",
        "`GaussianProcessRegressor(NTKKernel(act, W_std_bounds=(0.05, 20), "
        "b_std_bounds=(1e-3, 10)) + WhiteKernel())`, default optimizer, one fit.",
        "",
        *markdown_table(
            ["act", "fit (s)", "fitted kernel", "log marginal likelihood"], gp
        ),
        "",
        "## The issue's examples",
        "",
        *markdown_table(["example", "now", "issue"], issue),
        "",
        "## Accuracy over the reference grid",
        "",
        f"{npts} points: 9 variances from 1e-8 to 1e8 pairwise, rho in "
        "{-1, -(1-1e-6), -0.99, -0.5, 0, 0.2, 0.6, 0.9, 0.99, 0.9999, 1-1e-8, 1}. "
        "Error = |ours - reference| / sqrt(Sigma(x,x) Sigma(y,y)) (Sigma_dot likewise). "
        "The reference integrator reproduces the closed forms of erf, relu and sign "
        "on the same grid to "
        + ", ".join(f"{k} {v:.1e}" for k, v in checks.items())
        + ".",
        "",
        *markdown_table(
            ["activation", "worst Sigma error", "worst Sigma_dot error"], acc
        ),
        "",
        "## neural-tangents oracle, tanh cases",
        "",
        "The oracle (tests/data/oracle.*) integrated tanh with 120-node Gauss-Hermite. "
        "'truth' is the same network recomputed layer by layer with the nested "
        "adaptive quadrature of benchmarks/make_dual_reference.py.  Errors are "
        "max |difference| / max |truth|.",
        "",
        *markdown_table(
            ["case", "ours vs truth", "oracle vs truth", "ours vs oracle"], orc
        ),
        "",
    ]
    OUT.write_text("\n".join(lines))
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
