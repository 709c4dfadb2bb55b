"""Are the convolutional sketches unbiased, and within 1.5x of the ideal error?

For ``CNNGPSketch`` and ``CNTKSketch``, five activations (relu, erf, gelu,
tanh, exp_normalized), three inputs and two widths ``m = n_components``
(``n_channels="auto"``), ``S`` seeds per cell, against the exact kernel ``K``
(``cnngp_kernel`` / ``cntk_kernel``, checked against neural-tangents to 1e-8):

* **unbiased**: with ``D_t = Z_t Z_t^T - K`` for seed ``t``, the seed mean of
  ``sum_i D_t[i, i]`` (diagonal) and of ``sum_ij D_t[i, j]`` (aggregate) are
  within 4 standard errors (their seed standard deviation / sqrt(S)) of 0;
  a diagonal that is exact for every seed (exact output norms, see
  :func:`sklearn_ntk.conv_estimators.exact_output_norms`) counts as unbiased
  when it is within 1e-10 of ``K``'s.  Also shown: the share of single
  entries beyond 4 standard errors (about 1e-3 expected by chance).
* **error**: the seed mean of ``||D_t||_F / ||K||_F`` is at most ``1.5 *
  sqrt((1 + tr(K)^2 / ||K||_F^2) / m)``, the Gaussian-sketch error of a
  kernel with exact features (``E||Z Z^T - K||_F^2 = (||K||_F^2 + tr(K)^2)
  / m``).

Inputs: the first 24 of scikit-learn's digits (pixels / 16, 8 x 8 x 1) on
Myrtle-5, with the estimators' exact output norms and, a second time, with
sketched ones (the path of large images); the oracle's convolutional inputs (``tests/data/oracle.npz``, four
8 x 8 x 3 images each) on the oracle's Myrtle-5 case (case102) and on its
``conv_stack`` depth 2, flatten, ``W_std=1, b_std=0.1`` case (case099).

Why the sketched output norms (the path of images of more than ``2 *
n_channels`` pixels) can miss the error line: their error is that of the
hidden layers, which carry ``n_channels = m / 16`` features per pixel, not
``m``.  Each hidden layer adds a relative error ``~ c_l / sqrt(n_channels)``
to every pixel-pair kernel, and as the deep features of all images are
nearly collinear it is nearly the same for all image pairs: the relative
Frobenius error is then about ``sqrt(16 sum_l c_l^2 / m)``, against the ideal
``sqrt((1 + tr(K)^2 / ||K||_F^2) / m) ~ sqrt(2 / m)`` of such kernels (all
entries alike make ``tr(K)^2 / ||K||_F^2`` close to 1): a ratio ``sqrt(8
sum_l c_l^2)`` set by the network and the activation, not by ``m``.  Exact
output norms remove that common part (it is a scale of each row); a map with
sketched norms meets the line only with hidden widths closer to ``m``.

Writes ``benchmarks/results/conv_accuracy.md``.  Run::

    PYTHONPATH=. python benchmarks/conv_accuracy.py           # ~10 min, 2 cores
    PYTHONPATH=. python benchmarks/conv_accuracy.py --quick   # smoke test
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
import warnings
from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits

sys.path.insert(0, str(Path(__file__).parent))
from _common import machine_facts, markdown_table, threads, write_or_print

from sklearn_ntk.conv_estimators import CNNGPSketch, CNTKSketch
from sklearn_ntk.convolutional import cnngp_kernel, cntk_kernel

OUT = Path(__file__).parent / "results" / "conv_accuracy.md"
DATA = Path(__file__).parents[1] / "tests" / "data"
ACTS = ("relu", "erf", "gelu", "tanh", "exp_normalized")
KINDS = (("CNNGP", CNNGPSketch, cnngp_kernel), ("CNTK", CNTKSketch, cntk_kernel))
Z_MAX = 4.0
RATIO_MAX = 1.5


def sketched_norms(est_cls: type) -> type:
    """``est_cls`` drawing its features without exact output norms (the
    path of large images, where they would cost more than half a transform)."""

    class Sketched(est_cls):
        def _output_norms(self) -> bool:
            return False

    Sketched.__name__ = est_cls.__name__
    return Sketched


def inputs(n_digits: int) -> list[tuple[str, np.ndarray, dict]]:
    """``(label, images, network parameters)`` of the three inputs; the
    digits twice, the second time with sketched output norms."""
    cases = {c["key"]: c for c in json.loads((DATA / "oracle.json").read_text())}
    arrays = np.load(DATA / "oracle.npz")
    digits = (load_digits().data[:n_digits] / 16).reshape(n_digits, 8, 8, 1)
    out = [
        (
            f"digits ({n_digits}), Myrtle-5",
            digits,
            dict(architecture="myrtle", depth=5),
        ),
        (
            f"digits ({n_digits}), Myrtle-5, sketched norms",
            digits,
            dict(architecture="myrtle", depth=5, sketched=True),
        ),
    ]
    for key, label in (
        ("case102", "oracle case102 (4), Myrtle-5"),
        ("case099", "oracle case099 (4), conv_stack-2 flatten b=0.1"),
    ):
        c = cases[key]
        params = dict(
            architecture=c["kind"],
            depth=c["depth"],
            readout=c.get("readout", "global_avg"),
            W_std=c["W_std"],
            b_std=c["b_std"],
        )
        out.append((label, np.asarray(arrays[f"{key}_X"], dtype=np.float64), params))
    return out


def ideal_bound(K: np.ndarray, m: int) -> float:
    """``1.5 * sqrt((1 + tr(K)^2 / ||K||_F^2) / m)``."""
    ratio = np.trace(K) ** 2 / np.sum(K * K)
    return RATIO_MAX * math.sqrt((1.0 + ratio) / m)


def z_score(samples: np.ndarray) -> float:
    """Seed mean over its standard error (0 when every sample is ~0)."""
    se = samples.std(ddof=1) / math.sqrt(len(samples))
    mean = samples.mean()
    if se == 0.0:
        return 0.0 if mean == 0.0 else math.inf
    return float(mean / se)


def cell(est_cls, K, X, act, params, m, seeds) -> dict:
    """Statistics of one cell over ``seeds`` draws."""
    diag_sum, agg_sum, errs, est_errs, warned = [], [], [], [], 0
    diag_dev = 0.0
    D_all = []
    kn = np.linalg.norm(K)
    params = dict(params)
    if params.pop("sketched", False):
        est_cls = sketched_norms(est_cls)
    for s in range(seeds):
        est = est_cls(act=act, n_components=m, random_state=s, **params)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            Z = est.fit_transform(X)
        warned += any("error" in str(w.message).lower() for w in caught)
        D = Z @ Z.T - K
        D_all.append(D)
        diag_sum.append(np.trace(D))
        agg_sum.append(D.sum())
        diag_dev = max(diag_dev, float(np.max(np.abs(np.diag(D)) / np.diag(K))))
        errs.append(np.linalg.norm(D) / kn)
        est_errs.append(est.error_estimate_)
    D_all = np.array(D_all)
    se = D_all.std(axis=0, ddof=1) / math.sqrt(seeds)
    t = np.where(se > 0, np.abs(D_all.mean(axis=0)) / np.where(se > 0, se, 1), 0.0)
    exact_diag = diag_dev <= 1e-10
    z_diag = 0.0 if exact_diag else z_score(np.array(diag_sum))
    z_agg = z_score(np.array(agg_sum))
    bound = ideal_bound(K, m)
    err = float(np.mean(errs))
    return dict(
        z_diag=z_diag,
        exact_diag=exact_diag,
        z_agg=z_agg,
        beyond=float(np.mean(t > Z_MAX)),
        err=err,
        bound=bound,
        est=float(np.mean(est_errs)),
        warned=warned,
        unbiased=abs(z_diag) <= Z_MAX and abs(z_agg) <= Z_MAX,
        within=err <= bound,
        channels=est.n_channels_,
    )


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="relu, 1024, 5 seeds")
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    seeds = 5 if args.quick else args.seeds
    acts = ACTS[:1] if args.quick else ACTS
    widths = (1024,) if args.quick else (1024, 4096)
    rows, fails = [], []
    t_start = time.perf_counter()
    with threads(args.threads):
        for label, X, params in inputs(24):
            for act in acts:
                for kind, est_cls, kernel in KINDS:
                    kw = {k: v for k, v in params.items() if k != "sketched"}
                    K = np.asarray(kernel(X, act=act, **kw), dtype=np.float64)
                    for m in widths:
                        r = cell(est_cls, K, X, act, params, m, seeds)
                        diag = "exact" if r["exact_diag"] else f"{r['z_diag']:+.1f}"
                        row = [
                            label,
                            act,
                            kind,
                            m,
                            r["channels"],
                            diag,
                            f"{r['z_agg']:+.1f}",
                            f"{r['beyond']:.3f}",
                            f"{r['err']:.4f}",
                            f"{r['bound']:.4f}",
                            f"{r['err'] / r['bound'] * RATIO_MAX:.2f}",
                            f"{r['est']:.4f}",
                            "yes" if r["unbiased"] else "**no**",
                            "yes" if r["within"] else "**no**",
                        ]
                        rows.append(row)
                        if not (r["unbiased"] and r["within"]):
                            fails.append(row)
                        print(" | ".join(map(str, row)), flush=True)
    minutes = (time.perf_counter() - t_start) / 60
    header = [
        "input",
        "act",
        "kernel",
        "m",
        "n_channels_",
        "z diag",
        "z aggregate",
        "entries > 4 SE",
        "rel. Frobenius err.",
        "1.5x ideal",
        "err / ideal",
        "error_estimate_",
        "unbiased",
        "within 1.5x",
    ]
    lines = [
        "# Convolutional sketches: unbiased, and within 1.5x of the ideal error?",
        "",
        f"Command: `PYTHONPATH=. python benchmarks/conv_accuracy.py"
        f"{' --quick' if args.quick else ''}` ({minutes:.1f} min)",
        "",
        machine_facts().replace(
            "threads fixed to 2", f"threads fixed to {args.threads}"
        ),
        "",
        (__doc__ or "").split("\n\n", 1)[1].split("Writes")[0].strip(),
        "",
        f'{seeds} seeds per cell; `n_channels="auto"`; `z`: seed mean over its '
        "standard error (`exact`: every seed's diagonal equals K's to 1e-10); "
        "`err / ideal`: the error over the Gaussian-sketch error (at most 1.5 "
        "to pass); `error_estimate_`: the fitted estimators' own estimate, "
        "seed mean.",
        "",
        *markdown_table(header, rows),
        "",
        f"Cells failing a line: {len(fails)} of {len(rows)}.",
        "",
    ]
    write_or_print(lines, None if args.quick else OUT)


if __name__ == "__main__":
    main()
