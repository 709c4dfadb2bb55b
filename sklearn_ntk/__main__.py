"""Demo: ``python -m sklearn_ntk``.

Classifies scikit-learn's bundled digits with an ``NTKSketch`` + ridge
pipeline and with exact NTK kernel ridge regression (same hyperparameters),
printing the accuracy and the time of each.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from sklearn.datasets import load_digits
from sklearn.kernel_ridge import KernelRidge
from sklearn.linear_model import RidgeClassifier
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import LabelBinarizer, StandardScaler

from . import NTKSketch, ntk_kernel


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(
        prog="python -m sklearn_ntk",
        description="NTK sketch + ridge against exact NTK kernel ridge on digits.",
    )
    parser.add_argument("--act", default="relu", help="activation name (default relu)")
    parser.add_argument(
        "--depth", type=int, default=2, help="hidden layers (default 2)"
    )
    parser.add_argument("--n-components", type=int, default=4096, help="features")
    parser.add_argument("--alpha", type=float, default=1e-2, help="ridge penalty")
    parser.add_argument("--seed", type=int, default=0, help="random seed")
    args = parser.parse_args(argv)

    X, y = load_digits(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    X_tr, X_te, y_tr, y_te = train_test_split(
        X, y, test_size=0.25, random_state=args.seed
    )
    params = dict(act=args.act, depth=args.depth, W_std=1.0, b_std=0.1)
    print(
        f"digits: {X_tr.shape[0]} train / {X_te.shape[0]} test images, d = {X.shape[1]}"
    )
    print(f"network: {params}, ridge alpha = {args.alpha}\n")

    t0 = time.perf_counter()
    model = make_pipeline(
        NTKSketch(n_components=args.n_components, random_state=args.seed, **params),
        RidgeClassifier(alpha=args.alpha, fit_intercept=False),
    )
    model.fit(X_tr, y_tr)
    acc_sketch = model.score(X_te, y_te)
    t_sketch = time.perf_counter() - t0

    t0 = time.perf_counter()
    lb = LabelBinarizer(pos_label=1, neg_label=-1).fit(y_tr)
    krr = KernelRidge(alpha=args.alpha, kernel="precomputed")
    krr.fit(ntk_kernel(X_tr, **params), lb.transform(y_tr))
    pred = lb.classes_[np.argmax(krr.predict(ntk_kernel(X_te, X_tr, **params)), axis=1)]
    acc_exact = float(np.mean(pred == y_te))
    t_exact = time.perf_counter() - t0

    width = 44
    print(f"{'method':<{width}} {'accuracy':>9} {'time (s)':>9}")
    name = f"NTKSketch(n_components={args.n_components}) + RidgeClassifier"
    print(f"{name:<{width}} {acc_sketch:9.4f} {t_sketch:9.2f}")
    print(f"{'exact NTK + kernel ridge':<{width}} {acc_exact:9.4f} {t_exact:9.2f}")
    return {"sketch": (acc_sketch, t_sketch), "exact": (acc_exact, t_exact)}


if __name__ == "__main__":
    main()
