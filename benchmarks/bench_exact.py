"""Exact kernel speed: ``ntk_kernel`` on 2000 x 100 inputs, depth 3.

Writes ``benchmarks/results/exact_kernel.md``.  The reference point is the
issue's figure for neural-tangents' jitted kernel function on this machine
(about 0.2 s); neural-tangents (JAX) is not installed here, so it is quoted,
not measured.  ``--quick`` uses 1000 rows.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _common import best_time, machine_facts, markdown_table, threads

from sklearn_ntk import nngp_kernel, ntk_kernel


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument(
        "--out",
        type=Path,
        default=Path(__file__).with_name("results") / "exact_kernel.md",
    )
    args = parser.parse_args()
    n = 1000 if args.quick else 2000
    X = np.random.RandomState(0).randn(n, 100)
    rows = []
    with threads(2):
        for act in ("relu", "erf", "gelu"):
            for fn in (nngp_kernel, ntk_kernel):
                t = best_time(lambda: fn(X, act=act, depth=3))  # noqa: B023
                rows.append([fn.__name__, act, f"{t:.3f}", f"{t / 0.2:.2f}"])
                print(rows[-1], flush=True)
    lines = [
        f"## Exact kernels, {n} x 100 inputs, depth 3 (float64)",
        "",
        "Best of 3 after a warm-up. 'vs 0.2 s' is the ratio to the issue's quoted time of "
        "neural-tangents' jitted NTK function on this machine (target: <= 2).",
        "",
        *markdown_table(["function", "act", "time (s)", "vs 0.2 s"], rows),
        "",
        f"({machine_facts()})",
        "",
    ]
    out = args.out
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
