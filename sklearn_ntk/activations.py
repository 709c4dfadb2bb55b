"""Activation functions, their dual kernels and their Hermite coefficients.

An :class:`Activation` ``σ`` provides everything the kernels and sketches of
``sklearn_ntk`` need (conventions of ``shared/reference/kernels.md``):

* the pointwise function ``σ(x)`` and its a.e. derivative ``σ'(x)``;
* the *dual* :meth:`Activation.dual`: for ``(u, v) ~ N(0, [[kxx, kxy], [kxy, kyy]])``
  ``Σ = E[σ(u) σ(v)]`` and ``Σ̇ = E[σ'(u) σ'(v)]``, in closed form where one is
  known and otherwise by the numerical engine of :mod:`sklearn_ntk._quadrature`
  (accurate to about 1e-10 of ``sqrt(Σ(x, x) Σ(y, y))`` at every variance from
  1e-8 to 1e8 and every correlation, and exactly symmetric in ``x <-> y``);
* the scale-dependent Hermite coefficients :meth:`Activation.hermite`
  ``a_n(r) = E[σ(r z) h_n(z)]`` and ``b_n(r) = E[σ'(r z) h_n(z)]`` with
  ``h_n = He_n / sqrt(n!)``, so that ``Σ = Σ_n a_n(r_x) a_n(r_y) ρ^n``.

Activations are immutable, hashable, picklable frozen dataclasses that compare
equal by value, so they can be used as scikit-learn hyper-parameters.  Use
:func:`get` to build one from a name.

Each class is the whole activation: the :func:`register` decorator on it
gives its names, and its ``_pointwise(xp, x)`` and
``_pointwise_derivative(xp, x)``, written once with Array API operations,
serve NumPy (and the quadrature engines) as well as array-api-strict, PyTorch
and CuPy arrays.  Only user callables (:class:`Numerical`) run on the host.

Conventions
-----------
* Where ``kxx = 0`` (or ``kyy = 0``) the correlation is taken as ``ρ = 0``.
* ``step`` and ``sign`` use the a.e. derivative ``σ' = 0`` (as neural-tangents
  does), so ``Σ̇ = 0`` and ``b_n = 0``; the distributional derivative (a Dirac
  delta) would make ``Σ̇`` infinite on the diagonal.
* ``exp_normalized`` (Shankar et al. 2020) is defined by its dual only:
  ``Σ = sqrt(kxx kyy) exp(γ (ρ + shift))`` and ``Σ̇ = γ exp(γ (ρ + shift))``,
  exactly as neural-tangents' ``ExpNormalized``; the default ``shift = -1``
  gives ``exp(γ (ρ - 1))``.
"""

from __future__ import annotations

import math
import numbers
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from typing import Any, ClassVar, TypeVar

import numpy as np
from scipy import special

from . import _validation
from ._backend import array_api_compat, asxp, get_namespace, to_numpy
from ._hermite import (
    bivariate_gauss_hermite,
    hermite_coefficients_quadrature,
    log_double_factorial,
    monomial_hermite_coefficients,
)
from ._quadrature import numerical_dual, numerical_hermite

__all__ = ["Activation", "Numerical", "available", "get", "register"]

_PI = math.pi
_INV_2PI = 1.0 / (2.0 * math.pi)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_DEFAULT_NODES = 120
# Exponents above this overflow float64 once exponentiated.
_MAX_EXP = 709.0

#: NumPy ufuncs of the Array API functions that :func:`_inplace` runs in place.
_NP_INPLACE = {
    "sqrt": np.sqrt,
    "acos": np.arccos,
    "asin": np.arcsin,
    "exp": np.exp,
    "abs": np.abs,
    "sin": np.sin,
    "cos": np.cos,
    "tanh": np.tanh,
    "cosh": np.cosh,
    "expm1": np.expm1,
}

#: NumPy as an Array API namespace (NumPy 1.x lacks ``acos``, ``astype``...):
#: the pointwise functions run on it for NumPy inputs and for the quadrature.
_NP_XP = array_api_compat.array_namespace(np.empty(0))


# --------------------------------------------------------------------------- #
# Validation helpers
# --------------------------------------------------------------------------- #
#: Largest magnitude whose square is a finite float64.  The duals are
#: quadratic in amplitudes (``a``, polynomial coefficients...) and in the
#: frequencies multiplying ``x`` (``b``): past this, even a unit input has
#: an infinite kernel.
_SQUARE_LIMIT = math.sqrt(np.finfo(np.float64).max)


def _check_float(
    name: str, value: Any, *, positive: bool = False, limit: float | None = None
) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {value!r}.")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value!r}.")
    if positive and value <= 0:
        raise ValueError(f"{name} must be > 0, got {value!r}.")
    if limit is not None and abs(value) > limit:
        raise ValueError(
            f"|{name}| must be at most {limit:.6g}, got {value!r}: larger values "
            "overflow float64 in the dual kernel even at unit input scale."
        )
    return value


#: Limits of the trigonometric activations' parameters (``c`` is a phase).
_TRIG_LIMITS = {"a": _SQUARE_LIMIT, "b": _SQUARE_LIMIT, "c": None}
#: ``a * exp(b x^2)``: the dual holds ``a^2`` and ``4 b^2``.
_GAUSS_LIMITS = {"a": _SQUARE_LIMIT, "b": _SQUARE_LIMIT / 2}

#: Highest degree of the polynomial activations: E[z^(2k)] = (2k-1)!!
#: overflows float64 from k = 151 on at unit variance, so degrees far past
#: that only have a finite kernel in a vanishing band of tiny scales.
_MAX_DEGREE = 1000


def _check_int(
    name: str, value: Any, *, minimum: int = 0, maximum: int | None = None
) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {value!r}.")
    value = int(value)
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}.")
    if maximum is not None and value > maximum:
        raise ValueError(
            f"{name} must be <= {maximum}, got {value}: the moments of a degree "
            f"{value} polynomial overflow float64 at any but tiny input scales."
        )
    return value


def _set(obj: Any, name: str, value: Any) -> None:
    object.__setattr__(obj, name, value)  # frozen dataclass: validate-and-store


def _as_scales(r: Any) -> np.ndarray:
    try:
        r = np.asarray(to_numpy(r), dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"r must be an array of real scales, got {r!r}.") from None
    if r.ndim == 0:
        r = r.reshape(1)
    if r.ndim != 1:
        raise ValueError(f"r must be a 1-D array of scales, got shape {r.shape}.")
    if not np.all(np.isfinite(r)) or np.any(r < 0):
        raise ValueError("r must contain finite, nonnegative scales.")
    return r


# --------------------------------------------------------------------------- #
# Array helpers for the closed-form duals (Array API only)
# --------------------------------------------------------------------------- #
def _inplace(xp: Any, fn: str, x: Any) -> Any:
    """``xp.<fn>(x)``, in place for NumPy (``x`` must be a temporary we own)."""
    if isinstance(x, np.ndarray):
        return _NP_INPLACE[fn](x, out=x)
    return getattr(xp, fn)(x)


def _scaled_trig(xp: Any, fn: str, x: Any, b: float, c: float, scale: float) -> Any:
    """``scale * fn(b * x + c)`` for ``fn`` in sin, cos, on one temporary."""
    t = x * b
    t += c
    t = _inplace(xp, fn, t)
    t *= scale
    return t


def _clip_unit(xp: Any, x: Any) -> Any:
    """Clip a temporary to ``[-1, 1]`` (rounding can push correlations out)."""
    if isinstance(x, np.ndarray):
        return np.clip(x, -1.0, 1.0, out=x)
    return xp.clip(x, -1.0, 1.0)


def _clip_gap(xp: Any, x: Any) -> Any:
    """Clip a temporary gap ``1 - |rho|`` to ``[0, 1]``."""
    if isinstance(x, np.ndarray):
        return np.clip(x, 0.0, 1.0, out=x)
    return xp.clip(x, 0.0, 1.0)


def _prepare(kxx: Any, kxy: Any, kyy: Any) -> tuple[Any, Any, Any, Any]:
    ks = [
        np.asarray(k, dtype=np.float64) if isinstance(k, numbers.Real) else k
        for k in (kxx, kxy, kyy)
    ]
    xp, _ = get_namespace(*ks)
    return xp, ks[0], ks[1], ks[2]


def _shape(*arrays: Any) -> tuple[int, ...]:
    return tuple(np.broadcast_shapes(*(tuple(a.shape) for a in arrays)))


def _norms(xp: Any, kxx: Any, kyy: Any) -> tuple[Any, Any, Any, Any]:
    """Square roots of the variances and their safe reciprocals (0 where 0).

    These are on the (small) diagonal arrays, so their cost does not matter;
    ``sx * sy`` never under- or overflows where ``kxx`` and ``kyy`` do not
    (it lies between them), unlike ``kxx * kyy``.
    """
    sx = xp.sqrt(xp.clip(kxx, 0.0, None))
    sy = xp.sqrt(xp.clip(kyy, 0.0, None))
    isx = xp.where(sx > 0, 1.0 / xp.where(sx > 0, sx, 1.0), 0.0)
    isy = xp.where(sy > 0, 1.0 / xp.where(sy > 0, sy, 1.0), 0.0)
    return sx, sy, isx, isy


def _split_exponent(xp: Any, k: Any) -> tuple[Any, Any]:
    """``k = m * 4**a`` exactly, with ``m`` in ``[1/2, 2)``; returns ``(m, 2**-a)``.

    Where ``k = 0``: ``m = 1`` and ``2**-a = 0``, so that products with it
    vanish without a mask.  The exponents are read on the host: ``k`` is a
    small array of variances, and the Array API has no ``frexp``.  Scaling by
    a power of two is exact (short of subnormal results), so the split loses
    nothing.
    """
    host = np.asarray(to_numpy(k))
    dtype = host.dtype if host.dtype in (np.float32, np.float64) else np.float64
    host = np.maximum(host.astype(dtype, copy=False), 0)
    frac, e = np.frexp(host)  # host = frac * 2**e, frac in [1/2, 1)
    a = e // 2
    zero = host == 0
    m = np.where(zero, 1, np.ldexp(frac, e - 2 * a)).astype(dtype)
    inv = np.where(zero, 0, np.ldexp(np.ones_like(frac), -a)).astype(dtype)
    device = getattr(k, "device", None)
    return asxp(m, xp, device=device), asxp(inv, xp, device=device)


def _correlation(xp: Any, kxx: Any, kxy: Any, kyy: Any) -> Any:
    """``rho = kxy / sqrt(kxx kyy)`` (0 where a variance is 0), scale-safe.

    With ``kxx = mx 4**ax`` and ``kyy = my 4**ay`` (:func:`_split_exponent`)
    it is ``(kxy 2**-ax 2**-ay) / sqrt(mx my)``: nothing under- or overflows
    for variances anywhere in the floating-point range (``kxx kyy`` itself
    would, beyond 1e+-154).  The split is exact, and ``sqrt(m * m) == m`` in
    IEEE arithmetic, so an input paired with itself (``kxy`` bitwise equal to
    ``kxx = kyy``) gets ``rho == 1`` bitwise: the duals of relu, abs, sign...
    are not Lipschitz at ``rho = 1``, and ``rho = 1 - 1e-16`` would cost 1e-8.
    """
    mx, px = _split_exponent(xp, kxx)
    my, py = _split_exponent(xp, kyy)
    den = mx * my
    den = _inplace(xp, "sqrt", den)
    rho = kxy * px
    rho *= py
    rho /= den
    return _clip_unit(xp, rho)


def _gap_of(xp: Any, rho: Any) -> Any:
    """The gap ``1 - |rho|`` from a correlation (a temporary, consumed)."""
    g = _inplace(xp, "abs", rho)
    if isinstance(g, np.ndarray):
        return np.subtract(1.0, g, out=g)
    return 1.0 - g


def _angle(xp: Any, gap: Any) -> tuple[Any, Any, Any]:
    """``(phi, sin(phi), cos(phi))`` with ``cos(phi) = |rho| = 1 - gap``.

    ``phi`` in ``[0, pi/2]`` is the angle between the inputs, or its
    supplement where ``rho < 0``.  ``sin(phi) = sqrt(gap (2 - gap))`` and
    ``phi = atan2(sin, cos)`` keep their relative accuracy for nearly
    (anti)parallel inputs, where ``acos(rho)`` would lose half the digits,
    and ``phi = pi/2`` is exact at ``rho = 0``.  New arrays.
    """
    c = _rsub(xp, 1.0, gap)
    s = _sine(xp, gap)
    return xp.atan2(s, c), s, c


def _sine(xp: Any, gap: Any) -> Any:
    """``sqrt(1 - rho^2) = sqrt(gap (2 - gap))``, accurate where ``|rho| ~ 1``."""
    s = _rsub(xp, 2.0, gap)
    s *= gap
    return _inplace(xp, "sqrt", s)


def _rsub(xp: Any, c: float, x: Any) -> Any:
    """``c - x`` as a new array."""
    if isinstance(x, np.ndarray):
        return np.subtract(c, x)
    return c - x


def _copysign(xp: Any, x: Any, sign: Any) -> Any:
    """``copysign(x, sign)``, in place for NumPy (``x`` a temporary we own)."""
    if isinstance(x, np.ndarray):
        return np.copysign(x, sign, out=x)
    return xp.copysign(x, sign)


def _negative(xp: Any, kxy: Any) -> bool:
    """Whether some covariances are negative (``rho < 0`` branches needed)."""
    return bool(xp.any(kxy < 0))


def _plus_minus(xp: Any, kxy: Any, gap: Any) -> tuple[Any, Any]:
    """``(1 - rho, 1 + rho)``, each accurate where it is small.

    ``1 - rho = gap`` where ``rho >= 0`` and ``2 - gap`` elsewhere (and the
    converse for ``1 + rho``).  Not on the hot path (relu has its own).
    """
    other = gap * -1.0
    other += 2.0
    if not _negative(xp, kxy):
        return gap, other
    neg = kxy < 0
    return xp.where(neg, other, gap), xp.where(neg, gap, other)


def _special(xp: Any, name: str, x: Any) -> Any:
    """``scipy.special.<name>(x)`` (erf, ndtr, expit) in the namespace of ``x``.

    The Array API has no ``erf``: use the array library's own (PyTorch's
    ``torch.special``, CuPy's ``cupyx.scipy.special``), else SciPy's, which
    dispatches on Array API inputs when ``SCIPY_ARRAY_API=1``, else (last
    resort) compute on the host and move back.
    """
    if isinstance(x, np.ndarray | np.generic):
        return getattr(special, name)(x)
    module = type(x).__module__
    if module.startswith("torch"):
        import torch

        return getattr(torch.special, name)(x)
    if module.startswith("cupy"):
        import cupyx.scipy.special

        return getattr(cupyx.scipy.special, name)(x)
    try:
        out = getattr(special, name)(x)
        if type(out) is type(x):
            return out
    except Exception:  # SciPy without Array API support for this namespace
        pass
    host = getattr(special, name)(np.asarray(to_numpy(x), dtype=np.float64))
    return asxp(host, xp, device=getattr(x, "device", None), dtype=x.dtype)


def _const(xp: Any, value: float, like: Any) -> Any:
    """``value`` as a 0-d array of ``like``'s dtype and device.

    Array API functions take Python scalars only from the 2024.12 standard
    on (the array-api-compat vendored by scikit-learn does not); a 0-d array
    broadcasts at no cost.
    """
    return xp.asarray(value, dtype=like.dtype, device=getattr(like, "device", None))


def _clip(xp: Any, x: Any, lo: float, hi: float) -> Any:
    """``clip(x, lo, hi)`` as a new array: one pass for NumPy, and no
    ``xp.clip``, which the array-api-compat vendored by scikit-learn gets
    wrong on array-api-strict."""
    if isinstance(x, np.ndarray):
        return np.clip(x, lo, hi)
    return xp.minimum(xp.maximum(x, _const(xp, lo, x)), _const(xp, hi, x))


def _broadcast_full(xp: Any, value: Any, shape: tuple[int, ...], like: Any) -> Any:
    out = xp.zeros(shape, dtype=like.dtype)
    out += value
    return out


def _dtype_of(xp: Any, *arrays: Any) -> Any:
    return xp.result_type(*arrays)


# --------------------------------------------------------------------------- #
# Base class
# --------------------------------------------------------------------------- #
class Activation(ABC):
    """Abstract activation with dual kernel and Hermite coefficients.

    Subclasses are frozen dataclasses.  See the module docstring for the
    conventions.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_ntk.activations import get
    >>> relu = get("relu")
    >>> relu
    Relu()
    >>> S, Sd = relu.dual(np.array([1.0]), np.array([0.0]), np.array([1.0]))
    >>> print(np.round(S, 6), Sd)
    [0.159155] [0.25]
    >>> a, b = relu.hermite([1.0], degree=2)
    >>> print(np.round(a, 6))
    [[0.398942 0.5      0.282095]]
    """

    name: ClassVar[str]

    # ---- properties -------------------------------------------------------
    @property
    def homogeneous_degree(self) -> int | None:
        """``k`` such that ``σ(r z) = r^k σ(z)`` for ``r > 0``, else ``None``."""
        return None

    # ---- pointwise --------------------------------------------------------
    #: Whether :meth:`_pointwise` and :meth:`_pointwise_derivative` use Array
    #: API operations only.  If not (user callables), arrays of other
    #: namespaces are moved to the host and back, in :meth:`_elementwise`.
    _array_api: ClassVar[bool] = True

    def _pointwise(self, xp: Any, x: Any) -> Any:
        """``σ(x)`` elementwise with the functions of namespace ``xp``.

        ``x`` is a floating-point array of ``xp``; it must not be modified
        (temporaries may be, which saves NumPy passes over memory).  Functions
        the Array API lacks (``erf``, ``ndtr``, ``expit``) go through
        :func:`_special`.
        """
        raise TypeError(
            f"{type(self).__name__} has no pointwise function: it is defined by "
            "its dual kernel only."
        )

    def _pointwise_derivative(self, xp: Any, x: Any) -> Any:
        """``σ'(x)`` elementwise with the functions of namespace ``xp``."""
        raise TypeError(
            f"{type(self).__name__} has no pointwise derivative: it is defined by "
            "its dual kernel only."
        )

    # NumPy float64 forms, for the quadrature engines and Hermite rules.
    def _fn(self, x: np.ndarray) -> np.ndarray:
        return self._pointwise(_NP_XP, x)

    def _deriv(self, x: np.ndarray) -> np.ndarray:
        return self._pointwise_derivative(_NP_XP, x)

    def _elementwise(self, x: Any, derivative: bool) -> Any:
        method = self._pointwise_derivative if derivative else self._pointwise
        checked = not _validation.inputs_trusted()
        if checked:
            _validation.check_pointwise_input(self, x)
        if isinstance(x, np.ndarray) or isinstance(x, numbers.Real | list | tuple):
            x = np.asarray(x, dtype=np.float64)
            with np.errstate(over="ignore", under="ignore"):
                out = method(_NP_XP, x)
            if checked and np.isnan(x).any():  # NaN in, NaN out (as NumPy)
                out = np.where(np.isnan(x), np.nan, out)
            return out
        # x's own namespace, whether or not scikit-learn's dispatch is on.
        xp, device = array_api_compat.array_namespace(x), getattr(x, "device", None)
        if self._array_api:  # in x's namespace, dtype and device
            return method(xp, x)
        with np.errstate(over="ignore", under="ignore"):
            out = method(_NP_XP, np.asarray(to_numpy(x), dtype=np.float64))
        return asxp(out, xp, device=device, dtype=x.dtype)

    def __call__(self, x: Any) -> Any:
        """Evaluate ``σ(x)`` elementwise, in the namespace of ``x``."""
        return self._elementwise(x, derivative=False)

    def derivative(self, x: Any) -> Any:
        """Evaluate the a.e. derivative ``σ'(x)`` elementwise, in the namespace of ``x``."""
        return self._elementwise(x, derivative=True)

    # ---- Hermite coefficients ----------------------------------------------
    def hermite(self, r: Any, degree: int) -> tuple[np.ndarray, np.ndarray]:
        """Scale-dependent normalized Hermite coefficients.

        Parameters
        ----------
        r : array-like of shape (n_scales,)
            Nonnegative scales (typically ``sqrt(K(x, x))``).
        degree : int
            Highest Hermite degree ``q``.

        Returns
        -------
        a : ndarray of shape (n_scales, degree + 1)
            ``a[i, n] = E_{z~N(0,1)}[σ(r_i z) h_n(z)]``.
        b : ndarray of shape (n_scales, degree + 1)
            ``b[i, n] = E[σ'(r_i z) h_n(z)]``.

        Raises
        ------
        OverflowError
            If a coefficient exceeds the float64 range (``exp`` or a high
            degree polynomial at a huge scale).

        Examples
        --------
        >>> from sklearn_ntk.activations import get
        >>> a, b = get("erf").hermite([0.5, 2.0], degree=3)
        >>> a.shape, b.shape
        ((2, 4), (2, 4))
        """
        r = _as_scales(r)
        degree = _check_int("degree", degree)
        a, b = self._hermite(r, degree)
        if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
            bad = ~(np.isfinite(a).all(axis=1) & np.isfinite(b).all(axis=1))
            inf = bool(np.isinf(a).any() or np.isinf(b).any())
            raise OverflowError(
                f"Hermite coefficients of {self!r} are "
                f"{'infinite' if inf else 'NaN (inf - inf)'}: they overflow float64 "
                f"at the scale r={r[bad].min():g} (scales given up to "
                f"r={r.max():g}, degree {degree})."
            )
        return a, b

    _kinks: ClassVar[tuple[float, ...]] = ()

    def _hermite(self, r: np.ndarray, degree: int) -> tuple[np.ndarray, np.ndarray]:
        # Generic path: composite Gauss-Legendre with breakpoints at 0, the
        # kinks and +-c/r (see _hermite.py), robust to kinks and saturation.
        a = hermite_coefficients_quadrature(self._fn, r, degree, kinks=self._kinks)
        b = hermite_coefficients_quadrature(self._deriv, r, degree, kinks=self._kinks)
        return a, b

    def _b_from_a(self, r: np.ndarray, a_ext: np.ndarray) -> np.ndarray:
        """``b_n = sqrt(n+1) a_{n+1} / r`` (Gaussian integration by parts).

        At ``r = 0``: ``b_n(0) = σ'(0) δ_{n0}``.
        """
        degree = a_ext.shape[1] - 2
        n = np.arange(degree + 1)
        pos = r > 0
        b = np.zeros((r.size, degree + 1))
        b[pos] = a_ext[pos, 1:] * np.sqrt(n + 1.0) / r[pos, None]
        b[~pos, 0] = float(self._deriv(np.zeros(1))[0])
        return b

    # ---- dual kernel --------------------------------------------------------
    def dual(
        self, kxx: Any, kxy: Any, kyy: Any, *, derivative: bool = True
    ) -> tuple[Any, Any | None]:
        """Dual kernel ``Σ = E[σ(u)σ(v)]`` and ``Σ̇ = E[σ'(u)σ'(v)]``.

        Parameters
        ----------
        kxx, kxy, kyy : arrays broadcasting together
            Variances and covariance of ``(u, v)`` (e.g. shapes ``(n, 1)``,
            ``(n, m)``, ``(1, m)``).  Any Array-API namespace for closed forms.
        derivative : bool, default=True
            Whether to compute ``Σ̇``.

        Returns
        -------
        Sigma : array of the broadcast shape
        Sigma_dot : array of the broadcast shape, or None if not ``derivative``

        Raises
        ------
        ValueError
            If an argument holds NaN or inf, a variance is negative, or
            ``|kxy| > sqrt(kxx kyy)`` (beyond rounding).
        OverflowError
            If the dual is not finite in float64 at these variances.

        Examples
        --------
        >>> import numpy as np
        >>> from sklearn_ntk.activations import get
        >>> S, Sd = get("erf").dual(np.ones((2, 1)), np.eye(2), np.ones((1, 2)))
        >>> S.shape
        (2, 2)
        """
        xp, kxx, kxy, kyy = _prepare(kxx, kxy, kyy)
        if _validation.inputs_trusted():  # a driver, which guards its result
            return self._dual(xp, kxx, kxy, kyy, derivative)
        _validation.check_dual_inputs(self, kxx, kxy, kyy)
        S, Sd = self._dual(xp, kxx, kxy, kyy, derivative)
        _validation.check_dual_outputs(self, kxx, kyy, S, Sd)
        return S, Sd

    def _dual(
        self, xp: Any, kxx: Any, kxy: Any, kyy: Any, derivative: bool
    ) -> tuple[Any, Any]:
        return self.dual_quadrature(kxx, kxy, kyy, derivative=derivative)

    def _needs_gap(self, ntk: bool, scale: float | None = None) -> bool:
        """Whether the exact rules should carry the gap ``1 - |rho|``.

        True where ``Sigma`` (or, for the NTK, ``Sigma_dot``) is not
        Lipschitz at ``rho = +-1`` (``asin``/``acos`` of the correlation) at
        variances up to ``scale`` (``None``: any): the layers then carry the
        gap, accurate for nearly (anti)parallel inputs, to :meth:`_dual_gap`
        (see :class:`sklearn_ntk.layers.base.KernelState`).
        """
        return False

    def _dual_gap(
        self,
        xp: Any,
        kxx: Any,
        kxy: Any,
        kyy: Any,
        gap: Any,
        derivative: bool,
        gap_out: bool,
    ) -> tuple[Any, Any, Any]:
        """Dual given the gap ``1 - |rho|``; also the gap of the output.

        ``gap`` is accurate where ``rho`` is close to ``+-1`` (where
        ``kxy / sqrt(kxx kyy)`` is not).  Returns ``(Sigma, Sigma_dot,
        gap_out)``; the output's gap is ``None`` when not asked for or when
        this dual has no accurate formula for it (the caller then derives it
        from ``Sigma`` and the output variances).  By default the gap is not
        used.
        """
        S, Sd = self._dual(xp, kxx, kxy, kyy, derivative)
        return S, Sd, None

    def dual_quadrature(
        self,
        kxx: Any,
        kxy: Any,
        kyy: Any,
        *,
        derivative: bool = True,
        n_nodes: int | None = None,
    ) -> tuple[Any, Any | None]:
        """Dual kernel by bivariate Gauss-Hermite quadrature.

        Uses ``u = sqrt(kxx) z1``, ``v = sqrt(kyy) (ρ z1 + sqrt(1 - ρ²) z2)``
        with an ``n_nodes``-point rule in each of ``z1, z2``.  Exact for
        polynomials of degree ``< 2 n_nodes`` in each variable; slow (algebraic)
        convergence for kinked activations.

        Parameters
        ----------
        kxx, kxy, kyy : arrays broadcasting together
        derivative : bool, default=True
        n_nodes : int, optional
            Nodes per dimension; defaults to the activation's ``n_nodes``
            (numerical activations) or 120.

        Returns
        -------
        Sigma, Sigma_dot : arrays of the broadcast shape (``Sigma_dot`` None
            if not ``derivative``).

        Examples
        --------
        >>> from sklearn_ntk.activations import get
        >>> S, _ = get("tanh").dual_quadrature(1.0, 0.5, 1.0, n_nodes=40)
        >>> round(float(S), 6)
        0.186324
        """
        if n_nodes is None:
            n_nodes = getattr(self, "n_nodes", _DEFAULT_NODES)
        n_nodes = _check_int("n_nodes", n_nodes, minimum=1)
        xp, kxx, kxy, kyy = _prepare(kxx, kxy, kyy)
        device = getattr(kxy, "device", None)
        shape = _shape(kxx, kxy, kyy)
        a, c, d = (
            np.broadcast_to(np.asarray(to_numpy(k), dtype=np.float64), shape).ravel()
            for k in (kxx, kxy, kyy)
        )
        S, Sd = bivariate_gauss_hermite(
            self._fn, self._deriv if derivative else None, a, c, d, n_nodes
        )
        S = asxp(S.reshape(shape), xp, device=device)
        if derivative:
            Sd = asxp(Sd.reshape(shape), xp, device=device)
        return S, Sd


# --------------------------------------------------------------------------- #
# Registry: filled by the @register decorator where each class is defined
# --------------------------------------------------------------------------- #
#: Canonical name -> class, in the order of registration (of definition).
_REGISTRY: dict[str, type[Activation]] = {}
#: Alias -> canonical name.
_ALIASES: dict[str, str] = {}

_ActivationType = TypeVar("_ActivationType", bound=type[Activation])


def _key(name: str) -> str:
    """The registry key of a name: case-insensitive, ``-`` read as ``_``."""
    return name.strip().lower().replace("-", "_")


def register(
    name: str, *, aliases: Sequence[str] = ()
) -> Callable[[_ActivationType], _ActivationType]:
    """Class decorator making an :class:`Activation` subclass available by name.

    The class gets ``name`` as its ``name`` attribute; :func:`get` then builds
    it from ``name`` or any of ``aliases`` (case-insensitive, ``-`` as ``_``)
    and :func:`available` lists it.  A new activation is one decorated
    subclass defining ``_pointwise(xp, x)`` and ``_pointwise_derivative(xp,
    x)`` with Array API operations (and a closed-form ``_dual`` if it has one;
    otherwise derive from the numerically integrated base ``_Quadrature``).

    Parameters
    ----------
    name : str
        Canonical name: lower case, digits and underscores.
    aliases : sequence of str, default=()
        Other names of the same activation.

    Returns
    -------
    decorator : callable
        Registers the class and returns it unchanged otherwise.

    Raises
    ------
    TypeError
        If the decorated object is not an :class:`Activation` subclass.
    ValueError
        If a name is not canonical or is already taken.

    Examples
    --------
    >>> from dataclasses import dataclass
    >>> from sklearn_ntk import activations
    >>> @activations.register("softsign_example")
    ... @dataclass(frozen=True)
    ... class Softsign(activations._Quadrature):
    ...     n_nodes: int = 120
    ...     _saturating = False  # |x| / (1 + |x|) nears 1 slowly
    ...     def _pointwise(self, xp, x):
    ...         return x / (1.0 + xp.abs(x))
    ...     def _pointwise_derivative(self, xp, x):
    ...         d = 1.0 + xp.abs(x)
    ...         return 1.0 / (d * d)
    >>> act = activations.get("Softsign-Example")
    >>> float(act(2.0)), float(act.derivative(2.0))
    (0.6666666666666666, 0.1111111111111111)
    >>> S, Sd = act.dual(1.0, 0.5, 1.0)
    >>> round(float(S), 6)  # E[σ(u) σ(v)], unit variances, correlation 1/2
    0.086354
    >>> activations._unregister("softsign_example")
    """
    keys = [name, *aliases]
    for key in keys:
        if not isinstance(key, str) or not key or key != _key(key):
            raise ValueError(
                f"Activation names must be non-empty lower-case strings with "
                f"underscores, got {key!r}."
            )
    taken = [key for key in keys if key in _REGISTRY or key in _ALIASES]
    if taken or len(set(keys)) < len(keys):
        raise ValueError(f"Activation name(s) {taken or keys} already registered.")

    def decorate(cls: _ActivationType) -> _ActivationType:
        if not (isinstance(cls, type) and issubclass(cls, Activation)):
            raise TypeError(f"@register needs an Activation subclass, got {cls!r}.")
        cls.name = name
        _REGISTRY[name] = cls
        _ALIASES.update(dict.fromkeys(aliases, name))
        return cls

    return decorate


def _unregister(name: str) -> None:
    """Remove an activation and its aliases from the registry (for tests)."""
    del _REGISTRY[name]
    for alias in [a for a, target in _ALIASES.items() if target == name]:
        del _ALIASES[alias]


def _dataclass(cls: type) -> type:
    return dataclass(frozen=True)(cls)


class _GapDual(Activation):
    """Closed-form dual written in terms of the gap ``1 - |rho|``.

    :meth:`_dual` derives the gap from the (scale-safe) correlation, which
    is exact for an input paired with itself; the exact rules of the layers
    call :meth:`_dual_gap` with the accurate gap they carry.
    """

    def _needs_gap(self, ntk: bool, scale: float | None = None) -> bool:
        return True

    def _dual(self, xp, kxx, kxy, kyy, derivative):
        gap = _gap_of(xp, _correlation(xp, kxx, kxy, kyy))
        S, Sd, _ = self._dual_gap(xp, kxx, kxy, kyy, gap, derivative, False)
        return S, Sd

    @abstractmethod
    def _dual_gap(self, xp, kxx, kxy, kyy, gap, derivative, gap_out): ...


# --------------------------------------------------------------------------- #
# Positively homogeneous activations (closed-form Hermite coefficients)
# --------------------------------------------------------------------------- #
def _he_at_zero_normalized(m: int, n: int) -> float:
    """``He_m(0) / sqrt(n!)`` (``He_m(0) = (-1)^{m/2} (m-1)!!`` for even m)."""
    if m % 2:
        return 0.0
    sign = -1.0 if (m // 2) % 2 else 1.0
    return sign * math.exp(log_double_factorial(m - 1) - 0.5 * math.lgamma(n + 1))


def _half_moment(j: int) -> float:
    """``E[z^j 1[z>0]]`` for ``z ~ N(0,1)``."""
    return 2.0 ** (j / 2.0 - 1.0) * math.gamma((j + 1) / 2.0) / math.sqrt(_PI)


def _rectified_monomial_unit(k: int, degree: int) -> np.ndarray:
    """``a_n(1) = E[z_+^k h_n(z)]`` for ``n = 0..degree``.

    Stein's identity ``E[f He_n] = E[f' He_{n-1}]`` applied n times:
    ``n <= k``: ``k!/(k-n)! E[z_+^{k-n}]``; ``n > k``: the k-th derivative is
    ``k! 1[z>0]`` and ``E[1[z>0] He_m] = He_{m-1}(0) φ(0)`` for ``m >= 1``.
    """
    out = np.empty(degree + 1)
    for n in range(degree + 1):
        if n <= k:
            out[n] = math.exp(
                math.lgamma(k + 1) - math.lgamma(k - n + 1) - 0.5 * math.lgamma(n + 1)
            ) * _half_moment(k - n)
        else:
            out[n] = (
                math.factorial(k) * _INV_SQRT_2PI * _he_at_zero_normalized(n - k - 1, n)
            )
    return out


class _Homogeneous(Activation):
    """``σ(r z) = r^k σ(z)``: ``a_n(r) = r^k a_n(1)``, ``b_n(r) = r^(k-1) b_n(1)``."""

    _zero_derivative: ClassVar[bool] = False

    @abstractmethod
    def _unit(self, degree: int) -> np.ndarray:
        """``a_n(1)`` for ``n = 0..degree``."""

    def _hermite(self, r: np.ndarray, degree: int) -> tuple[np.ndarray, np.ndarray]:
        k = self.homogeneous_degree
        a1 = self._unit(degree + 1)
        a = np.power(r, k)[:, None] * a1[None, : degree + 1]
        if k == 0:  # a_n(0) = σ(0) δ_n0, not the r -> 0+ limit
            zero = r == 0
            a[zero] = 0.0
            a[zero, 0] = float(self._fn(np.zeros(1))[0])
        if self._zero_derivative:
            return a, np.zeros_like(a)
        b1 = np.sqrt(np.arange(1.0, degree + 2.0)) * a1[1:]
        # k = 1: r^0 = 1 also at r = 0 (the r -> 0+ limit, matching ρ := 0 in dual)
        scale = np.power(r, k - 1) if k >= 1 else np.zeros_like(r)
        return a, scale[:, None] * b1[None, :]


def _relu_parts(
    xp: Any, kxx: Any, kxy: Any, kyy: Any, gap: Any, gap_out: bool
) -> tuple[Any, Any, Any]:
    """ReLU's ``Sigma``, ``Sigma_dot`` and output gap (arc-cosine kernel).

    With ``rho = cos(theta)`` and ``phi = min(theta, pi - theta)`` from the
    gap (:func:`_angle`)::

        Sigma_dot = (pi - theta) / (2 pi)
        Sigma     = kxy Sigma_dot + sqrt(kxx kyy) sin(theta) / (2 pi)
        h         = (phi cos(phi) - sin(phi)) / pi      (<= 0, ~ -phi^3 / (3 pi))

    The output's correlation is ``rho' = 2 Sigma / sqrt(kxx kyy) >= 0``, and
    its gap ``1 - rho'`` is ``gap + h`` where ``rho >= 0`` and ``1 + h``
    where ``rho < 0``: no cancellation, so nearly parallel inputs keep an
    accurate angle through the layers.  Returns ``(Sigma, Sigma_dot, h,
    neg)`` (``h`` is ``None`` unless ``gap_out``; ``neg``: whether some
    ``rho < 0``), see :func:`_relu_gap`.  Written for speed (the relu
    NTK is the benchmark): in place where NumPy allows, no masks
    (``copysign`` carries the sign of ``rho`` where some are negative).
    """
    sx, sy, _, _ = _norms(xp, kxx, kyy)
    neg = _negative(xp, kxy)
    w, s, h = _angle(xp, gap)
    w *= _INV_2PI  # phi / (2 pi)
    s *= 1.0 / _PI  # sin(phi) / pi
    # Sigma_dot: 1/2 - phi/(2 pi) where rho >= 0, phi/(2 pi) where rho < 0.
    if neg:  # 1/4 +- (1/4 - phi/(2 pi)); at rho = 0 (phi = pi/2) both agree
        t = _rsub(xp, 0.25, w)
        t = _copysign(xp, t, kxy)
        t += 0.25
    else:
        t = _rsub(xp, 0.5, w)
    if gap_out:  # h = (phi cos(phi) - sin(phi)) / pi, in place of cos(phi)
        h *= w
        h *= 2.0
        h -= s
    else:
        h = None
    s *= sx * 0.5
    s *= sy
    S = kxy * t
    S += s
    return S, t, h, neg


def _relu_gap(xp: Any, kxy: Any, gap: Any, h: Any, neg: bool) -> Any:
    """ReLU's output gap from ``h`` (consumed): ``gap + h`` or ``1 + h``."""
    if neg:  # + max(gap, -sign(kxy)): gap where rho >= 0, 1 where rho < 0
        h += xp.maximum(xp.copysign(xp.ones_like(gap), -kxy), gap)
    else:
        h += gap
    return _clip_gap(xp, h)


def _rdiv(xp: Any, c: float, x: Any) -> Any:
    """``c / x``, in place for NumPy (``x`` a temporary we own)."""
    if isinstance(x, np.ndarray):
        return np.divide(c, x, out=x)
    return c / x


def _relu_rho(xp: Any, kxx: Any, kxy: Any, kyy: Any) -> tuple[Any, Any]:
    """ReLU's ``Sigma`` and ``Sigma_dot`` from the (scale-safe) correlation.

    The form without a gap, for the NNGP (C^1 in rho) and where no gap is
    tracked: ``acos(rho)`` and ``sqrt((1 - rho)(1 + rho))`` of one rounded
    ``rho`` (``1 - rho`` exact near 1, so the two stay consistent and their
    first-order errors cancel in ``Sigma``); exact at ``rho = 1``.
    """
    sx, sy, _, _ = _norms(xp, kxx, kyy)
    rho = _correlation(xp, kxx, kxy, kyy)
    s = _rsub(xp, 1.0, rho)
    s *= rho + 1.0
    s = _inplace(xp, "sqrt", s)  # sin(theta)
    t = _inplace(xp, "acos", rho)
    t *= -_INV_2PI
    t += 0.5  # (pi - theta) / (2 pi)
    s *= sx * _INV_2PI
    s *= sy
    S = kxy * t
    S += s
    return S, t


@register("relu")
@_dataclass
class Relu(_GapDual, _Homogeneous):
    """ReLU ``max(x, 0)``; dual: arc-cosine kernel of degree 1 (Cho & Saul)."""

    @property
    def homogeneous_degree(self) -> int:
        return 1

    def _needs_gap(self, ntk: bool, scale: float | None = None) -> bool:
        return ntk  # Sigma is C^1 in rho; Sigma_dot = (pi - theta)/(2 pi) is not

    def _pointwise(self, xp, x):
        return xp.maximum(x, _const(xp, 0.0, x))

    def _pointwise_derivative(self, xp, x):
        return xp.astype(x > 0, x.dtype)

    def _unit(self, degree):
        return _rectified_monomial_unit(1, degree)

    def _dual(self, xp, kxx, kxy, kyy, derivative):
        S, t = _relu_rho(xp, kxx, kxy, kyy)
        return S, (t if derivative else None)

    def _dual_gap(self, xp, kxx, kxy, kyy, gap, derivative, gap_out):
        S, t, h, neg = _relu_parts(xp, kxx, kxy, kyy, gap, gap_out)
        g = _relu_gap(xp, kxy, gap, h, neg) if gap_out else None
        return S, (t if derivative else None), g


def _leaky_gap_out(xp: Any, alpha: float, kxy: Any, gap: Any, h: Any) -> Any:
    """Gap of ``alpha x + (1 - alpha) relu(x)`` from ReLU's ``h``.

    With ``c2 = (1-alpha)^2 / (1+alpha^2)`` and ``beta = 1 - c2``, the
    output correlation satisfies ``1 - rho' = gap + c2 h`` where ``rho >= 0``,
    and ``1 - rho' = 1 + beta cos(phi) + c2 h``, ``1 + rho' = 1 - beta
    cos(phi) - c2 h`` where ``rho < 0`` (``cos(phi) = 1 - gap``): each
    written as a sum whose terms do not cancel where it is small.
    """
    c2 = (1.0 - alpha) ** 2 / (1.0 + alpha * alpha)
    beta = 1.0 - c2
    h *= c2
    out = gap + h
    if _negative(xp, kxy):
        minus = h + (1.0 + beta)
        minus -= beta * gap
        plus = (1.0 - beta) - h
        plus += beta * gap
        out = xp.where(kxy < 0, xp.minimum(minus, plus), out)
    return _clip_gap(xp, out)


@register("leaky_relu")
@_dataclass
class LeakyRelu(_GapDual, _Homogeneous):
    """Leaky ReLU ``x if x > 0 else alpha x``.

    ``Σ = α kxy + (1-α)² Σ_relu`` (the cross term is ``α(1-α) kxy`` by
    Stein's lemma), ``Σ̇ = α + (1-α)² Σ̇_relu``.
    """

    alpha: float = 0.01

    def __post_init__(self):
        _set(self, "alpha", _check_float("alpha", self.alpha, limit=_SQUARE_LIMIT))

    @property
    def homogeneous_degree(self) -> int:
        return 1

    def _needs_gap(self, ntk: bool, scale: float | None = None) -> bool:
        return ntk and self.alpha != 1.0

    def _pointwise(self, xp, x):
        return xp.where(x > 0, x, self.alpha * x)

    def _pointwise_derivative(self, xp, x):
        return xp.where(x > 0, xp.ones_like(x), _const(xp, self.alpha, x))

    def _unit(self, degree):
        a = (1.0 - self.alpha) * _rectified_monomial_unit(1, degree)
        if degree >= 1:
            a[1] += self.alpha
        return a

    def _dual(self, xp, kxx, kxy, kyy, derivative):
        S, Sd = _relu_rho(xp, kxx, kxy, kyy)
        g = (1.0 - self.alpha) ** 2
        S *= g
        S += self.alpha * kxy
        Sd *= g
        Sd += self.alpha
        return S, (Sd if derivative else None)

    def _dual_gap(self, xp, kxx, kxy, kyy, gap, derivative, gap_out):
        S, Sd, h, _ = _relu_parts(xp, kxx, kxy, kyy, gap, gap_out)
        g = (1.0 - self.alpha) ** 2
        S *= g
        S += self.alpha * kxy
        Sd *= g
        Sd += self.alpha
        out = _leaky_gap_out(xp, self.alpha, kxy, gap, h) if gap_out else None
        return S, (Sd if derivative else None), out


@register("abs")
@_dataclass
class Abs(_GapDual, _Homogeneous):
    """Absolute value; ``Σ = (2/π)(sqrt(kxx kyy - kxy²) + kxy asin ρ)``."""

    @property
    def homogeneous_degree(self) -> int:
        return 1

    def _needs_gap(self, ntk: bool, scale: float | None = None) -> bool:
        return ntk  # Sigma_dot = (2/pi) asin(rho)

    def _pointwise(self, xp, x):
        return xp.abs(x)

    def _pointwise_derivative(self, xp, x):
        return xp.sign(x)

    def _unit(self, degree):
        a = _rectified_monomial_unit(1, degree)
        a[1::2] = 0.0
        return 2.0 * a

    def _dual_gap(self, xp, kxx, kxy, kyy, gap, derivative, gap_out):
        sx, sy, _, _ = _norms(xp, kxx, kyy)
        phi, s, c = _angle(xp, gap)  # asin(rho) = +-(pi/2 - phi)
        t = phi * (-2.0 / _PI)
        t += 1.0  # (2/pi) asin|rho|
        if _negative(xp, kxy):
            t = _copysign(xp, t, kxy)
        S = kxy * t  # (2/pi) kxy asin(rho)
        q = sx * (2.0 / _PI)
        q = q * sy
        q = q * s
        S += q
        g = None
        if gap_out:
            # |x| is even: 1 - rho' = gap - (2/pi)(sin(phi) - phi cos(phi))
            g = c * phi
            g -= s
            g *= 2.0 / _PI
            g += gap
            g = _clip_gap(xp, g)
        return S, (t if derivative else None), g


@register("step", aliases=("heaviside",))
@_dataclass
class Step(_GapDual, _Homogeneous):
    """Heaviside step ``1[x > 0]``; ``Σ = (π - acos ρ)/(2π)``, ``Σ̇ = 0``.

    ``Σ̇ = 0`` uses the a.e. derivative: the distributional one (a Dirac delta)
    would make the NTK diagonal infinite.  Where a variance is zero ``u = 0``
    and ``Σ = σ(0) E[σ(v)] = 0`` exactly.
    """

    _zero_derivative: ClassVar[bool] = True

    @property
    def homogeneous_degree(self) -> int:
        return 0

    def _needs_gap(self, ntk: bool, scale: float | None = None) -> bool:
        return True

    def _pointwise(self, xp, x):
        return xp.astype(x > 0, x.dtype)

    def _pointwise_derivative(self, xp, x):
        return xp.zeros_like(x)

    def _unit(self, degree):
        return _rectified_monomial_unit(0, degree)

    def _dual_gap(self, xp, kxx, kxy, kyy, gap, derivative, gap_out):
        _, _, isx, isy = _norms(xp, kxx, kyy)
        phi = _angle(xp, gap)[0]
        # theta / (2 pi) = phi / (2 pi) where rho >= 0, 1/2 - phi/(2 pi) else
        t = phi * (-1.0 / (2.0 * _PI))
        neg = _negative(xp, kxy)
        if neg:
            t += 0.25
            t = _copysign(xp, t, kxy)
            t += 0.25
        else:
            t += 0.5
        live = xp.astype(isx * isy > 0, t.dtype)
        t *= live
        g = None
        if gap_out:  # rho' = 1 - theta/pi >= 0: gap' = theta / pi
            g = phi * (1.0 / _PI)
            if neg:
                g = xp.where(kxy < 0, 1.0 - g, g)
            g = xp.maximum(g, 1.0 - live)  # rho' = 0 where a variance is 0
        return t, (xp.zeros_like(t) if derivative else None), g


@register("sign")
@_dataclass
class Sign(_GapDual, _Homogeneous):
    """Sign function; ``Σ = (2/π) asin ρ``, ``Σ̇ = 0`` (a.e. derivative, see Step)."""

    _zero_derivative: ClassVar[bool] = True

    @property
    def homogeneous_degree(self) -> int:
        return 0

    def _needs_gap(self, ntk: bool, scale: float | None = None) -> bool:
        return True

    def _pointwise(self, xp, x):
        return xp.sign(x)

    def _pointwise_derivative(self, xp, x):
        return xp.zeros_like(x)

    def _unit(self, degree):
        a = 2.0 * _rectified_monomial_unit(0, degree)
        a[0] -= 1.0
        return a

    def _dual_gap(self, xp, kxx, kxy, kyy, gap, derivative, gap_out):
        # (2/pi) asin(rho) = sign(rho) (1 - 2 phi / pi); gap' = 2 phi / pi
        g = _angle(xp, gap)[0]
        g *= 2.0 / _PI
        t = g * -1.0
        t += 1.0
        if _negative(xp, kxy):
            t = _copysign(xp, t, kxy)
        return t, (xp.zeros_like(t) if derivative else None), (g if gap_out else None)


# --------------------------------------------------------------------------- #
# Smooth activations with closed-form duals
# --------------------------------------------------------------------------- #
def _saturation(
    xp: Any, kxx: Any, kxy: Any, kyy: Any, gap: Any, inv_g: float, need_w: bool = True
) -> tuple:
    """``arg = kxy / (qx qy)`` and ``W = sqrt(1 - arg^2)``, ``qx = sqrt(inv_g + kxx)``.

    The duals of erf, gelu, the Gaussian and Gabor activations are functions
    of ``arg`` (``asin(arg) = atan2(arg, W)``, ``1 / W``), which approaches
    ``+-1`` for nearly parallel inputs at large variances, where they are not
    Lipschitz.  ``arg`` itself is accurate (a ratio); with a ``gap`` (else
    ``W = sqrt(1 - arg^2)``, enough below :data:`_SATURATION`) ``W`` comes
    from ``E = 1 - |arg|``, accurate near 0: with ``rx = sqrt(kxx) / qx``,
    ``|arg| = (1 - gap) rx ry`` and

        E = gap + (1 - gap) (1 - rx ry),
        1 - rx ry = ax + rx ay,   ax = 1 - rx = inv_g / (qx (qx + sqrt(kxx))),

    sums of nonnegative terms.  No products of variances are formed
    (scale-safe).  Returns ``(arg, W, qx, qy, rx, ry)`` (``qx``, ``rx``
    shaped like ``kxx``; ``W`` is ``None`` without a gap unless ``need_w``).
    """
    sx, sy, _, _ = _norms(xp, kxx, kyy)
    qx = xp.sqrt(inv_g + xp.clip(kxx, 0.0, None))
    qy = xp.sqrt(inv_g + xp.clip(kyy, 0.0, None))
    rx, ry = sx / qx, sy / qy
    arg = kxy * (1.0 / qx)
    arg *= 1.0 / qy  # |arg| < 1 up to rounding, which atan2(arg, W) tolerates
    if gap is None:  # moderate variances: |arg| < 1 - 5e-4, no cancellation
        if not need_w:
            return arg, None, qx, qy, rx, ry
        W = arg * arg
        W = _rsub(xp, 1.0, W)
        return arg, _inplace(xp, "sqrt", W), qx, qy, rx, ry
    ax = inv_g / (qx * (qx + sx))
    ay = inv_g / (qy * (qy + sy))
    E = _rsub(xp, 1.0, gap)
    E *= ax + rx * ay
    E += gap  # in [0, 1] up to rounding, which sqrt(E (2 - E)) tolerates
    return arg, _sine(xp, E), qx, qy, rx, ry


#: Below this ``g k`` (variance times the activation's curvature scale) the
#: saturating duals need no gap: ``1 - |arg| >= 1 / (2 g k + 1) > 5e-4``.
_SATURATION = 1e3


def _saturated(xp: Any, kxx: Any, kyy: Any, g: float) -> bool:
    """Whether some ``g kxx`` or ``g kyy`` exceeds :data:`_SATURATION`."""
    return g * max(float(xp.max(kxx)), float(xp.max(kyy))) > _SATURATION


def _saturating_dual(act: Any, xp, kxx, kxy, kyy, derivative, g: float):
    """``_dual`` of erf, gelu, Gaussian, Gabor: the gap only where needed."""
    gap = None
    if _saturated(xp, kxx, kyy, g):
        gap = _gap_of(xp, _correlation(xp, kxx, kxy, kyy))
    return act._dual_gap(xp, kxx, kxy, kyy, gap, derivative, False)[:2]


@register("erf")
@_dataclass
class Erf(Activation):
    """``a * erf(b * x) + c``.

    ``Σ = (2a²/π) asin(2b² kxy / sqrt((1+2b²kxx)(1+2b²kyy))) + c²`` (Williams
    1997), ``Σ̇ = (4a²b²/π) / sqrt(det(I + 2b²Λ))``.
    """

    a: float = 1.0
    b: float = 1.0
    c: float = 0.0

    def __post_init__(self):
        for f in ("a", "b", "c"):
            _set(self, f, _check_float(f, getattr(self, f), limit=_SQUARE_LIMIT))

    def _pointwise(self, xp, x):
        y = _special(xp, "erf", x * self.b)
        y *= self.a
        y += self.c
        return y

    def _pointwise_derivative(self, xp, x):
        t = x * self.b
        t *= t
        t *= -1.0
        t = _inplace(xp, "exp", t)
        t *= 2.0 * self.a * self.b / math.sqrt(_PI)
        return t

    def _hermite(self, r, degree):
        # Closed form.  With s = b r and g(z) = exp(-s^2 z^2), Gaussian
        # integration by parts gives E[erf(s z) He_n] = (2s/sqrt(pi)) E[g He_{n-1}],
        # and E[g He_2j] = c (-gamma)^j (2j)!/j! with c = (1 + 2 s^2)^(-1/2),
        # gamma = s^2 / (1 + 2 s^2) (generating function of He_n).
        s = np.abs(self.b) * r
        beta = s * s
        log_c = -0.5 * np.log1p(2.0 * beta)
        with np.errstate(divide="ignore"):
            log_gamma = np.log(beta) - np.log1p(2.0 * beta)
        n = np.arange(degree + 1)
        j = n // 2
        # log of (2j)!/j! for the even-index moments E[g He_2j].
        log_ratio = special.gammaln(2 * j + 1) - special.gammaln(j + 1)
        with np.errstate(invalid="ignore"):
            log_pow = np.where(j[None, :] > 0, j[None, :] * log_gamma[:, None], 0.0)
        lnf = 0.5 * special.gammaln(n + 1)
        # moment[:, n] = E[g He_{2 floor(n/2)}] / sqrt(n!), in log space so
        # that any degree stays finite; odd n -> a_n, even n -> b_n.
        moment = np.exp(
            log_c[:, None] + log_pow + (log_ratio - lnf)[None, :]
        ) * np.where(j % 2 == 1, -1.0, 1.0)
        sign_b = 1.0 if self.b >= 0 else -1.0
        a = np.zeros((r.size, degree + 1))
        b = np.zeros((r.size, degree + 1))
        odd, even = n % 2 == 1, n % 2 == 0
        a[:, odd] = (
            (self.a * sign_b * 2.0 / math.sqrt(_PI)) * s[:, None] * moment[:, odd]
        )
        a[:, 0] = self.c
        b[:, even] = (2.0 * self.a * self.b / math.sqrt(_PI)) * moment[:, even]
        return a, b

    def _needs_gap(self, ntk: bool, scale: float | None = None) -> bool:
        g = 2.0 * self.b * self.b
        sat = scale is None or g * scale > _SATURATION
        return self.a != 0.0 and self.b != 0.0 and sat

    def _dual(self, xp, kxx, kxy, kyy, derivative):
        if self.a == 0.0 or self.b == 0.0:  # constant c
            S = _broadcast_full(xp, self.c * self.c, _shape(kxx, kxy, kyy), kxy)
            return S, (xp.zeros_like(S) if derivative else None)
        return _saturating_dual(
            self, xp, kxx, kxy, kyy, derivative, 2.0 * self.b * self.b
        )

    def _dual_gap(self, xp, kxx, kxy, kyy, gap, derivative, gap_out):
        # arg = 2b² kxy / sqrt((1 + 2b² kxx)(1 + 2b² kyy)) = kxy / (qx qy),
        # qx = sqrt(1/(2b²) + kxx); det(I + 2b²Λ) = (2b² qx qy)² (1 - arg²).
        if self.a == 0.0 or self.b == 0.0:
            S, Sd = self._dual(xp, kxx, kxy, kyy, derivative)
            return S, Sd, None
        a2 = self.a * self.a
        arg, W, qx, qy, _, _ = _saturation(
            xp, kxx, kxy, kyy, gap, 0.5 / (self.b * self.b), need_w=False
        )
        if gap is None:  # |arg| < 1 - 5e-4: asin is well conditioned
            S = _inplace(xp, "asin", _clip_unit(xp, arg * 1.0))
        else:
            S = xp.atan2(arg, W)  # asin(arg), accurate for |arg| ~ 1
        S *= 2.0 * a2 / _PI
        if self.c:
            S += self.c * self.c
        Sd = None
        if derivative:  # (4a²b²/π) / sqrt(det) = (2a²/π) / (qx qy W)
            if gap is None:  # sqrt(1 - arg²), arg no longer needed
                W = _inplace(xp, "sqrt", _rsub(xp, 1.0, arg * arg))
            W *= qx
            W *= qy
            Sd = _rdiv(xp, 2.0 * a2 / _PI, W)
        return S, Sd, None


@register("gelu")
@_dataclass
class Gelu(Activation):
    """GELU ``x Φ(x)`` (exact erf form).

    With ``a = kxx``, ``d = kyy``, ``c = kxy``, ``Δ = (1+a)(1+d) - c²``,
    ``G = (2/π)/sqrt(Δ)``, ``E = (2/π) asin(c/sqrt((1+a)(1+d)))``
    (derived with Stein's lemma, writing ``x Φ(x) = x/2 + x erf(x/√2)/2``)::

        Σ = c/4 + (G (ad - c² + c²/(1+a) + c²/(1+d)) + c E) / 4
        Σ̇ = (1 + E + cG/(1+a) + cG/(1+d) + cG/Δ) / 4
    """

    def _pointwise(self, xp, x):
        y = _special(xp, "ndtr", x)
        y *= x
        return y

    def _pointwise_derivative(self, xp, x):
        t = x * -0.5
        t *= x
        t = _inplace(xp, "exp", t)
        t *= x
        t *= _INV_SQRT_2PI  # x φ(x)
        t += _special(xp, "ndtr", x)
        return t

    def _needs_gap(self, ntk: bool, scale: float | None = None) -> bool:
        # asin(arg) and 1/sqrt(Delta), at large variances
        return scale is None or scale > _SATURATION

    def _dual(self, xp, kxx, kxy, kyy, derivative):
        return _saturating_dual(self, xp, kxx, kxy, kyy, derivative, 1.0)

    def _dual_gap(self, xp, kxx, kxy, kyy, gap, derivative, gap_out):
        # With q = sqrt(1 + k), arg = c / (qx qy), W = sqrt(1 - arg²):
        # sqrt(Δ) = qx qy W, G D = (2/π) sqrt(ad) Q w (w / W) (Q = rx ry,
        # w = sqrt(1 - rho²)), G c² ia = (2/π) c arg ia / W: no product of
        # variances, and W, w from the gaps (accurate for parallel inputs).
        # In units of 1/(2π) (= (2/π)/4), with u = 1/4 + asin(arg)/(2π):
        # Σ = c u + (w (w / W) sqrt(ad) Q + c arg (ia + id) / W) / (2π),
        # Σ̇ = u + (arg / W)(ia + id + ia id / W²) / (2π); products ordered so
        # that no intermediate leaves the range (w <= W, ia ~ 1/kxx).
        sx, sy, _, _ = _norms(xp, kxx, kyy)
        arg, W, qx, qy, rx, ry = _saturation(xp, kxx, kxy, kyy, gap, 1.0)
        ia, id_ = 1.0 / (qx * qx), 1.0 / (qy * qy)
        u = xp.atan2(arg, W)  # asin(arg)
        u *= _INV_2PI
        u += 0.25
        iw = _rdiv(xp, 1.0, W)
        if gap is None:  # moderate variances: ad - c² (D) does not overflow
            t = kxx * kyy
            t -= kxy * kxy
            t = xp.clip(t, 0.0, None)
            t *= _INV_2PI / qx
            t *= 1.0 / qy
            t *= iw  # D / (2π qx qy W)
        else:
            w = _sine(xp, gap)  # sin(theta)
            t = w * iw
            t *= w  # w (w / W): w² / W without the overflow of w² * (1 / W)
            t *= (sx * rx) * _INV_2PI
            t *= sy * ry
        both = (ia + id_) * _INV_2PI
        cross = kxy * both
        cross *= arg
        cross *= iw
        t += cross
        S = kxy * u
        S += t
        Sd = None
        if derivative:
            Sd = iw * (ia * _INV_2PI)
            Sd *= iw * id_
            Sd += both
            Sd *= arg
            Sd *= iw
            Sd += u
        return S, Sd, None


def _sincos_dual(xp, kxx, kxy, kyy, amp2, b, c, sign):
    """``amp2/2 [E₋ + sign cos(2c) E₊]``, ``E± = exp(-b²(kxx + kyy ± 2kxy)/2)``.

    Written as ``amp2/2 E₋ [(1 + sign cos 2c) + sign cos(2c) expm1(-2b² kxy)]``
    where ``|2b² kxy| < 1``, which avoids the cancellation of ``E₋ - E₊`` at
    small variances (``sin`` at ``kxx = 1e-16``).
    """
    h = -0.5 * b * b
    s = kxx + kyy
    em = kxy * (-2.0)
    em += s
    em *= h
    em = _inplace(xp, "exp", em)
    c2 = sign * math.cos(2.0 * c)
    base = 1.0 + c2  # 2 cos²c or 2 sin²c, exact for the usual c
    base = 2.0 * (math.cos(c) ** 2 if sign > 0 else math.sin(c) ** 2)
    if c2 == 0.0:
        em *= 0.5 * amp2 * base
        return em
    t = kxy * (-2.0 * b * b)
    small = xp.abs(t) < 1.0
    near = xp.expm1(xp.where(small, t, 0.0))
    near *= c2
    near += base
    near *= em
    ep = kxy * 2.0
    ep += s
    ep *= h
    ep = _inplace(xp, "exp", ep)
    ep *= c2
    ep += em
    out = xp.where(small, near, ep)
    out *= 0.5 * amp2
    return out


@register("sin")
@_dataclass
class Sin(Activation):
    """``a * sin(b * x + c)``; ``Σ = a²/2 [E₋ - cos(2c) E₊]``.

    ``E± = exp(-b²(kxx + kyy ± 2kxy)/2)`` are Gaussian characteristic
    functions of ``u ± v``; ``Σ̇`` is the cosine formula times ``b²``.
    """

    a: float = 1.0
    b: float = 1.0
    c: float = 0.0

    def __post_init__(self):
        for f in ("a", "b", "c"):
            _set(self, f, _check_float(f, getattr(self, f), limit=_TRIG_LIMITS[f]))

    def _pointwise(self, xp, x):
        return _scaled_trig(xp, "sin", x, self.b, self.c, self.a)

    def _pointwise_derivative(self, xp, x):
        return _scaled_trig(xp, "cos", x, self.b, self.c, self.a * self.b)

    def _hermite(self, r, degree):
        a = _trig_coefs(self.a, self.b, self.c, r, degree, cosine=False)
        b = _trig_coefs(self.a * self.b, self.b, self.c, r, degree, cosine=True)
        return a, b

    def _dual(self, xp, kxx, kxy, kyy, derivative):
        a2 = self.a * self.a
        S = _sincos_dual(xp, kxx, kxy, kyy, a2, self.b, self.c, -1.0)
        Sd = None
        if derivative:
            Sd = _sincos_dual(
                xp, kxx, kxy, kyy, a2 * self.b * self.b, self.b, self.c, 1.0
            )
        return S, Sd


@register("cos")
@_dataclass
class Cos(Activation):
    """``a * cos(b * x + c)``; ``Σ = a²/2 [E₋ + cos(2c) E₊]``."""

    a: float = 1.0
    b: float = 1.0
    c: float = 0.0

    def __post_init__(self):
        for f in ("a", "b", "c"):
            _set(self, f, _check_float(f, getattr(self, f), limit=_TRIG_LIMITS[f]))

    def _pointwise(self, xp, x):
        return _scaled_trig(xp, "cos", x, self.b, self.c, self.a)

    def _pointwise_derivative(self, xp, x):
        return _scaled_trig(xp, "sin", x, self.b, self.c, -self.a * self.b)

    def _hermite(self, r, degree):
        a = _trig_coefs(self.a, self.b, self.c, r, degree, cosine=True)
        b = _trig_coefs(-self.a * self.b, self.b, self.c, r, degree, cosine=False)
        return a, b

    def _dual(self, xp, kxx, kxy, kyy, derivative):
        a2 = self.a * self.a
        S = _sincos_dual(xp, kxx, kxy, kyy, a2, self.b, self.c, 1.0)
        Sd = None
        if derivative:
            Sd = _sincos_dual(
                xp, kxx, kxy, kyy, a2 * self.b * self.b, self.b, self.c, -1.0
            )
        return S, Sd


def _trig_coefs(amp, b, c, r, degree, *, cosine):
    """``E[amp sin(β z + c) h_n(z)] = amp e^{-β²/2} β^n/√n! sin(c + nπ/2)``.

    (``β = b r``; same with cos.)  From ``E[e^{iβz} h_n] = e^{-β²/2} (iβ)^n/√n!``.
    """
    beta = b * r
    n = np.arange(degree + 1)
    phase = np.array(
        [math.cos(c), -math.sin(c), -math.cos(c), math.sin(c)]
        if cosine
        else [math.sin(c), math.cos(c), -math.sin(c), -math.cos(c)]
    )[n % 4]
    return amp * phase * _gauss_power(beta, n, -0.5 * beta * beta)


def _gauss_power(beta: np.ndarray, n: np.ndarray, log_pref: np.ndarray) -> np.ndarray:
    """``exp(log_pref) β^n / sqrt(n!)`` in log space (``0^0 = 1``)."""
    ab = np.abs(beta)[:, None]
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        logv = log_pref[:, None] + n * np.log(ab) - 0.5 * special.gammaln(n + 1.0)
        logv = np.where((ab == 0) & (n == 0), log_pref[:, None], logv)
        val = np.exp(logv)
    sign = np.where((beta[:, None] < 0) & (n % 2 == 1), -1.0, 1.0)
    return sign * val


@register("gaussian")
@_dataclass
class Gaussian(Activation):
    """``a * exp(b * x**2)`` (neural-tangents' default ``exp(-x²)``).

    ``Σ = a² / sqrt(det(I - 2bΛ))``, ``Σ̇ = 4a²b² kxy / det(I - 2bΛ)^{3/2}``.
    For ``b > 0`` the expectation diverges unless ``1 - 2 b k > 0`` for both
    variances (and the determinant is positive): a ValueError is raised.
    """

    a: float = 1.0
    b: float = -1.0

    def __post_init__(self):
        for f in ("a", "b"):
            _set(self, f, _check_float(f, getattr(self, f), limit=_GAUSS_LIMITS[f]))

    def _pointwise(self, xp, x):
        t = x * self.b
        t *= x
        t = _inplace(xp, "exp", t)
        t *= self.a
        return t

    def _pointwise_derivative(self, xp, x):
        e = x * self.b
        e *= x
        e = _inplace(xp, "exp", e)
        y = x * (2.0 * self.a * self.b)
        y *= e
        return y

    def _hermite(self, r, degree):
        t = 1.0 - 2.0 * self.b * r * r
        if np.any(t <= 0):
            raise ValueError(
                f"{self!r}: E[exp(2 b r² z²)] diverges for r >= 1/sqrt(2b) = "
                f"{1 / math.sqrt(2 * self.b):g} (got r = {r.max():g})."
            )
        a_ext = np.zeros((r.size, degree + 2))
        s2m1 = 2.0 * self.b * r * r / t  # s² - 1, with s² = 1/(1 - 2 b r²)
        with np.errstate(divide="ignore"):
            la = np.log(np.abs(s2m1))
        for n in range(0, degree + 2, 2):
            # a_n = a s (s²-1)^{n/2} (n-1)!!/sqrt(n!)
            m = n // 2
            logc = log_double_factorial(n - 1) - 0.5 * math.lgamma(n + 1)
            with np.errstate(invalid="ignore", over="ignore"):
                v = np.exp(-0.5 * np.log(t) + logc + (m * la if m else 0.0))
            sign = np.where((s2m1 < 0) & (m % 2 == 1), -1.0, 1.0)
            a_ext[:, n] = self.a * sign * v
        return a_ext[:, : degree + 1], self._b_from_a(r, a_ext)

    def _needs_gap(self, ntk: bool, scale: float | None = None) -> bool:
        sat = scale is None or -2.0 * self.b * scale > _SATURATION
        return self.b < 0 and self.a != 0.0 and sat

    def _dual(self, xp, kxx, kxy, kyy, derivative):
        if self.b < 0:
            return _saturating_dual(self, xp, kxx, kxy, kyy, derivative, -2.0 * self.b)
        return self._dual_bounded(xp, kxx, kxy, kyy, derivative)

    def _dual_gap(self, xp, kxx, kxy, kyy, gap, derivative, gap_out):
        # b < 0, g = -2b: det(I - 2bΛ) = (g qx qy)² (1 - arg²) with
        # qx = sqrt(1/g + kxx), arg = kxy / (qx qy); Σ = a² R,
        # R = 1/sqrt(det) = 1 / (g qx qy W), Σ̇ = 4a²b² kxy R³.
        if self.b >= 0:
            S, Sd = self._dual(xp, kxx, kxy, kyy, derivative)
            return S, Sd, None
        g = -2.0 * self.b
        a2 = self.a * self.a
        _, R, qx, qy, _, _ = _saturation(xp, kxx, kxy, kyy, gap, 1.0 / g)
        R *= g * qx  # R = W = sqrt(1 - arg²) here
        R *= qy
        R = _rdiv(xp, 1.0, R)
        S = R * a2
        Sd = None
        if derivative:
            Sd = kxy * R
            Sd *= R
            Sd *= R
            Sd *= a2 * g * g
        return S, Sd, None

    def _dual_bounded(self, xp, kxx, kxy, kyy, derivative):
        # b >= 0: the variances are below 1/(2b), no scale issue.
        b = self.b
        if b > 0:
            bad = bool(xp.any(1.0 - 2.0 * b * kxx <= 0)) or bool(
                xp.any(1.0 - 2.0 * b * kyy <= 0)
            )
        else:
            bad = False
        D = kxx * kyy
        D -= kxy * kxy
        D = xp.clip(D, 0.0, None)
        D *= 4.0 * b * b
        D -= (2.0 * b) * (kxx + kyy)
        D += 1.0
        if b > 0 and (bad or bool(xp.any(D <= 0))):
            raise ValueError(
                f"The dual of {self!r} diverges: E[exp(b u²)] needs 1 - 2 b k > 0, "
                f"i.e. variances below {1 / (2 * b):g}."
            )
        r = _inplace(xp, "sqrt", D)
        S = (self.a * self.a) / r
        Sd = None
        if derivative:
            Sd = kxy * (4.0 * self.a * self.a * b * b)
            Sd /= r * r * r
        return S, Sd


@register("exp")
@_dataclass
class Exp(Activation):
    """``a * exp(b * x)``: ``Σ = a² exp(b²(kxx + kyy + 2kxy)/2)``, ``Σ̇ = b² Σ``.

    (Moment generating function of ``u + v``.)  Raises OverflowError where
    the dual exceeds the float64 range.
    """

    a: float = 1.0
    b: float = 1.0

    def __post_init__(self):
        for f in ("a", "b"):
            _set(self, f, _check_float(f, getattr(self, f), limit=_SQUARE_LIMIT))

    def _pointwise(self, xp, x):
        t = _inplace(xp, "exp", x * self.b)
        t *= self.a
        return t

    def _pointwise_derivative(self, xp, x):
        t = _inplace(xp, "exp", x * self.b)
        t *= self.a * self.b
        return t

    def _hermite(self, r, degree):
        beta = self.b * r
        n = np.arange(degree + 1)
        a = self.a * _gauss_power(beta, n, 0.5 * beta * beta)
        return a, self.b * a  # non-finite values raise OverflowError in hermite()

    def _dual(self, xp, kxx, kxy, kyy, derivative):
        e = kxy * 2.0
        e += kxx + kyy
        e *= 0.5 * self.b * self.b
        with np.errstate(over="ignore"):  # reported as OverflowError below
            S = _inplace(xp, "exp", e)
        S *= self.a * self.a
        Sd = S * (self.b * self.b) if derivative else None
        if not bool(xp.all(xp.isfinite(S if Sd is None else Sd))):
            raise OverflowError(
                f"The dual of {self!r} overflows float64: a² exp(b²(kxx + kyy + "
                "2 kxy)/2) is too large for these variances."
            )
        return S, Sd


@register("exp_normalized")
@_dataclass
class ExpNormalized(Activation):
    """Normalized Gaussian kernel (Shankar et al. 2020), defined by its dual.

    ``Σ = sqrt(kxx kyy) exp(γ (ρ + shift))``, ``Σ̇ = γ exp(γ (ρ + shift))``,
    as neural-tangents' ``ExpNormalized(gamma, shift)``; the default
    ``shift = -1`` gives ``exp(γ (ρ - 1))``.  Hermite coefficients:
    ``a_n(r) = r sqrt(e^{γ shift} γ^n / n!)``, ``b_n = sqrt(γ e^{γ shift} γ^n / n!)``.
    There is no pointwise function.
    """

    gamma: float = 1.0
    shift: float = -1.0

    def __post_init__(self):
        _set(self, "gamma", _check_float("gamma", self.gamma, positive=True))
        _set(self, "shift", _check_float("shift", self.shift))

    @property
    def homogeneous_degree(self) -> int:
        return 1

    def dual_quadrature(self, *args: Any, **kwargs: Any) -> Any:
        raise TypeError(
            "exp_normalized has no pointwise function: it is defined by its dual "
            "kernel only, so it has no quadrature."
        )

    def sphere_form(self) -> tuple[Activation, float] | None:
        """``(rbf, c)`` with ``Σ(x, y) = c r_x r_y Σ_rbf(u_x, u_y)`` and ``Σ̇(x,
        y) = c Σ̇_rbf(u_x, u_y)`` for unit rows ``u = x / r``: on the sphere
        ``exp(γ (ρ - 1)) = exp(-γ/2 ||u_x - u_y||^2)``, the dual of
        :class:`Rbf` at ``gamma / 2``, whose pointwise function (a sine) gives
        bounded Monte-Carlo features at any ``γ`` where the Hermite expansion
        (mass spread over degrees ``~γ``) cannot be truncated.  ``None`` where
        ``c = exp(γ (shift + 1))`` is not a finite positive float."""
        with np.errstate(over="ignore", under="ignore"):
            c = float(np.exp(self.gamma * (self.shift + 1.0)))
        if not (math.isfinite(c) and c > 0.0):
            return None
        return Rbf(gamma=0.5 * self.gamma), c

    def _hermite(self, r, degree):
        g = self.gamma
        n = np.arange(degree + 1)
        b = np.exp(0.5 * (g * self.shift + n * math.log(g) - special.gammaln(n + 1.0)))
        b = np.broadcast_to(b, (r.size, degree + 1)).copy()
        a = r[:, None] * b
        return a, b * math.sqrt(g)

    def _dual(self, xp, kxx, kxy, kyy, derivative):
        sx, sy, _, _ = _norms(xp, kxx, kyy)
        rho = _correlation(xp, kxx, kxy, kyy)
        rho += self.shift
        rho *= self.gamma
        e = _inplace(xp, "exp", rho)
        S = e * (sx * sy)
        return S, (e * self.gamma if derivative else None)


@register("rbf")
@_dataclass
class Rbf(Activation):
    """``sqrt(2) sin(sqrt(2 gamma) x + π/4)``: ``Σ = exp(-γ(kxx + kyy - 2kxy))``.

    Random Fourier features of the Gaussian kernel (neural-tangents ``Rbf``);
    ``Σ̇ = 2γ Σ``.
    """

    gamma: float = 1.0

    def __post_init__(self):
        _set(
            self,
            "gamma",
            _check_float(
                "gamma", self.gamma, positive=True, limit=_SQUARE_LIMIT**2 / 4
            ),
        )

    @property
    def _sin(self) -> Sin:
        return Sin(math.sqrt(2.0), math.sqrt(2.0 * self.gamma), _PI / 4.0)

    def _pointwise(self, xp, x):
        return self._sin._pointwise(xp, x)

    def _pointwise_derivative(self, xp, x):
        return self._sin._pointwise_derivative(xp, x)

    def _hermite(self, r, degree):
        return self._sin._hermite(r, degree)

    def _dual(self, xp, kxx, kxy, kyy, derivative):
        e = kxy * (-2.0)
        e += kxx + kyy
        e *= -self.gamma
        S = _inplace(xp, "exp", e)
        return S, (S * (2.0 * self.gamma) if derivative else None)


def _gauss_bump(xp: Any, x: Any) -> Any:
    """``exp(-x²)`` as a new array."""
    e = x * x
    e *= -1.0
    return _inplace(xp, "exp", e)


@register("gabor")
@_dataclass
class Gabor(Activation):
    """``exp(-x²) sin(x)``.

    With ``M = 2I`` the Gaussian factor tilts ``Λ`` to ``C = Λ(I + 2Λ)^{-1}``,
    ``det = det(I + 2Λ)``, and ``E[e^{-u²-v²} cos(t·(u,v))] =
    det^{-1/2} exp(-tᵀCt/2)``; ``Σ`` follows from ``sin u sin v =
    (cos(u-v) - cos(u+v))/2`` and ``Σ̇`` from ``σ'(x) = e^{-x²}(1 + 2∂_ω)
    cos(ωx)|_{ω=1}``.
    """

    def _pointwise(self, xp, x):
        e = _gauss_bump(xp, x)
        e *= xp.sin(x)
        return e

    def _pointwise_derivative(self, xp, x):
        t = x * 2.0
        t *= xp.sin(x)
        c = xp.cos(x)
        c -= t
        c *= _gauss_bump(xp, x)
        return c

    def _needs_gap(self, ntk: bool, scale: float | None = None) -> bool:
        return scale is None or 2.0 * scale > _SATURATION  # 1/sqrt(det)

    def _dual(self, xp, kxx, kxy, kyy, derivative):
        return _saturating_dual(self, xp, kxx, kxy, kyy, derivative, 2.0)

    def _dual_gap(self, xp, kxx, kxy, kyy, gap, derivative, gap_out):
        # det = det(I + 2Λ) = (2 qx qy W)², qx = sqrt(1/2 + kxx), W =
        # sqrt(1 - arg²), arg = kxy / (qx qy); with rx = sqrt(kxx) / qx and
        # w = sqrt(1 - rho²): kxx / det = rx² / (2 qy W)², D / det =
        # (rx ry w / W)² / 4, kxy / det = arg / (4 qx qy W²).
        arg, W, qx, qy, rx, ry = _saturation(xp, kxx, kxy, kyy, gap, 0.5)
        iw = _rdiv(xp, 1.0, W)
        ux, uy = 1.0 / qx, 1.0 / qy
        if gap is None:  # moderate variances: D does not overflow
            half_d = kxx * kyy
            half_d -= kxy * kxy
            half_d = xp.clip(half_d, 0.0, None)
            f = (ux * uy) * iw
            half_d *= f
            half_d *= f * 0.5  # 2 D / det = D (ux uy / W)² / 2
        else:
            half_d = _sine(xp, gap) * iw
            half_d *= rx * ry
            half_d = half_d * half_d * 0.5  # 2 D / det
        # Products grouped so that none leaves the range (W ~ 1/sqrt(k) at
        # large variances k for nearly parallel inputs).
        C11 = (rx * uy) * iw
        C11 = C11 * C11 * 0.25 + half_d
        C22 = (ry * ux) * iw
        C22 = C22 * C22 * 0.25 + half_d
        C12 = (arg * ux) * iw
        C12 *= uy * iw * 0.25
        pre = iw * (0.25 * ux * uy)  # 1 / (2 sqrt(det))
        T = C11 + C22
        Em = xp.exp(-0.5 * (T - 2.0 * C12))
        # Em - Ep = -Em expm1(-2 C12): no cancellation at tiny variances
        S = -pre * Em * xp.expm1(-2.0 * C12)
        Sd = None
        if derivative:
            # pre sum_s E_s [(1 - 2 p1)(1 - 2 p2) - 4 s C12], p = C.. + s C12,
            # with I - 2C = B = (I + 2Λ)^-1: B11 = ux² / (2W²), B22 = uy² /
            # (2W²), B12 = -arg ux uy / (2W²) (u = 1/q).  Written with B the
            # bracket no longer cancels from O(1) down to O(1/k) at large
            # variances k, and E+ - E- = Em expm1(-2 C12) does not cancel.
            plus = (ux + arg * uy) * iw
            plus *= (uy + arg * ux) * iw
            plus *= Em
            minus = (ux - arg * uy) * iw
            minus *= (uy - arg * ux) * iw
            minus *= xp.exp(-0.5 * (T + 2.0 * C12))
            plus += minus
            plus *= 0.25
            diff = Em * xp.expm1(-2.0 * C12)  # E+ - E-
            diff *= arg
            plus -= diff
            plus *= (ux * uy) * iw
            plus *= (ux * uy) * iw * 0.25
            plus *= iw
            Sd = plus
        return S, Sd, None


# --------------------------------------------------------------------------- #
# Polynomial-type activations: dual as a factorized series in kxy
# --------------------------------------------------------------------------- #
def _series_dual(
    xp: Any, kxx: Any, kxy: Any, kyy: Any, A: Callable[[int, Any], Any], jmax: int
) -> Any:
    """``Σ_j kxy^j / j! · A_j(kxx) A_j(kyy)`` by Horner's rule in ``kxy``.

    For ``(u, v)`` jointly Gaussian, ``E[f(u) f(v)] = Σ_j kxy^j/j! E[f^{(j)}(u)]
    E[f^{(j)}(v)]`` (expand in ``kxy``; ``d/dkxy E[f(u)g(v)] = E[f'(u)g'(v)]``);
    for a polynomial ``f`` the series is finite and ``A_j(t) = E[f^{(j)}(u)]``,
    ``u ~ N(0, t)``, only involves the small diagonal arrays.
    """
    out = None
    for j in range(jmax, -1, -1):
        term = A(j, kxx) * A(j, kyy)
        term *= 1.0 / math.factorial(j)
        if out is None:
            out = term + xp.zeros_like(kxy)
        else:
            out *= kxy
            out += term
    return out


def _horner(coef: Sequence[float], x: Any) -> Any:
    """``Σ_i coef[i] x**i`` by Horner's rule, in place on one temporary.

    The operations of ``numpy.polynomial.polynomial.polyval`` in the same
    order (so the same bits), with arithmetic operators only.
    """
    y = x * 0.0
    y += coef[-1]
    for c in coef[-2::-1]:
        y *= x
        y += c
    return y


def _poly_A(coef: Sequence[float]) -> Callable[[int, Any], Any]:
    """``A_j(t) = E[p^{(j)}(u)]``, ``u ~ N(0, t)``, for ``p = Σ c_i x^i``.

    ``E[u^{2m}] = (2m-1)!! t^m`` gives ``A_j = Σ_m c_{j+2m} (j+2m)!/(2^m m!) t^m``.
    """

    def A(j: int, t: Any) -> Any:
        val = 0.0
        tp = None
        for m in range((len(coef) - 1 - j) // 2 + 1):
            i = j + 2 * m
            if i >= len(coef):
                break
            w = coef[i] * math.exp(
                math.lgamma(i + 1) - m * math.log(2.0) - math.lgamma(m + 1)
            )
            tp = 1.0 if m == 0 else (t if m == 1 else tp * t)
            val = val + w * tp
        return val + 0.0 * t

    return A


@register("monomial")
@_dataclass
class Monomial(_Homogeneous):
    """Monomial ``x**degree``: ``Σ = E[u^k v^k]`` by Isserlis' theorem."""

    degree: int = 1

    def __post_init__(self):
        _set(
            self,
            "degree",
            _check_int("degree", self.degree, maximum=_MAX_DEGREE),
        )

    @property
    def _zero_derivative(self) -> bool:  # type: ignore[override]
        return self.degree == 0

    @property
    def homogeneous_degree(self) -> int:
        return self.degree

    def _pointwise(self, xp, x):
        return x**self.degree

    def _pointwise_derivative(self, xp, x):
        k = self.degree
        return k * x ** (k - 1) if k else xp.zeros_like(x)

    def _unit(self, degree):
        return monomial_hermite_coefficients(self.degree, degree)

    def _dual(self, xp, kxx, kxy, kyy, derivative):
        k = self.degree
        return Polynomial((0.0,) * k + (1.0,))._dual(xp, kxx, kxy, kyy, derivative)


def _rectified_moments(
    xp: Any, kxy: Any, gap: Any, k: int, with_gap: bool
) -> tuple[Any, Any, Any]:
    """``M(k,k)``, ``M(k-1,k-1)`` and ``D(k,k) = M(k,k)|_{rho=1} - M(k,k)``.

    ``M(p,q) = E[u^p 1[u>0] v^q 1[v>0]]`` for unit variances and correlation
    ``rho``.  Stein's identity ``E[u f(u,v)] = E[∂_u f] + ρ E[∂_v f]`` (Dirac
    terms where ``p`` or ``q`` is 0) gives, for ``p >= 1``::

        M(p,q) = (p-1) M(p-2,q) + [p=1] φ(0) s^q m_q
                 + ρ q M(p-1,q-1) + [q=0] ρ φ(0) s^(p-1) m_(p-1)

    with ``s = sqrt(1 - ρ²)``, ``m_j = E[z^j 1[z>0]]``, ``M(0,0) =
    (π - θ)/(2π)`` and ``M(0,q) = M(q,0)``.  Finite for every ``ρ``,
    unlike ``J_k(θ)`` written with ``1/sin θ``.  Subtracting the recursion
    from its value at ``ρ = 1`` (``s = 0``) gives one for ``D`` in which
    ``1 - ρ`` only appears where it is accurate (``u``, from the gap)::

        D(p,q) = (p-1) D(p-2,q) - [p=1, q>=1] φ(0) m_q s^q
                 + q (D(p-1,q-1) + u M(p-1,q-1)) + [q=0, p=1] φ(0) m_0 u
                 - [q=0, p>=2] ρ φ(0) m_(p-1) s^(p-1)

    with ``D(0,0) = θ/(2π)``; the output gap is ``D(k,k) / m_(2k)``.
    """
    u, _ = _plus_minus(xp, kxy, gap)  # 1 - rho
    rho = u * -1.0
    rho += 1.0
    phi, s, _ = _angle(xp, gap)
    theta = xp.where(kxy < 0, _PI - phi, phi) if _negative(xp, kxy) else phi
    spow: dict[int, Any] = {}
    memo: dict[tuple[int, int], Any] = {}
    dmemo: dict[tuple[int, int], Any] = {}

    def s_pow(j: int) -> Any:
        if j not in spow:
            spow[j] = s if j == 1 else s_pow(j - 1) * s
        return spow[j]

    def add(val: Any, term: Any) -> Any:
        return term if val is None else val + term

    def M(p: int, q: int) -> Any:
        if p < q:
            p, q = q, p  # symmetric in (p, q) for equal variances
        if (p, q) in memo:
            return memo[(p, q)]
        if p == 0:
            val = 0.5 - theta * _INV_2PI
        else:
            val = None
            if p >= 2:
                val = (p - 1) * M(p - 2, q)
            if p == 1:
                val = add(
                    val, _INV_SQRT_2PI * _half_moment(q) * (s_pow(q) if q else 1.0)
                )
            if q >= 1:
                val = add(val, (rho * q) * M(p - 1, q - 1))
            else:
                term = rho * (_INV_SQRT_2PI * _half_moment(p - 1))
                val = add(val, term * s_pow(p - 1) if p - 1 else term)
        memo[(p, q)] = val
        return val

    def D(p: int, q: int) -> Any:
        if p < q:
            p, q = q, p
        if (p, q) in dmemo:
            return dmemo[(p, q)]
        if p == 0:
            val = theta * _INV_2PI
        else:
            val = None
            if p >= 2:
                val = (p - 1) * D(p - 2, q)
            if p == 1 and q >= 1:
                val = add(val, -_INV_SQRT_2PI * _half_moment(q) * s_pow(q))
            if q >= 1:
                val = add(val, q * (D(p - 1, q - 1) + u * M(p - 1, q - 1)))
            elif p == 1:
                val = add(val, (_INV_SQRT_2PI * _half_moment(0)) * u)
            else:
                val = add(
                    val, -(_INV_SQRT_2PI * _half_moment(p - 1)) * rho * s_pow(p - 1)
                )
        dmemo[(p, q)] = val
        return val

    Mk = M(k, k)
    Mk1 = M(k - 1, k - 1) if k >= 1 else None
    Dk = D(k, k) if with_gap else None
    return Mk, Mk1, Dk


@register("rectified_monomial")
@_dataclass
class RectifiedMonomial(_GapDual, _Homogeneous):
    """Rectified monomial ``max(x, 0)**degree`` (degree 0 is ``step``).

    Dual: arc-cosine kernel of degree ``k`` (Cho & Saul 2009),
    ``Σ = (kxx kyy)^{k/2} M_k(ρ)``, computed by a Stein recursion that stays
    finite at ``ρ = ±1`` (neural-tangents returns NaN on the diagonal there).
    """

    degree: int = 1

    def __post_init__(self):
        _set(
            self,
            "degree",
            _check_int("degree", self.degree, maximum=_MAX_DEGREE),
        )

    @property
    def _zero_derivative(self) -> bool:  # type: ignore[override]
        return self.degree == 0

    @property
    def homogeneous_degree(self) -> int:
        return self.degree

    def _needs_gap(self, ntk: bool, scale: float | None = None) -> bool:
        # M_k is C^k in rho; M_0 (step, and Sigma_dot of k = 1) is not Lipschitz
        return self.degree == 0 or (self.degree == 1 and ntk)

    def _pointwise(self, xp, x):
        zero = _const(xp, 0.0, x)
        return xp.where(x > 0, xp.maximum(x, zero) ** self.degree, zero)

    def _pointwise_derivative(self, xp, x):
        k = self.degree
        if k == 0:
            return xp.zeros_like(x)
        zero = _const(xp, 0.0, x)
        return xp.where(x > 0, k * xp.maximum(x, zero) ** (k - 1), zero)

    def _unit(self, degree):
        return _rectified_monomial_unit(self.degree, degree)

    def _dual_gap(self, xp, kxx, kxy, kyy, gap, derivative, gap_out):
        k = self.degree
        if k == 0:
            return Step()._dual_gap(xp, kxx, kxy, kyy, gap, derivative, gap_out)
        sx, sy, _, _ = _norms(xp, kxx, kyy)
        Mk, Mk1, Dk = _rectified_moments(xp, kxy, gap, k, gap_out)
        p = sx * sy
        with np.errstate(over="ignore"):  # overflow reported by the caller
            S = Mk * p**k
        Sd = None
        if derivative:
            Sd = (k * k) * Mk1 * (p ** (k - 1) if k > 1 else 1.0)
            Sd = Sd + xp.zeros_like(S)
        g = None
        if gap_out:  # rho' = M_k(rho) / M_k(1) >= 0, M_k(1) = m_2k
            g = _clip_gap(xp, Dk * (1.0 / _half_moment(2 * k)))
        return S, Sd, g


@register("polynomial")
@_dataclass
class Polynomial(Activation):
    """Polynomial ``Σ_i coef[i] x**i`` (exact dual via Isserlis' theorem)."""

    coef: tuple[float, ...] = (0.0, 1.0)

    def __post_init__(self):
        coef = self.coef
        if isinstance(coef, numbers.Real) or isinstance(coef, str):
            raise TypeError(f"coef must be a sequence of real numbers, got {coef!r}.")
        try:
            coef = tuple(_check_float("coef[i]", c, limit=_SQUARE_LIMIT) for c in coef)
        except TypeError as exc:
            raise TypeError(f"coef must be a sequence of real numbers: {exc}") from None
        if len(coef) == 0:
            raise ValueError("coef must contain at least one coefficient.")
        _set(self, "coef", coef)

    def _pointwise(self, xp, x):
        return _horner(self.coef, x)

    def _pointwise_derivative(self, xp, x):
        return _horner(self._dcoef or (0.0,), x)

    @property
    def _dcoef(self) -> tuple[float, ...]:
        return tuple(i * c for i, c in enumerate(self.coef))[1:]

    def _hermite_a(
        self, coef: Sequence[float], r: np.ndarray, degree: int
    ) -> np.ndarray:
        a = np.zeros((r.size, degree + 1))
        for i, c in enumerate(coef):
            if c != 0.0:
                a += (c * np.power(r, i))[:, None] * monomial_hermite_coefficients(
                    i, degree
                )
        return a

    def _hermite(self, r, degree):
        with np.errstate(over="ignore", invalid="ignore"):
            a = self._hermite_a(self.coef, r, degree)
            b = self._hermite_a(self._dcoef or (0.0,), r, degree)
        return a, b

    def _dual(self, xp, kxx, kxy, kyy, derivative):
        D = len(self.coef) - 1
        S = _series_dual(xp, kxx, kxy, kyy, _poly_A(self.coef), D)
        Sd = None
        if derivative:
            dc = self._dcoef or (0.0,)
            Sd = _series_dual(xp, kxx, kxy, kyy, _poly_A(dc), len(dc) - 1)
        return S, Sd


@register("hermite")
@_dataclass
class Hermite(Activation):
    """Normalized Hermite polynomial ``h_degree = He_degree / sqrt(degree!)``.

    Unlike neural-tangents (which assumes unit variances and returns
    ``kxy**degree``) the dual is exact for any variances:
    ``E[h_k(u) h_k(v)] = k! Σ_j kxy^j α^m β^m / (j! m!²)``, ``k = j + 2m``,
    ``α = (kxx - 1)/2``, ``β = (kyy - 1)/2`` (Mehler's generating function).
    """

    degree: int = 1

    def __post_init__(self):
        _set(
            self,
            "degree",
            _check_int("degree", self.degree, maximum=_MAX_DEGREE),
        )

    @property
    def homogeneous_degree(self) -> int | None:
        return self.degree if self.degree <= 1 else None

    def _pointwise(self, xp, x):
        return _h(xp, self.degree, x)

    def _pointwise_derivative(self, xp, x):
        k = self.degree
        return math.sqrt(k) * _h(xp, k - 1, x) if k else xp.zeros_like(x)

    @staticmethod
    def _coefs(k: int, r: np.ndarray, degree: int) -> np.ndarray:
        # Multiplication theorem: He_k(r z) = Σ_j k!/(j!(k-2j)! 2^j) r^(k-2j)
        # (r²-1)^j He_{k-2j}(z).
        a = np.zeros((r.size, degree + 1))
        for j in range(k // 2 + 1):
            n = k - 2 * j
            if n > degree:
                continue
            c = math.exp(
                0.5 * math.lgamma(k + 1)
                - math.lgamma(j + 1)
                - 0.5 * math.lgamma(n + 1)
                - j * math.log(2.0)
            )
            a[:, n] = c * np.power(r, n) * np.power(r * r - 1.0, j)
        return a

    def _hermite(self, r, degree):
        k = self.degree
        with np.errstate(over="ignore", invalid="ignore"):
            a = self._coefs(k, r, degree)
            b = math.sqrt(k) * self._coefs(k - 1, r, degree) if k else np.zeros_like(a)
        return a, b

    def _dual(self, xp, kxx, kxy, kyy, derivative):
        S = _series_dual(xp, kxx, kxy, kyy, _hermite_A(self.degree), self.degree)
        Sd = None
        if derivative:
            k = self.degree
            if k == 0:
                Sd = xp.zeros_like(S)
            else:
                Sd = _series_dual(xp, kxx, kxy, kyy, _hermite_A(k - 1), k - 1)
                Sd *= float(k)
        return S, Sd


def _h(xp: Any, k: int, x: Any) -> Any:
    """``h_k(x)`` by the normalized three-term recurrence (see ``_hermite``)."""
    h_prev, h = xp.ones_like(x), x * 1.0
    if k == 0:
        return h_prev
    for n in range(1, k):
        h_prev, h = h, (x * h - math.sqrt(n) * h_prev) / math.sqrt(n + 1)
    return h


def _hermite_A(k: int) -> Callable[[int, Any], Any]:
    """``A_j(t) = E[h_k^{(j)}(u)] = sqrt(k!) ((t-1)/2)^m / m!`` for ``k - j = 2m``."""

    def A(j: int, t: Any) -> Any:
        if (k - j) % 2 or j > k:
            return 0.0 * t
        m = (k - j) // 2
        c = math.exp(0.5 * math.lgamma(k + 1) - math.lgamma(m + 1))
        return c * ((t - 1.0) * 0.5) ** m

    return A


@register("identity", aliases=("linear",))
@_dataclass
class Identity(_Homogeneous):
    """Identity ``x``: ``Σ = kxy``, ``Σ̇ = 1``."""

    @property
    def homogeneous_degree(self) -> int:
        return 1

    def _pointwise(self, xp, x):
        return x * 1.0

    def _pointwise_derivative(self, xp, x):
        return xp.ones_like(x)

    def _unit(self, degree):
        return monomial_hermite_coefficients(1, degree)

    def _dual(self, xp, kxx, kxy, kyy, derivative):
        shape = _shape(kxx, kxy, kyy)
        S = _broadcast_full(xp, kxy, shape, kxy)
        return S, (_broadcast_full(xp, 1.0, shape, kxy) if derivative else None)


# --------------------------------------------------------------------------- #
# Numerical activations (dual by bivariate Gauss-Hermite quadrature)
# --------------------------------------------------------------------------- #
class _Quadrature(Activation):
    """Activation without a closed-form dual, computed by numerical integration.

    :meth:`dual` uses the engine of :mod:`sklearn_ntk._quadrature` (per-scale
    Hermite coefficients, a Mehler series with a certified truncation bound,
    and a 2-D rule where the series would converge slowly): about ``1e-10``
    relative to ``sqrt(Σ(x, x) Σ(y, y))`` at every variance in ``[1e-8, 1e8]``
    and every correlation, and exactly symmetric in ``x <-> y``.
    ``n_nodes`` only sets the default of :meth:`dual_quadrature`, the plain
    Gauss-Hermite rule kept for comparison.
    """

    #: 1 if σ is odd, 0 if even, -1 if neither, None to probe it.
    _parity: ClassVar[int | None] = -1
    #: σ reaches its asymptotes (to e^-32) within |x| <= 32 (user callables:
    #: unknown, so the 2-D rule keeps refining geometrically).
    _saturating: ClassVar[bool] = True

    def _check_nodes(self) -> None:
        _set(self, "n_nodes", _check_int("n_nodes", self.n_nodes, minimum=1))

    def __post_init__(self):
        self._check_nodes()

    def _dual(self, xp, kxx, kxy, kyy, derivative):
        device = getattr(kxy, "device", None)
        host = [np.asarray(to_numpy(k), dtype=np.float64) for k in (kxx, kxy, kyy)]
        S, Sd = numerical_dual(self, *host, derivative, kinks=self._kinks)
        S = asxp(S, xp, device=device)
        if derivative:
            Sd = asxp(Sd, xp, device=device)
        return S, (Sd if derivative else None)

    def _hermite(self, r: np.ndarray, degree: int) -> tuple[np.ndarray, np.ndarray]:
        return numerical_hermite(self, r, degree, kinks=self._kinks)


@register("tanh")
@_dataclass
class Tanh(_Quadrature):
    """Hyperbolic tangent (numerically integrated dual)."""

    n_nodes: int = _DEFAULT_NODES
    _parity: ClassVar[int | None] = 1

    def _pointwise(self, xp, x):
        return xp.tanh(x)

    def _pointwise_derivative(self, xp, x):
        c = _clip(xp, x, -350.0, 350.0)  # 1 / cosh² underflows to 0 before
        c = _inplace(xp, "cosh", c)
        c *= c
        return _rdiv(xp, 1.0, c)


@register("sigmoid")
@_dataclass
class Sigmoid(_Quadrature):
    """Logistic sigmoid ``1 / (1 + exp(-x))`` (numerically integrated dual)."""

    n_nodes: int = _DEFAULT_NODES

    def _pointwise(self, xp, x):
        return _special(xp, "expit", x)

    def _pointwise_derivative(self, xp, x):
        s = _special(xp, "expit", x)
        t = _rsub(xp, 1.0, s)
        t *= s
        return t


@register("softplus")
@_dataclass
class Softplus(_Quadrature):
    """Softplus ``log(1 + exp(x))`` (numerically integrated dual)."""

    n_nodes: int = _DEFAULT_NODES

    def _pointwise(self, xp, x):
        return xp.logaddexp(_const(xp, 0.0, x), x)

    def _pointwise_derivative(self, xp, x):
        return _special(xp, "expit", x)


@register("silu", aliases=("swish",))
@_dataclass
class Silu(_Quadrature):
    """SiLU / swish ``x * sigmoid(x)`` (numerically integrated dual)."""

    n_nodes: int = _DEFAULT_NODES

    def _pointwise(self, xp, x):
        s = _special(xp, "expit", x)
        s *= x
        return s

    def _pointwise_derivative(self, xp, x):
        s = _special(xp, "expit", x)
        t = _rsub(xp, 1.0, s)
        t *= x
        t += 1.0
        t *= s
        return t


def _elu_smooth(alpha: float, mu: np.ndarray, tau: np.ndarray, derivative: bool):
    """``E[elu(mu + tau w)]`` (or of ``elu'``), ``w ~ N(0, 1)``, in closed form.

    ``E[(mu + tau w)_+] = mu Φ(mu/tau) + tau φ(mu/tau)`` and
    ``E[e^(mu + tau w) 1(mu + tau w < 0)] = e^(mu + tau²/2) Φ(-mu/tau - tau)``,
    the latter as ``½ erfcx(z/√2) e^(-mu²/(2 tau²))`` for ``z = mu/tau + tau >= 0``
    (no overflow).  ``tau = 0`` gives ``elu(mu)``.
    """
    with np.errstate(divide="ignore", invalid="ignore", over="ignore", under="ignore"):
        pos = tau > 0
        t = np.where(pos, tau, 1.0)
        x = mu / t
        z = x + t
        tilt = np.where(
            z >= 0,
            0.5 * special.erfcx(z * (1.0 / math.sqrt(2.0))) * np.exp(-0.5 * x * x),
            np.exp(mu + 0.5 * t * t) * special.ndtr(-z),
        )
        up = special.ndtr(x)
        if derivative:
            out = up + alpha * tilt
            exact = np.where(mu > 0, 1.0, alpha * np.exp(np.minimum(mu, 0.0)))
        else:
            out = mu * up + t * np.exp(-0.5 * x * x) * _INV_SQRT_2PI
            out += alpha * (tilt - special.ndtr(-x))
            exact = np.where(mu > 0, mu, alpha * np.expm1(np.minimum(mu, 0.0)))
        return np.where(pos, out, exact)


def _elu(xp: Any, alpha: float, x: Any, derivative: bool) -> Any:
    """``x if x > 0 else alpha (exp(x) - 1)``, or its derivative."""
    m = xp.minimum(x, _const(xp, 0.0, x))
    if derivative:
        m = _inplace(xp, "exp", m)
        m *= alpha
        return xp.where(x > 0, _const(xp, 1.0, x), m)
    m = _inplace(xp, "expm1", m)
    m *= alpha
    return xp.where(x > 0, x, m)


@register("elu")
@_dataclass
class Elu(_Quadrature):
    """ELU ``x if x > 0 else alpha (exp(x) - 1)`` (numerically integrated dual)."""

    alpha: float = 1.0
    n_nodes: int = _DEFAULT_NODES
    _kinks: ClassVar[tuple[float, ...]] = (0.0,)

    def __post_init__(self):
        _set(self, "alpha", _check_float("alpha", self.alpha, limit=_SQUARE_LIMIT))
        self._check_nodes()

    def _pointwise(self, xp, x):
        return _elu(xp, self.alpha, x, derivative=False)

    def _pointwise_derivative(self, xp, x):
        return _elu(xp, self.alpha, x, derivative=True)

    def _gauss_smooth(self, mu, tau, derivative):
        return _elu_smooth(self.alpha, mu, tau, derivative)


_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946


@register("selu")
@_dataclass
class Selu(_Quadrature):
    """SELU ``scale * elu(x, alpha)`` with the self-normalizing constants."""

    n_nodes: int = _DEFAULT_NODES
    _kinks: ClassVar[tuple[float, ...]] = (0.0,)

    def _pointwise(self, xp, x):
        y = _elu(xp, _SELU_ALPHA, x, derivative=False)
        y *= _SELU_SCALE
        return y

    def _pointwise_derivative(self, xp, x):
        y = _elu(xp, _SELU_ALPHA, x, derivative=True)
        y *= _SELU_SCALE
        return y

    def _gauss_smooth(self, mu, tau, derivative):
        return _SELU_SCALE * _elu_smooth(_SELU_ALPHA, mu, tau, derivative)


@register("mish")
@_dataclass
class Mish(_Quadrature):
    """Mish ``x * tanh(softplus(x))`` (numerically integrated dual)."""

    n_nodes: int = _DEFAULT_NODES

    def _pointwise(self, xp, x):
        t = _inplace(xp, "tanh", xp.logaddexp(_const(xp, 0.0, x), x))
        t *= x
        return t

    def _pointwise_derivative(self, xp, x):
        t = _inplace(xp, "tanh", xp.logaddexp(_const(xp, 0.0, x), x))
        u = t * t
        u = _rsub(xp, 1.0, u)
        u *= x
        u *= _special(xp, "expit", x)
        u += t
        return u


@_dataclass
class Numerical(_Quadrature):
    """Any callable activation, with numerical dual and Hermite coefficients.

    Parameters
    ----------
    fn : callable
        Vectorized NumPy function of one variable.  The dual is accurate for
        functions that are smooth (or kinked only at 0 and at ``kinks``), of
        at most polynomial growth, and whose changes of behaviour happen at
        arguments of order 1 (as for the usual activations).
    derivative : callable, optional
        Its derivative; default: central finite differences with step
        ``eps^(1/3) max(1, |x|)`` (error about 1e-10 for smooth ``fn``, which
        then bounds the accuracy of ``Σ̇``).
    n_nodes : int, default=120
        Gauss-Hermite nodes per dimension of :meth:`dual_quadrature` (not used
        by :meth:`dual`).
    kinks : tuple of float, default=()
        Points other than 0 where ``fn`` or ``derivative`` is not smooth;
        the quadrature rules put panel ends there at every scale.

    Equality and hashing use the identity of ``fn`` and ``derivative``.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_ntk.activations import Numerical
    >>> act = Numerical(np.tanh, derivative=lambda x: 1 / np.cosh(x) ** 2)
    >>> S, Sd = act.dual(1.0, 1.0, 1.0)
    >>> round(float(S), 6)
    0.394294
    >>> kinked = Numerical(lambda x: np.maximum(x, 1.0), kinks=(1.0,))
    >>> round(float(kinked.dual(4.0, 2.0, 1.0)[0]), 6)  # E[max(2z, 1) max(z, 1)]
    1.712904
    """

    fn: Callable[[np.ndarray], np.ndarray] = None  # type: ignore[assignment]
    derivative_fn: Callable[[np.ndarray], np.ndarray] | None = None
    n_nodes: int = _DEFAULT_NODES
    kinks: tuple[float, ...] = ()
    name: ClassVar[str] = "numerical"
    _array_api: ClassVar[bool] = False
    _parity: ClassVar[int | None] = None
    _saturating: ClassVar[bool] = False

    def __init__(
        self,
        fn: Callable[[np.ndarray], np.ndarray],
        derivative: Callable[[np.ndarray], np.ndarray] | None = None,
        n_nodes: int = _DEFAULT_NODES,
        kinks: Sequence[float] = (),
    ):
        if not callable(fn):
            raise TypeError(f"fn must be callable, got {fn!r}.")
        if derivative is not None and not callable(derivative):
            raise TypeError(f"derivative must be callable or None, got {derivative!r}.")
        _set(self, "fn", fn)
        _set(self, "derivative_fn", derivative)
        _set(self, "n_nodes", n_nodes)
        self._check_nodes()
        if isinstance(kinks, numbers.Real):
            kinks = (kinks,)
        try:
            kinks = tuple(sorted({_check_float("kinks", k) for k in kinks}))
        except TypeError as exc:
            raise TypeError(
                f"kinks must be a sequence of real numbers, got {kinks!r}."
            ) from exc
        _set(self, "kinks", kinks)

    def __reduce__(self):
        return (type(self), (self.fn, self.derivative_fn, self.n_nodes, self.kinks))

    @property
    def _kinks(self) -> tuple[float, ...]:  # type: ignore[override]
        return self.kinks

    @property
    def _fd_derivative(self) -> bool:
        return self.derivative_fn is None

    # User callables are NumPy functions: evaluated on the host (_array_api).
    def _pointwise(self, xp, x):
        return _call_user(self.fn, x, "fn")

    def _pointwise_derivative(self, xp, x):
        if self.derivative_fn is not None:
            return _call_user(self.derivative_fn, x, "derivative")
        h = np.finfo(np.float64).eps ** (1.0 / 3.0) * np.maximum(1.0, np.abs(x))
        return (self._fn(x + h) - self._fn(x - h)) / ((x + h) - (x - h))


def _callable_name(fn: Any) -> str:
    return getattr(fn, "__qualname__", None) or repr(fn)


def _call_user(fn: Callable[[np.ndarray], Any], x: np.ndarray, role: str) -> np.ndarray:
    """``fn(x)`` as float64 of ``x``'s shape, or an error naming ``fn``.

    A user's activation must be elementwise and real: its values feed the
    quadrature of the dual and the Hermite coefficients, where a NaN would
    silently become a NaN kernel.  NaN outputs at finite inputs are refused
    (NaN or inf inputs may give NaN: that is the caller's NaN); infinite
    outputs are overflow, reported with the scale by the kernel drivers.
    """
    name = f"The activation callable {_callable_name(fn)} ({role})"
    try:
        y = fn(x)
    except Exception as exc:
        if hasattr(exc, "add_note"):
            exc.add_note(f"{name} raised at inputs of shape {np.shape(x)}.")
        raise
    y = np.asarray(to_numpy(y) if not isinstance(y, np.ndarray) else y)
    if y.dtype.kind == "c":
        raise TypeError(f"{name} returned complex values; it must be real.")
    if y.dtype.kind not in "biuf":
        raise TypeError(
            f"{name} returned dtype {y.dtype}; it must return real numbers."
        )
    if y.shape != np.shape(x):
        try:
            y = np.array(np.broadcast_to(y, np.shape(x)))  # a writeable copy
        except ValueError:
            raise ValueError(
                f"{name} returned shape {y.shape} for input of shape "
                f"{np.shape(x)}; it must be elementwise (vectorized NumPy)."
            ) from None
    y = np.asarray(y, dtype=np.float64)
    bad = np.isnan(y)
    if bad.any():
        bad &= np.isfinite(x)
        if bad.any():
            at = np.asarray(x)[bad].ravel()
            raise ValueError(
                f"{name} returned NaN at x = {at[np.argmin(np.abs(at))]:g} "
                f"({int(bad.sum())} of {bad.size} points, |x| up to "
                f"{np.max(np.abs(at)):g}); an activation must be finite on the "
                "real line (where the dual's quadrature evaluates it)."
            )
    return y


# --------------------------------------------------------------------------- #
# Names
# --------------------------------------------------------------------------- #
def available() -> list[str]:
    """Names accepted by :func:`get`: canonical names, then aliases.

    Examples
    --------
    >>> from sklearn_ntk.activations import available
    >>> available()[:3]
    ['relu', 'leaky_relu', 'abs']
    """
    return [*_REGISTRY, *_ALIASES]


def _init_params(cls: type) -> list[str]:
    return [f.name for f in fields(cls) if f.init]


def get(act: str | Activation | Callable[..., Any], **params: Any) -> Activation:
    """Build an activation from a name, an instance or a callable.

    Parameters
    ----------
    act : str, Activation or callable
        A name from :func:`available` (case-insensitive, ``-`` as ``_``), an
        :class:`Activation` (returned as is), or a callable (wrapped in
        :class:`Numerical`).
    **params
        Parameters of the named activation (e.g. ``alpha`` for
        ``leaky_relu``), or ``derivative``/``n_nodes``/``kinks`` for a callable.

    Returns
    -------
    Activation

    Raises
    ------
    ValueError
        Unknown name or parameter, or parameters given with an instance.

    Examples
    --------
    >>> from sklearn_ntk.activations import get
    >>> get("leaky_relu", alpha=0.1)
    LeakyRelu(alpha=0.1)
    >>> get("swish")
    Silu(n_nodes=120)
    """
    if isinstance(act, Activation):
        if params:
            raise ValueError(
                f"Parameters {sorted(params)} cannot be given with an Activation "
                f"instance ({act!r})."
            )
        return act
    if isinstance(act, str):
        key = _key(act)
        key = _ALIASES.get(key, key)
        if key not in _REGISTRY:
            raise ValueError(
                f"Unknown activation {act!r} (names are case-insensitive). Valid "
                f"names: {', '.join(sorted(available()))}."
            )
        cls = _REGISTRY[key]
        allowed = _init_params(cls)
        unknown = sorted(set(params) - set(allowed))
        if unknown:
            raise ValueError(
                f"Unknown parameter(s) {unknown} for activation {key!r}; valid "
                f"parameters: {allowed or 'none'}."
            )
        return cls(**params)
    if callable(act):
        unknown = sorted(set(params) - {"derivative", "n_nodes", "kinks"})
        if unknown:
            raise ValueError(
                f"Unknown parameter(s) {unknown} for a callable activation; valid "
                "parameters: ['derivative', 'kinks', 'n_nodes']."
            )
        return Numerical(act, **params)
    raise ValueError(
        f"act must be a name, an Activation or a callable, got {act!r}. "
        f"Valid names: {', '.join(sorted(available()))}."
    )
