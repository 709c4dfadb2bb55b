"""Exact NNGP and NTK kernels of fully connected networks.

The functions compose the exact rules of :mod:`sklearn_ntk.layers` over the
network of :func:`sklearn_ntk.networks.fully_connected`, through the one
exact driver (:mod:`sklearn_ntk._exact`): tiles of pairs on threads, so that
the output is the only ``n_X x n_Y`` object held in memory.
:class:`NNGPKernel` and :class:`NTKKernel` wrap them for
:mod:`sklearn.gaussian_process`, :class:`~sklearn.kernel_ridge.KernelRidge`
and :class:`~sklearn.svm.SVC`.
"""

from __future__ import annotations

import math
from numbers import Integral, Real
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn import config_context
from sklearn.gaussian_process.kernels import Hyperparameter, Kernel
from sklearn.utils import check_array

from ._backend import Interval, get_namespace, validate_params
from ._exact import exact_matrix
from ._validation import (
    MAX_STD,
    check_finite_result,
    check_n_jobs,
    network_summary,
    scale_text,
    trusted_inputs,
)
from .activations import Activation, get
from .networks import Network, fully_connected

__all__ = ["NNGPKernel", "NTKKernel", "exact_kernel", "nngp_kernel", "ntk_kernel"]


def _resolve_act(act: Any) -> Activation:
    return get(act)


def _check_2d(A: Any, name: str, dtype: Any, sparse: bool) -> Any:
    """``check_array`` whose messages say which of ``X`` and ``Y`` is at fault."""
    kind = getattr(getattr(A, "dtype", None), "kind", None)
    if kind == "c" or (kind is None and "complex" in str(getattr(A, "dtype", ""))):
        raise ValueError(f"{name}: Complex data not supported (dtype {A.dtype}).")
    try:
        return check_array(
            A, accept_sparse="csr" if sparse else False, dtype=dtype, input_name=name
        )
    except ValueError as exc:
        msg = str(exc)
        if f" {name} " in msg or msg.startswith(f"{name}:"):
            raise
        raise ValueError(f"{name}: {msg}") from exc


def _check_inputs(X: Any, Y: Any) -> tuple[Any, Any]:
    if sp.issparse(X) or (Y is not None and sp.issparse(Y)):
        X = _check_2d(X, "X", [np.float64, np.float32], True)
        Y = X if Y is None else _check_2d(Y, "Y", X.dtype, True)
    else:
        xp, _ = get_namespace(X) if Y is None else get_namespace(X, Y)
        X = _check_2d(X, "X", [xp.float64, xp.float32], False)
        Y = X if Y is None else _check_2d(Y, "Y", X.dtype, False)
    if X.shape[1] != Y.shape[1]:
        raise ValueError(
            f"X has {X.shape[1]} features but Y has {Y.shape[1]}; they must match."
        )
    return X, Y


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

    Validates the rows, computes float32 rows in float32 where that is safe
    (:func:`_as_float64`), and runs the one exact driver
    (:func:`sklearn_ntk._exact.exact_matrix`: tiles of pairs on ``n_jobs``
    threads, sized from scikit-learn's ``working_memory``).
    """
    same = Y is None
    check_n_jobs(n_jobs)
    X, Y = _check_inputs(X, Y)
    kind = "NTK" if ntk else "NNGP kernel"
    dtype = X.dtype
    X, Y = _as_float64(X, Y)

    def context(exc: BaseException) -> BaseException:
        return _with_context(exc, kind, network, X, None if same else Y)

    K = exact_matrix(
        network,
        X,
        None if same else Y,
        ntk=ntk,
        n_jobs=n_jobs,
        verbose=verbose,
        context=context,
    )
    return _as_dtype(K, dtype)


#: float32 rows whose largest |x_k| lies within 2**+-_F32_EXP are computed in
#: float32: their squares and Gram are far inside the float32 range.
_F32_EXP = 40


def _as_float64(X: Any, Y: Any) -> tuple[Any, Any]:
    """float32 inputs beyond ``2**+-40`` are computed in float64.

    Within that window every step of the exact rules stays inside the
    float32 range (the rules are scale-safe, see
    :class:`~sklearn_ntk.networks.DenseInput`), so float32 keeps its speed.
    Beyond it ``<x, y> / d`` itself may leave the float32 range (rows of
    1e-30: ``K^0 ~ 1e-60``) although the kernel of sign, step... does not:
    those inputs are computed in float64, where squares of float32 numbers
    cannot under- or overflow, and the result rounded back (a true value
    beyond the float32 range raises ``OverflowError`` in :func:`_as_dtype`).
    Namespaces or devices without float64 compute in float32.
    """
    if sp.issparse(X):
        if X.dtype == np.float64 or _f32_safe(X, Y):
            return X, Y
        X64 = X.astype(np.float64)
        return X64, X64 if Y is X else Y.astype(np.float64)
    xp, _ = get_namespace(X)
    if X.dtype == xp.float64 or _f32_safe(X, Y):
        return X, Y
    try:
        X64 = xp.astype(X, xp.float64)
        Y64 = X64 if Y is X else xp.astype(Y, xp.float64)
    except (TypeError, RuntimeError, ValueError):  # no float64 on this device
        return X, Y
    return X64, Y64


def _f32_safe(X: Any, Y: Any) -> bool:
    """Whether every nonzero entry of ``X`` and ``Y`` is within 2**+-40."""
    for Z in (X,) if Y is X else (X, Y):
        if sp.issparse(Z):
            values = np.abs(Z.data)
            values = values[values > 0]
            if values.size and (
                values.max() > 2.0**_F32_EXP or values.min() < 2.0**-_F32_EXP
            ):
                return False
            continue
        xp, _ = get_namespace(Z)
        a = xp.abs(Z)
        big = float(xp.max(a)) if a.shape[0] * a.shape[1] else 0.0
        small = xp.min(xp.where(a > 0, a, xp.ones_like(a))) if big else 1.0
        if big > 2.0**_F32_EXP or float(small) < 2.0**-_F32_EXP:
            return False
    return True


def _as_dtype(K: Any, dtype: Any) -> Any:
    xp, _ = get_namespace(K)
    if K.dtype == dtype:
        return K
    big = xp.max(xp.abs(K)) if K.shape[0] * K.shape[1] else 0.0
    if float(big) > float(np.finfo(np.float32).max):
        raise OverflowError(
            f"The exact kernel reaches {float(big):.3g}, beyond the float32 range "
            "of the input: pass float64 data."
        )
    return xp.astype(K, dtype)


def _with_context(
    exc: BaseException, kind: str, network: Any, X: Any, Y: Any
) -> BaseException:
    """``exc`` with the network and the input scale prepended to its message."""
    scale = scale_text(X) + ("" if Y is None else f" for X and {scale_text(Y)} for Y")
    msg = (
        f"The exact {kind} of {network_summary(network)} at the input scale "
        f"max ||x||^2/d = {scale}: {exc}"
    )
    try:
        new = type(exc)(msg)
    except Exception:  # exception types that need other arguments
        new = ValueError(msg)
    new.__cause__ = exc
    return new


#: ``n_jobs``: a nonzero number of threads (``-1``: all cores) or None.
N_JOBS = [
    Interval(Integral, 1, None, closed="left"),
    Interval(Integral, None, -1, closed="right"),
    None,
]
#: ``W_std``, ``b_std``: nonnegative, with a finite float64 square.
STD = [Interval(Real, 0, MAX_STD, closed="both")]


_common_params = {
    "X": ["array-like", "sparse matrix"],
    "Y": ["array-like", "sparse matrix", None],
    "act": [str, Activation, callable],
    "depth": [Interval(Integral, 0, None, closed="left")],
    "W_std": STD,
    "b_std": STD,
    "n_jobs": N_JOBS,
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
    array([[0.25  , 0.1592],
           [0.1592, 1.    ]])

    The rows are orthogonal, so the off-diagonal entry is
    ``E[relu(u)] E[relu(v)]`` for independent ``u ~ N(0, 1/2)`` and
    ``v ~ N(0, 2)``, that is ``1 / (2 pi)``.
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
    array([[0.5   , 0.1592],
           [0.1592, 2.    ]])
    """
    net = fully_connected(_resolve_act(act), depth, W_std, b_std)
    return exact_kernel(net, X, Y, ntk=True, n_jobs=n_jobs, verbose=verbose)


#: Constraints of the GP kernels' parameters: those of :func:`nngp_kernel`.
_KERNEL_PARAMS = {k: _common_params[k] for k in ("act", "depth", "W_std", "b_std")}


def _param_checker(name: str) -> Any:
    """A no-op validated by ``validate_params`` under the caller name ``name``.

    So that the GP kernels' parameters get exactly the constraints and the
    messages of :func:`nngp_kernel`.
    """

    def check(*, act: Any, depth: Any, W_std: Any, b_std: Any) -> None:
        return None

    check.__qualname__ = check.__name__ = name
    return validate_params(_KERNEL_PARAMS, prefer_skip_nested_validation=True)(check)


def _fmt_param(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, Real) else repr(value)


class _NeuralKernel(Kernel):
    """Shared machinery of :class:`NNGPKernel` and :class:`NTKKernel`.

    Parameters are stored untouched by ``__init__`` (``clone`` and
    ``set_params`` must work) and validated when the kernel is evaluated, or
    when ``theta`` / ``bounds`` are read, with the constraints and messages
    of :func:`nngp_kernel`.
    """

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

    # -- validation ------------------------------------------------------------

    def _validate(self) -> Activation:
        """Check every parameter; return the resolved activation."""
        name = type(self).__name__
        # Inside a GaussianProcessRegressor.fit, scikit-learn skips nested
        # parameter validation; these parameters were never validated before.
        with config_context(skip_parameter_validation=False):
            _param_checker(name)(
                act=self.act, depth=self.depth, W_std=self.W_std, b_std=self.b_std
            )
        for param in ("W_std", "b_std"):
            bounds = getattr(self, f"{param}_bounds")
            if isinstance(bounds, str) and bounds == "fixed":
                continue
            ok = not isinstance(bounds, str)
            if ok:
                try:
                    lo, hi = (float(v) for v in np.asarray(bounds, dtype=float).ravel())
                except (TypeError, ValueError):
                    ok = False
                else:
                    ok = 0 <= lo <= hi <= MAX_STD
            if not ok:
                raise ValueError(
                    f"The '{param}_bounds' parameter of {name} must be 'fixed' or a "
                    f"pair (low, high) of floats with 0 <= low <= high <= {MAX_STD:.6g}. "
                    f"Got {bounds!r} instead."
                )
            value = getattr(self, param)
            if value <= 0:
                raise ValueError(
                    f"{name}({param}={value!r}, {param}_bounds={bounds!r}): a "
                    f"hyperparameter is optimized in log space, so {param} must be "
                    f"> 0 when {param}_bounds is not 'fixed'; start from a value "
                    f"inside the bounds (e.g. {param}={max(lo, min(hi, 0.1)):.3g}) or "
                    f"set {param}_bounds='fixed'."
                )
        try:
            return _resolve_act(self.act)
        except ValueError as exc:
            raise ValueError(f"The 'act' parameter of {name}: {exc}") from exc

    @property
    def theta(self) -> np.ndarray:
        """Log of the non-fixed hyperparameters (validated; always finite)."""
        self._validate()
        return Kernel.theta.fget(self)

    @theta.setter
    def theta(self, theta: np.ndarray) -> None:
        Kernel.theta.fset(self, theta)

    @property
    def bounds(self) -> np.ndarray:
        """Log of the bounds of the non-fixed hyperparameters (validated)."""
        self._validate()
        return Kernel.bounds.fget(self)

    # -- evaluation ------------------------------------------------------------

    def _network(self, act: Activation, W_std: float, b_std: float) -> Network:
        return fully_connected(act, int(self.depth), W_std, b_std)

    def _as_float64(self, A: Any, name: str) -> Any:
        return _check_2d(A, name, np.float64, True)

    def __call__(self, X, Y=None, eval_gradient=False):
        act = self._validate()
        if Y is not None and eval_gradient:
            raise ValueError("Gradient can only be evaluated when Y is None.")
        X = self._as_float64(X, "X")
        Y = None if Y is None else self._as_float64(Y, "Y")
        K = np.asarray(
            exact_kernel(
                self._network(act, self.W_std, self.b_std), X, Y, ntk=self._ntk
            )
        )
        if not eval_gradient:
            return K
        # Gradient in log-hyperparameter space by central differences: the
        # dual maps have no convenient closed-form derivative in W_std/b_std.
        grads = []
        for name in ("W_std", "b_std"):
            if getattr(self, f"hyperparameter_{name}").fixed:
                continue
            value = getattr(self, name)
            h = 1e-4
            params = {"W_std": self.W_std, "b_std": self.b_std}
            params[name] = value * math.exp(h)
            k_plus = exact_kernel(self._network(act, **params), X, ntk=self._ntk)
            params[name] = value * math.exp(-h)
            k_minus = exact_kernel(self._network(act, **params), X, ntk=self._ntk)
            grads.append((np.asarray(k_plus) - np.asarray(k_minus)) / (2 * h))
        grad = np.stack(grads, axis=-1) if grads else np.empty((*K.shape, 0))
        return K, grad

    def diag(self, X):
        act = self._validate()
        X = self._as_float64(X, "X")
        net = self._network(act, self.W_std, self.b_std)
        kind = "NTK" if self._ntk else "NNGP kernel"
        with trusted_inputs():  # checked by the guard below
            try:
                k = net.kernel_diag(X, ntk=self._ntk)
            except (ArithmeticError, ValueError) as exc:
                raise _with_context(exc, kind, net, X, None) from exc
        d = np.asarray(k.ntk if self._ntk else k.nngp, dtype=np.float64)
        return check_finite_result(
            d, what=f"The diagonal of the {kind}", network=net, ntk=self._ntk, X=X
        )

    def is_stationary(self) -> bool:
        return False

    @property
    def requires_vector_input(self) -> bool:
        return True

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(act={self.act!r}, depth={self.depth!r}, "
            f"W_std={_fmt_param(self.W_std)}, b_std={_fmt_param(self.b_std)})"
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
        them as given.  Gradients are central differences in log space, so
        an optimized ``W_std`` / ``b_std`` must start > 0.

    Notes
    -----
    As for every scikit-learn kernel, ``__init__`` stores the parameters
    untouched; they are validated, with the constraints and messages of
    :func:`nngp_kernel`, when the kernel is evaluated or ``theta`` /
    ``bounds`` are read.

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
