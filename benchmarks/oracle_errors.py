"""Relative max error of our exact kernels against the neural-tangents oracle.

Every case of ``tests/data/oracle.json`` (neural-tangents 0.6.5, float64):
``max |ours - ref| / max |ref|`` per activation and kind, NNGP and NTK.
Writes ``benchmarks/results/oracle.md``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(Path(__file__).parent))
from _common import markdown_table  # noqa: E402
from conftest import kernel_kwargs_from_case  # noqa: E402

from sklearn_ntk import cnngp_kernel, cntk_kernel, nngp_kernel, ntk_kernel  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).with_name("results") / "oracle.md"
    )
    args = parser.parse_args()
    cases = json.loads((ROOT / "tests/data/oracle.json").read_text())
    arrays = np.load(ROOT / "tests/data/oracle.npz")
    worst: dict[tuple[str, str], list[float]] = {}
    for case in cases:
        X = arrays[case["key"] + "_X"]
        kw = kernel_kwargs_from_case(case)
        fc = case["kind"] == "fc"
        fns = (nngp_kernel, ntk_kernel) if fc else (cnngp_kernel, cntk_kernel)
        errs = []
        for name, fn in zip(("nngp", "ntk"), fns):
            ref = arrays[f"{case['key']}_{name}"]
            errs.append(float(np.max(np.abs(fn(X, **kw) - ref)) / np.max(np.abs(ref))))
        key = (case["kind"], case["act"]["name"])
        prev = worst.get(key, [0.0, 0.0, 0])
        worst[key] = [max(prev[0], errs[0]), max(prev[1], errs[1]), prev[2] + 1]
    rows = [
        [k, a, n, f"{e0:.1e}", f"{e1:.1e}"] for (k, a), (e0, e1, n) in worst.items()
    ]
    lines = [
        "## Exact kernels against neural-tangents 0.6.5 (relative max error, worst case)",
        "",
        *markdown_table(["kind", "act", "cases", "NNGP", "NTK"], rows),
        "",
    ]
    out = args.out
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
