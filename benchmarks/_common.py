"""Shared helpers of the benchmark scripts: threads, timing, machine facts, tables."""

from __future__ import annotations

import contextlib
import os
import platform
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np


@contextlib.contextmanager
def threads(n: int) -> Iterator[None]:
    """Fix BLAS/OpenMP threads and the sketches' FFT workers to ``n``."""
    import scipy.fft
    from threadpoolctl import threadpool_limits

    # The sketches' FFTs follow scipy.fft's worker context (1 by default).
    with threadpool_limits(limits=n), scipy.fft.set_workers(n):
        yield


def best_time(fn: Callable[[], object], repeats: int = 3, warmup: bool = True) -> float:
    """Best wall time of ``repeats`` calls, after one warm-up call."""
    if warmup:
        fn()
    best = np.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return float(best)


def machine_facts() -> str:
    import scipy
    import sklearn
    from threadpoolctl import threadpool_info

    import sklearn_ntk

    blas = ", ".join(
        f"{i.get('internal_api')} {i.get('version')} ({i.get('architecture')})"
        for i in threadpool_info()
        if i.get("user_api") == "blas"
    )
    return (
        f"Machine: {platform.machine()}, {os.cpu_count()} CPUs, {platform.processor() or 'n/a'}; "
        f"Python {platform.python_version()}, NumPy {np.__version__}, SciPy {scipy.__version__}, "
        f"scikit-learn {sklearn.__version__}, sklearn-ntk {sklearn_ntk.__version__}; BLAS: {blas}; "
        f"threads fixed to 2; date {time.strftime('%Y-%m-%d')}."
    )


def markdown_table(header: list, rows: list) -> list[str]:
    lines = [
        "| " + " | ".join(str(h) for h in header) + " |",
        "| " + " | ".join("---" for _ in header) + " |",
    ]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return lines


def write_or_print(lines: list[str], out: Path | None) -> None:
    """Write the report to ``out`` (``None``: print it, as ``--quick`` runs do,
    leaving the committed results alone)."""
    if out is None:
        print("\n".join(lines))
        return
    out.parent.mkdir(exist_ok=True)
    out.write_text("\n".join(lines))
    print(f"wrote {out}")
