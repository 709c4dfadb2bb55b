"""Speed of this checkout against another one (best of 3, 1 thread).

``PYTHONPATH=. python benchmarks/compare_exact_speed.py --other /work/main``
runs each case in a fresh subprocess per checkout, alternating the two
checkouts, twice, and prints the best time of each: ``ntk_kernel`` relu and
erf on 2000 x 100 Gaussian rows at depth 3, ``cntk_kernel`` and
``cnngp_kernel`` (relu Myrtle-5) on 24 8 x 8 digits.  The kernel sums are
printed too (the two checkouts must agree).

``--cases transform`` times instead ``NTKSketch(n_components=4096)``'s
``transform`` of 20000 x 100 Gaussian rows (fitted on them), relu and erf at
depth 1 and 3 (the features of two versions may differ: no sums compared).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

CASE = r"""
import json, sys, time
import numpy as np
from sklearn.datasets import load_digits
import sklearn_ntk
from sklearn_ntk import cnngp_kernel, cntk_kernel, ntk_kernel
case = sys.argv[1]
if case.startswith("transform"):
    from sklearn_ntk import NTKSketch
    _, act, depth = case.split("_")
    X = np.random.RandomState(0).randn(20000, 100)
    est = NTKSketch(act=act, depth=int(depth), n_components=4096, random_state=0)
    est.fit(X)
    f = lambda: est.transform(X)
elif case.startswith("fc"):
    X = np.random.RandomState(0).randn(2000, 100)
    act = case.split("_")[1]
    f = lambda: ntk_kernel(X, act=act, depth=3)
else:
    X = load_digits().data[:24].reshape(-1, 8, 8, 1)
    fn = cntk_kernel if case == "cntk" else cnngp_kernel
    f = lambda: fn(X, architecture="myrtle", depth=5)
f()
ts = []
for _ in range(3):
    t = time.perf_counter()
    K = f()
    ts.append(time.perf_counter() - t)
total = float("nan") if case.startswith("transform") else float(np.asarray(K).sum())
print(json.dumps({"best": min(ts), "sum": total}))
"""

CASES = {
    "exact": ["fc_relu", "fc_erf", "cntk", "cnngp"],
    "transform": [f"transform_{a}_{d}" for d in (1, 3) for a in ("relu", "erf")],
}


def run(path: str, case: str) -> dict:
    env = dict(os.environ, PYTHONPATH=path, OMP_NUM_THREADS="1")
    env.update(OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    out = subprocess.run(
        [sys.executable, "-c", CASE, case],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        cwd="/",
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--other", required=True, help="checkout to compare with")
    parser.add_argument("--cases", choices=sorted(CASES), default="exact")
    args = parser.parse_args()
    cases = CASES[args.cases]
    here = str(Path(__file__).resolve().parents[1])
    best: dict = {}
    for _ in range(2):
        for case in cases:
            for name, path in (("other", args.other), ("this", here)):
                r = run(path, case)
                key = (case, name)
                best[key] = min(best.get(key, (float("inf"), 0)), (r["best"], r["sum"]))
    print("| case | other (s) | this (s) | ratio | sums agree |")
    print("| --- | --- | --- | --- | --- |")
    for case in cases:
        (t0, s0), (t1, s1) = best[case, "other"], best[case, "this"]
        agree = "n/a" if s0 != s0 else abs(s0 - s1) <= 1e-10 * abs(s0)
        print(f"| {case} | {t0:.3f} | {t1:.3f} | {t1 / t0:.2f} | {agree} |")


if __name__ == "__main__":
    main()
