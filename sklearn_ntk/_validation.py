"""Input and result checks shared by the kernels and the estimators.

The team rule: a public function returns the right number or raises an error
that names the input or parameter at fault (and the activation and scale when
they matter); it never returns NaN or inf with only a RuntimeWarning.  This
module holds the pieces that enforce it:

* :func:`network_summary` and :func:`input_scale` describe a network and an
  input for error messages;
* :func:`check_finite_result` is the finiteness guard of every exact kernel
  driver and sketch transform: when a result is not finite it raises a
  ``ValueError`` that names the network, the input scale and, from a trace of
  ``K(x, x)`` layer by layer, the first layer that overflows;
* :func:`check_reference_scales` refuses, at ``fit``, parameters whose kernel
  is not finite even at the reference scale ``||x||^2 / d = 1``;
* :func:`check_float32_range` refuses float32 inputs whose squared norms
  overflow float32;
* :func:`check_memory` and :func:`available_memory` refuse, up front,
  allocations that cannot exist on this machine;
* :func:`check_out` validates a user-supplied ``out`` array.
"""

from __future__ import annotations

import contextlib
import contextvars
import math
import os
from collections.abc import Iterator
from typing import Any

import numpy as np
import scipy.sparse as sp

from ._backend import to_numpy

__all__ = [
    "MAX_STD",
    "all_finite",
    "available_memory",
    "check_dual_inputs",
    "check_dual_outputs",
    "check_finite_result",
    "check_float32_range",
    "check_memory",
    "check_n_jobs",
    "check_out",
    "check_pointwise_input",
    "check_reference_scales",
    "check_row_scales",
    "input_scale",
    "inputs_trusted",
    "network_summary",
    "trusted_inputs",
]

#: Largest weight/bias standard deviation whose square is a finite float64:
#: every layer multiplies the kernel by ``W_std**2`` and adds ``b_std**2``.
MAX_STD = math.sqrt(np.finfo(np.float64).max)

_GIB = 2.0**30


# ----------------------------------------------------------------------------
# Descriptions for error messages
# ----------------------------------------------------------------------------


def _layers(network: Any) -> tuple:
    return tuple(getattr(network, "layers", ()))


def network_summary(network: Any) -> str:
    """``act=..., depth=..., W_std=..., b_std=...`` of a network, for messages."""
    from .layers.dense import Elementwise

    acts = [la.act for la in _layers(network) if isinstance(la, Elementwise)]
    affine = [la for la in _layers(network) if hasattr(la, "W_std")]
    parts = []
    if acts:
        distinct = list(dict.fromkeys(acts))
        parts.append(
            f"act={distinct[0]!r}"
            if len(distinct) == 1
            else "acts=" + ", ".join(map(repr, distinct))
        )
    parts.append(f"depth={len(acts)}")
    if affine:
        first = affine[0]
        parts.append(f"W_std={first.W_std:.6g}, b_std={first.b_std:.6g}")
    return ", ".join(parts)


def input_scale(X: Any) -> float:
    """``max_i ||x_i||^2 / d`` over the rows of ``X`` (``inf`` when it overflows).

    Computed in float64 from rows divided by their largest entry, so that the
    value is right whenever it is representable, whatever the dtype of ``X``.
    Flattened images count every value as a feature.
    """
    if sp.issparse(X):
        X = X.tocsr().astype(np.float64)
        n, d = X.shape
        if X.nnz == 0 or d == 0:
            return 0.0
        big = np.asarray(abs(X).max(axis=1).todense()).ravel()
        inv = np.where(big > 0, 1.0 / np.where(big > 0, big, 1.0), 0.0)
        unit = sp.diags(inv) @ X
        sq = np.asarray(unit.multiply(unit).sum(axis=1)).ravel()
    else:
        X = np.asarray(to_numpy(X), dtype=np.float64)
        X = X.reshape(X.shape[0], -1) if X.ndim else X.reshape(1, 1)
        n, d = X.shape
        if n == 0 or d == 0:
            return 0.0
        with np.errstate(invalid="ignore"):
            big = np.max(np.abs(X), axis=1)
        big = np.where(np.isfinite(big), big, np.inf)
        safe = np.where((big > 0) & np.isfinite(big), big, 1.0)
        sq = np.sum((X / safe[:, None]) ** 2, axis=1)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        log10 = 2.0 * np.log10(big) + np.log10(sq / d)
    log10 = np.where(np.isnan(log10), np.inf, log10)
    return float(10.0 ** np.max(log10)) if log10.size else 0.0


def scale_text(X: Any) -> str:
    """``max ||x||^2/d`` formatted, also past the float64 range (``1e+400``)."""
    if sp.issparse(X):
        X = X.tocsr().astype(np.float64)
        rows = [X.getrow(i).data for i in range(X.shape[0])]
        d = X.shape[1]
    else:
        X = np.asarray(to_numpy(X), dtype=np.float64)
        X = X.reshape(X.shape[0], -1) if X.ndim else X.reshape(1, 1)
        rows, d = list(X), X.shape[1]
    best = -np.inf
    for r in rows:
        r = np.abs(r[np.isfinite(r)]) if np.isfinite(r).all() else np.array([np.inf])
        big = r.max(initial=0.0)
        if big == np.inf:
            return "inf (the input holds inf)"
        if big > 0:
            best = max(
                best, 2 * math.log10(big) + math.log10(np.sum((r / big) ** 2) / d)
            )
    if best == -np.inf:
        return "0"
    if best < 300:
        return _fmt(10.0**best)
    mant = 10.0 ** (best - math.floor(best))
    return f"{mant:.3g}e+{math.floor(best)} (beyond float64)"


def _fmt(value: float) -> str:
    return f"{value:.3g}"


def _diag_state(x: float, ntk: bool) -> Any:
    from .layers.base import KernelState, Layout

    v = np.array([float(x)])
    return KernelState(nngp=v, ntk=0.0 if ntk else None, layout=Layout(True))


def _fc_layers(network: Any) -> list:
    """The layers that change the kernel of a spatially constant input (on a
    state without spatial axes a ``Conv`` acts as a ``Dense`` layer, pooling
    and readouts as the identity): the affine layers and the activations."""
    return [la for la in _layers(network) if hasattr(la, "act") or hasattr(la, "W_std")]


def trace_diagonal(network: Any, scale2: float, ntk: bool) -> tuple[int | None, list]:
    """``K(x, x)`` (and ``Theta(x, x)``) after each layer, for ``||x||^2/d = scale2``.

    Returns the index of the first layer whose output is not finite (``None``
    when all are), and the trace of ``(layer, K, Theta)`` up to there.  An
    arithmetic error raised by a layer counts as a non-finite output (it is
    recorded in place of ``K``); other errors propagate.  Convolutional
    networks are traced on a spatially constant image (``Conv`` acts as
    ``Dense``).
    """
    k = _diag_state(scale2, ntk)
    trace: list = []
    for i, layer in enumerate(_fc_layers(network)):
        try:
            with np.errstate(all="ignore"), trusted_inputs():
                k = layer.kernel(k)
        except ArithmeticError as exc:
            trace.append((layer, exc, None))
            return i, trace
        K = float(np.asarray(k.nngp).reshape(-1)[0])
        T = float(np.asarray(k.ntk).reshape(-1)[0]) if ntk else 0.0
        trace.append((layer, K, T))
        if not (math.isfinite(K) and math.isfinite(T)):
            return i, trace
    return None, trace


def _layer_name(trace: list, index: int) -> str:
    """``hidden layer 2's activation Relu()`` or ``the Dense layer after ...``."""
    from .layers.dense import Elementwise

    layer = trace[index][0]
    hidden = sum(isinstance(t[0], Elementwise) for t in trace[: index + 1])
    if isinstance(layer, Elementwise):
        return f"the activation {layer.act!r} of hidden layer {hidden}"
    where = "the input" if hidden == 0 else f"hidden layer {hidden}"
    return (
        f"the affine layer (W_std={layer.W_std:.6g}, b_std={layer.b_std:.6g}) "
        f"after {where}"
    )


def _explain_trace(network: Any, scale2: float, ntk: bool) -> str:
    if not math.isfinite(scale2):
        return "the squared norms of the inputs themselves overflow float64"
    try:
        bad, trace = trace_diagonal(network, scale2, ntk)
    except Exception as exc:  # a layer refusing the largest input's state
        return f"the layers raise on the largest input ({type(exc).__name__}: {exc})"
    what = "K(x, x) and Theta(x, x)" if ntk else "K(x, x)"
    if bad is None:
        return (
            f"{what} of the largest input stay finite through every layer, so "
            "the overflow is in the cross terms K(x, y) of a dual activation"
        )
    _, K, T = trace[-1]
    if T is None:
        cause = f"{type(K).__name__}: {K}"
    else:
        cause = f"K(x, x) = {_fmt(K)}" + (f", Theta(x, x) = {_fmt(T)}" if ntk else "")
    before = ""
    if bad > 0:
        _, K0, T0 = trace[-2]
        before = f", from K(x, x) = {_fmt(K0)}" + (
            f", Theta(x, x) = {_fmt(T0)}" if ntk else ""
        )
    return (
        f"for the largest input, {what} first {'become' if ntk else 'becomes'} "
        "non-finite at "
        f"{_layer_name(trace, bad)} ({cause}{before})"
    )


# ----------------------------------------------------------------------------
# Guards
# ----------------------------------------------------------------------------


def all_finite(A: Any) -> bool:
    """Whether every value of ``A`` (any namespace, or sparse) is finite."""
    if sp.issparse(A):
        A = A.data
    if isinstance(A, np.ndarray | np.generic | float | int):
        return bool(np.isfinite(A).all())
    from ._backend import any_namespace, get_namespace

    with any_namespace():  # the array's own namespace, whatever the config
        xp, _ = get_namespace(A)
        return bool(xp.all(xp.isfinite(A)))


def check_finite_result(
    R: Any, *, what: str, network: Any, ntk: bool, X: Any, Y: Any = None
) -> Any:
    """Return ``R`` if it is finite, else raise a ``ValueError`` that explains why.

    ``what`` names the result (``"nngp_kernel"``, ``"NTKSketch.transform"``),
    ``X`` and ``Y`` are the inputs it came from (for the scale).
    """
    if all_finite(R):
        return R
    sx = input_scale(X)
    sy = sx if Y is None or Y is X else input_scale(Y)
    scale = f"max ||x||^2/d = {scale_text(X)}"
    if Y is not None and Y is not X:
        scale += f" for X and {scale_text(Y)} for Y"
    raise ValueError(
        f"{what} is not finite (NaN or inf) for {network_summary(network)} at the "
        f"input scale {scale}: "
        f"{_explain_trace(network, max(sx, sy), ntk)}. Float64 cannot hold this "
        "kernel there; rescale the inputs (e.g. StandardScaler) or lower "
        "W_std, b_std or the depth."
    )


def check_reference_scales(network: Any, ntk: bool, who: str) -> None:
    """Refuse parameters whose kernel is not finite at ``||x||^2 / d = 1``.

    The sketches split their feature budgets with ``K(x, x)`` of that
    reference input; when it overflows no feature map can represent the
    kernel of standardized data either.
    """
    try:
        bad, _ = trace_diagonal(network, 1.0, ntk)
    except Exception as exc:  # e.g. a user callable returning NaN
        try:
            new = type(exc)(f"{who} at the reference input scale ||x||^2/d = 1: {exc}")
        except Exception:
            raise exc from None
        raise new from exc
    if bad is None:
        return
    raise ValueError(
        f"{who}: the kernel of {network_summary(network)} is not finite even at "
        f"the reference input scale ||x||^2/d = 1: "
        f"{_explain_trace(network, 1.0, ntk)}. Lower W_std, b_std, the depth or "
        "the activation's growth."
    )


def check_float32_range(X: Any, who: str) -> None:
    """Refuse float32 input whose squared row norms overflow float32.

    The input kernel ``<x, y> / d`` is accumulated in the input's dtype.
    A cheap bound ``d * max|x|^2`` is tried first; the exact row norms (in
    float64) only when the bound is not conclusive.
    """
    dtype = getattr(X, "dtype", None)
    if dtype is None or str(dtype).rsplit(".", 1)[-1] != "float32":
        return
    big32 = float(np.finfo(np.float32).max)
    if sp.issparse(X):
        peak = float(abs(X).max()) if X.nnz else 0.0
    else:
        from ._backend import any_namespace, get_namespace

        with any_namespace():
            xp, _ = get_namespace(X)
            peak = float(xp.max(xp.abs(X))) if math.prod(X.shape) else 0.0
    d = math.prod(X.shape[1:]) or 1
    if peak * peak * d <= big32 / 4:
        return
    scale = input_scale(X)
    if scale * d <= big32 / 4:
        return
    raise ValueError(
        f"{who}: X is float32 and its squared row norms reach "
        f"{_fmt(scale * d)} (input scale max ||x||^2/d = {_fmt(scale)}), beyond "
        f"the float32 range ({_fmt(big32)}), so the kernel overflows float32; "
        "cast X to float64 or rescale it."
    )


#: Range of ``||x||^2 / d`` of the nonzero rows that the feature maps
#: handle: they square norms, which are subnormal or zero below the low end
#: and overflow (with ``W_std**2`` and the kernel's growth) above the high end.
SKETCH_SCALES = (1e-300, 1e300)


def _row_scales(X: Any) -> np.ndarray:
    """``log10(||x_i||^2 / d)`` of every row (``-inf`` for zero rows)."""
    if sp.issparse(X):
        X = X.tocsr().astype(np.float64)
        big = np.asarray(abs(X).max(axis=1).todense()).ravel()
        inv = np.where(big > 0, 1.0 / np.where(big > 0, big, 1.0), 0.0)
        unit = sp.diags(inv) @ X
        sq = np.asarray(unit.multiply(unit).sum(axis=1)).ravel()
    else:
        X = np.asarray(to_numpy(X), dtype=np.float64).reshape(len(X), -1)
        big = np.max(np.abs(X), axis=1, initial=0.0)
        safe = np.where(big > 0, big, 1.0)
        sq = np.sum((X / safe[:, None]) ** 2, axis=1)
    d = max(math.prod(X.shape[1:]), 1)
    with np.errstate(divide="ignore"):
        return 2.0 * np.log10(big) + np.log10(np.maximum(sq, 1e-300) / d)


def check_row_scales(X: Any, who: str) -> None:
    """Refuse nonzero rows whose ``||x||^2 / d`` is outside :data:`SKETCH_SCALES`.

    A cheap bound from the smallest and largest entries is tried first
    (``max|x|^2 / d <= ||x||^2 / d <= max|x|^2``); the row scales are
    computed only when it is not conclusive.
    """
    if sp.issparse(X):
        if X.nnz == 0:
            return
        data = np.abs(X.data)
        data = data[data > 0]
        if not data.size:
            return
        low, high = float(data.min()), float(data.max())
    else:
        from ._backend import any_namespace, get_namespace

        with any_namespace():
            xp, _ = get_namespace(X)
            if not math.prod(X.shape):
                return
            big = xp.max(xp.abs(X), axis=tuple(range(1, X.ndim)))
            high = float(xp.max(big))
            if high == 0:
                return
            low = float(xp.min(xp.where(big > 0, big, xp.ones_like(big) * high)))
    d = max(math.prod(X.shape[1:]), 1)
    lo, hi = (math.log10(v) for v in SKETCH_SCALES)
    if 2 * math.log10(low) - math.log10(d) >= lo and 2 * math.log10(high) <= hi:
        return
    logs = _row_scales(X)
    logs = logs[np.isfinite(logs)]
    worst_low = float(np.min(logs, initial=np.inf))
    worst_high = float(np.max(logs, initial=-np.inf))
    if worst_low < lo:
        raise ValueError(
            f"{who}: rows of X have ||x||^2/d down to 1e{worst_low:.0f}, below "
            f"{SKETCH_SCALES[0]:g}: their squared norms underflow float64 inside the "
            "feature map, which would return wrong features; rescale X (e.g. "
            "StandardScaler)."
        )
    if worst_high > hi:
        raise ValueError(
            f"{who}: rows of X have ||x||^2/d up to 1e{worst_high:.0f}, above "
            f"{SKETCH_SCALES[1]:g}: their squared norms overflow float64 inside the "
            "feature map; rescale X (e.g. StandardScaler)."
        )


def check_n_jobs(n_jobs: Any) -> None:
    """``n_jobs=0`` means nothing (scikit-learn and joblib refuse it too)."""
    if n_jobs is not None and int(n_jobs) == 0:
        raise ValueError(
            "n_jobs == 0 has no meaning: use None or 1 for one thread, a "
            "positive number of threads, or -1 for all cores."
        )


# ----------------------------------------------------------------------------
# Memory
# ----------------------------------------------------------------------------


def available_memory() -> float | None:
    """Bytes of memory this process may use: physical memory, capped by cgroups.

    ``None`` when the platform does not tell (then no memory check is made).
    """
    limit = None
    try:
        limit = float(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (AttributeError, ValueError, OSError):
        pass
    for path in (
        "/sys/fs/cgroup/memory.max",
        "/sys/fs/cgroup/memory/memory.limit_in_bytes",
    ):
        try:
            with open(path) as fh:
                text = fh.read().strip()
        except OSError:
            continue
        if text.isdigit() and int(text) < 2**60:
            limit = float(text) if limit is None else min(limit, float(text))
    return limit


def check_memory(nbytes: float, what: str, advice: str) -> None:
    """Raise ``MemoryError`` up front when ``nbytes`` exceeds the machine's memory."""
    limit = available_memory()
    if limit is None or nbytes <= limit:
        return
    raise MemoryError(
        f"{what} needs at least {nbytes / _GIB:.3g} GiB, more than the "
        f"{limit / _GIB:.3g} GiB of memory available; {advice}"
    )


# ----------------------------------------------------------------------------
# ``out`` arrays
# ----------------------------------------------------------------------------


def check_out(out: Any, shape: tuple[int, int], dtype: Any, X: Any) -> None:
    """Validate an ``out`` array for features of ``shape`` and ``dtype``.

    ``out`` must be a writeable, real floating array of exactly ``shape``,
    whose dtype holds ``dtype`` without loss (float64 features need float64),
    and must not share memory with ``X`` (rows would be overwritten before
    they are read).
    """
    if sp.issparse(out) or not hasattr(out, "shape") or not hasattr(out, "dtype"):
        raise TypeError(
            f"out must be a dense array of shape {shape}, got {type(out).__name__}."
        )
    if tuple(out.shape) != tuple(shape):
        raise ValueError(f"out has shape {tuple(out.shape)}; expected {tuple(shape)}.")
    want = np.dtype(str(dtype).rsplit(".", 1)[-1])
    try:
        have = np.dtype(str(out.dtype).rsplit(".", 1)[-1])
    except TypeError:
        have = None
    if have is None or have.kind != "f" or have.itemsize < want.itemsize:
        raise TypeError(
            f"out has dtype {out.dtype}, which cannot hold the {want} features "
            f"without loss; pass an out of dtype {want}"
            + (" or float64." if want != np.float64 else ".")
        )
    if isinstance(out, np.ndarray):
        if not out.flags.writeable:
            raise ValueError("out is read-only; pass a writeable array.")
        base = X if isinstance(X, np.ndarray) else getattr(X, "data", None)
        if isinstance(base, np.ndarray) and np.may_share_memory(out, base):
            raise ValueError(
                "out shares memory with X: rows of X would be overwritten before "
                "they are transformed; pass a separate array."
            )


# ----------------------------------------------------------------------------
# Activation methods called by users
# ----------------------------------------------------------------------------

# Set by the kernel drivers and the sketch transforms around their inner
# loops: their intermediate states are valid by construction and their
# results pass check_finite_result, so the activations skip the checks of
# user-supplied arguments there (they would cost passes over n x m arrays).
_TRUSTED: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "sklearn_ntk_trusted_inputs", default=False
)


@contextlib.contextmanager
def trusted_inputs() -> Iterator[None]:
    """Scope in which activation methods skip the checks of their arguments."""
    token = _TRUSTED.set(True)
    try:
        yield
    finally:
        _TRUSTED.reset(token)


def inputs_trusted() -> bool:
    """Whether the current call comes from a driver (see :func:`trusted_inputs`)."""
    return _TRUSTED.get()


def _host(a: Any) -> np.ndarray:
    return np.asarray(to_numpy(a), dtype=np.float64)


def check_pointwise_input(act: Any, x: Any) -> None:
    """Refuse complex input to ``act(x)`` (NumPy would drop the imaginary part)."""
    dtype = getattr(x, "dtype", None)
    is_complex = (
        isinstance(x, complex)
        or (dtype is not None and "complex" in str(dtype))
        or (
            isinstance(x, list | tuple)
            and any(
                isinstance(v, complex) for v in np.ravel(np.asarray(x, dtype=object))
            )
        )
    )
    if is_complex:
        raise TypeError(
            f"{act!r}: complex input is not supported; activations act on real numbers."
        )


def check_dual_inputs(act: Any, kxx: Any, kxy: Any, kyy: Any) -> None:
    """Variances finite and >= 0, covariance finite with ``|kxy| <= sqrt(kxx kyy)``.

    A tolerance of 1e-6 in the correlation lets rounding through.
    """
    host = {name: _host(v) for name, v in (("kxx", kxx), ("kxy", kxy), ("kyy", kyy))}
    for name, v in host.items():
        if not np.isfinite(v).all():
            raise ValueError(f"{act!r}.dual: {name} contains NaN or infinity.")
    for name in ("kxx", "kyy"):
        if (host[name] < 0).any():
            raise ValueError(
                f"{act!r}.dual: {name} must be >= 0 (a variance); got "
                f"{host[name].min():.3g}."
            )
    try:
        bound = np.sqrt(host["kxx"]) * np.sqrt(host["kyy"]) * (1 + 1e-6)
        bad = np.abs(host["kxy"]) > bound + np.finfo(np.float64).tiny
    except ValueError as exc:  # shapes that do not broadcast
        raise ValueError(
            f"{act!r}.dual: kxx, kxy, kyy must broadcast together; got shapes "
            f"{np.shape(host['kxx'])}, {np.shape(host['kxy'])}, {np.shape(host['kyy'])}."
        ) from exc
    if bad.any():
        raise ValueError(
            f"{act!r}.dual: |kxy| exceeds sqrt(kxx kyy): (kxx, kxy, kyy) is not a "
            "covariance (|correlation| <= 1)."
        )


def check_dual_outputs(act: Any, kxx: Any, kyy: Any, S: Any, Sd: Any) -> None:
    """Raise ``OverflowError`` naming ``act`` and the scale when the dual is not finite."""
    for name, v in (("Sigma", S), ("Sigma_dot", Sd)):
        if v is None or all_finite(v):
            continue
        top = max(
            float(np.max(_host(kxx), initial=0.0)),
            float(np.max(_host(kyy), initial=0.0)),
        )
        raise OverflowError(
            f"The dual of {act!r} is not finite ({name} has NaN or inf) at variances "
            f"kxx, kyy up to {top:.3g}: it overflows float64 at this scale."
        )
