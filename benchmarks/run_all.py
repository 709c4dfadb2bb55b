"""Run every benchmark and write ``benchmarks/results.md``.

    python benchmarks/run_all.py            # all benchmarks (about an hour on 2 cores)
    python benchmarks/run_all.py --quick    # smaller sizes, a smoke run (see below)
    python benchmarks/run_all.py --collect  # only reassemble results.md from fragments

Each benchmark runs in its own process (fresh thread pools, no shared
caches) and writes a markdown fragment; this script assembles them, with the
machine facts and library versions, into one report.

``--quick`` never touches the committed results: every script writes into
``benchmarks/results_quick/`` (git-ignored, by a ``.gitignore`` this script
puts there), and the report ``benchmarks/results_quick/results.md`` says at
its top that its figures come from the smoke sizes.  The documentation renders
only ``benchmarks/results*.md``, so quick figures never reach it.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).parent
QUICK_DIR = HERE / "results_quick"
sys.path.insert(0, str(HERE))
from _common import machine_facts  # noqa: E402

# (script, arguments, fragments it writes in report order, and the option
# that points it elsewhere: "--out FILE" or "--out-dir FOLDER").
BENCHMARKS = [
    ("oracle_errors.py", [], ["results/oracle.md"], "--out"),
    ("bench_fc.py", ["--parts", "error"], ["results/fc_error.md"], "--out-dir"),
    ("bench_fc.py", ["--parts", "speed"], ["results/fc_speed.md"], "--out-dir"),
    ("bench_fc.py", ["--parts", "sparse"], ["results/fc_sparse.md"], "--out-dir"),
    (
        "bench_fc.py",
        ["--parts", "downstream"],
        ["results/fc_downstream.md"],
        "--out-dir",
    ),
    ("bench_exact.py", [], ["results/exact_kernel.md"], "--out"),
    ("bench_crossover.py", [], ["results/crossover.md"], "--out"),
    ("bench_tfidf_scale.py", [], ["results/tfidf_scale.md"], "--out"),
    ("bench_cntk.py", [], ["results_cntk.md"], "--out"),
    ("bench_memory.py", [], ["results_memory.md"], "--out"),
    # Not part of the report: it writes docs/hermite_truncation.rst.
    ("hermite_truncation.py", [], ["hermite_truncation.rst"], "--out"),
]
REPORT_SCRIPTS = [b for b in BENCHMARKS if b[0] != "hermite_truncation.py"]

# Scripts without a --quick option (their cost does not depend on a size).
NO_QUICK = {"oracle_errors.py", "hermite_truncation.py"}


def run(quick: bool) -> None:
    """Run every script; with ``quick``, at small sizes and into ``QUICK_DIR``."""
    if quick:
        QUICK_DIR.mkdir(exist_ok=True)
        (QUICK_DIR / ".gitignore").write_text("# written by run_all.py --quick\n*\n")
    for script, args, fragments, option in BENCHMARKS:
        path = HERE / script
        if not path.exists():
            print(f"skipping {script}: not found")
            continue
        cmd = [sys.executable, str(path), *args]
        if quick:
            # Full runs write where the scripts write by default (the
            # committed results); quick runs redirect every output.
            out = QUICK_DIR / fragments[0]
            out.parent.mkdir(parents=True, exist_ok=True)
            cmd += [option, str(out.parent if option == "--out-dir" else out)]
            if script not in NO_QUICK:
                cmd.append("--quick")
        print("$", " ".join(cmd), flush=True)
        t0 = time.time()
        subprocess.run(cmd, check=True)
        print(f"  done in {time.time() - t0:.0f} s", flush=True)


def _previous_machine_line(path: Path) -> str | None:
    """The machine line of an existing report (kept when only reassembling)."""
    if not path.exists():
        return None
    for line in path.read_text().splitlines():
        if line.startswith("Machine:"):
            return line
    return None


def collect(quick: bool = False, keep_machine_line: bool = False) -> str:
    """Assemble the report; ``keep_machine_line`` keeps the previous report's
    machine line (``--collect`` reassembles fragments measured earlier)."""
    root = QUICK_DIR if quick else HERE
    if quick:
        intro = [
            "# sklearn-ntk benchmark results: QUICK RUN (smoke sizes)",
            "",
            "**These figures come from `python benchmarks/run_all.py --quick`: smaller",
            "sizes than the committed `benchmarks/results.md`, for checking that the",
            "benchmarks run. Do not quote them.**",
        ]
    else:
        intro = [
            "# sklearn-ntk benchmark results",
            "",
            "Regenerate with `python benchmarks/run_all.py`. Timings are ratios measured side",
            "by side in one process (best of 3 after a warm-up, threads fixed to 2); see",
            "`benchmarks/_common.py` and each script's docstring for the protocol.",
        ]
    machine = _previous_machine_line(root / "results.md") if keep_machine_line else None
    lines = [*intro, "", machine or machine_facts(), ""]
    for _, _, fragments, _ in REPORT_SCRIPTS:
        for frag in fragments:
            path = root / frag
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
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smaller sizes, written to benchmarks/results_quick/ (git-ignored)",
    )
    parser.add_argument(
        "--collect", action="store_true", help="only assemble results.md"
    )
    args = parser.parse_args()
    if not args.collect:
        run(args.quick)
    report = collect(args.quick, keep_machine_line=args.collect)
    out = (QUICK_DIR if args.quick else HERE) / "results.md"
    out.write_text(report)
    print(report)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
