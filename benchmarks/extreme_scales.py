"""Exact kernels at extreme scales and for nearly parallel rows, against mpmath.

Writes ``benchmarks/results/extreme_scales.md``:

* extreme scales: rows with ``||x||^2 / d`` from 1e-300 to 1e300 (float64)
  and 1e-36 to 1e36 (float32), every closed-form activation, depths 1-3,
  NNGP and NTK: the worst error relative to ``sqrt(K(x, x) K(y, y))``
  (floored at the smallest normal number), or ``overflow`` where the true
  kernel exceeds the float range and ``OverflowError`` was raised (as it must);
* nearly parallel rows: pairs at angles 1e-8..1e-2 (equal norms, norms
  1 : 1.7, antiparallel), depths 1-3, ``b_std`` 0 and 0.5, NNGP and NTK.

The reference is ``tests/mpmath_reference.py`` (the recursion in 50-digit
mpmath, textbook duals).  ``--out`` writes elsewhere (e.g. to run it on
another checkout: ``PYTHONPATH=<checkout> python benchmarks/extreme_scales.py
--out /tmp/x.md`` imports that checkout's ``sklearn_ntk``).
"""

from __future__ import annotations

import argparse
import math
import sys
import time
import warnings
from pathlib import Path

import mpmath as mp
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.append(str(ROOT / "tests"))
sys.path.insert(0, str(Path(__file__).parent))
from _common import markdown_table  # noqa: E402
from mpmath_reference import CLOSED, kernels  # noqa: E402

import sklearn_ntk  # noqa: E402
from sklearn_ntk import nngp_kernel, ntk_kernel  # noqa: E402
from sklearn_ntk.activations import get  # noqa: E402

KINKED = [c for c in CLOSED if c[0] in ("relu", "leaky_relu", "abs", "step", "sign")]
KINKED += [("rectified_monomial", {"degree": 1}), ("erf", {}), ("gelu", {})]
SCALES = {
    "float64": [1e-300, 1e-200, 1e-100, 1e-30, 1.0, 1e30, 1e100, 1e200, 1e300],
    "float32": [1e-36, 1e-24, 1e-12, 1.0, 1e12, 1e24, 1e36],
}
ANGLES = [1e-8, 1e-6, 1e-4, 1e-2]


def _label(name: str, params: dict) -> str:
    return name + "".join(f"({v})" for v in params.values())


def _worst(M, R, pairs, tiny) -> float:
    out = 0.0
    with mp.workdps(30):
        for i, j in pairs:
            scale = max(mp.sqrt(abs(R[i][i] * R[j][j])), mp.mpf(float(tiny)))
            out = max(out, float(abs(mp.mpf(float(M[i, j])) - R[i][j]) / scale))
    return out


def _run(fn, X, act, depth, b_std=0.0):
    """The kernel, or the name of what went wrong (never silently)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        try:
            M = fn(X, act=act, depth=depth, b_std=b_std)
        except OverflowError:
            return "OverflowError"
        except Exception as exc:  # a baseline may fail otherwise
            return type(exc).__name__
    return M if np.all(np.isfinite(M)) else "inf/NaN"


def extreme(dtype_name: str) -> tuple[list, float]:
    dtype = np.dtype(dtype_name)
    base = np.random.RandomState(0).randn(3, 5)
    base /= np.sqrt((base**2).mean(axis=1, keepdims=True))
    pairs = [(i, j) for i in range(3) for j in range(i, 3)]
    info = np.finfo(dtype)
    rows, overall = [], 0.0
    for name, params in CLOSED:
        act = get(name, **params)
        cells = []
        for scale in SCALES[dtype_name]:
            X = (base * math.sqrt(scale)).astype(dtype)
            X64 = X.astype(np.float64)
            try:
                ref = kernels(X64, X64, name, (1, 2, 3), params=params, pairs=pairs)
            except (OverflowError, MemoryError):
                ref = None
            worst, notes = 0.0, set()
            for depth in (1, 2, 3):
                for k, fn in enumerate((nngp_kernel, ntk_kernel)):
                    R = None if ref is None else ref[depth][k]
                    over = R is None or max(abs(R[i][i]) for i in range(3)) > info.max
                    M = _run(fn, X, act, depth)
                    if over:
                        notes.add(
                            "overflow" if M == "OverflowError" else f"NO ERROR ({M})"
                        )
                    elif isinstance(M, str):
                        notes.add(M)
                    else:
                        worst = max(worst, _worst(M, R, pairs, info.tiny))
            overall = max(overall, worst)
            cell = f"{worst:.0e}" if worst else "0"
            if notes - {"overflow"}:
                cell = ", ".join(sorted(notes - {"overflow"}))
            elif notes:
                cell = "overflow" if worst == 0 else f"{cell}; overflow"
            cells.append(cell)
        rows.append([_label(name, params), *cells])
        print(dtype_name, rows[-1], flush=True)
    return rows, overall


def near_parallel() -> list:
    rows = []
    pairs = [(0, 1), (2, 3), (4, 5)] + [(i, i) for i in range(6)]
    for name, params in KINKED:
        act = get(name, **params)
        cells = []
        for angle in ANGLES:
            rng = np.random.RandomState(0)
            X = []
            for ratio, sign in ((1.0, 1.0), (1.7, 1.0), (0.9, -1.0)):
                x, u = rng.randn(6), rng.randn(6)
                u -= x * (u @ x) / (x @ x)
                u /= np.linalg.norm(u)
                n = np.linalg.norm(x)
                y = (math.cos(angle) * x / n + math.sin(angle) * u) * n * ratio
                X += [x, sign * y]
            X = np.array(X)
            worst = [0.0, 0.0]
            for b_std in (0.0, 0.5):
                ref = kernels(
                    X, X, name, (1, 2, 3), b_std=b_std, params=params, pairs=pairs
                )
                for depth in (1, 2, 3):
                    for k, fn in enumerate((nngp_kernel, ntk_kernel)):
                        M = _run(fn, X, act, depth, b_std)
                        if isinstance(M, str):
                            worst[k] = np.inf
                        else:
                            err = _worst(M, ref[depth][k], pairs, 1e-300)
                            worst[k] = max(worst[k], err)
            cells.append(f"{worst[0]:.0e} / {worst[1]:.0e}")
        rows.append([_label(name, params), *cells])
        print("near", rows[-1], flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    t0 = time.perf_counter()
    lines = [
        "## Exact kernels at extreme scales, against mpmath",
        "",
        "Worst error over depths 1-3, NNGP and NTK, relative to "
        "sqrt(K(x, x) K(y, y)) (floored at the smallest normal number), for 3 rows "
        "with ||x||^2/d = scale (d = 5). `overflow`: the true kernel exceeds the "
        "float range at some depth and `OverflowError` was raised (required); "
        "anything else named in a cell is a failure.",
        "",
    ]
    for dtype_name in ("float64", "float32"):
        rows, overall = extreme(dtype_name)
        head = ["activation", *(f"{s:g}" for s in SCALES[dtype_name])]
        lines += [f"### {dtype_name} (worst: {overall:.1e})", ""]
        lines += [*markdown_table(head, rows), ""]
    lines += [
        "## Nearly parallel rows, against mpmath",
        "",
        "Worst error (NNGP / NTK) over depths 1-3, b_std 0 and 0.5, three pairs "
        "(equal norms, norms 1 : 1.7, antiparallel) at each angle, relative to "
        "sqrt(K(x, x) K(y, y)).",
        "",
        *markdown_table(["activation", *(f"{a:g}" for a in ANGLES)], near_parallel()),
        "",
        f"(sklearn_ntk from {Path(sklearn_ntk.__file__).parent}; "
        f"{time.perf_counter() - t0:.0f} s; date {time.strftime('%Y-%m-%d')}.)",
        "",
    ]
    out = args.out or Path(__file__).with_name("results") / "extreme_scales.md"
    out.parent.mkdir(exist_ok=True)
    out.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
