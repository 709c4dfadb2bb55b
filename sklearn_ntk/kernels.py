"""Exact NNGP and NTK kernels of fully connected networks.

The functions compose the exact rules of :mod:`sklearn_ntk.layers` over the
network of :func:`sklearn_ntk.networks.fully_connected`, in row blocks so
that the output is the only ``n_X x n_Y`` object held in memory.
:class:`NNGPKernel` and :class:`NTKKernel` wrap them for
:mod:`sklearn.gaussian_process`, :class:`~sklearn.kernel_ridge.KernelRidge`
and :class:`~sklearn.svm.SVC`.
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from numbers import Integral, Real
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn import config_context, get_config
from sklearn.gaussian_process.kernels import Hyperparameter, Kernel
from sklearn.utils import check_array, gen_batches
from sklearn.utils._array_api import device
from sklearn.utils._param_validation import Interval, validate_params

from ._backend import get_namespace, zeros
from .activations import Activation, get
from .networks import Network, fully_connected

__all__ = ["NNGPKernel", "NTKKernel", "exact_kernel", "nngp_kernel", "ntk_kernel"]


def _resolve_act(act: Any) -> Activation:
    return get(act)


def _check_inputs(X: Any, Y: Any) -> tuple[Any, Any]:
    if sp.issparse(X) or (Y is not None and sp.issparse(Y)):
        X = check_array(X, accept_sparse="csr", dtype=[np.float64, np.float32])
        Y = X if Y is None else check_array(Y, accept_sparse="csr", dtype=X.dtype)
    else:
        xp, _ = get_namespace(X) if Y is None else get_namespace(X, Y)
        X = check_array(X, dtype=[xp.float64, xp.float32])
        Y = X if Y is None else check_array(Y, dtype=X.dtype)
    if X.shape[1] != Y.shape[1]:
        raise ValueError(
            f"X has {X.shape[1]} features but Y has {Y.shape[1]}; they must match."
        )
    return X, Y


def _block_rows(n_cols: int, n_temporaries: int = 8) -> int:
    """Rows per block so a block's temporaries fit in ``working_memory``."""
    budget = get_config()["working_memory"] * 2**20
    return max(1, int(budget // (8 * n_temporaries * max(n_cols, 1))))


def exact_kernel(
    network: Network,
    X: Any,
    Y: Any = None,
    *,
    ntk: bool,
    n_jobs: int | None = None,
    verbose: int = 0,
) -> Any:
    """Exact NNGP (``ntk=False``) or NTK (``ntk=True``) kernel of ``network``.

    Rows of ``X`` are processed in blocks (sized from scikit-learn's
    ``working_memory``), on ``n_jobs`` threads: NumPy releases the GIL in the
    elementwise dual maps, so threads scale without copying the inputs.
    """
    same = Y is None
    X, Y = _check_inputs(X, Y)
    n, m = X.shape[0], Y.shape[0]
    sparse = sp.issparse(X)
    xp = np if sparse else get_namespace(X)[0]
    out = None
    n_threads = _n_threads(n_jobs, n)
    # Enough blocks to keep every thread busy, each within working_memory.
    rows = min(_block_rows(m), max(1, -(-n // (2 * n_threads)) if n_threads > 1 else n))
    blocks = list(gen_batches(n, rows))

    config = get_config()  # thread-local: the pool's threads need array_api_dispatch

    def run(rows: slice) -> Any:
        with config_context(**config):
            k = network.kernel(
                X[rows, ...], Y, ntk=ntk, diag_offset=rows.start if same else None
            )
        return k.ntk if ntk else k.nngp

    if len(blocks) == 1:
        return run(blocks[0])
    with ThreadPoolExecutor(max_workers=n_threads) as pool:
        for i, (rows, K) in enumerate(zip(blocks, pool.map(run, blocks))):
            if out is None:
                out = zeros(xp, (n, m), K.dtype, device(K))
            out[rows, ...] = K
            if verbose:
                print(
                    f"[sklearn_ntk] kernel rows {rows.stop}/{n} ({i + 1}/{len(blocks)} blocks)"
                )
    return out


def _n_threads(n_jobs: int | None, n_blocks: int) -> int:
    if n_jobs is None:
        n_jobs = 1
    if n_jobs < 0:
        import os

        n_jobs = max(1, (os.cpu_count() or 1) + 1 + n_jobs)
    return max(1, min(n_jobs, n_blocks))


_common_params = {
    "X": ["array-like", "sparse matrix"],
    "Y": ["array-like", "sparse matrix", None],
    "act": [str, Activation, callable],
    "depth": [Interval(Integral, 0, None, closed="left")],
    "W_std": [Interval(Real, 0, None, closed="left")],
    "b_std": [Interval(Real, 0, None, closed="left")],
    "n_jobs": [Integral, None],
    "verbose": ["verbose"],
}


@validate_params(_common_params, prefer_skip_nested_validation=True)
def nngp_kernel(
    X: Any,
    Y: Any = None,
    *,
    act: Any = "relu",
    depth: int = 1,
    W_std: float = 1.0,
    b_std: float = 0.0,
    n_jobs: int | None = None,
    verbose: int = 0,
) -> Any:
    """Exact NNGP kernel of an infinitely wide fully connected network.

    The network is ``[Dense, act] * depth`` followed by a ``Dense`` readout,
    in the NTK parameterization of neural-tangents::

        K^0 = W_std^2 <x, y> / d + b_std^2
        K^l = W_std^2 E[act(u) act(v)] + b_std^2,  (u, v) ~ N(0, K^{l-1})

    Parameters
    ----------
    X : {array-like, sparse matrix} of shape (n_samples_X, n_features)
        Inputs, anywhere in ``R^d`` (no normalization needed).
    Y : {array-like, sparse matrix} of shape (n_samples_Y, n_features), default=None
        Second inputs; ``None`` means ``Y = X``.
    act : str, Activation or callable, default="relu"
        Activation: a name of :func:`sklearn_ntk.activations.available`, an
        :class:`~sklearn_ntk.activations.Activation`, or any callable
        (numerical dual, see :mod:`sklearn_ntk.activations`).
    depth : int, default=1
        Number of hidden layers (nonlinearities); ``0`` is the linear kernel.
    W_std, b_std : float, default=1.0, 0.0
        Standard deviations of the weights and biases.
    n_jobs : int, default=None
        Threads over row blocks (``None`` means 1, ``-1`` all cores).
    verbose : int, default=0
        Report progress over row blocks when positive.

    Returns
    -------
    K : ndarray of shape (n_samples_X, n_samples_Y)
        The kernel matrix, in the namespace of ``X`` (NumPy for sparse input).

    See Also
    --------
    ntk_kernel : The neural tangent kernel of the same network.
    NNGPSketch : Random features whose inner products approximate this kernel.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_ntk import nngp_kernel
    >>> X = np.array([[1.0, 0.0], [0.0, 2.0]])
    >>> nngp_kernel(X, act="relu", depth=1).round(4)
    array([[0.25  , 0.0796],
           [0.0796, 1.    ]])
    """
    net = fully_connected(_resolve_act(act), depth, W_std, b_std)
    return exact_kernel(net, X, Y, ntk=False, n_jobs=n_jobs, verbose=verbose)


@validate_params(_common_params, prefer_skip_nested_validation=True)
def ntk_kernel(
    X: Any,
    Y: Any = None,
    *,
    act: Any = "relu",
    depth: int = 1,
    W_std: float = 1.0,
    b_std: float = 0.0,
    n_jobs: int | None = None,
    verbose: int = 0,
) -> Any:
    """Exact neural tangent kernel of an infinitely wide fully connected network.

    ``Theta^0 = K^0`` and ``Theta^l = K^l + W_std^2 E[act'(u) act'(v)] Theta^{l-1}``
    (see :func:`nngp_kernel` for ``K^l``; conventions of neural-tangents).

    Parameters
    ----------
    X : {array-like, sparse matrix} of shape (n_samples_X, n_features)
        Inputs, anywhere in ``R^d``.
    Y : {array-like, sparse matrix} of shape (n_samples_Y, n_features), default=None
        Second inputs; ``None`` means ``Y = X``.
    act : str, Activation or callable, default="relu"
        Activation (see :func:`nngp_kernel`).
    depth : int, default=1
        Number of hidden layers.
    W_std, b_std : float, default=1.0, 0.0
        Standard deviations of the weights and biases.
    n_jobs : int, default=None
        Threads over row blocks (``None`` means 1, ``-1`` all cores).
    verbose : int, default=0
        Report progress over row blocks when positive.

    Returns
    -------
    K : ndarray of shape (n_samples_X, n_samples_Y)
        The NTK matrix.

    See Also
    --------
    nngp_kernel : The NNGP kernel of the same network.
    NTKSketch : Random features whose inner products approximate this kernel.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_ntk import ntk_kernel
    >>> X = np.array([[1.0, 0.0], [0.0, 2.0]])
    >>> ntk_kernel(X, act="relu", depth=1).round(4)
    array([[0.5   , 0.0796],
           [0.0796, 2.    ]])
    """
    net = fully_connected(_resolve_act(act), depth, W_std, b_std)
    return exact_kernel(net, X, Y, ntk=True, n_jobs=n_jobs, verbose=verbose)


class _NeuralKernel(Kernel):
    """Shared machinery of :class:`NNGPKernel` and :class:`NTKKernel`."""

    _ntk = False

    def __init__(
        self,
        act="relu",
        depth=1,
        W_std=1.0,
        b_std=0.0,
        W_std_bounds="fixed",
        b_std_bounds="fixed",
    ):
        self.act = act
        self.depth = depth
        self.W_std = W_std
        self.b_std = b_std
        self.W_std_bounds = W_std_bounds
        self.b_std_bounds = b_std_bounds

    @property
    def hyperparameter_W_std(self) -> Hyperparameter:
        return Hyperparameter("W_std", "numeric", self.W_std_bounds)

    @property
    def hyperparameter_b_std(self) -> Hyperparameter:
        return Hyperparameter("b_std", "numeric", self.b_std_bounds)

    def _matrix(self, X: Any, Y: Any, W_std: float, b_std: float) -> np.ndarray:
        net = fully_connected(_resolve_act(self.act), int(self.depth), W_std, b_std)
        return np.asarray(exact_kernel(net, X, Y, ntk=self._ntk))

    def __call__(self, X, Y=None, eval_gradient=False):
        X = np.asarray(X, dtype=np.float64) if not sp.issparse(X) else X
        if Y is not None and eval_gradient:
            raise ValueError("Gradient can only be evaluated when Y is None.")
        K = self._matrix(X, Y, self.W_std, self.b_std)
        if not eval_gradient:
            return K
        # Gradient in log-hyperparameter space by central differences: the
        # dual maps have no convenient closed-form derivative in W_std/b_std.
        grads = []
        for name in ("W_std", "b_std"):
            if getattr(self, f"hyperparameter_{name}").fixed:
                continue
            value = getattr(self, name)
            if value <= 0:
                grads.append(np.zeros_like(K))
                continue
            h = 1e-4
            params = {"W_std": self.W_std, "b_std": self.b_std}
            params[name] = value * math.exp(h)
            k_plus = self._matrix(X, None, params["W_std"], params["b_std"])
            params[name] = value * math.exp(-h)
            k_minus = self._matrix(X, None, params["W_std"], params["b_std"])
            grads.append((k_plus - k_minus) / (2 * h))
        grad = np.stack(grads, axis=-1) if grads else np.empty((*K.shape, 0))
        return K, grad

    def diag(self, X):
        X = np.asarray(X, dtype=np.float64) if not sp.issparse(X) else X
        net = fully_connected(
            _resolve_act(self.act), int(self.depth), self.W_std, self.b_std
        )
        k = net.kernel_diag(X, ntk=self._ntk)
        return np.asarray(k.ntk if self._ntk else k.nngp, dtype=np.float64)

    def is_stationary(self) -> bool:
        return False

    @property
    def requires_vector_input(self) -> bool:
        return True

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(act={self.act!r}, depth={self.depth}, "
            f"W_std={self.W_std:.3g}, b_std={self.b_std:.3g})"
        )


class NNGPKernel(_NeuralKernel):
    """NNGP kernel of an infinitely wide fully connected network, for GPs.

    A :class:`sklearn.gaussian_process.kernels.Kernel`: use it in
    :class:`~sklearn.gaussian_process.GaussianProcessRegressor` (combine it
    with ``WhiteKernel`` for noise), or as the kernel of
    :class:`~sklearn.kernel_ridge.KernelRidge` and :class:`~sklearn.svm.SVC`.

    Parameters
    ----------
    act : str, Activation or callable, default="relu"
        Activation (see :func:`nngp_kernel`).
    depth : int, default=1
        Number of hidden layers.
    W_std, b_std : float, default=1.0, 0.0
        Weight and bias standard deviations (hyperparameters).
    W_std_bounds, b_std_bounds : pair of floats >= 0 or "fixed", default="fixed"
        Bounds for optimizing ``W_std`` / ``b_std`` in a GP; ``"fixed"`` keeps
        them as given.  Gradients are central differences in log space.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.gaussian_process import GaussianProcessRegressor
    >>> from sklearn.gaussian_process.kernels import WhiteKernel
    >>> from sklearn_ntk.kernels import NNGPKernel
    >>> rng = np.random.RandomState(0)
    >>> X = rng.randn(30, 3); y = np.sin(X[:, 0])
    >>> gp = GaussianProcessRegressor(NNGPKernel(act="erf", depth=2) + WhiteKernel())
    >>> gp.fit(X, y).score(X, y) > 0.9
    True
    """

    _ntk = False


class NTKKernel(_NeuralKernel):
    """Neural tangent kernel of an infinitely wide fully connected network.

    Same interface as :class:`NNGPKernel`; the kernel is :func:`ntk_kernel`.

    Parameters
    ----------
    act : str, Activation or callable, default="relu"
        Activation (see :func:`nngp_kernel`).
    depth : int, default=1
        Number of hidden layers.
    W_std, b_std : float, default=1.0, 0.0
        Weight and bias standard deviations (hyperparameters).
    W_std_bounds, b_std_bounds : pair of floats >= 0 or "fixed", default="fixed"
        Bounds for optimizing ``W_std`` / ``b_std`` in a GP.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.svm import SVC
    >>> from sklearn_ntk.kernels import NTKKernel
    >>> X = np.array([[0.0, 1.0], [1.0, 0.0], [0.0, -1.0], [-1.0, 0.0]])
    >>> SVC(kernel=NTKKernel(depth=2)).fit(X, [0, 1, 0, 1]).predict(X)
    array([0, 1, 0, 1])
    """

    _ntk = True
