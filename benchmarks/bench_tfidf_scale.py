"""Feature scale on unit-norm, high-dimensional sparse data (TF-IDF).

The first layer of every network kernel is ``W_std**2 <x, y> / d + b_std**2``
(neural-tangents' convention), so rows of unit norm in ``d`` dimensions give
kernels, and features, of size ``1/d``: ``NTKSketch`` features of TF-IDF
rows have norms near ``1/sqrt(d)``.  A ridge penalty ``alpha`` chosen for
features of size one (scikit-learn's default ``alpha=1``) then
over-regularizes.  This script measures test accuracy on a synthetic 4-topic
corpus (``_corpus.make_topic_corpus``: 2000 documents, 5000 words, 1500 train
/ 500 test) for

* linear ``RidgeClassifier`` on the same input,
* exact NTK kernel ridge (``ntk_kernel`` + ``KernelRidge``, no intercept),
* ``NTKSketch(n_components=2048)`` + ``RidgeClassifier`` (with and without
  intercept),

for raw TF-IDF, rows multiplied by ``sqrt(d)`` (so that ``|x|^2 / d = 1``, the
scale of standardized data), and ``StandardScaler(with_mean=False)``, each
with ``alpha=1`` and ``alpha=1/d``.  ``Normalizer()`` is not listed: TF-IDF
rows already have unit norm, so it changes nothing.  Writes
``benchmarks/results/tfidf_scale.md``::

    python benchmarks/bench_tfidf_scale.py
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from sklearn.kernel_ridge import KernelRidge
from sklearn.linear_model import RidgeClassifier, RidgeClassifierCV
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import LabelBinarizer, StandardScaler

sys.path.insert(0, str(Path(__file__).parent))
from _common import machine_facts, markdown_table, threads
from _corpus import make_topic_corpus

from sklearn_ntk import NTKSketch, ntk_kernel

NETWORKS = {
    "NTKSketch() defaults (relu, depth 1, b_std 0)": {},
    "erf, depth 2, b_std 0.1": dict(act="erf", depth=2, b_std=0.1),
}


ALPHAS = np.logspace(-6, 3, 10)


def evaluate(quick: bool) -> tuple[list[list[str]], list[list[str]]]:
    n_docs = 800 if quick else 2000
    X, y = make_topic_corpus(n_docs, n_words=5000, n_topics=4, random_state=0)
    d = X.shape[1]
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.25, random_state=0)
    lb = LabelBinarizer(pos_label=1, neg_label=-1).fit(ytr)
    scaler = StandardScaler(with_mean=False).fit(Xtr)
    inputs = {
        "raw TF-IDF": (Xtr, Xte),
        "x sqrt(d)": (Xtr * np.sqrt(d), Xte * np.sqrt(d)),
        "StandardScaler(with_mean=False)": (
            scaler.transform(Xtr),
            scaler.transform(Xte),
        ),
    }
    rows, cv_rows = [], []
    for net_name, net in NETWORKS.items():
        for in_name, (A, B) in inputs.items():
            K, Kt = ntk_kernel(A, **net), ntk_kernel(B, A, **net)
            sketch = NTKSketch(n_components=2048, random_state=0, **net).fit(A)
            Z, Zt = sketch.transform(A), sketch.transform(B)
            norm = float(np.median(np.linalg.norm(Z, axis=1)))
            cv = RidgeClassifierCV(alphas=ALPHAS).fit(Z, ytr)
            cv_rows.append(
                [net_name, in_name, f"{cv.alpha_:.0e}", f"{cv.score(Zt, yte):.3f}"]
            )
            for alpha, a_name in ((1.0, "1"), (1.0 / d, "1/d")):
                linear = RidgeClassifier(alpha=alpha).fit(A, ytr).score(B, yte)
                krr = KernelRidge(alpha=alpha, kernel="precomputed")
                scores = krr.fit(K, lb.transform(ytr)).predict(Kt)
                exact = np.mean(lb.classes_[scores.argmax(axis=1)] == yte)
                sk = [
                    RidgeClassifier(alpha=alpha, fit_intercept=fi)
                    .fit(Z, ytr)
                    .score(Zt, yte)
                    for fi in (True, False)
                ]
                rows.append(
                    [
                        net_name,
                        in_name,
                        f"{norm:.3g}",
                        a_name,
                        f"{linear:.3f}",
                        f"{exact:.3f}",
                        f"{sk[0]:.3f}",
                        f"{sk[1]:.3f}",
                    ]
                )
                print(rows[-1], flush=True)
    return rows, cv_rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="800 documents")
    parser.add_argument(
        "--out",
        type=Path,
        default=Path(__file__).with_name("results") / "tfidf_scale.md",
    )
    args = parser.parse_args()
    t0 = time.time()
    with threads(2):
        rows, cv_rows = evaluate(args.quick)
    n_docs = 800 if args.quick else 2000
    lines = [
        "## Feature scale on TF-IDF (unit-norm sparse rows, d = 5000)",
        "",
        f"Synthetic 4-topic corpus (`benchmarks/_corpus.py`, {n_docs} documents, "
        "75% train / 25% test), test accuracy. 'exact' is NTK kernel ridge "
        "(no intercept); the sketch is `NTKSketch(n_components=2048)` + "
        "`RidgeClassifier(alpha)`, with scikit-learn's default intercept and "
        "without; 'feature norm' is the median norm of a row of sketch features.",
        "",
        *markdown_table(
            [
                "network",
                "input",
                "feature norm",
                "alpha",
                "linear ridge",
                "exact NTK",
                "sketch",
                "sketch, no intercept",
            ],
            rows,
        ),
        "",
        "Sketch + `RidgeClassifierCV(alphas=np.logspace(-6, 3, 10))` (efficient "
        "leave-one-out), the alpha it picks and its test accuracy:",
        "",
        *markdown_table(
            ["network", "input", "chosen alpha", "sketch, tuned alpha"], cv_rows
        ),
        "",
        f"({machine_facts()} Time: {time.time() - t0:.0f} s.)",
        "",
    ]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
