"""CIFAR-size throughput: Myrtle-5 ``CNTKSketch`` against the exact CNTK.

CIFAR-10 is not available offline: the images are random, 32 x 32 x 3,
standardized per channel (zero mean, unit variance), which is what the cost
depends on (the shapes), not the pixel values.  Measured, in one run with
threads fixed (default 2):

* ``CNTKSketch(n_components=4096)`` (Myrtle-5, relu, ``n_channels="auto"``)
  ``transform`` in ms per image, on NumPy and on PyTorch CPU tensors (through
  ``sklearn.config_context(array_api_dispatch=True)``; where the
  convolutional path cannot take torch tensors, the failure is reported);
* the exact ``cntk_kernel`` in ms per image pair (a few pairs);
* the projection to n = 60,000 images: exact = n^2 / 2 pairs x ms per pair
  (the kernel ridge solve, O(n^3), not even counted); sketch = n x ms per
  image + the ridge fit on the features (Gram ``Z^T Z`` measured on a few
  thousand rows and scaled linearly in n, plus the 4096 x 4096 solve).

Writes ``benchmarks/results/cifar_throughput.md``.  Run::

    PYTHONPATH=. python benchmarks/bench_cifar_throughput.py     # ~2-3 minutes
"""

from __future__ import annotations

import os

# array_api_dispatch needs SciPy's Array API support, read at SciPy's import.
os.environ.setdefault("SCIPY_ARRAY_API", "1")

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import sklearn

sys.path.insert(0, str(Path(__file__).parent))
from _common import machine_facts, markdown_table, threads

from sklearn_ntk import CNTKSketch, cntk_kernel

OUT = Path(__file__).parent / "results" / "cifar_throughput.md"
N_COMPONENTS = 4096
N_TOTAL = 60_000


def images(n: int, seed: int = 0) -> np.ndarray:
    """Random 32 x 32 x 3 images, standardized per channel."""
    X = np.random.RandomState(seed).rand(n, 32, 32, 3)
    return (X - X.mean(axis=(0, 1, 2))) / X.std(axis=(0, 1, 2))


def time_transform(est, X, repeats: int) -> float:
    """Best ms per image of ``est.transform(X)`` over ``repeats`` runs (after fit)."""
    best = np.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        est.transform(X)
        best = min(best, time.perf_counter() - t0)
    return 1e3 * best / len(X)


def torch_ms_per_image(X: np.ndarray, repeats: int) -> tuple[float | None, str]:
    """ms per image on torch CPU tensors, or None and why it failed."""
    try:
        import torch
    except ImportError as exc:
        return None, f"PyTorch not installed ({exc})"
    try:
        with sklearn.config_context(array_api_dispatch=True):
            Xt = torch.asarray(X)
            est = CNTKSketch(n_components=N_COMPONENTS, random_state=0).fit(Xt)
            Z = est.transform(Xt[:1])
            if not isinstance(Z, torch.Tensor):
                return None, f"transform returned {type(Z).__name__}, not a tensor"
            return time_transform(est, Xt, repeats), f"torch {torch.__version__}"
    except Exception as exc:  # report, do not crash: the path may be missing
        return None, f"{type(exc).__name__}: {str(exc).splitlines()[0][:300]}"


def exact_ms_per_pair(X: np.ndarray, n_jobs: int) -> tuple[float, float]:
    """ms per image pair and per image of the exact CNTK.

    ``cntk_kernel(X[:k], X[k:2k])`` costs ``2k`` self states (per image) and
    ``k^2`` pairs: timed for k = 1, 2, 3 and fitted by least squares, so that
    the per-pair cost, which dominates at large n, is not inflated by the
    self states.
    """
    ks, times = [1, 2, 3], []
    for k in ks:
        t0 = time.perf_counter()
        cntk_kernel(X[:k], X[k : 2 * k], n_jobs=n_jobs)
        times.append(time.perf_counter() - t0)
    A = np.array([[2 * k, k * k] for k in ks], dtype=float)
    (per_image, per_pair), *_ = np.linalg.lstsq(A, np.array(times), rcond=None)
    return 1e3 * per_pair, 1e3 * per_image


def ridge_seconds(n_total: int, m: int, n_rows: int = 4000) -> tuple[float, float]:
    """Seconds of the ridge fit on sketch features at ``n_total`` rows:
    the Gram ``Z^T Z`` (scaled from ``n_rows``) and the ``m x m`` solve."""
    rng = np.random.RandomState(0)
    Z = rng.standard_normal((n_rows, m))
    t0 = time.perf_counter()
    G = Z.T @ Z
    gram = (time.perf_counter() - t0) * n_total / n_rows
    T = rng.standard_normal((m, 10))
    t0 = time.perf_counter()
    np.linalg.solve(G + 1e-3 * np.eye(m), T)
    return gram, time.perf_counter() - t0


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=4, help="images to transform")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    X = images(max(args.images, 6))
    with threads(args.threads):
        t0 = time.perf_counter()
        est = CNTKSketch(n_components=N_COMPONENTS, random_state=0).fit(X)
        fit_s = time.perf_counter() - t0
        Xs = X[: args.images]
        est.transform(Xs[:1])  # warm-up
        ms_np = time_transform(est, Xs, args.repeats)
        print(
            f"numpy: {ms_np:.1f} ms/image (n_channels_={est.n_channels_})", flush=True
        )
        # The width before n_channels="auto" (192 at every n_components), side
        # by side in the same run.
        former = CNTKSketch(n_components=N_COMPONENTS, n_channels=192, random_state=0)
        former.fit(X).transform(Xs[:1])
        ms_old = time_transform(former, Xs, args.repeats)
        ms_torch, torch_note = torch_ms_per_image(Xs, args.repeats)
        print(f"torch: {ms_torch} ({torch_note})", flush=True)
        ms_pair, ms_self = exact_ms_per_pair(X, args.threads)
        print(f"exact: {ms_pair:.1f} ms/pair, {ms_self:.1f} ms/image", flush=True)
        gram_s, solve_s = ridge_seconds(N_TOTAL, N_COMPONENTS)
    exact_s = N_TOTAL**2 / 2 * ms_pair / 1e3
    sketch_s = N_TOTAL * ms_np / 1e3 + gram_s + solve_s
    rows = [
        [
            "CNTKSketch transform, NumPy",
            f"{ms_np:.1f} ms / image",
            f"{N_TOTAL * ms_np / 1e3 / 60:.1f} min",
        ],
        [
            "same with n_channels=192 (the former default)",
            f"{ms_old:.1f} ms / image",
            f"{N_TOTAL * ms_old / 1e3 / 60:.1f} min",
        ],
        [
            "CNTKSketch transform, PyTorch CPU",
            f"{ms_torch:.1f} ms / image" if ms_torch is not None else "failed",
            f"{N_TOTAL * ms_torch / 1e3 / 60:.1f} min" if ms_torch is not None else "-",
        ],
        [
            "ridge on the features (Gram + solve)",
            "-",
            f"{(gram_s + solve_s) / 60:.1f} min",
        ],
        [
            "exact cntk_kernel",
            f"{ms_pair:.1f} ms / pair",
            f"{exact_s / 3600:.0f} h ({exact_s / 86400:.1f} days), without the solve",
        ],
    ]
    lines = [
        "# CIFAR-size throughput: Myrtle-5 CNTKSketch against the exact CNTK",
        "",
        "Command: `PYTHONPATH=. python benchmarks/bench_cifar_throughput.py"
        + (f" --threads {args.threads}" if args.threads != 2 else "")
        + "`",
        "",
        machine_facts().replace(
            "threads fixed to 2", f"threads fixed to {args.threads}"
        ),
        "",
        "CIFAR-10 is not available offline: random 32 x 32 x 3 images, standardized "
        "per channel (the cost depends on the shapes only).  "
        f"`CNTKSketch(n_components={N_COMPONENTS})`, Myrtle-5, relu, "
        f'`n_channels="auto"` = {est.n_channels_}; fit (drawing the sketch) '
        f"{fit_s:.1f} s.  Transform: best of {args.repeats} over {len(Xs)} images.  "
        "Exact: `cntk_kernel(X[:k], X[k:2k])` timed for k = 1, 2, 3 and fitted as "
        f"2k self states + k^2 pairs: {ms_pair:.1f} ms per pair, {ms_self:.1f} ms per "
        "image (self state, linear in n, left out of the projection).",
        "",
        *markdown_table(["step", "measured", f"projected at n = {N_TOTAL:,}"], rows),
        "",
        f"Projected speed-up at n = {N_TOTAL:,} (NumPy sketch + ridge against the exact "
        f"kernel matrix alone): **{exact_s / sketch_s:.0f}x** "
        f"({exact_s / 3600:.0f} h against {sketch_s / 60:.0f} min).",
        "",
        f"PyTorch CPU: {torch_note.rstrip('.')}.",
        "",
    ]
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text("\n".join(lines))
    print("\n".join(lines))
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
