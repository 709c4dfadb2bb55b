"""Peak memory of ``transform``: bounded by the batch size, not by n.

Each case runs in a fresh subprocess, which draws ``X`` (n x d float32),
fits the estimator, transforms 100 rows (so that imports and per-namespace
caches are in place), records its resident set size (RSS) as the baseline,
transforms ``X`` and reads the peak RSS (``getrusage(RUSAGE_SELF).ru_maxrss``).
Reported: ``peak - baseline - output bytes``, the memory that ``transform``
needs beyond the array it returns.  A thread also polls the anonymous part
of the RSS (``RssAnon``, every 5 ms): with a ``numpy.memmap`` output, the
mapped file's pages count in the RSS (reclaimable page cache) but not there,
so for that case the anonymous figure (output bytes = 0) is the one to read.

Usage::

    python benchmarks/bench_memory.py            # 200,000 x 100, n_components=2048
    python benchmarks/bench_memory.py --n 20000  # quicker

Writes ``benchmarks/results_memory.md``.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import textwrap
from pathlib import Path

HERE = Path(__file__).parent

CHILD = textwrap.dedent(
    """
    import json, os, resource, sys, tempfile, threading, time
    import numpy as np
    import sklearn
    import sklearn_ntk

    n, d, m, name, act, depth, memmap, wm = (
        int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4],
        sys.argv[5], int(sys.argv[6]), sys.argv[7] == "1", float(sys.argv[8]))

    def rss():
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    def rss_anon():
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("RssAnon:"):
                    return int(line.split()[1]) * 1024
        return 0

    anon_peak, done = [0], threading.Event()

    def poll():  # peak of anonymous memory: excludes a memmap's file pages
        while not done.is_set():
            anon_peak[0] = max(anon_peak[0], rss_anon())
            time.sleep(0.005)

    sklearn.set_config(working_memory=wm)
    X = np.random.default_rng(0).standard_normal((n, d), dtype=np.float32)
    est = getattr(sklearn_ntk, name)(act=act, depth=depth, n_components=m, random_state=0)
    est.fit(X[:10])
    est.transform(X[:100])
    out = None
    if memmap:
        path = os.path.join(tempfile.mkdtemp(), "Z.dat")
        out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(n, m))
    base, base_anon = rss(), rss_anon()
    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    start = time.perf_counter()
    Z = est.transform(X, out=out)
    seconds = time.perf_counter() - start
    done.set()
    poller.join()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    out_bytes = 0 if memmap else Z.nbytes
    print(json.dumps(dict(
        n=n, d=d, m=m, estimator=name, act=act, depth=depth, memmap=memmap,
        working_memory_mb=wm, batch_rows=est._batch_rows(), seconds=seconds,
        base_mb=base / 2**20, peak_mb=peak / 2**20, output_mb=Z.nbytes / 2**20,
        above_output_mb=(peak - base - out_bytes) / 2**20,
        anon_above_output_mb=(anon_peak[0] - base_anon - out_bytes) / 2**20,
        dtype=str(Z.dtype), finite=bool(np.isfinite(Z[:: max(1, n // 1000)]).all()),
    )))
    """
)


def measure(n, d, m, name, act="relu", depth=1, memmap=False, working_memory=1024.0):
    res = subprocess.run(
        [
            sys.executable,
            "-c",
            CHILD,
            str(n),
            str(d),
            str(m),
            name,
            act,
            str(depth),
            "1" if memmap else "0",
            str(working_memory),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(res.stdout.strip().splitlines()[-1])


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200_000)
    parser.add_argument("--d", type=int, default=100)
    parser.add_argument("--m", type=int, default=2048)
    parser.add_argument("--out", type=Path, default=HERE / "results_memory.md")
    parser.add_argument("--quick", action="store_true", help="20,000 rows")
    args = parser.parse_args(argv)
    if args.quick:
        args.n = min(args.n, 20_000)
    cases = [
        dict(name="NNGPSketch"),
        dict(name="NTKSketch"),
        dict(name="NTKSketch", act="erf", depth=2),
        dict(name="NTKSketch", memmap=True),
        dict(name="NTKSketch", working_memory=256.0),
    ]
    rows = []
    for case in cases:
        r = measure(args.n, args.d, args.m, **case)
        print(json.dumps(r), flush=True)
        rows.append(r)
    lines = [
        "# Peak memory of transform",
        "",
        f"`{args.n:,} x {args.d}` float32 rows, `n_components={args.m}`; "
        f"Python {platform.python_version()}, {platform.machine()}, "
        "one subprocess per row (see `benchmarks/bench_memory.py`).",
        "",
        "Above output = peak RSS (`ru_maxrss`) - RSS before `transform` - output "
        "array (0 for a `numpy.memmap` output); anonymous = the same with the "
        "polled peak of `RssAnon` (excludes the memmap's file pages).",
        "",
        "| estimator | act | depth | working_memory (MB) | batch rows | output | "
        "output (MB) | above output (MB) | anonymous above output (MB) | time (s) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['estimator']} | {r['act']} | {r['depth']} | {r['working_memory_mb']:.0f} | "
            f"{r['batch_rows']} | {'memmap' if r['memmap'] else 'ndarray'} | "
            f"{r['output_mb']:.0f} | {r['above_output_mb']:.0f} | "
            f"{r['anon_above_output_mb']:.0f} | {r['seconds']:.1f} |"
        )
    args.out.write_text("\n".join(lines) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
