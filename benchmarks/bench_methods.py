"""Feature rules side by side: the measurement behind ``method="auto"``.

Relative Frobenius error of ``Z Z^T`` against the exact kernel for each
``method`` of the activation layers (``hermite`` at ``degree`` 2 and 8,
``hybrid``, ``sparse`` at degree 8, ``auto``), on ``bench_fc.py``'s data
(Gaussian rows, norms spread over [0.3, 3] sqrt(d)), dense input, mean of 3
seeds.  Writes ``benchmarks/results/fc_methods.md``::

    PYTHONPATH=. python benchmarks/bench_methods.py [--quick]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _common import machine_facts, markdown_table, threads
from bench_fc import rel_fro, spread_norm_data

from sklearn_ntk import nngp_kernel, ntk_kernel
from sklearn_ntk.activations import get
from sklearn_ntk.networks import fully_connected

ACTS = ["relu", "erf", "gelu", "sin", "tanh", "exp_normalized"]
METHODS = [("hermite", 2), ("hermite", 8), ("hybrid", 8), ("sparse", 8), ("auto", 8)]


def features(X, act, depth, ntk, m, method, degree, seed, params):
    net = fully_connected(get(act), depth, degree=degree, method=method, **params)
    return net.sketch(X.shape[1], m, ntk=ntk, random_state=seed)(X)


def table(quick: bool) -> list:
    n, d, m = (150, 32, 1024) if quick else (300, 32, 2048)
    X = spread_norm_data(n, d)
    params = dict(W_std=1.5, b_std=0.1)
    rows = []
    for act in ACTS:
        for depth in (1, 2, 3):
            for ntk, kern in ((False, nngp_kernel), (True, ntk_kernel)):
                K = kern(X, act=act, depth=depth, **params)
                row = [act, depth, "NTK" if ntk else "NNGP"]
                errs = []
                for method, degree in METHODS:
                    try:
                        e = np.mean(
                            [
                                rel_fro(
                                    features(
                                        X, act, depth, ntk, m, method, degree, s, params
                                    ),
                                    K,
                                )
                                for s in range(3)
                            ]
                        )
                        errs.append(e)
                        row.append(f"{e:.4f}")
                    except ValueError:  # the method refuses this activation
                        errs.append(np.inf)
                        row.append("n/a")
                best = METHODS[int(np.argmin(errs[:4]))]
                row.append(f"{best[0]} ({best[1]})")
                rows.append(row)
                print(row, flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out-dir", default=str(Path(__file__).with_name("results")))
    args = parser.parse_args()
    t0 = time.time()
    with threads(2):
        rows = table(args.quick)
    n, m = (150, 1024) if args.quick else (300, 2048)
    lines = [
        "## Feature rules (`method`) side by side",
        "",
        f"{n} Gaussian points, d=32, norms uniform in [0.3, 3]·sqrt(d), "
        f"n_components={m}, W_std=1.5, b_std=0.1; relative Frobenius error, "
        "mean of 3 seeds; 'best' is the best fixed method.",
        "",
        *markdown_table(
            ["act", "depth", "kernel"] + [f"{a} ({q})" for a, q in METHODS] + ["best"],
            rows,
        ),
        "",
        f"({machine_facts()} Time: {time.time() - t0:.0f} s.)",
        "",
    ]
    out = Path(args.out_dir)
    out.mkdir(exist_ok=True)
    (out / "fc_methods.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
