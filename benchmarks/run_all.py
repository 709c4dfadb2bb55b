"""Run every benchmark and write ``benchmarks/results.md``.

    python benchmarks/run_all.py            # all benchmarks (about an hour on 2 cores)
    python benchmarks/run_all.py --quick    # smaller sizes, a smoke run
    python benchmarks/run_all.py --collect  # only reassemble results.md from fragments

Each benchmark runs in its own process (fresh thread pools, no shared
caches) and writes a markdown fragment; this script assembles them, with the
machine facts and library versions, into one report.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
from _common import machine_facts  # noqa: E402

# (script, arguments, fragments it writes, in report order)
BENCHMARKS = [
    ("oracle_errors.py", [], ["results/oracle.md"]),
    ("bench_fc.py", ["--parts", "error"], ["results/fc_error.md"]),
    ("bench_fc.py", ["--parts", "speed"], ["results/fc_speed.md"]),
    ("bench_fc.py", ["--parts", "sparse"], ["results/fc_sparse.md"]),
    ("bench_fc.py", ["--parts", "downstream"], ["results/fc_downstream.md"]),
    ("bench_exact.py", [], ["results/exact_kernel.md"]),
    ("bench_cntk.py", [], ["results_cntk.md"]),
    ("bench_memory.py", [], ["results_memory.md"]),
    ("hermite_truncation.py", [], []),
]


def run(quick: bool) -> None:
    for script, args, _ in BENCHMARKS:
        path = HERE / script
        if not path.exists():
            print(f"skipping {script}: not found")
            continue
        cmd = [sys.executable, str(path), *args] + (
            ["--quick"] if quick and script != "hermite_truncation.py" else []
        )
        print("$", " ".join(cmd), flush=True)
        t0 = time.time()
        subprocess.run(cmd, check=True)
        print(f"  done in {time.time() - t0:.0f} s", flush=True)


def collect() -> str:
    lines = [
        "# sklearn-ntk benchmark results",
        "",
        "Regenerate with `python benchmarks/run_all.py`. Timings are ratios measured side",
        "by side in one process (best of 3 after a warm-up, threads fixed to 2); see",
        "`benchmarks/_common.py` and each script's docstring for the protocol.",
        "",
        machine_facts(),
        "",
    ]
    for _, _, fragments in BENCHMARKS:
        for frag in fragments:
            path = HERE / frag
            if path.exists():
                text = path.read_text().strip()
                # Fragments start at level-1 or level-2 headings: nest them.
                text = "\n".join(
                    ("#" + ln if ln.startswith("#") else ln) for ln in text.splitlines()
                )
                lines += [text, ""]
            else:
                lines += [f"## {frag}", "", "_not yet generated_", ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument(
        "--collect", action="store_true", help="only assemble results.md"
    )
    args = parser.parse_args()
    if not args.collect:
        run(args.quick)
    report = collect()
    (HERE / "results.md").write_text(report)
    print(report)


if __name__ == "__main__":
    main()
