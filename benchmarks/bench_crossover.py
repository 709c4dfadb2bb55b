"""Where the sketch gets cheaper than exact kernel ridge: CPU time against n.

The two pipelines of the demo (``python -m sklearn_ntk``): NTK of a
2-hidden-layer ReLU network (W_std=1, b_std=0.1); sketch = ``NTKSketch`` +
``RidgeClassifier(fit_intercept=False)``, exact = ``ntk_kernel``
(``n_jobs=1``) + ``KernelRidge``, each from raw inputs to the predictions of 1000 test points
(fit, transform, ridge fit, predict; train and test kernels, kernel ridge
fit, predict).  Inputs from :func:`sklearn.datasets.make_classification`
(the costs depend on the sizes only), ``d`` in {10, 64}, the sketch at 1024
and 2048 features.

The cost is the process's CPU time (user + system, all threads), least of 3
runs after a warm-up, with BLAS and the FFT on one thread: unlike wall time
it barely moves when other jobs share the machine, so the crossover it gives
is reproducible; on an idle machine with more threads both pipelines get
faster by similar factors.  Writes ``benchmarks/results/crossover.md``::

    python benchmarks/bench_crossover.py
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from sklearn.datasets import make_classification

sys.path.insert(0, str(Path(__file__).parent))
from _common import machine_facts, markdown_table, threads

from sklearn_ntk.__main__ import _exact, _sketch

N_TEST = 1000


def cpu_time(fn, repeats: int = 3) -> float:
    """Least CPU time (all threads) of ``repeats`` calls, after a warm-up call."""
    fn()
    best = float("inf")
    for _ in range(repeats):
        t0 = time.process_time()
        fn()
        best = min(best, time.process_time() - t0)
    return best


def measure(quick: bool) -> tuple[list[list[str]], list[str]]:
    sizes = [500, 1000, 2000, 4000] + ([] if quick else [8000])
    rows, notes = [], []
    for d in (10, 64):
        X, y = make_classification(
            n_samples=max(sizes) + N_TEST,
            n_features=d,
            n_informative=d // 2,
            n_classes=2,
            random_state=0,
        )
        Xte, yte = X[-N_TEST:], y[-N_TEST:]
        first_faster = {}
        for n in sizes:
            args = (X[:n], y[:n], Xte, yte)
            t_exact = cpu_time(lambda: _exact(*args, 1.0))  # noqa: B023
            cells = [str(d), str(n), f"{t_exact:.3f}"]
            for m in (1024, 2048):
                t = cpu_time(lambda: _sketch(*args, m, 1.0, 0))  # noqa: B023
                cells += [f"{t:.3f}", f"{t_exact / t:.2f}"]
                if t < t_exact:
                    first_faster.setdefault(m, n)
                else:
                    first_faster.pop(m, None)  # slower again: not yet crossed
            rows.append(cells)
            print(cells, flush=True)
        for m in (1024, 2048):
            n = first_faster.get(m)
            notes.append(
                f"d = {d}, n_components = {m}: "
                + (
                    f"the sketch is cheaper from n = {n} on."
                    if n is not None
                    else "the sketch was not cheaper at the largest n."
                )
            )
    return rows, notes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="n up to 4000")
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).with_name("results") / "crossover.md"
    )
    args = parser.parse_args()
    t0 = time.time()
    with threads(1):
        rows, notes = measure(args.quick)
    lines = [
        "## Sketch against exact NTK kernel ridge: CPU time (s) against n",
        "",
        "The demo's two pipelines (`python -m sklearn_ntk`), from raw inputs to "
        f"the predictions of {N_TEST} test points, CPU seconds (all threads; BLAS "
        "and FFT on one thread); 'x' is exact / sketch. Least of 3 after a warm-up.",
        "",
        *markdown_table(
            [
                "d",
                "n train",
                "exact",
                "sketch 1024",
                "x",
                "sketch 2048",
                "x",
            ],
            rows,
        ),
        "",
        *(f"- {note}" for note in notes),
        "",
        f"({machine_facts().replace('threads fixed to 2', 'threads fixed to 1')} "
        f"Time: {time.time() - t0:.0f} s.)",
        "",
    ]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
