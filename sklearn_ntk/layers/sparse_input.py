"""Sparse input made dense once, in input-sparsity time.

The feature rules of the activations are far more accurate on dense input
(exact low degrees, the unbiased Monte-Carlo tail) than their sparse
variants (TensorSketch of every degree, folded tail): 10 to 25 times, in
relative Frobenius error, on the same data (issue 12).  So a CSR input is
mapped once to a dense width ``w`` and the dense rules run on it:

* when ``d <= w`` the rows are simply densified (exact);
* otherwise a CountSketch ``R^d -> R^w`` (one hashed bucket and sign per
  input column: ``O(nnz)`` time, ``O(d)`` memory for the hashes, the cost of
  a transform independent of ``d`` at fixed ``nnz``) is applied and every row
  is rescaled to its exact norm.  The norms carry the input scale, on which
  the activations' Hermite coefficients depend nonlinearly: keeping them exact
  leaves only the angles perturbed, by ``~ 1 / sqrt(w)``, which adds about
  ``sqrt(m / w)`` relative to the sketch's own error with ``m`` features.

``w = WIDTH_FACTOR * n_components`` (at least :data:`MIN_WIDTH`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.utils import check_random_state

__all__ = ["MIN_WIDTH", "WIDTH_FACTOR", "SparseToDense"]

#: Dense width per output feature.
WIDTH_FACTOR = 2
#: Smallest dense width.
MIN_WIDTH = 256


class SparseToDense:
    """Map CSR rows of ``n_features`` columns to dense rows of ``width``.

    Parameters
    ----------
    n_features : int
        Input dimension ``d``.
    n_components : int
        Output features of the network; the width is
        ``max(WIDTH_FACTOR * n_components, MIN_WIDTH)``, or ``d`` if smaller.
    random_state : int, RandomState instance or None
        Seed of the hashes and signs.
    """

    def __init__(self, n_features: int, n_components: int, random_state: Any = None):
        self.n_features = int(n_features)
        target = max(WIDTH_FACTOR * int(n_components), MIN_WIDTH)
        self.exact = self.n_features <= target
        self.width = self.n_features if self.exact else target
        self.bucket_ = self.sign_ = None
        if not self.exact:
            rng = check_random_state(random_state)
            self.bucket_ = rng.randint(self.width, size=self.n_features)
            self.sign_ = rng.choice(np.array([-1.0, 1.0]), size=self.n_features)

    def __call__(self, X: Any) -> np.ndarray:
        """Dense ``(n, width)`` rows; ``X`` is a SciPy sparse matrix."""
        X = sp.csr_matrix(X)
        if self.exact:
            return X.toarray()
        dtype = X.dtype
        data = X.data * self.sign_[X.indices].astype(dtype, copy=False)
        Y = sp.csr_matrix(
            (data, self.bucket_[X.indices], X.indptr), shape=(X.shape[0], self.width)
        ).toarray()  # duplicates (collisions) are summed
        # Exact norms: the sketch keeps the angles only approximately.
        norm_in = np.sqrt(np.asarray(X.multiply(X).sum(axis=1), dtype=np.float64))
        norm_out = np.sqrt(np.einsum("ij,ij->i", Y, Y, dtype=np.float64))[:, None]
        ok = norm_out > 0
        scale = np.where(ok, norm_in / np.where(ok, norm_out, 1.0), 1.0)
        Y *= scale.astype(dtype, copy=False)
        lost = np.flatnonzero(~ok.ravel() & (norm_in.ravel() > 0))
        for i in lost:  # every entry cancelled in collisions: keep the norm
            Y[i, self.bucket_[X.indices[X.indptr[i]]]] = norm_in[i, 0]
        return Y
