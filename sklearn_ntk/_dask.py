"""Dask arrays: lazy, chunk-by-chunk transforms.

``transform`` of a ``dask.array.Array`` maps every chunk of rows through the
fitted estimator with :meth:`dask.array.Array.map_blocks`, so the result is a
lazy ``dask.array.Array`` with the same row chunks and one chunk of
``n_components`` columns; its values are those of the in-memory transform.
Works on any Dask scheduler, ``dask.distributed`` clusters included (the
estimator is pickled to the workers once per graph).  Dask is imported only
when a dask array is seen.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

__all__ = ["head", "is_dask_array", "transform"]


def is_dask_array(X: Any) -> bool:
    """Whether ``X`` is a ``dask.array.Array`` (without importing Dask otherwise)."""
    if not type(X).__module__.startswith("dask"):
        return False
    import dask.array as da

    return isinstance(X, da.Array)


def head(X: Any, n_rows: int = 2) -> np.ndarray:
    """The first rows of a dask array, computed: enough for ``fit``."""
    if X.ndim != 2:
        raise ValueError(f"Expected a 2-D dask array, got {X.ndim} dimensions.")
    return X[: max(1, min(n_rows, X.shape[0]))].compute()


def _transform_block(block: Any, est: Any, dtype: np.dtype) -> Any:
    if block.shape[0] == 0:
        return np.empty((0, est.n_components), dtype=dtype)
    with warnings.catch_warnings():
        # Chunks carry no column names, even when fit saw a DataFrame.
        warnings.filterwarnings("ignore", message="X does not have valid feature names")
        return est._transform_array(block)


def transform(est: Any, X: Any) -> Any:
    """Lazy ``est.transform`` of the dask array ``X``, chunk by chunk."""
    if X.ndim != 2:
        raise ValueError(f"Expected a 2-D dask array, got {X.ndim} dimensions.")
    if X.shape[1] != est.n_features_in_:
        raise ValueError(
            f"X has {X.shape[1]} features, but {type(est).__name__} is expecting "
            f"{est.n_features_in_} features as input."
        )
    dtype = (
        np.dtype(X.dtype)
        if X.dtype in (np.float32, np.float64)
        else np.dtype(np.float64)
    )
    if X.numblocks[1] != 1:  # each task needs whole rows
        X = X.rechunk({1: -1})
    return X.map_blocks(
        _transform_block,
        est,
        dtype,
        dtype=dtype,
        chunks=(X.chunks[0], (est.n_components,)),
        meta=np.empty((0, 0), dtype=dtype),
    )
