"""One exact driver for every network: tiles of input pairs on joblib threads.

:func:`exact_matrix` computes the exact NNGP or NTK matrix of any
:class:`~sklearn_ntk.networks.Network` (fully connected or convolutional)
between the inputs of ``X`` and ``Y``, for inputs of any Array API namespace
(SciPy sparse rows for fully connected networks):

* the self states ``K(x, x)`` after every layer are computed once per input
  (in chunks), not once per pair: they give the variances the dual
  activations read and the values pinned on the pairs of identical inputs
  (so ``K(X)``, ``K(X, X)``, ``K(X, X.copy())`` agree on them bitwise);
* the matrix is cut in square tiles of input pairs sized so that the dozen
  passes of the dual activations over a tile stay in cache and within
  scikit-learn's ``working_memory``; when ``Y`` is ``X`` only the upper
  triangle of tiles is computed and mirrored (the result is symmetric
  bitwise);
* tiles run on ``n_jobs`` threads through joblib (NumPy and PyTorch release
  the GIL in every pass), with scikit-learn's configuration propagated.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import joblib
import scipy.sparse as sp
from sklearn import get_config
from sklearn.utils.parallel import Parallel, delayed

from ._backend import device, get_namespace, zeros
from ._validation import check_finite_result, check_n_jobs, trusted_inputs
from .layers.base import KernelState, scatter
from .networks import _flat, _take_last, identical_pairs

__all__ = ["exact_matrix", "n_threads"]

#: Kernel entries per tile array: about 4 MB, so that the dozen passes of the
#: dual activations over a tile mostly stay in cache.
_TILE_ENTRIES = 1 << 19
#: Temporaries of the size of a tile alive at once (for ``working_memory``).
_TEMPORARIES = 12


def n_threads(n_jobs: int | None, n_tasks: int) -> int:
    """Threads for ``n_tasks`` tasks: ``n_jobs`` as joblib reads it (``None``
    is 1 outside a ``joblib.parallel_config``, ``-1`` all cores)."""
    check_n_jobs(n_jobs)
    return max(1, min(joblib.effective_n_jobs(n_jobs), n_tasks))


def tile_size(entries_per_pair: int) -> int:
    """Inputs per side of a square tile of pairs."""
    budget = get_config()["working_memory"] * 2**20 / (8 * _TEMPORARIES)
    pairs = max(1.0, min(_TILE_ENTRIES, budget) / entries_per_pair)
    return max(1, int(math.sqrt(pairs)))


def _rows(X: Any, r: slice) -> Any:
    return X[r] if sp.issparse(X) else X[r, ...]


def _states_of(states: list[KernelState], r: slice) -> list[KernelState]:
    """The self states of the inputs ``r``."""

    def cut(a: Any) -> Any:
        if a is None or isinstance(a, float):
            return a
        return a[..., r]

    return [s.replace(nngp=cut(s.nngp), ntk=cut(s.ntk)) for s in states]


def _concat_states(parts: list[list[KernelState]]) -> list[KernelState]:
    def cat(arrays: list) -> Any:
        if arrays[0] is None or isinstance(arrays[0], float):
            return arrays[0]
        xp, _ = get_namespace(arrays[0])
        return xp.concat(arrays, axis=arrays[0].ndim - 1)

    out = []
    for stage in zip(*parts):
        out.append(
            stage[0].replace(
                nngp=cat([s.nngp for s in stage]), ntk=cat([s.ntk for s in stage])
            )
        )
    return out


def exact_matrix(
    network: Any,
    X: Any,
    Y: Any = None,
    *,
    ntk: bool,
    n_jobs: int | None = None,
    verbose: int = 0,
    tile: int | None = None,
    context: Callable[[BaseException], BaseException] | None = None,
) -> Any:
    """Exact NNGP (``ntk=False``) or NTK matrix of ``network``, ``(n, m)``.

    ``X`` and ``Y`` hold inputs in the form the network's input rule takes
    (rows, or ``(n, H, W, C)`` images); ``Y=None`` means ``X``.  ``tile``
    overrides the tile side.  ``context`` rewrites the arithmetic and value
    errors of the layers (adds the network and the input scale).  The result
    is in the namespace of ``X`` (NumPy for sparse rows).
    """
    symmetric = Y is None or Y is X
    Y = X if symmetric else Y
    n, m = X.shape[0], Y.shape[0]
    b = tile or tile_size(network.entries_per_pair())
    kind = "NTK" if ntk else "NNGP kernel"

    def guarded(fn: Callable[[], Any]) -> Any:
        with trusted_inputs():  # every result is checked below
            try:
                return fn()
            except (ArithmeticError, ValueError) as exc:
                if context is None:
                    raise
                raise context(exc) from exc

    def self_states(Z: Any) -> list[KernelState]:
        step = max(b * b, 1)
        return _concat_states(
            [
                guarded(
                    lambda s=s: network.self_states(
                        _rows(Z, slice(s, min(s + step, Z.shape[0]))), ntk
                    )
                )
                for s in range(0, Z.shape[0], step)
            ]
        )

    sx = self_states(X)
    sy = sx if symmetric else self_states(Y)
    pair_rows, pair_cols = identical_pairs(_flat(X), None if symmetric else _flat(Y))
    rows = [slice(s, min(n, s + b)) for s in range(0, n, b)]
    cols = [slice(s, min(m, s + b)) for s in range(0, m, b)]
    tasks = [
        (r, c)
        for i, r in enumerate(rows)
        for j, c in enumerate(cols)
        if not symmetric or j >= i
    ]

    def run(r: slice, c: slice) -> Any:
        inside = (
            (pair_rows >= r.start)
            & (pair_rows < r.stop)
            & (pair_cols >= c.start)
            & (pair_cols < c.stop)
        )
        pairs = (pair_rows[inside] - r.start, pair_cols[inside] - c.start)
        k = guarded(
            lambda: network.cross_state(
                _rows(X, r),
                _rows(Y, c),
                ntk,
                _states_of(sx, r),
                _states_of(sy, c),
                pairs,
            )
        )
        K = k.ntk if ntk else k.nngp
        # The guard of the team rule: never a NaN with only a RuntimeWarning.
        K = check_finite_result(
            K,
            what=f"The exact {kind}",
            network=network,
            ntk=ntk,
            X=_rows(X, r),
            Y=None if symmetric else _rows(Y, c),
        )
        if symmetric and r == c:  # exactly symmetric despite rounding
            K = 0.5 * (K + K.T)
        return K

    threads = n_threads(n_jobs, len(tasks))
    if len(tasks) == 1 and not verbose:
        out = run(*tasks[0])
    else:
        results = Parallel(n_jobs=threads, prefer="threads", return_as="generator")(
            delayed(run)(r, c) for r, c in tasks
        )
        out = None
        for i, ((r, c), K) in enumerate(zip(tasks, results)):
            if out is None:
                xp, _ = get_namespace(K)
                out = zeros(xp, (n, m), K.dtype, device(K))
            out[r, c] = K
            if symmetric and r != c:
                out[c, r] = K.T
            if verbose:
                print(
                    f"[sklearn_ntk] kernel rows {r.stop}/{n}, columns {c.stop}/{m} "
                    f"({i + 1}/{len(tasks)} tiles)"
                )
    # Identical inputs get K(x, x) of the self states: K(X), K(X, X) and
    # K(X, X.copy()) agree on them by construction.
    final = sx[-1].ntk if ntk else sx[-1].nngp
    return scatter(out, pair_rows, pair_cols, _take_last(final, pair_rows))
