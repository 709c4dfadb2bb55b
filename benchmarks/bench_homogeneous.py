"""The homogeneous-dual sketch (``method="homogeneous"``) against the layerwise one.

Four measurements (issue 13), written to ``benchmarks/results/homogeneous.md``:

1. Relative Frobenius error ``||Z Z^T - K|| / ||K||`` on standardized Gaussian
   data (n=500, d=32), 4096 features, mean of 3 seeds, for relu, abs,
   leaky_relu and rectified_monomial(2), NNGP and NTK, depths 1-3:
   ``NNGPSketch``/``NTKSketch`` default (``method="layerwise"``) against
   ``method="homogeneous"`` (both with ``degree=8``, the default).
2. Subspace embedding: the extreme eigenvalues of
   ``(K + lam I)^-1/2 (Z Z^T + lam I) (K + lam I)^-1/2`` for
   ``lam in {1e-3, 1e-2, 1e-1} * ||K||_2`` at the ``n_components`` that
   ``n_components="auto"`` chooses (``alpha=lam``, eps=0.5), relu NTK depth 2,
   on standardized digits (first 1000) and on a CSR TF-IDF-like corpus
   (``_corpus.make_topic_corpus``, 1000 documents, 5000 words).
3. Sparse downstream: two TF-IDF corpora (the default one of
   ``bench_tfidf_scale.py`` and a harder one, shorter documents with more
   background words), rows times ``sqrt(d)`` (the user guide's scaling),
   relu NTK depth 2, alpha=10: exact NTK kernel ridge against ``NTKSketch``
   + ``RidgeClassifier`` (no intercept, same alpha), and the kernel error of
   CSR input against the same rows dense.
4. Input-sparsity timing: CSR with 50 nonzeros per row, d = 1e4, 1e5, 1e6
   (n=2000), and n, 2n, 4n at d=1e5; ``transform`` time, 2 threads.

    PYTHONPATH=. python benchmarks/bench_homogeneous.py [--quick]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from sklearn.datasets import load_digits
from sklearn.kernel_ridge import KernelRidge
from sklearn.linear_model import RidgeClassifier
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import LabelBinarizer, StandardScaler

sys.path.insert(0, str(Path(__file__).parent))
from _common import best_time, machine_facts, markdown_table, threads
from _corpus import make_topic_corpus

from sklearn_ntk import NNGPSketch, NTKSketch, activations, nngp_kernel, ntk_kernel
from sklearn_ntk.homogeneous import choose_n_components

ACTS = {
    "relu": "relu",
    "abs": "abs",
    "leaky_relu(0.01)": activations.get("leaky_relu"),
    "rectified_monomial(2)": activations.get("rectified_monomial", degree=2),
}


def rel_err(Z: np.ndarray, K: np.ndarray) -> float:
    return float(np.linalg.norm(Z @ Z.T - K) / np.linalg.norm(K))


def error_table(quick: bool) -> list[list[str]]:
    X = StandardScaler().fit_transform(np.random.RandomState(0).randn(500, 32))
    seeds = range(1 if quick else 3)
    rows = []
    for name, act in ACTS.items():
        for Est, kernel, kind in (
            (NNGPSketch, nngp_kernel, "NNGP"),
            (NTKSketch, ntk_kernel, "NTK"),
        ):
            for depth in (1, 2, 3):
                K = kernel(X, act=act, depth=depth)
                err = {}
                for method in ("layerwise", "homogeneous"):
                    err[method] = np.mean(
                        [
                            rel_err(
                                Est(
                                    act=act,
                                    depth=depth,
                                    n_components=4096,
                                    method=method,
                                    random_state=s,
                                ).fit_transform(X),
                                K,
                            )
                            for s in seeds
                        ]
                    )
                gain = 1 - err["homogeneous"] / err["layerwise"]
                rows.append(
                    [
                        name,
                        kind,
                        depth,
                        f"{err['layerwise']:.4f}",
                        f"{err['homogeneous']:.4f}",
                        f"{100 * gain:+.0f}%",
                    ]
                )
                print(rows[-1], flush=True)
    return rows


def embedding_bounds(K: np.ndarray, Z: np.ndarray, lam: float) -> tuple[float, float]:
    w, V = np.linalg.eigh(K)
    W = V / np.sqrt(np.maximum(w, 0.0) + lam)
    M = W.T @ (Z @ Z.T + lam * np.eye(len(K))) @ W
    e = np.linalg.eigvalsh((M + M.T) / 2)
    return float(e[0]), float(e[-1])


def embedding_table(quick: bool) -> list[list[str]]:
    digits = StandardScaler().fit_transform(load_digits().data)[:1000]
    corpus, _ = make_topic_corpus(1000, n_words=5000, random_state=0)
    data = {"digits (dense)": digits, "TF-IDF corpus (CSR)": sp.csr_matrix(corpus)}
    rows = []
    for name, X in data.items():
        K = ntk_kernel(X, act="relu", depth=2)
        w = np.linalg.eigvalsh(K)
        for f in (1e-3, 1e-2, 1e-1):
            lam = f * w[-1]
            s_exact = float(np.sum(w / (w + lam)))
            m, s = choose_n_components(
                X, act="relu", depth=2, ntk=True, alpha=lam, random_state=0
            )
            est = NTKSketch(
                depth=2,
                method="homogeneous",
                n_components="auto",
                alpha=lam,
                random_state=1,
            ).fit(X)
            assert est.n_components_ == m
            lo, hi = embedding_bounds(K, est.transform(X), lam)
            ok = 0.5 <= lo and hi <= 1.5
            rows.append(
                [
                    name,
                    f"{f:g}",
                    f"{s_exact:.1f}",
                    f"{s:.1f}",
                    m,
                    f"{m / s_exact:.1f}",
                    f"{lo:.3f}",
                    f"{hi:.3f}",
                    "yes" if ok else "**no**",
                ]
            )
            print(rows[-1], flush=True)
    return rows


CORPORA = {
    "default (mean_length 80, background 0.5)": {},
    "harder (mean_length 20, background 0.7)": dict(mean_length=20, background=0.7),
}


def sparse_table(quick: bool) -> tuple[list[list[str]], list[list[str]]]:
    acc_rows = []
    alpha = 10.0
    seeds = range(1 if quick else 3)
    for cname, kw in CORPORA.items():
        X, y = make_topic_corpus(
            800 if quick else 2000, n_words=5000, random_state=0, **kw
        )
        d = X.shape[1]
        X = sp.csr_matrix(X) * np.sqrt(d)  # user guide: ||x||^2 / d = 1
        Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.25, random_state=0)
        lb = LabelBinarizer(pos_label=1, neg_label=-1).fit(ytr)
        Ktr = ntk_kernel(Xtr, act="relu", depth=2)
        Kte = ntk_kernel(Xte, Xtr, act="relu", depth=2)
        krr = KernelRidge(alpha=alpha, kernel="precomputed").fit(Ktr, lb.transform(ytr))
        exact = float(np.mean(lb.classes_[krr.predict(Kte).argmax(1)] == yte))
        for method, m, runs in (
            ("layerwise", 4096, range(1)),
            ("homogeneous", 4096, seeds),
            ("homogeneous", 16384, seeds),
            ("homogeneous", "auto", seeds),
        ):
            accs, used = [], []
            for s in runs:
                est = NTKSketch(
                    depth=2,
                    method=method,
                    n_components=m,
                    alpha=alpha,
                    random_state=s,
                ).fit(Xtr)
                clf = RidgeClassifier(alpha=alpha, fit_intercept=False)
                clf.fit(est.transform(Xtr), ytr)
                accs.append(clf.score(est.transform(Xte), yte))
                used.append(est.sketch_.n_components)
            acc_rows.append(
                [
                    cname,
                    method,
                    f"{m} ({int(np.mean(used))})" if m == "auto" else m,
                    len(accs),
                    f"{exact:.3f}",
                    f"{np.mean(accs):.3f}",
                    f"{100 * (np.mean(accs) - exact):+.1f}",
                ]
            )
            print(acc_rows[-1], flush=True)
    # CSR against dense input, same rows and seeds (the harder corpus).
    Xs = Xtr[:600]
    K = ntk_kernel(Xs, act="relu", depth=2)
    err_rows = []
    for m in (1024, 4096):
        e = {}
        for kind, A in (("dense", Xs.toarray()), ("CSR", Xs)):
            e[kind] = np.mean(
                [
                    rel_err(
                        NTKSketch(
                            depth=2,
                            method="homogeneous",
                            n_components=m,
                            random_state=s,
                        ).fit_transform(A),
                        K,
                    )
                    for s in range(1 if quick else 3)
                ]
            )
        err_rows.append(
            [m, f"{e['dense']:.4f}", f"{e['CSR']:.4f}", f"{e['CSR'] / e['dense']:.2f}"]
        )
        print(err_rows[-1], flush=True)
    return acc_rows, err_rows


def random_csr(n: int, d: int, nnz: int, seed: int) -> sp.csr_matrix:
    rng = np.random.RandomState(seed)
    # Columns drawn with replacement (a collision in d >= 1e4 is rare; CSR
    # sums duplicates), so that drawing does not cost O(d) per row.
    cols = rng.randint(0, d, n * nnz)
    data = rng.rand(n * nnz)
    X = sp.csr_matrix((data, cols, np.arange(0, n * nnz + 1, nnz)), shape=(n, d))
    X.sum_duplicates()
    return X


def timing_table(quick: bool) -> list[list[str]]:
    rows = []
    n0 = 1000 if quick else 2000
    cases = [(n0, 10**4), (n0, 10**5), (n0, 10**6), (2 * n0, 10**5), (4 * n0, 10**5)]
    with threads(2):
        for n, d in cases:
            X = random_csr(n, d, 50, 0)
            est = NTKSketch(
                depth=2, method="homogeneous", n_components=1024, random_state=0
            ).fit(X)
            t = best_time(lambda est=est, X=X: est.transform(X), repeats=3)
            rows.append([n, f"{d:.0e}", X.nnz, f"{t:.3f}", f"{1e6 * t / n:.0f}"])
            print(rows[-1], flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 seed, smaller data")
    parser.add_argument(
        "--only", default="1234", help="sections to run (digits of 1-4)"
    )
    args = parser.parse_args()
    t0 = time.time()
    lines = [
        '# Homogeneous-dual sketch (`method="homogeneous"`)',
        "",
        machine_facts(),
        "",
        "Command: `PYTHONPATH=. python benchmarks/bench_homogeneous.py"
        + (" --quick" if args.quick else "")
        + (f" --only {args.only}" if args.only != "1234" else "")
        + "`.",
        "",
    ]
    if "1" in args.only:
        lines += [
            "## 1. Kernel error, standardized Gaussian data (n=500, d=32), "
            "4096 features, mean of 3 seeds",
            "",
            "Relative Frobenius error `||ZZ^T - K|| / ||K||`; `layerwise` is "
            "today's default path, `gain` = 1 - homogeneous / layerwise.",
            "",
            *markdown_table(
                ["activation", "kernel", "depth", "layerwise", "homogeneous", "gain"],
                error_table(args.quick),
            ),
            "",
        ]
    if "2" in args.only:
        lines += [
            '## 2. Subspace embedding at the `n_components="auto"` choice '
            "(relu NTK, depth 2, eps = 0.5)",
            "",
            "`s exact` = tr(K (K + lam I)^-1) from the full kernel; `s est` is "
            "what `choose_n_components` computed (exact kernel of up to 2000 "
            "sampled rows, so exact here); `m` = ceil(6 s / eps^2); `min` / `max` "
            "eigenvalues of (K + lam I)^-1/2 (ZZ^T + lam I) (K + lam I)^-1/2, "
            "one seed.",
            "",
            *markdown_table(
                [
                    "data",
                    "lam / norm(K, 2)",
                    "s exact",
                    "s est",
                    "m (auto)",
                    "m / s",
                    "min eig",
                    "max eig",
                    "in [0.5, 1.5]",
                ],
                embedding_table(args.quick),
            ),
            "",
        ]
    if "3" in args.only:
        acc, err = sparse_table(args.quick)
        lines += [
            "## 3. Sparse input: TF-IDF downstream and CSR vs dense error",
            "",
            "Corpora: `make_topic_corpus(2000, n_words=5000, **kw)`, rows "
            "times sqrt(d) (user guide), 1500 train / 500 test, relu NTK depth 2, "
            'alpha=10.  Exact: `KernelRidge(alpha, kernel="precomputed")`; '
            "sketch: `NTKSketch(method=...)` + `RidgeClassifier(alpha, "
            "fit_intercept=False)`, mean over the seeds given (`auto`: the "
            "number of features it chose in parentheses).",
            "",
            *markdown_table(
                [
                    "corpus",
                    "method",
                    "n_components",
                    "seeds",
                    "exact KRR",
                    "sketch",
                    "points",
                ],
                acc,
            ),
            "",
            "Kernel error of the same 600 training rows given as CSR and as "
            "dense (mean of 3 seeds):",
            "",
            *markdown_table(["n_components", "dense", "CSR", "CSR / dense"], err),
            "",
        ]
    if "4" in args.only:
        lines += [
            "## 4. Input-sparsity time (CSR, 50 nonzeros per row, relu NTK "
            "depth 2, 1024 features, best of 3, 2 threads)",
            "",
            *markdown_table(
                ["n", "d", "nnz", "transform (s)", "us / row"], timing_table(args.quick)
            ),
            "",
        ]
    lines.append(f"Total run time: {time.time() - t0:.0f} s.")
    name = "homogeneous" if args.only == "1234" else f"homogeneous_part{args.only}"
    out = Path(__file__).parent / "results" / f"{name}.md"
    out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
