"""A fitted sketch's estimate of its own error (``error_estimate_``).

The estimate is the relative Frobenius error ``||Z Z^T - K||_F / ||K||_F``
that the drawn features make on data like the training data.  It is measured,
not modelled: on a random subsample of the training rows the exact kernel and
the drawn features are both computed, and the squared error is extrapolated
to the training size ``n`` by separating the diagonal from the off-diagonal
pairs (a subsample of ``s`` rows has ``s`` diagonal and ``s (s - 1)``
off-diagonal pairs, the training set ``n`` and ``n (n - 1)``)::

    err^2(n) = [n (n - 1) mse_off + n mse_diag] / [n (n - 1) msk_off + n msk_diag]

with ``mse_*`` the mean squared errors and ``msk_*`` the mean squared kernel
values of each kind of pair on the subsample.  Both numerator and denominator
are unbiased (over the choice of the subsample) for their full-data values.

Why measured: a variance formula would need the fourth moments of every
layer's features (heavy tails of the polynomial activations, Monte-Carlo
tails, the SRHT resize), which the strategies do not expose; the exact
kernel on a few hundred rows costs far less than a transform of the
training data for fully connected networks.  For convolutional networks the
exact kernel is expensive (quadratic in the pixels), so the subsample is
small (:data:`CONV_ROWS` images) and the estimate coarser.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.utils import check_random_state

__all__ = ["CONV_ROWS", "FC_ROWS", "WARN_ABOVE", "estimate_error"]

#: Rows of the training data on which a fully connected sketch is checked.
FC_ROWS = 200
#: Images of the training data on which a convolutional sketch is checked.
CONV_ROWS = 12
#: ``fit`` warns when the estimated relative error exceeds this.
WARN_ABOVE = 0.5


def _is_conv(estimator: Any) -> bool:
    return hasattr(estimator, "architecture")


def _exact(estimator: Any, X: Any) -> np.ndarray:
    """Exact kernel of the estimator's network on the rows of ``X``."""
    ntk = bool(estimator._ntk)
    if _is_conv(estimator):
        from .convolutional import cnngp_kernel, cntk_kernel

        fn = cntk_kernel if ntk else cnngp_kernel
        return np.asarray(
            fn(
                X,
                act=estimator.activation_,
                architecture=estimator.architecture,
                depth=estimator.depth,
                filter_size=estimator.filter_size,
                readout=estimator.readout,
                W_std=estimator.W_std,
                b_std=estimator.b_std,
                image_shape=estimator.image_shape_,
            ),
            dtype=np.float64,
        )
    from .kernels import nngp_kernel, ntk_kernel

    fn = ntk_kernel if ntk else nngp_kernel
    K = fn(
        X,
        act=estimator.activation_,
        depth=estimator.depth,
        W_std=estimator.W_std,
        b_std=estimator.b_std,
    )
    return np.asarray(K, dtype=np.float64)


def _exact_diag(estimator: Any, X: Any) -> np.ndarray | None:
    """Exact ``K(x, x)`` of every row (fully connected networks; ``None`` for
    convolutional ones, whose diagonal costs as much as a tile of pairs)."""
    if _is_conv(estimator):
        return None
    from .kernels import NNGPKernel, NTKKernel

    kern = NTKKernel if estimator._ntk else NNGPKernel
    k = kern(
        act=estimator.activation_,
        depth=estimator.depth,
        W_std=estimator.W_std,
        b_std=estimator.b_std,
    )
    return np.asarray(k.diag(X), dtype=np.float64)


def extrapolated_error(
    Z: np.ndarray,
    K: np.ndarray,
    n_total: int,
    draws: np.ndarray | None = None,
    p: np.ndarray | None = None,
) -> float:
    """Relative Frobenius error of ``Z Z^T`` against ``K`` on ``n_total`` rows,
    from the rows given.

    Without ``draws`` the ``s`` rows given are a uniform subsample (or all
    rows): the mean squared errors and kernel values of the diagonal and of
    the off-diagonal pairs are extrapolated as in the module docstring.
    With ``draws`` (row positions into ``Z``/``K``, drawn with replacement
    with probabilities ``p`` over the ``n_total`` rows, ``p`` given per
    position) the sums are importance-weighted: ``sum_{i != j} f(i, j)`` is
    estimated without bias by ``mean_{a != b} f(i_a, i_b) / (p_a p_b)`` with
    ``f(i, i) = 0``, and the diagonal sum by ``mean_a f(i_a, i_a) / p_a``.
    """
    E = Z @ Z.T - K
    if draws is None:
        s = K.shape[0]
        diag = np.arange(s)
        mse_diag = float(np.mean(E[diag, diag] ** 2))
        msk_diag = float(np.mean(K[diag, diag] ** 2))
        if s > 1:
            off = s * (s - 1)
            mse_off = (float(np.sum(E * E)) - mse_diag * s) / off
            msk_off = (float(np.sum(K * K)) - msk_diag * s) / off
        else:  # one row: no off-diagonal information, use the diagonal's
            mse_off, msk_off = mse_diag, msk_diag
        n = max(int(n_total), 1)
        num = n * (n - 1) * max(mse_off, 0.0) + n * mse_diag
        den = n * (n - 1) * max(msk_off, 0.0) + n * msk_diag
    else:
        t = len(draws)
        w = 1.0 / p
        same = draws[:, None] == draws[None, :]
        sums = []
        for A in (E, K):
            A2 = A[np.ix_(draws, draws)] ** 2
            dg = float(np.mean(np.diag(A2) * w))
            od = np.where(same, 0.0, A2) * w[:, None] * w[None, :]
            sums.append(dg + (float(od.sum()) / (t * (t - 1)) if t > 1 else 0.0))
        num, den = sums
    if not den > 0:
        return 0.0 if num == 0 else math.inf
    return math.sqrt(max(num, 0.0) / den)


def estimate_error(
    estimator: Any,
    X_sample: Any,
    n_total: int,
    random_state: Any = None,
    max_rows: int | None = None,
) -> float:
    """Expected relative Frobenius error of a fitted sketch on ``n_total`` rows
    like ``X_sample``.

    When ``X_sample`` has more than ``max_rows`` rows, ``max_rows`` draws are
    made (with replacement): for fully connected networks with probabilities
    half uniform, half proportional to the exact ``K(x, x)`` (the rows of
    large kernel values dominate the Frobenius norms, and would be missed by
    a uniform draw on data of mixed scales), uniform for convolutional ones.

    Parameters
    ----------
    estimator : fitted NNGPSketch, NTKSketch, CNNGPSketch or CNTKSketch
        Its ``sketch_`` gives the features, its parameters the exact kernel.
    X_sample : array-like or sparse matrix of shape (s, n_features)
        Validated training rows (NumPy or SciPy; other namespaces are moved
        to the host).
    n_total : int
        Number of rows to extrapolate to (the training size) when
        ``X_sample`` is a uniform sample of them; ``X_sample.shape[0]`` when it
        is the training set itself.
    random_state : int, RandomState instance or None
        Chooses the subsample when ``X_sample`` has more than ``max_rows``.
    max_rows : int, optional
        Largest subsample; :data:`FC_ROWS` (fully connected) or
        :data:`CONV_ROWS` (convolutional) by default.

    Returns
    -------
    float
        The estimated relative Frobenius error.
    """
    from ._backend import to_numpy

    if max_rows is None:
        max_rows = CONV_ROWS if _is_conv(estimator) else FC_ROWS
    s = X_sample.shape[0]
    if s == 0:
        return 0.0
    if not sp.issparse(X_sample):
        X_sample = np.asarray(to_numpy(X_sample))
    draws = p_draw = None
    if s > max_rows:
        rng = check_random_state(random_state)
        p = np.full(s, 1.0 / s)
        dk = _exact_diag(estimator, X_sample)
        if dk is not None and np.all(np.isfinite(dk)) and dk.sum() > 0:
            p = 0.5 * p + 0.5 * dk / dk.sum()
        idx = rng.choice(s, max_rows, replace=True, p=p)
        rows, draws = np.unique(idx, return_inverse=True)
        p_draw = p[idx] * s / max(int(n_total), 1)  # ``n_total`` rows like these
        X_sample = X_sample[rows]
    K = _exact(estimator, X_sample)
    with warnings.catch_warnings():
        # The exact path already warned where it had reason to.
        warnings.simplefilter("ignore")
        Z = np.asarray(to_numpy(estimator.sketch_(X_sample)), dtype=np.float64)
    if draws is None:
        return extrapolated_error(Z, K, n_total)
    return extrapolated_error(Z, K, n_total, draws, p_draw)


def fit_error_estimate(estimator: Any, X: Any) -> float:
    """Hook for ``fit``: set nothing, return the estimate, warn above
    :data:`WARN_ABOVE`.  The subsample is drawn from a generator of its own
    (seeded from ``random_state`` when it is an int), so the features drawn by
    ``fit`` do not depend on it."""
    seed = estimator.random_state
    rs = seed if isinstance(seed, int | np.integer) else 0
    est = estimate_error(estimator, X, X.shape[0], random_state=rs)
    if not est <= WARN_ABOVE:
        warnings.warn(
            f"{type(estimator).__name__}: the sketch's relative Frobenius error on "
            f"data like the training data is estimated at {est:.3g} (measured "
            "against the exact kernel on a subsample of the training rows). "
            "Increase n_components, or see error_estimate_.",
            UserWarning,
            stacklevel=4,
        )
    return est
