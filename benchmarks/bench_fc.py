"""Fully connected NNGP/NTK sketches: error, speed, sparsity and downstream figures.

Reproduces every acceptance figure of the NNGPSketch/NTKSketch issue and
writes one markdown fragment per part to ``benchmarks/results/fc_<part>.md``
(``benchmarks/run_all.py`` assembles them into ``benchmarks/results.md``)::

    python benchmarks/bench_fc.py                      # every part
    python benchmarks/bench_fc.py --parts error,sparse # some parts
    python benchmarks/bench_fc.py --quick              # smaller sizes, a smoke run

Threads are fixed to 2 (BLAS via threadpoolctl, scipy.fft workers) for every
method, and timings are the best of 3 runs after a warm-up, alternating
methods within one process (see ``benchmarks/_common.py``).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from sklearn.datasets import load_breast_cancer, load_digits, load_wine
from sklearn.kernel_approximation import RBFSampler
from sklearn.kernel_ridge import KernelRidge
from sklearn.linear_model import RidgeClassifier
from sklearn.model_selection import StratifiedKFold
from sklearn.preprocessing import LabelBinarizer, StandardScaler

sys.path.insert(0, str(Path(__file__).parent))
from _common import best_time, machine_facts, markdown_table, threads

from sklearn_ntk import NNGPSketch, NTKSketch, nngp_kernel, ntk_kernel
from sklearn_ntk.montecarlo import monte_carlo_features

ACTS = ["relu", "erf", "gelu", "sin", "tanh"]


def spread_norm_data(n: int, d: int, seed: int = 0) -> np.ndarray:
    """Gaussian points with norms spread uniformly over [0.3, 3] * sqrt(d)."""
    rng = np.random.RandomState(seed)
    X = rng.randn(n, d)
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    return X * rng.uniform(0.3, 3.0, size=(n, 1)) * np.sqrt(d)


def rel_fro(Z: np.ndarray, K: np.ndarray) -> float:
    return float(np.linalg.norm(Z @ Z.T - K) / np.linalg.norm(K))


def kernel_error(quick: bool) -> tuple[list, list]:
    """Our sketch against Monte-Carlo features at the same number of features."""
    n, d, m = (200, 32, 1024) if quick else (500, 32, 4096)
    X = spread_norm_data(n, d)
    params = dict(W_std=1.5, b_std=0.1)
    rows = []
    for act in ACTS:
        for depth in (1, 2, 3):
            for ntk, Est, kern in (
                (False, NNGPSketch, nngp_kernel),
                (True, NTKSketch, ntk_kernel),
            ):
                K = kern(X, act=act, depth=depth, n_jobs=2, **params)
                ours = [
                    rel_fro(
                        Est(
                            act=act,
                            depth=depth,
                            n_components=m,
                            random_state=s,
                            **params,
                        ).fit_transform(X),
                        K,
                    )
                    for s in range(3)
                ]
                mc = [
                    rel_fro(
                        monte_carlo_features(
                            X,
                            act=act,
                            depth=depth,
                            n_components=m,
                            ntk=ntk,
                            random_state=s,
                            **params,
                        ),
                        K,
                    )
                    for s in range(3)
                ]
                rows.append(
                    [
                        act,
                        depth,
                        "NTK" if ntk else "NNGP",
                        f"{np.mean(ours):.4f}",
                        f"{np.mean(mc):.4f}",
                        f"{np.mean(mc) / np.mean(ours):.2f}",
                        "yes" if max(ours) <= min(mc) else "NO",
                    ]
                )
                print(rows[-1], flush=True)
    # Rate: error against n_components, NTK depth 2, two activations.
    rate = []
    for act in ("relu", "erf"):
        K = ntk_kernel(X, act=act, depth=2, n_jobs=2, **params)
        errs = []
        for mm in (512, 1024, 2048, 4096, 8192)[: 3 if quick else 5]:
            e = np.mean(
                [
                    rel_fro(
                        NTKSketch(
                            act=act, depth=2, n_components=mm, random_state=s, **params
                        ).fit_transform(X),
                        K,
                    )
                    for s in range(3)
                ]
            )
            errs.append((mm, e))
        slope = np.polyfit(
            np.log([e[0] for e in errs]), np.log([e[1] for e in errs]), 1
        )[0]
        rate.append([act, *(f"{e:.4f}" for _, e in errs), f"{slope:.2f}"])
        print(rate[-1], flush=True)
    return rows, rate


def transform_speed(quick: bool) -> list:
    n, d, m = (4000, 100, 1024) if quick else (20000, 100, 4096)
    X = np.random.RandomState(0).randn(n, d)
    rows = []
    for depth in (1, 3):
        for act in ("relu", "erf"):
            ours = NTKSketch(act=act, depth=depth, n_components=m, random_state=0).fit(
                X
            )
            rbf = RBFSampler(n_components=m, random_state=0).fit(X)
            t_ours = best_time(lambda: ours.transform(X))  # noqa: B023
            mc_kw = dict(act=act, depth=depth, n_components=m, ntk=True, random_state=0)
            t_mc = best_time(lambda: monte_carlo_features(X, **mc_kw))  # noqa: B023
            t_rbf = best_time(lambda: rbf.transform(X))  # noqa: B023
            rows.append(
                [
                    f"NTK {act}",
                    depth,
                    f"{t_ours:.2f}",
                    f"{t_mc:.2f}",
                    f"{t_rbf:.3f}",
                    f"{t_ours / t_mc:.2f}",
                    f"{t_ours / t_rbf:.1f}",
                ]
            )
            print(rows[-1], flush=True)
    return rows


def sparse_scaling(quick: bool) -> list:
    n, nnz_per_row, m = (1000, 100, 1024) if quick else (2000, 100, 1024)
    rows = []
    for d in (10_000, 100_000, 1_000_000):
        rng = np.random.RandomState(0)
        cols = rng.randint(0, d, size=(n, nnz_per_row))
        data = rng.randn(n, nnz_per_row)
        X = sp.csr_matrix(
            (
                data.ravel(),
                cols.ravel(),
                np.arange(0, n * nnz_per_row + 1, nnz_per_row),
            ),
            shape=(n, d),
        )
        X.sum_duplicates()
        est = NTKSketch(depth=2, n_components=m, random_state=0).fit(X)
        t = best_time(lambda: est.transform(X))  # noqa: B023
        rows.append([d, X.nnz, f"{X.nnz / (n * d):.0e}", f"{t:.3f}"])
        print(rows[-1], flush=True)
    return rows


def downstream(quick: bool) -> list:
    rows = []
    m = 2048 if quick else 8192
    n_seeds = 1 if quick else 5
    alpha = 1.0
    for name, loader in (
        ("digits", load_digits),
        ("breast_cancer", load_breast_cancer),
        ("wine", load_wine),
    ):
        X, y = loader(return_X_y=True)
        X = StandardScaler().fit_transform(X)
        for act, depth in (("relu", 2), ("erf", 2)):
            params = dict(act=act, depth=depth, W_std=1.0, b_std=0.1)
            acc_s, acc_e = [], []
            for tr, te in StratifiedKFold(5, shuffle=True, random_state=0).split(X, y):
                # The sketch is random: its accuracy is averaged over seeds
                # (one test row of wine is 0.56 points of its 5-fold mean).
                fold = []
                for seed in range(n_seeds):
                    Z = NTKSketch(n_components=m, random_state=seed, **params)
                    Z.fit(X[tr])
                    clf = RidgeClassifier(alpha=alpha, fit_intercept=False)
                    clf.fit(Z.transform(X[tr]), y[tr])
                    fold.append(clf.score(Z.transform(X[te]), y[te]))
                acc_s.append(fold)
                lb = LabelBinarizer(neg_label=-1).fit(y[tr])
                Y = lb.transform(y[tr])
                krr = KernelRidge(alpha=alpha, kernel="precomputed")
                krr.fit(ntk_kernel(X[tr], n_jobs=2, **params), Y)
                dec = krr.predict(ntk_kernel(X[te], X[tr], n_jobs=2, **params))
                pred = (
                    lb.classes_[np.argmax(dec, axis=1)]
                    if dec.shape[1] > 1
                    else lb.classes_[(dec[:, 0] > 0).astype(int)]
                )
                acc_e.append(np.mean(pred == y[te]))
            per_seed = 100 * np.mean(acc_s, axis=0)  # 5-fold mean, one per seed
            diff = 100 * np.mean(acc_e) - per_seed.mean()
            rows.append(
                [
                    name,
                    act,
                    depth,
                    m,
                    f"{per_seed.mean():.2f} ({per_seed.min():.2f}-{per_seed.max():.2f})",
                    f"{100 * np.mean(acc_e):.2f}",
                    f"{diff:+.2f}",
                    "yes" if abs(diff) <= 1 else "NO",
                ]
            )
            print(rows[-1], flush=True)
    return rows


PARTS = ("error", "speed", "sparse", "downstream")


def report(part: str, quick: bool) -> list[str]:
    """Run one part and return its markdown section."""
    if part == "error":
        err_rows, rate_rows = kernel_error(quick)
        sizes = ["512", "1024", "2048"] + ([] if quick else ["4096", "8192"])
        return [
            "## Kernel error (relative Frobenius), ours vs Monte-Carlo network features",
            "",
            "500 Gaussian points, d=32, norms uniform in [0.3, 3]·sqrt(d), n_components=4096, "
            "W_std=1.5, b_std=0.1; mean of 3 seeds each; 'worst <= best' says whether our worst "
            "seed is no worse than Monte Carlo's best seed.",
            "",
            *markdown_table(
                [
                    "act",
                    "depth",
                    "kernel",
                    "ours",
                    "Monte Carlo",
                    "MC/ours",
                    "worst <= best",
                ],
                err_rows,
            ),
            "",
            "### Error against n_components (NTK, depth 2; log-log slope, -0.5 expected)",
            "",
            *markdown_table(["act", *sizes, "slope"], rate_rows),
        ]
    if part == "speed":
        return [
            "## Transform time (s), n=20000, d=100, n_components=4096, NTK",
            "",
            "Best of 3 after a warm-up; the Monte-Carlo features have the same widths.",
            "",
            *markdown_table(
                [
                    "kernel",
                    "depth",
                    "ours",
                    "Monte Carlo",
                    "RBFSampler",
                    "ours/MC",
                    "ours/RBFSampler",
                ],
                transform_speed(quick),
            ),
        ]
    if part == "sparse":
        return [
            "## Sparse CSR input: fixed nnz, growing d (NTK depth 2, n_components=1024)",
            "",
            *markdown_table(
                ["d", "nnz", "density", "transform (s)"], sparse_scaling(quick)
            ),
        ]
    return [
        "## Downstream: 5-fold CV accuracy (%), NTKSketch + RidgeClassifier vs exact NTK "
        "kernel ridge (same alpha=1, W_std=1, b_std=0.1, no intercept)",
        "",
        "The sketch's accuracy is the mean over 5 seeds (range in brackets); the folds are "
        "the same for every seed and for the exact kernel.",
        "",
        *markdown_table(
            [
                "data",
                "act",
                "depth",
                "n_components",
                "sketch",
                "exact",
                "exact - sketch",
                "within 1 pt",
            ],
            downstream(quick),
        ),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--quick", action="store_true", help="smaller sizes, a smoke run"
    )
    parser.add_argument(
        "--parts", default=",".join(PARTS), help="comma-separated parts"
    )
    parser.add_argument("--out-dir", default=str(Path(__file__).with_name("results")))
    args = parser.parse_args()
    out = Path(args.out_dir)
    out.mkdir(exist_ok=True)
    for part in args.parts.split(","):
        t0 = time.time()
        with threads(2):
            lines = report(part, args.quick)
        lines += ["", f"({machine_facts()} Part time: {time.time() - t0:.0f} s.)", ""]
        (out / f"fc_{part}.md").write_text("\n".join(lines))
        print("\n".join(lines), flush=True)


if __name__ == "__main__":
    main()
