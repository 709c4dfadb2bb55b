"""CNTKSketch against the exact Myrtle-5 CNTK on scikit-learn's digits.

Measures, in one run and with threads fixed to 2:

* time of ``CNTKSketch`` features + ridge fit against exact CNTK + kernel
  ridge fit, and the test accuracy of both, on digits (8 x 8) at n = 450,
  900 and 1797 and on digits upsampled to 16 x 16 at n = 250;
* 5-fold cross-validated accuracy on all 1797 digits, sketch + ridge against
  exact kernel ridge with the same hyperparameters;
* the relative Frobenius error of the sketched kernel.

Writes a markdown table to ``benchmarks/results_cntk.md``.  Run::

    python benchmarks/bench_cntk.py            # about 10 minutes on 2 cores
    python benchmarks/bench_cntk.py --quick    # small sizes, a smoke test
    python benchmarks/bench_cntk.py --n-channels 192  # the width before "auto"
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
from scipy.ndimage import zoom
from sklearn.datasets import load_digits
from sklearn.linear_model import RidgeClassifier
from sklearn.model_selection import StratifiedKFold, train_test_split

sys.path.insert(0, str(Path(__file__).parent))
from _common import best_time, machine_facts, threads

from sklearn_ntk.conv_estimators import CNTKSketch
from sklearn_ntk.convolutional import cntk_kernel

ALPHA = 1e-4  # ridge, the same for the sketch and the exact kernel
N_COMPONENTS = 4096
N_CHANNELS: int | str = CNTKSketch().n_channels  # the default, or --n-channels
NT_MS_PER_PAIR = {8: 0.5, 16: 8.0}  # neural-tangents' exact Myrtle-5 CNTK, this machine


def kernel_ridge_predict(K_train, y_train, K_test, alpha=ALPHA):
    """Kernel ridge on +-1 one-hot targets (what RidgeClassifier fits), no intercept."""
    classes = np.unique(y_train)
    T = np.where(y_train[:, None] == classes[None, :], 1.0, -1.0)
    A = K_train + alpha * np.eye(len(K_train))
    coef = np.linalg.solve(A, T)
    return classes[np.argmax(K_test @ coef, axis=1)]


def sketch_model():
    return CNTKSketch(
        architecture="myrtle",
        depth=5,
        n_components=N_COMPONENTS,
        n_channels=N_CHANNELS,
        random_state=0,
    )


def digits(size):
    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    if size != 8:
        X = zoom(X.reshape(-1, 8, 8), (1, size / 8, size / 8), order=1).reshape(
            len(X), -1
        )
    return X, y


def run_case(X, y, size, repeats):
    """Times and accuracies on a stratified 80/20 split of (X, y)."""
    idx_tr, idx_te = train_test_split(
        np.arange(len(y)), test_size=0.2, stratify=y, random_state=0
    )
    shape = (size, size, 1)

    def sketch_fit():
        Z = sketch_model().set_params(image_shape=shape).fit_transform(X)
        clf = RidgeClassifier(alpha=ALPHA, fit_intercept=False).fit(
            Z[idx_tr], y[idx_tr]
        )
        return Z, clf

    t_sketch = best_time(sketch_fit, repeats=repeats, warmup=False)
    Z, clf = sketch_fit()
    acc_sketch = float(np.mean(clf.predict(Z[idx_te]) == y[idx_te]))

    t0 = time.perf_counter()
    K = cntk_kernel(X, image_shape=shape, n_jobs=2)
    t_kernel = time.perf_counter() - t0
    pred = kernel_ridge_predict(
        K[np.ix_(idx_tr, idx_tr)], y[idx_tr], K[np.ix_(idx_te, idx_tr)]
    )
    t_exact = time.perf_counter() - t0
    acc_exact = float(np.mean(pred == y[idx_te]))
    err = float(np.linalg.norm(Z @ Z.T - K) / np.linalg.norm(K))
    n = len(y)
    return (
        dict(
            size=size,
            n=n,
            t_sketch=t_sketch,
            t_exact=t_exact,
            t_kernel=t_kernel,
            us_pair=t_kernel / (n * (n + 1) / 2) * 1e6,
            nt_est=NT_MS_PER_PAIR.get(size, np.nan) * 1e-3 * n * (n + 1) / 2,
            acc_sketch=acc_sketch,
            acc_exact=acc_exact,
            err=err,
        ),
        K,
        Z,
    )


def cv_accuracy(K, Z, y):
    folds = StratifiedKFold(5, shuffle=True, random_state=0).split(Z, y)
    acc_s, acc_e = [], []
    for tr, te in folds:
        clf = RidgeClassifier(alpha=ALPHA, fit_intercept=False).fit(Z[tr], y[tr])
        acc_s.append(np.mean(clf.predict(Z[te]) == y[te]))
        pred = kernel_ridge_predict(K[np.ix_(tr, tr)], y[tr], K[np.ix_(te, tr)])
        acc_e.append(np.mean(pred == y[te]))
    return float(np.mean(acc_s)), float(np.mean(acc_e))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes only")
    parser.add_argument(
        "--n-channels",
        default=None,
        help='hidden width per pixel (default: the estimator\'s, "auto"); '
        "192 was the default before n_channels followed n_components",
    )
    parser.add_argument("--out", default=str(Path(__file__).parent / "results_cntk.md"))
    args = parser.parse_args()
    if args.n_channels is not None:
        global N_CHANNELS
        N_CHANNELS = (
            args.n_channels if args.n_channels == "auto" else int(args.n_channels)
        )
    cases = [(8, 450), (8, 900), (8, 1797), (16, 250)]
    if args.quick:
        cases = [(8, 120), (16, 60)]
    rng = np.random.RandomState(0)
    rows, cv = [], None
    load_start = os.getloadavg()[0]
    with threads(2):
        for size, n in cases:
            X, y = digits(size)
            sel = (
                np.sort(rng.permutation(len(y))[:n])
                if n < len(y)
                else np.arange(len(y))
            )
            repeats = 3 if n <= 900 else 1
            row, K, Z = run_case(X[sel], y[sel], size, repeats)
            rows.append(row)
            print(
                f"{size}x{size} n={n}: "
                f"sketch {row['t_sketch']:.2f}s acc {row['acc_sketch']:.4f} | "
                f"exact {row['t_exact']:.1f}s acc {row['acc_exact']:.4f} | "
                f"ratio {row['t_exact'] / row['t_sketch']:.1f} | err {row['err']:.3f}",
                flush=True,
            )
            if size == 8 and n == len(y):
                cv = cv_accuracy(K, Z, y[sel])
                print(
                    f"5-fold CV, all digits: sketch {cv[0]:.4f}, exact {cv[1]:.4f}",
                    flush=True,
                )

    load_end = os.getloadavg()[0]
    lines = [
        "# CNTKSketch vs exact CNTK (Myrtle-5, relu) on digits",
        "",
        machine_facts(),
        f"1-minute load average at start / end: {load_start:.1f} / {load_end:.1f} "
        f"(on {os.cpu_count()} CPUs: above that, other processes shared the cores and "
        "every time is inflated, the exact kernel's most since it runs on 2 threads).",
        "",
        "Sketch: `CNTKSketch(architecture='myrtle', depth=5, "
        f"n_components={N_COMPONENTS}, n_channels={N_CHANNELS}, degree=8)` + "
        f"`RidgeClassifier(alpha={ALPHA}, fit_intercept=False)`.  "
        "Exact: `cntk_kernel(..., n_jobs=2)` + kernel ridge with "
        "the same alpha and targets.  Pixels scaled to [0, 1]; 16 x 16 images are the "
        "digits upsampled bilinearly.  Times include computing the features (or the "
        "full n x n kernel) and fitting on a stratified 80 % split; accuracy is on the "
        "other 20 %.  Sketch times are the best of 3 runs for n <= 900, single runs "
        "otherwise; exact times are single runs.  `NT est.`: neural-tangents' exact "
        "CNTK at its measured cost per image pair on this machine (0.5 ms at 8 x 8, "
        "8 ms at 16 x 16) times n(n+1)/2 pairs.",
        "",
        "| image | n | sketch + ridge (s) | exact + kernel ridge (s) | speed-up | "
        "exact us / pair | NT est. (s) | acc. sketch | acc. exact | "
        "rel. Frobenius err. |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['size']}x{r['size']} | {r['n']} | {r['t_sketch']:.2f} | "
            f"{r['t_exact']:.1f} | {r['t_exact'] / r['t_sketch']:.1f}x | "
            f"{r['us_pair']:.0f} | {r['nt_est']:.0f} | "
            f"{r['acc_sketch']:.4f} | {r['acc_exact']:.4f} | {r['err']:.3f} |"
        )
    if cv is not None:
        lines += [
            "",
            f"5-fold stratified CV on all 1797 digits: sketch + ridge {cv[0]:.4f}, "
            f"exact CNTK kernel ridge {cv[1]:.4f} "
            f"(difference {100 * (cv[1] - cv[0]):+.2f} points).",
        ]
    Path(args.out).write_text("\n".join(lines) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
