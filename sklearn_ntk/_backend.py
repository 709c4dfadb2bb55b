"""Array namespace, device and dtype helpers shared by every numerical module.

All numerics take arrays of one namespace ``xp`` (NumPy, CuPy, PyTorch,
array-api-strict, ...) and return arrays of that namespace, so that the CPU
and GPU paths are one code path.  Parameters drawn at ``fit`` time (signs,
indices, Hermite coefficients) live in NumPy and are moved to the input's
namespace and device once per call with :func:`asxp`.

The estimators' ``backend`` parameter needs one more thing: computing in
CuPy on NumPy input, with scikit-learn's ``array_api_dispatch`` off (it cannot
be switched on without ``SCIPY_ARRAY_API=1`` set before SciPy is imported).
:func:`any_namespace` opens a scope in which :func:`get_namespace` follows
its arguments' own namespace whatever the dispatch setting; the estimators
open it around each batch they move with :func:`to_backend`, and move the
result back with :func:`from_backend`.  That is the whole of the CuPy glue.

This module is also the package's one gateway to scikit-learn's private API
(``sklearn.utils._array_api``, ``sklearn.utils._param_validation``,
``sklearn.base._fit_context``, ``sklearn.externals``): every other module
imports those names from here, so that a change of scikit-learn's internals
is met in one place, with a fallback for each release from the declared
minimum (scikit-learn 1.6) on.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn import get_config

# ------------------------------------------------- scikit-learn's private API
# Present in every supported release (scikit-learn >= 1.6).
from sklearn.base import _fit_context
from sklearn.utils._array_api import device
from sklearn.utils._array_api import get_namespace as _sk_get_namespace
from sklearn.utils._array_api import get_namespace_and_device as _sk_ns_and_device
from sklearn.utils._param_validation import Interval, StrOptions, validate_params

try:  # vendored by scikit-learn >= 1.7
    from sklearn.externals import array_api_compat
except ImportError:  # scikit-learn 1.6 uses the array-api-compat package
    import array_api_compat

try:  # scikit-learn >= 1.9
    from sklearn.utils._array_api import check_same_namespace
except ImportError:

    def check_same_namespace(X: Any, estimator: Any, *, attribute: str, method: str):
        """Raise if ``X`` is not of the namespace and device ``attribute`` was fit on."""
        if not get_config()["array_api_dispatch"]:
            return
        a_xp, _, a_dev = get_namespace_and_device(getattr(estimator, attribute))
        X_xp, _, X_dev = get_namespace_and_device(X)
        if (is_numpy(a_xp) and is_numpy(X_xp)) or (X_xp == a_xp and X_dev == a_dev):
            return
        raise ValueError(
            f"Inputs passed to {type(estimator).__name__}.{method}() must use the "
            "same namespace and device as those passed to fit(): fit saw "
            f"{a_xp.__name__} on {a_dev}, {method} got {X_xp.__name__} on {X_dev}."
        )


# NumPy as an Array API namespace when dispatch is off (scikit-learn < 1.7
# gives a partial wrapper instead, without e.g. ``acos`` on NumPy 1.x).
_NUMPY_XP = array_api_compat.array_namespace(np.empty(0))

__all__ = [
    "BACKENDS",
    "Interval",
    "StrOptions",
    "_fit_context",
    "any_namespace",
    "array_api_compat",
    "asxp",
    "check_same_namespace",
    "device",
    "from_backend",
    "get_namespace",
    "get_namespace_and_device",
    "import_cupy",
    "is_numpy",
    "to_backend",
    "to_numpy",
    "validate_params",
]

#: Values of the estimators' ``backend`` parameter.
BACKENDS = ("auto", "numpy", "cupy")

_GPU_EXTRA = 'pip install "sklearn-ntk[gpu]"'

# Set inside ``any_namespace()``: follow the arrays' namespace even when
# scikit-learn's array_api_dispatch is off.
_ANY_NAMESPACE: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "sklearn_ntk_any_namespace", default=False
)


@contextlib.contextmanager
def any_namespace() -> Iterator[None]:
    """Scope in which :func:`get_namespace` follows the arrays' own namespace."""
    token = _ANY_NAMESPACE.set(True)
    try:
        yield
    finally:
        _ANY_NAMESPACE.reset(token)


def _arrays(arrays: tuple) -> list:
    return [
        a for a in arrays if a is not None and not isinstance(a, str | list | tuple)
    ]


def get_namespace(*arrays: Any, **kwargs: Any) -> tuple[Any, bool]:
    """scikit-learn's ``get_namespace``, or the arrays' own inside :func:`any_namespace`."""
    if _ANY_NAMESPACE.get():
        arrays_ = [a for a in _arrays(arrays) if not sp.issparse(a)]
        if arrays_:
            return array_api_compat.array_namespace(*arrays_), True
    # Lists and tuples are not arrays (older scikit-learn would try them).
    xp, compliant = _sk_get_namespace(*_arrays(arrays), **kwargs)
    return (_NUMPY_XP if not compliant and is_numpy(xp) else xp), compliant


def get_namespace_and_device(*arrays: Any, **kwargs: Any) -> tuple[Any, bool, Any]:
    """Namespace, compliance flag and device of ``arrays`` (see :func:`get_namespace`)."""
    if _ANY_NAMESPACE.get():
        xp, compliant = get_namespace(*arrays)
        arrays_ = _arrays(arrays)
        return xp, compliant, getattr(arrays_[0], "device", None) if arrays_ else None
    xp, compliant, dev = _sk_ns_and_device(*_arrays(arrays), **kwargs)
    return (_NUMPY_XP if not compliant and is_numpy(xp) else xp), compliant, dev


def is_numpy(xp: Any) -> bool:
    """Whether ``xp`` is NumPy (or scikit-learn's NumPy compatibility wrapper)."""
    return getattr(xp, "__name__", "") in {
        "numpy",
        "array_api_compat.numpy",
        "sklearn.externals.array_api_compat.numpy",
    }


def asxp(a: Any, xp: Any, device: Any = None, dtype: Any = None) -> Any:
    """Move a NumPy array (or scalar) to namespace ``xp`` on ``device``."""
    if is_numpy(xp):
        return np.asarray(a, dtype=dtype)
    if dtype is None and isinstance(a, np.ndarray):
        dtype = getattr(xp, str(a.dtype))
    return xp.asarray(a, dtype=dtype, device=device)


def zeros(xp: Any, shape: tuple[int, ...], dtype: Any, device: Any = None) -> Any:
    """``xp.zeros`` on ``device``; plain NumPy (1.x) takes no ``device``."""
    if is_numpy(xp):
        return np.zeros(shape, dtype=dtype)
    return xp.zeros(shape, dtype=dtype, device=device)


def to_numpy(a: Any) -> np.ndarray:
    """Bring an array of any supported namespace back to host NumPy."""
    if isinstance(a, np.ndarray) or sp.issparse(a):
        return a
    if hasattr(a, "get") and type(a).__module__.startswith("cupy"):
        return a.get()
    if type(a).__module__.startswith("torch"):
        return a.detach().cpu().numpy()
    try:
        return np.asarray(a)
    except (RuntimeError, TypeError, ValueError):
        # Arrays on a non-host device (array-api-strict's "device1", ...):
        # DLPack copies them to the host.
        return np.from_dlpack(a, device="cpu", copy=True)


# ---------------------------------------------------------------------- CuPy
def import_cupy() -> Any:
    """Import CuPy and check that a CUDA device is visible.

    Raises
    ------
    ImportError
        If CuPy is not installed.
    RuntimeError
        If CuPy finds no CUDA device.
    """
    try:
        import cupy
    except ImportError as exc:
        raise ImportError(
            f'backend="cupy" needs CuPy: install it with {_GPU_EXTRA} (or the '
            "cupy-cudaXXx wheel matching your CUDA version)."
        ) from exc
    try:
        n_devices = int(cupy.cuda.runtime.getDeviceCount())
    except Exception as exc:  # CUDARuntimeError when no driver is loaded
        raise RuntimeError(
            f'backend="cupy": CuPy is installed but found no usable CUDA device ({exc}).'
        ) from exc
    if n_devices < 1:
        raise RuntimeError(
            'backend="cupy": CuPy is installed but found no CUDA device.'
        )
    return cupy


def _is_cupy_array(a: Any, cupy: Any) -> bool:
    return isinstance(a, getattr(cupy, "ndarray", ()))


def to_backend(X: Any, backend: str) -> Any:
    """``X`` (dense, any namespace) as an array of ``backend``.

    ``"auto"`` returns ``X`` unchanged, ``"numpy"`` a host NumPy array and
    ``"cupy"`` a CuPy array on the current CUDA device.
    """
    if backend == "auto":
        return X
    if sp.issparse(X):
        raise TypeError(
            f'backend="{backend}" does not accept sparse input; use backend="auto".'
        )
    if backend == "numpy":
        return to_numpy(X)
    if backend == "cupy":
        cupy = import_cupy()
        if _is_cupy_array(X, cupy):
            return X
        return cupy.asarray(to_numpy(X))
    raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}.")


def from_backend(Z: Any, backend: str, xp: Any, device: Any = None) -> Any:
    """``Z``, computed by ``backend``, as an array of namespace ``xp`` on ``device``.

    ``xp`` and ``device`` are those of the caller's input, so that ``backend``
    never changes the type of what a transform returns.
    """
    if backend == "auto":
        return Z
    if backend == "cupy":
        if "cupy" in getattr(xp, "__name__", ""):
            return Z
        Z = import_cupy().asnumpy(Z)
    return asxp(Z, xp, device=device, dtype=None)
