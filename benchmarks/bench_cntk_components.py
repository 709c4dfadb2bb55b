"""``n_components`` controls the accuracy of the convolutional sketches.

With ``n_channels="auto"`` (the default) the hidden widths of
``CNTKSketch`` / ``CNNGPSketch`` follow ``n_components``
(:func:`sklearn_ntk.conv_estimators.auto_channels`).  This benchmark measures,
on the first 200 of scikit-learn's digits (pixels / 16, 8 x 8 x 1 images) and
the Myrtle-5 network, the relative Frobenius error ``||Z Z^T - K|| / ||K||``
of the sketch against the exact kernel (``cntk_kernel`` / ``cnngp_kernel``),
mean of 6 seeds (``--seeds``), for ``n_components`` from 512 to 8192, with the fitted slope
of ``log(error)`` against ``log(n_components)`` (acceptance: at most -0.5,
i.e. the error falls at least like ``n_components^(-1/2)``) and the transform
time per image.  Cases: relu CNTK (the acceptance case), erf CNTK, relu CNNGP.

Writes ``benchmarks/results/cntk_n_components.md``.  Run::

    PYTHONPATH=. python benchmarks/bench_cntk_components.py          # ~10 min, 2 cores
    PYTHONPATH=. python benchmarks/bench_cntk_components.py --quick  # smoke test
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits

sys.path.insert(0, str(Path(__file__).parent))
from _common import machine_facts, markdown_table, threads, write_or_print

from sklearn_ntk.conv_estimators import CNNGPSketch, CNTKSketch, auto_channels
from sklearn_ntk.convolutional import cnngp_kernel, cntk_kernel

OUT = Path(__file__).parent / "results" / "cntk_n_components.md"
CASES = [  # (label, estimator, exact kernel, activation)
    ("Myrtle-5 CNTK, relu", CNTKSketch, cntk_kernel, "relu"),
    ("Myrtle-5 CNTK, erf", CNTKSketch, cntk_kernel, "erf"),
    ("Myrtle-5 CNNGP, relu", CNNGPSketch, cnngp_kernel, "relu"),
]


def rel_fro(Z: np.ndarray, K: np.ndarray) -> float:
    return float(np.linalg.norm(Z @ Z.T - K) / np.linalg.norm(K))


def measure(est_cls, K, X, act, m, seeds):
    """Mean and spread of the error over seeds, and the best ms per image."""
    errs, ms = [], []
    for s in range(seeds):
        est = est_cls(act=act, n_components=m, random_state=s).fit(X)
        t0 = time.perf_counter()
        Z = est.transform(X)
        ms.append(1e3 * (time.perf_counter() - t0) / len(X))
        errs.append(rel_fro(Z, K))
    return float(np.mean(errs)), float(np.std(errs)), float(min(ms)), est.n_channels_


def slope(ms, errs) -> float:
    return float(np.polyfit(np.log(ms), np.log(errs), 1)[0])


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="40 images, 1 seed")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seeds", type=int, default=6)
    args = parser.parse_args(argv)
    n, seeds = (40, 1) if args.quick else (200, args.seeds)
    components = [512, 1024, 2048, 4096, 8192]
    cases = CASES[:1] if args.quick else CASES
    X = load_digits().data[:n] / 16
    lines = [
        "# `n_components` controls the convolutional sketches' accuracy",
        "",
        f"Command: `PYTHONPATH=. python benchmarks/bench_cntk_components.py"
        f"{' --quick' if args.quick else ''}`",
        "",
        machine_facts().replace(
            "threads fixed to 2", f"threads fixed to {args.threads}"
        ),
        "",
        f"Data: the first {n} digits of `load_digits`, pixels / 16, read as 8 x 8 x 1 "
        "images.  Error: relative Frobenius `||Z Z^T - K||_F / ||K||_F` against the "
        f"exact kernel, mean (and standard deviation) over {seeds} seeds.  "
        '`n_channels="auto"`: hidden width per pixel '
        "`auto_channels(n_components)` (column `n_channels_`).  Time: best "
        "`transform` over the seeds, ms per image.  Slope: least-squares fit "
        "of `log(error)` on `log(n_components)`; the acceptance asks for at most "
        "-0.5 (error falling at least like `n_components^(-1/2)`).",
        "",
    ]
    summary = []
    with threads(args.threads):
        for label, est_cls, kernel, act in cases:
            t0 = time.perf_counter()
            K = kernel(X, act=act, n_jobs=args.threads)
            t_exact = time.perf_counter() - t0
            rows, errs = [], []
            for m in components:
                err, sd, ms, c = measure(est_cls, K, X, act, m, seeds)
                errs.append(err)
                rows.append([m, c, f"{err:.4f}", f"{sd:.4f}", f"{ms:.2f}"])
                print(label, rows[-1], flush=True)
            b = slope(components, errs)
            ratio = errs[0] / errs[-1]
            summary.append((label, b, ratio))
            lines += [
                f"## {label}",
                "",
                f"Exact kernel of {n} images: {t_exact:.1f} s "
                f"({1e3 * t_exact / (n * (n + 1) / 2):.2f} ms per image pair).",
                "",
                *markdown_table(
                    [
                        "n_components",
                        "n_channels_",
                        "rel. Frobenius error",
                        "std over seeds",
                        "transform ms/image",
                    ],
                    rows,
                ),
                "",
                f"Fitted slope: **{b:.2f}**; error at 512 / error at 8192 = "
                f"{ratio:.2f} (n_components^(-1/2) would give 4.00).",
                "",
            ]
    lines += ["## Summary", ""]
    lines += markdown_table(
        ["case", "fitted slope", "err(512)/err(8192)", "meets <= -0.5"],
        [
            [lab, f"{b:.2f}", f"{r:.2f}", "yes" if b <= -0.5 else "no"]
            for lab, b, r in summary
        ],
    )
    lines += [
        "",
        "Rule: " + (auto_channels.__doc__ or "").strip().splitlines()[0],
        "",
    ]
    write_or_print(lines, None if args.quick else OUT)


if __name__ == "__main__":
    main()
