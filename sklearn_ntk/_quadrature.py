"""Accurate and fast dual kernels of numerically integrated activations.

Private engine of :mod:`sklearn_ntk.activations` for activations without a
closed-form dual (tanh, sigmoid, softplus, silu, mish, elu, selu and user
callables).  For ``(u, v) ~ N(0, [[kxx, kxy], [kxy, kyy]])`` it computes
``Σ = E[σ(u) σ(v)]`` and ``Σ̇ = E[σ'(u) σ'(v)]`` to about ``1e-10`` relative
to ``sqrt(Σ(x, x) Σ(y, y))`` for variances from ``1e-8`` to ``1e8`` and every
correlation, in three tiers:

1. **Per scale** (a layer has only ``n + m`` distinct variances): the
   normalized Hermite coefficients ``a_n(r) = E[σ(r z) h_n(z)]``, ``b_n(r)``
   (same with ``σ'``), and the exact 1-D moments ``E[σ(r z)²]``,
   ``E[σ(r z) σ(-r z)]``, by one fixed composite Gauss-Legendre rule
   (:func:`universal_rule`) whose panels are geometric near 0, so that it
   resolves ``σ(r z)`` at every scale ``r`` up to ``1e8`` at once.  They are
   tabulated once per activation on each octave of ``r`` and interpolated
   (:func:`scale_moments`; each table is checked against direct values when
   built), so a scale costs a few dozen multiply-adds.
2. **Per pair, Mehler series** ``Σ = Σ_n a_n(r_x) a_n(r_y) ρ^n``, summed by
   Horner's rule in blocks ending at fixed numbers of terms ("tiers").  By
   Cauchy-Schwarz the remainder after degree ``N`` is at most
   ``|ρ|^(N+1) sqrt(T_x(N) T_y(N))`` with the exact tails
   ``T(N) = E[σ(r z)²] - Σ_{n<=N} a_n(r)²``; each pair stops at the first tier
   where this certified bound is below ``TOL = 1e-10``.  Pairs that need
   more than 32 terms are gathered and continued from their partial sums,
   each once, to the first tier (of fine steps) its bound passes, with
   coefficients up to degree 255, then (large scales) up to degree 1023.
   A batch of the pairs of one set with itself (a diagonal tile) is
   computed on its upper triangle and mirrored.
3. **Per pair, 2-D quadrature** for the few pairs the series cannot settle
   (large scales with ``|ρ|`` near 1, kinked activations near ``|ρ| = 1``):
   an iterated composite Gauss-Legendre rule in ``a = u / sqrt(kxx)`` and the
   conditional variable of ``v`` given ``u``, with breakpoints at every place
   where ``σ(u)``, ``σ(v)`` or the conditional mean change behaviour
   (:func:`pair_quadrature`); the inner integral is in closed form for
   elu/selu and by Gauss-Hermite where it is smooth.  For the smooth
   saturating activations (tanh, sigmoid, softplus, silu, mish) the inner
   integral ``G(m, τ) = E_w[σ(m + τ w)]`` depends on the pair only through
   the conditional mean and deviation, so it is tabulated once per
   activation and octave of ``τ`` (checked against the direct rule at
   interleaved points when built, :class:`_InnerTable`): a hard pair then
   costs a 1-D outer rule (about 0.05 ms instead of 5-20 ms), and repeated
   hard pairs (equal patches) are integrated once.

Exact symmetry: every pair's value is a fixed sequence of IEEE operations on
its own data (products of the two scales' coefficients, tier thresholds that
are products of per-scale factors, the 2-D rule on the ordered pair
``kxx <= kyy``), whatever else is computed with it, so ``Σ(x, y)`` and
``Σ(y, x)`` agree to the last bit.  The BLAS calls keep this: matrix products
run in fixed-size padded batches, and rank-1 updates are used only where a
check shows them bit-identical to NumPy's (:func:`_rank1_ok`).

Pairs with ``kxx == kyy == ± kxy`` bitwise (an input paired with itself) get
the 1-D moments exactly, so ``Σ(x, x)`` is the same number whether it comes
from a diagonal or a full call.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from functools import lru_cache
from math import pi, sqrt
from typing import Any

import numpy as np
from scipy.linalg.blas import dgemm as _dgemm

from ._hermite import gauss_hermite, gauss_legendre

__all__ = [
    "direct_moments",
    "numerical_dual",
    "numerical_hermite",
    "pair_quadrature",
    "scale_moments",
    "universal_rule",
]

_INV_SQRT_2PI = 1.0 / sqrt(2.0 * pi)

#: Half-width of the 1-D rule.  By Cramér's inequality
#: ``|h_n(z)| <= 1.09 exp(z²/4)`` for every ``n``, so ``|h_n φ| <= 0.44 exp(-z²/4)``
#: and the mass beyond 14 is below ``e^-49 ≈ 5e-22`` (times the growth of σ).
_L1 = 14.0
#: Geometric panels ``[2^k, 2^(k+1)]`` from ``2^-30 ≈ 9e-10``: ``σ(r z)`` changes
#: behaviour at ``z ~ 1/r``, so every ``r <= 1e8`` sees its transition resolved
#: by panels of ratio 2 (16 Gauss-Legendre nodes each: error ~ 6e-25 for a
#: function analytic in the ellipse through the imaginary axis).
_GEOM_MIN_EXP = -30
_PANEL_NODES = 16


@lru_cache(maxsize=8)
def universal_rule(width: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """Nodes and weights of ``E_{z~N(0,1)}[f(z)]`` for ``f(z) = g(r z) p(z)``.

    Composite Gauss-Legendre, 16 nodes per panel, on ``[-14, 14]``: panels
    ``[0, 2^-30]``, ``[2^k, 2^(k+1)]`` up to ``0.5``, then of ``width`` up to
    14, mirrored.  The nodes are symmetric (``z[::-1] == -z``), the weights
    include the normal density.  Arrays are cached and read-only.
    """
    geom = 2.0 ** np.arange(_GEOM_MIN_EXP, 0)  # 2^-30 .. 2^-1
    lin = np.arange(0.5 + width, _L1 + 0.5 * width, width)
    pos = np.concatenate([[0.0], geom, lin])
    lo, hi = pos[:-1], pos[1:]
    xg, wg = gauss_legendre(_PANEL_NODES)
    half = 0.5 * (hi - lo)
    z = ((0.5 * (hi + lo))[:, None] + half[:, None] * xg).ravel()
    w = (half[:, None] * wg).ravel() * np.exp(-0.5 * z * z) * _INV_SQRT_2PI
    z = np.concatenate([-z[::-1], z])
    w = np.concatenate([w[::-1], w])
    w /= w.sum()  # exact normalization (the rule integrates 1 to ~1e-16 anyway)
    z.flags.writeable = False
    w.flags.writeable = False
    return z, w


def _weighted_hermite(degree: int, width: float) -> np.ndarray:
    """``H[k, n] = w_k h_n(z_k)`` (cached up to degree 255: the degree-1023
    matrix, 22 MB, is only needed while building a table, so it is rebuilt)."""
    if degree <= _MAX_DEGREE:
        return _weighted_hermite_cached(degree, width)
    return _weighted_hermite_build(degree, width)


@lru_cache(maxsize=8)
def _weighted_hermite_cached(degree: int, width: float) -> np.ndarray:
    return _weighted_hermite_build(degree, width)


def _weighted_hermite_build(degree: int, width: float) -> np.ndarray:
    """``H[k, n] = w_k h_n(z_k)`` on :func:`universal_rule` (F-ordered for GEMM).

    The normalized recurrence cannot overflow here: ``|h_n(z)| <= 1.09 e^{z²/4}``
    is below ``3e21`` on ``[-14, 14]`` for every degree.
    """
    z, w = universal_rule(width)
    H = np.empty((z.size, degree + 1))
    h_prev = np.ones_like(z)
    H[:, 0] = w
    if degree >= 1:
        h = z.copy()
        H[:, 1] = w * h
        for n in range(1, degree):
            h_next = z * h
            h_next -= sqrt(n) * h_prev
            h_next *= 1.0 / sqrt(n + 1)
            h_prev, h = h, h_next
            H[:, n + 1] = w * h
    H = np.asfortranarray(H)
    H.flags.writeable = False
    return H


def rule_width(degree: int) -> float:
    """Base panel width resolving ``h_n``, ``n <= degree`` (local wavelength
    ``2π / sqrt(2n)``): at least 2.5 Gauss-Legendre nodes per oscillation."""
    if degree <= 300:
        return 0.5
    return 0.5 / 2 ** int(np.ceil(np.log2(sqrt(degree / 300.0))))


# --------------------------------------------------------------------------- #
# Tier 1: per-scale moments and Hermite coefficients
# --------------------------------------------------------------------------- #
#: Largest ``m n k`` of one matrix product: OpenBLAS runs bigger ones on all
#: its threads, which on a busy machine costs 100 times the product itself
#: (threads wait for cores); ours are small and many, so they stay below.
_GEMM_MNK = 1 << 18


def _gemm(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """``A @ B`` in column blocks small enough for single-threaded BLAS (the
    blocks are a function of the shapes only, so results stay deterministic)."""
    m, k = A.shape
    step = max(1, _GEMM_MNK // max(1, m * k))
    if step >= B.shape[1]:
        return A @ B
    out = np.empty((m, B.shape[1]))
    for c0 in range(0, B.shape[1], step):
        out[:, c0 : c0 + step] = A @ B[:, c0 : c0 + step]
    return out


#: Scales per matrix product.  OpenBLAS computes edge tiles with other kernels,
#: so a row's result depends on the batch it is in; fixed, zero-padded batches
#: make every coefficient a deterministic function of its own scale.
_BATCH = 16


def _eval(fn: Callable[[np.ndarray], np.ndarray], x: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        return np.asarray(fn(x), dtype=np.float64)


def parity(fn: Callable[[np.ndarray], np.ndarray]) -> int:
    """``1`` if ``fn`` is odd, ``0`` if even, ``-1`` otherwise (bitwise, on a probe
    set of 1-D rule points at several scales; a fixed probe keeps the answer a
    property of ``fn`` alone)."""
    z, _ = universal_rule(0.5)
    x = np.concatenate([z[z > 0] * s for s in (1e-6, 0.1, 1.0, 3.0, 30.0, 1e4)])
    fp, fm = _eval(fn, x), _eval(fn, -x)
    if np.array_equal(fp, fm):
        return 0
    if np.array_equal(fp, -fm):
        return 1
    return -1


def _kinked_rules(r: np.ndarray, kinks: tuple[float, ...], width: float):
    """Per-scale rules ``(z, w)`` of shape ``(len(r), Q)``: the universal
    breakpoints plus ``(k + {0, ±2^j}) / r`` for the kinks ``k != 0`` of a user
    activation (such a kink moves with the scale).  Every scale gets the same
    number of panels (repeated points make empty ones), so that each row's
    sums have one fixed length and order: a scale's moments do not depend on
    which other scales are computed with it."""
    geom = 2.0 ** np.arange(_GEOM_MIN_EXP, 0)
    lin = np.arange(0.5 + width, _L1 + 0.5 * width, width)
    pos = np.concatenate([[0.0], geom, lin])
    base = np.concatenate([-pos[:0:-1], pos])
    extra = [(k + np.concatenate([[0.0], -_LADDER, _LADDER])) for k in kinks if k != 0]
    extra = np.concatenate(extra) if extra else np.zeros(0)
    with np.errstate(divide="ignore", invalid="ignore"):
        moving = np.where(r[:, None] > 0, extra[None, :] / r[:, None], 0.0)
    bp = np.concatenate([np.broadcast_to(base, (r.size, base.size)), moving], axis=1)
    bp = np.clip(bp, -_L1, _L1)
    bp.sort(axis=1)
    xg, wg = gauss_legendre(_PANEL_NODES)
    half = 0.5 * (bp[:, 1:] - bp[:, :-1])
    z = ((0.5 * (bp[:, 1:] + bp[:, :-1]))[:, :, None] + half[:, :, None] * xg).reshape(
        r.size, -1
    )
    w = (
        (half[:, :, None] * wg).reshape(r.size, -1)
        * np.exp(-0.5 * z * z)
        * _INV_SQRT_2PI
    )
    return z, w


def direct_moments(
    g: Callable, r: np.ndarray, degree: int, kinks: tuple[float, ...] = ()
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``coef (S, q+1)``, ``E[g(rz)²]``, ``E[g(rz) g(-rz)]`` on the 1-D rule.

    Kinks at 0 are panel ends of the universal rule; kinks elsewhere move
    with the scale and get per-scale rules.
    """
    S = r.size
    width = rule_width(degree)
    coef = np.empty((S, degree + 1))
    sq = np.empty(S)
    anti = np.empty(S)
    if any(k != 0 for k in kinks):
        for s0 in range(0, S, _BATCH):
            rb = r[s0 : s0 + _BATCH]
            z, w = _kinked_rules(rb, kinks, width)
            fp, fm = _eval(g, rb[:, None] * z), _eval(g, -rb[:, None] * z)
            fw = fp * w
            sq[s0 : s0 + rb.size] = np.einsum("sq,sq->s", fw, fp)
            anti[s0 : s0 + rb.size] = np.einsum("sq,sq->s", fw, fm)
            # normalized Hermite recurrence, one degree at a time
            h_prev, h = np.ones_like(z), z.copy()
            out = coef[s0 : s0 + rb.size]
            out[:, 0] = fw.sum(axis=1)
            if degree >= 1:
                out[:, 1] = np.einsum("sq,sq->s", fw, h)
            for n in range(1, degree):
                h_next = z * h
                h_next -= sqrt(n) * h_prev
                h_next *= 1.0 / sqrt(n + 1)
                h_prev, h = h, h_next
                out[:, n + 1] = np.einsum("sq,sq->s", fw, h)
    else:
        z, w = universal_rule(width)
        H = _weighted_hermite(degree, width)
        for s0 in range(0, S, _BATCH):
            rb = r[s0 : s0 + _BATCH]
            F = np.zeros((_BATCH, z.size))
            F[: rb.size] = _eval(g, rb[:, None] * z)
            coef[s0 : s0 + rb.size] = _gemm(F, H)[: rb.size]
            Fw = F * w
            sq[s0 : s0 + rb.size] = (Fw * F).sum(axis=1)[: rb.size]
            anti[s0 : s0 + rb.size] = (Fw * F[:, ::-1]).sum(axis=1)[: rb.size]
    zero = r == 0  # g(0 z) = g(0): exact values, not the rule's rounding
    if np.any(zero):
        g0 = float(_eval(g, np.zeros(1))[0])
        coef[zero] = 0.0
        coef[zero, 0] = g0
        sq[zero] = anti[zero] = g0 * g0
    return coef, sq, anti


class Moments:
    """Per-scale quantities of one function ``g`` (``σ`` or ``σ'``).

    Attributes (``S`` distinct scales, degrees ``0..q``):

    * ``coef``: ``(q + 1, S)``, ``coef[n, s] = E[g(r_s z) h_n(z)]``;
    * ``sq``: ``E[g(r z)²]`` (the dual at ``ρ = 1``, equal scales);
    * ``anti``: ``E[g(r z) g(-r z)]`` (the dual at ``ρ = -1``, equal scales);
    * ``tail(n)``: ``sq - Σ_{k<=n} coef[k]²``, floored at ``1e-13 sq`` (the
      rounding level of the two terms), for the degrees the tiers ask for;
    * ``parity``: 1 (odd g: only odd degrees), 0 (even), -1 (neither).
    """

    def __init__(self, coef: np.ndarray, sq: np.ndarray, anti: np.ndarray, par: int):
        self.coef = np.array(coef.T, dtype=np.float64, order="C")  # one copy
        if par >= 0:  # exact zeros where symmetry forces them
            self.coef[1 - par :: 2] = 0.0
            anti = -sq if par == 1 else sq
        self.parity = par
        self.sq = np.asarray(sq, dtype=np.float64)
        self.anti = np.asarray(anti, dtype=np.float64)
        self.finite = bool(
            np.all(np.isfinite(self.coef)) and np.all(np.isfinite(self.sq))
        )
        self._cum: np.ndarray | None = None

    def tail(self, n: int) -> np.ndarray:
        """``max(sq - Σ_{k<=n} coef[k]², 1e-13 sq)`` per scale."""
        if self._cum is None:
            # Running sums over the degrees of the parity only: adding the
            # exact zeros of the others would change no bit.
            first = max(self.parity, 0)
            step = 2 if self.parity >= 0 else 1
            c = self.coef[first::step]
            self._cum = np.cumsum(c * c, axis=0)
            self._first, self._step = first, step
        if n < self._first:
            return np.maximum(self.sq, 1e-13 * self.sq)
        cum = self._cum[(n - self._first) // self._step]
        return np.maximum(self.sq - cum, 1e-13 * self.sq)


# --------------------------------------------------------------------------- #
# Per-activation cache: moments interpolated in the scale
# --------------------------------------------------------------------------- #
#: ``a_n(r)`` is analytic in ``r > 0``: on each octave ``[2^j, 2^(j+1))`` of
#: the scale, polynomial interpolation in ``log2 r`` at 20 Chebyshev points is
#: accurate to rounding (checked at build time against direct values at the
#: 19 interleaved points; an octave that fails is halved).  Once an octave is
#: built, a scale costs 20 multiply-adds per coefficient instead of ~2000
#: evaluations of the activation.
_CHEB_P = 20
_OCT_MIN, _OCT_MAX = -14, 14  # scales 6e-5 .. 3e4 (variances 4e-9 .. 3e8)
_CHECK_TOL = 4e-14
_cache: dict = {}
_cache_lock = threading.Lock()
_CACHE_SIZE = 16


def _cheb_nodes(P: int) -> np.ndarray:
    return np.cos(pi * np.arange(P) / (P - 1))[::-1].copy()


def _bary(x: np.ndarray, P: int) -> np.ndarray:
    """Barycentric weights ``L (len(x), P)`` of the Chebyshev points on [-1, 1]."""
    xn = _cheb_nodes(P)
    wb = np.ones(P)
    wb[0] = wb[-1] = 0.5
    wb[1::2] *= -1.0
    d = x[:, None] - xn[None, :]
    hit = d == 0
    d[hit] = 1.0
    L = wb / d
    L /= L.sum(axis=1, keepdims=True)
    rows = hit.any(axis=1)
    L[rows] = hit[rows].astype(np.float64)
    return L


def _combine(L: np.ndarray, vals: np.ndarray) -> np.ndarray:
    """``L @ vals`` in zero-padded batches of ``_BATCH`` rows (a fixed GEMM
    shape: each row's result depends on that row alone, see ``_BATCH``)."""
    out = np.empty((L.shape[0], vals.shape[1]))
    for s0 in range(0, L.shape[0], _BATCH):
        Lb = L[s0 : s0 + _BATCH]
        pad = np.zeros((_BATCH, L.shape[1]))
        pad[: Lb.shape[0]] = Lb
        out[s0 : s0 + Lb.shape[0]] = _gemm(pad, vals)[: Lb.shape[0]]
    return out


class _Interval:
    """Chebyshev interpolant of the moments on ``[lo, hi)`` in ``log2 r``."""

    def __init__(self, g, lo, hi, degree, kinks):
        self.lo, self.hi = lo, hi
        x = _cheb_nodes(_CHEB_P)
        coef, sq, anti = direct_moments(
            g, 2.0 ** (lo + (x + 1) * 0.5 * (hi - lo)), degree, kinks
        )
        self.vals = np.concatenate([coef, sq[:, None], anti[:, None]], axis=1)
        self._parity_vals: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def __call__(self, t: np.ndarray, par: int = -1) -> np.ndarray:
        """Interpolated rows at ``log2 r = t``; for ``par >= 0`` only the
        degrees of that parity (and the two 1-D moments) are interpolated,
        the others are left 0 (:class:`Moments` zeroes them anyway)."""
        x = 2.0 * (t - self.lo) / (self.hi - self.lo) - 1.0
        L = _bary(x, _CHEB_P)
        if par < 0:
            return _combine(L, self.vals)
        sub = self._parity_vals.get(par)
        if sub is None:
            q = self.vals.shape[1] - 3
            cols = np.r_[par : q + 1 : 2, q + 1, q + 2]
            sub = (cols, np.ascontiguousarray(self.vals[:, cols]))
            self._parity_vals[par] = sub
        out = np.zeros((t.size, self.vals.shape[1]))
        out[:, sub[0]] = _combine(L, sub[1])
        return out


def _build_octave(g, j, degree, kinks, tol=_CHECK_TOL, depth=0):
    """Interpolants on ``[j, j + 1)`` in ``log2 r``, halving (at most twice) where
    the check against direct values at interleaved points fails; None if
    even quarter octaves fail (the scales there are then computed directly)."""
    iv = _Interval(g, float(j), float(j) + 2.0**-depth, degree, kinks)
    n_check = _CHEB_P - 1 if degree <= _MAX_DEGREE else 7  # cheaper for 1023
    xc = np.cos(pi * (np.arange(n_check) + 0.5) / n_check)
    tc = iv.lo + (xc + 1) * 0.5 * (iv.hi - iv.lo)
    coef, sq, anti = direct_moments(g, 2.0**tc, degree, kinks)
    approx = iv(tc)
    scale = np.sqrt(np.maximum(sq, 1e-300))[:, None]
    err = np.abs(approx - np.concatenate([coef, sq[:, None], anti[:, None]], axis=1))
    err[:, :-2] /= scale
    err[:, -2:] /= scale * scale
    if np.max(err) <= tol or depth >= 2:
        return [iv] if np.max(err) <= tol else None
    left = _build_octave(g, j, degree, kinks, tol, depth + 1)
    right = _build_octave(g, j + 2.0 ** -(depth + 1), degree, kinks, tol, depth + 1)
    return None if left is None or right is None else left + right


# Overflow is reported by the callers (``Moments.finite``, the finiteness
# checks of the Hermite coefficients), not as NumPy warnings.
@np.errstate(over="ignore", invalid="ignore")
def scale_moments(
    act: Any,
    derivative: bool,
    r: np.ndarray,
    degree: int,
    kinks: tuple[float, ...] = (),
) -> Moments:
    """Moments of ``σ`` (or ``σ'``) at the scales ``r``, degree ``<= degree``.

    Scales inside the cached octaves are interpolated, the others (0, tiny,
    huge) computed directly; both are deterministic functions of the scale.
    The last result per activation is kept: a layer asks for the same scales
    three times (the pairs, then the two diagonals).
    """
    try:
        memo_key = (act, derivative, degree, kinks)
        hit = _memo.get(memo_key)
    except TypeError:  # unhashable activation
        memo_key, hit = None, None
    if hit is not None and np.array_equal(hit[0], r):
        return hit[1]
    m = _scale_moments(act, derivative, r, degree, kinks)
    if memo_key is not None:
        if len(_memo) >= _CACHE_SIZE:
            _memo.pop(next(iter(_memo)), None)
        _memo[memo_key] = (r.copy(), m)
    return m


_memo: dict = {}


def _scale_moments(act, derivative, r, degree, kinks):
    par = act_parity(act, derivative)
    g = act._deriv if derivative else act._fn
    key = (act, derivative, degree, kinks)
    with np.errstate(divide="ignore"):
        t = np.where(r > 0, np.log2(np.where(r > 0, r, 1.0)), -np.inf)
    j = np.floor(t)
    inside = (j >= _OCT_MIN) & (j < _OCT_MAX)
    out = np.empty((r.size, degree + 3))
    try:
        tables = _cache.get(key)
    except TypeError:  # unhashable activation: no cache
        tables, key = None, None
    if tables is None:
        tables = {}
        if key is not None:
            with _cache_lock:
                if len(_cache) >= _CACHE_SIZE:
                    _cache.pop(next(iter(_cache)))
                tables = _cache.setdefault(key, tables)
    for jj in np.unique(j[inside]).astype(int):
        ivs = tables.get(jj)
        if ivs is None:
            # a finite-difference derivative is itself only ~1e-10 accurate
            tol = (
                1e-10
                if derivative and getattr(act, "_fd_derivative", False)
                else _CHECK_TOL
            )
            ivs = _build_octave(g, jj, degree, kinks, tol) or False
            tables[jj] = ivs
        sel = np.flatnonzero(j == jj)
        if ivs is False:
            inside[sel] = False
            continue
        for iv in ivs:
            s = sel[(t[sel] >= iv.lo) & (t[sel] < iv.hi)]
            if s.size:
                out[s] = iv(t[s], par)
    rest = np.flatnonzero(~inside)
    if rest.size:
        coef, sq, anti = direct_moments(g, r[rest], degree, kinks)
        out[rest] = np.concatenate([coef, sq[:, None], anti[:, None]], axis=1)
    return Moments(out[:, : degree + 1], out[:, -2], out[:, -1], par)


# --------------------------------------------------------------------------- #
# Tier 2: Mehler series with certified truncation
# --------------------------------------------------------------------------- #
#: Target bound on the truncation error, relative to ``sqrt(Σ(x,x) Σ(y,y))``.
TOL = 1e-10
#: Terms (of the parity's degrees) after which a pair may stop, in the bulk
#: pass (coefficients interpolated from the per-activation cache).
_BULK_TIERS = (12, 16, 20, 24, 32)
#: Numbers of terms of the gathered pairs (coefficients up to degree 255),
#: then of those no such tier settles (large scales: up to degree 1023).
#: Each gathered pair is summed once, to the first tier its certified bound
#: passes (tiers beyond a function's degrees are never passed), so fine
#: tiers cost no extra pass.
_GATHER_TIERS = (40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256)
_MAX_DEGREE = 255
_HIGH_TIERS = (160, 192, 224, 256, 320, 384, 448, 512, 640, 768, 896, 1024)
_TOP_DEGREE = 1023
#: Pair entries per block of the bulk pass (a few arrays of this size stay in L2).
_CHUNK = 1 << 16
#: Continue on the gathered unsettled pairs once fewer than this share remain.
_COMPACT = 0.1


def _degrees(par: int, n_terms: int) -> np.ndarray:
    """Hermite degrees of the first ``n_terms`` terms of a function of parity ``par``."""
    k = np.arange(n_terms)
    return k if par < 0 else par + 2 * k


def _thresholds(m: Moments, tiers: tuple[int, ...]) -> np.ndarray:
    """``γ[t, s]``: a pair passes tier ``t`` iff ``|ρ| <= γ[t, x] γ[t, y]``.

    From ``|ρ|^(N+1) sqrt(T_x T_y) <= TOL sqrt(E_x E_y)``, with ``N`` the last
    degree of the tier, ``T`` the tails and ``E = E[g(rz)²]``.
    """
    q = m.coef.shape[0] - 1
    out = np.empty((len(tiers), m.sq.size))
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        for t, K in enumerate(tiers):
            N = int(_degrees(m.parity, K)[-1])
            if N > q:
                out[t] = 0.0
                continue
            ratio = TOL * m.sq / m.tail(N)
            out[t] = np.where(m.sq > 0, np.exp(np.log(ratio) / (2.0 * (N + 1))), np.inf)
    return out


class _Powers:
    """``var^k`` for the block starts ``k`` of the tiers, by squarings and
    products only (the same operations whatever the array's layout)."""

    def __init__(self, var: np.ndarray):
        self.p = {1: var}

    def get(self, k: int) -> np.ndarray:
        if k not in self.p:
            h = 1 << (k.bit_length() - 1)
            if h == k:
                self.p[k] = self.get(h // 2) * self.get(h // 2)
            else:
                self.p[k] = self.get(h) * self.get(k - h)
        return self.p[k]


def _series(
    m,
    tiers,
    cx,
    cy,
    thr,
    rho,
    absr,
    var,
    out,
    *,
    k0=0,
    S=None,
    compact=None,
    rank1=None,
    outer0=None,
    bounds=None,
    pw=None,
):
    """Tiered forward sum of ``Σ_k cx_k cy_k var^k`` (Horner's rule within a tier).

    ``cx(d)``, ``cy(d)``: coefficient arrays of degree ``d`` broadcasting to
    ``var``; ``thr(t, buf)`` fills ``buf`` with the pairs' bounds of tier ``t``
    (a pair passes tier ``t`` iff ``absr <= buf``).  A pair is written to
    ``out`` (times ``ρ`` for an odd function) at the first tier it passes,
    and never again.  Every pair's value is the same sequence of IEEE
    elementwise operations whatever else is in the arrays, so it depends on
    the pair alone (hence the kernel's exact symmetry), also when ``compact``
    gathers the unsettled pairs midway.  ``rank1(H, d)``, if given, does
    ``H += cx(d) cy(d)`` in place and ``outer0(H, d)`` sets ``H = cx(d) cy(d)``
    (by BLAS, see :func:`_rank1_ok`).
    ``bounds(t)``, if given, returns ``(lo, hi)`` with ``lo <= buf <= hi``
    everywhere, which lets a tier that no pair (or every pair) passes skip the
    elementwise test.  Returns the flat indices of the pairs no tier settled,
    or None.
    """
    par = m.parity
    q = m.coef.shape[0] - 1
    degs = _degrees(par, tiers[-1])
    H = np.empty(var.shape)
    tmp = np.empty(var.shape)
    written = None  # pairs already settled (None: none yet)
    a_lo = a_hi = None
    if bounds is not None:
        a_lo, a_hi = float(absr.min(initial=np.inf)), float(absr.max(initial=0.0))
    pw = _Powers(var) if pw is None else pw
    for t, K in enumerate(tiers):
        if K <= k0:
            continue
        deg = degs[k0:K]
        if deg[-1] > q:
            break
        if outer0 is not None:
            outer0(H, deg[-1])
        else:
            np.multiply(cx(deg[-1]), cy(deg[-1]), out=H)
        for d in deg[-2::-1]:
            H *= var
            if rank1 is not None:
                rank1(H, d)
            else:
                np.multiply(cx(d), cy(d), out=tmp)
                H += tmp
        if S is None:
            S, H = H, np.empty(var.shape)
        else:
            H *= pw.get(k0)
            S += H
        k0 = K
        if bounds is not None:
            lo, hi = bounds(t)
            if a_lo > hi:  # no pair passes this tier
                continue
            if a_hi <= lo:  # every pair does
                newly = None if written is None else np.logical_not(written)
                if par == 1:
                    np.multiply(S, rho, out=out, where=True if newly is None else newly)
                else:
                    np.copyto(out, S, where=True if newly is None else newly)
                return None
        thr(t, tmp)
        passed = np.less_equal(absr, tmp)
        newly = passed if written is None else np.greater(passed, written)
        if par == 1:
            np.multiply(S, rho, out=out, where=newly)
        else:
            np.copyto(out, S, where=newly)
        if written is None:
            written = newly
        else:
            written |= newly
        n_left = written.size - np.count_nonzero(written)
        if n_left == 0:
            return None
        if compact is not None and K < tiers[-1] and n_left < _COMPACT * written.size:
            return compact(np.flatnonzero(~written), k0, S)
    # The unsettled pairs keep their partial sum (without the factor ``ρ`` of
    # an odd function), from which the gathered pass continues.
    if written is None:
        if S is not None:
            np.copyto(out, S)
        return np.arange(var.size)
    np.copyto(out, S, where=~written)
    return np.flatnonzero(~written)


_rank1_checked: dict[tuple[int, int], bool] = {}


def _rank1_ok(shape: tuple[int, int]) -> bool:
    """Whether BLAS ``dgemm`` with ``k = 1``, ``alpha = beta = 1`` returns, for
    this block shape, exactly NumPy's ``C + round(x y)`` on every element (and
    with ``beta = 0``, exactly ``round(x y)``).

    A GEMM rounds the product ``x_i y_j`` in its accumulator before adding
    ``C``, so this is expected everywhere; it matters because a kernel that
    fused the add (FMA) on some elements only would break the bitwise
    symmetry of the kernel.  Checked once per shape and process, on random
    data in both orientations; where it fails NumPy's two passes are used.
    """
    ok = _rank1_checked.get(shape)
    if ok is None:
        rng = np.random.default_rng(12345)
        ok = True
        for _ in range(2):
            C = rng.standard_normal(shape)
            x, y = rng.standard_normal(shape[0]), rng.standard_normal(shape[1])
            want = C + np.multiply.outer(x, y)
            prod = np.full(shape, np.nan)  # beta = 0 must not read C
            try:
                _dgemm(1.0, y[:, None], x[None, :], beta=1.0, c=C.T, overwrite_c=True)
                _dgemm(
                    1.0, y[:, None], x[None, :], beta=0.0, c=prod.T, overwrite_c=True
                )
            except Exception:  # pragma: no cover - exotic BLAS wrappers
                ok = False
                break
            ok &= bool(np.array_equal(C, want))
            ok &= bool(np.array_equal(prod, np.multiply.outer(x, y)))
        _rank1_checked[shape] = ok
    return ok


def _outer(x: np.ndarray, y: np.ndarray, out: np.ndarray) -> np.ndarray:
    """``out[i, j] = x[i] * y[j]`` (each product rounded once, as NumPy's), by
    BLAS where :func:`_rank1_ok` (about 3 times faster than a broadcast)."""
    if _rank1_ok(out.shape):
        _dgemm(1.0, y[:, None], x[None, :], beta=0.0, c=out.T, overwrite_c=True)
    else:
        np.multiply.outer(x, y, out=out)
    return out


def _bulk_pass(m, gam, ix, iy, cys, gy, gy_lo, gy_hi, rho, absr, var, out, pw=None):
    """Tiered series on a ``(rows, cols)`` block (``ix``, ``iy``: the scales of
    rows and columns; ``cys``, ``gy``: the columns' coefficients and bounds).
    Once few pairs remain they are gathered and continued in 1-D.  Returns the
    flat indices of the pairs left for the gathered pass, or None."""
    cxs = m.coef[:, ix][:, :, None]
    gx = gam[:, ix][:, :, None]
    Y = rho.shape[1]

    gx1d, gy1d = gx[:, :, 0], gy[:, 0, :]

    def thr(t, buf):
        _outer(gx1d[t], gy1d[t], buf)

    def compact(left, k0, S):
        rows, cols = np.divmod(left, Y)
        jx, jy = ix[rows], iy[cols]
        gx1, gy1 = gam[:, jx], gam[:, jy]
        out1 = np.empty(left.size)

        def thr1(t, buf):
            np.multiply(gx1[t], gy1[t], out=buf)

        rest = _series(
            m,
            _BULK_TIERS,
            lambda d: np.take(m.coef[d], jx),  # gathered as needed
            lambda d: np.take(m.coef[d], jy),
            thr1,
            rho.reshape(-1)[left],
            absr.reshape(-1)[left],
            var.reshape(-1)[left],
            out1,
            k0=k0,
            S=S.reshape(-1)[left],
        )
        out.reshape(-1)[left] = out1  # values, or partial sums of the rest
        return None if rest is None else left[rest]

    rank1 = outer0 = None
    if _rank1_ok(rho.shape):
        xs = m.coef[:, ix]  # (q+1, rows)
        ys = cys[:, 0, :]  # (q+1, cols), rows contiguous

        def rank1(H, d):
            _dgemm(
                1.0, ys[d][:, None], xs[d][None, :], beta=1.0, c=H.T, overwrite_c=True
            )

        def outer0(H, d):
            _dgemm(
                1.0, ys[d][:, None], xs[d][None, :], beta=0.0, c=H.T, overwrite_c=True
            )

    gx_lo, gx_hi = gx.min(axis=(1, 2)), gx.max(axis=(1, 2))

    def bounds(t):
        return gx_lo[t] * gy_lo[t], gx_hi[t] * gy_hi[t]

    return _series(
        m,
        _BULK_TIERS,
        lambda d: cxs[d],
        lambda d: cys[d],
        thr,
        rho,
        absr,
        var,
        out,
        compact=compact,
        rank1=rank1,
        outer0=outer0,
        bounds=bounds,
        pw=pw,
    )


#: Pairs per block of :func:`_horner` (its few arrays stay in cache).
_HORNER_CHUNK = 1 << 13


def _routed_series(m, tiers, jx, jy, rho, S0, k0):
    """Series of gathered pairs (``jx``, ``jy``: indices of their scales in
    ``m``; ``S0``: their sums of the first ``k0`` terms), each continued once
    to the first tier of ``tiers`` whose certified bound it passes; returns
    the values and the mask of the pairs no tier settles.  A pair's tier is a
    function of its own data (the bound ``γ[t, x] γ[t, y]`` commutes), so
    its value is too."""
    gam = _thresholds(m, tiers)
    absr = np.abs(rho)
    need = np.full(rho.size, -1)
    open_ = np.arange(rho.size)
    for t in range(len(tiers)):
        if open_.size == 0:
            break
        ok = absr[open_] <= gam[t].take(jx[open_]) * gam[t].take(jy[open_])
        need[open_[ok]] = t
        open_ = open_[~ok]
    var = rho * rho if m.parity >= 0 else rho
    out = np.zeros(rho.size)
    settled = need >= 0
    if not settled.any():
        return out, ~settled
    vk = _Powers(var).get(k0)  # var^k0 by squarings: one sequence per pair
    for t in np.unique(need[settled]):
        g = np.flatnonzero(need == t)
        degs = _degrees(m.parity, tiers[t])[k0:]
        out[g] = _horner(m.coef, degs, jx[g], jy[g], var[g])
    out *= vk
    out += S0
    if m.parity == 1:
        out *= rho
    return out, ~settled


def _horner(coef, degs, jx, jy, var):
    """``Σ_k coef[d_k, jx] coef[d_k, jy] var^k`` over the degrees ``degs`` by
    Horner's rule, in blocks of pairs (the same operations for every pair)."""
    out = np.empty(var.size)
    for c0 in range(0, var.size, _HORNER_CHUNK):
        ix, iy = jx[c0 : c0 + _HORNER_CHUNK], jy[c0 : c0 + _HORNER_CHUNK]
        v = var[c0 : c0 + _HORNER_CHUNK]
        row = coef[degs[-1]]
        H = row.take(ix)
        H *= row.take(iy)
        a, b = np.empty_like(H), np.empty_like(H)
        for d in degs[-2::-1]:
            H *= v
            row = coef[d]
            np.multiply(row.take(ix, out=a), row.take(iy, out=b), out=a)
            H += a
        out[c0 : c0 + _HORNER_CHUNK] = H
    return out


# --------------------------------------------------------------------------- #
# Tier 3: 2-D quadrature for the pairs the series cannot settle
# --------------------------------------------------------------------------- #
_L2 = 9.0  # Gaussian mass beyond 9 standard deviations: 2e-19
_BASE2 = np.arange(-_L2, _L2 + 0.5)  # unit panels for the Gaussian weight
#: Breakpoints at ``c + {1, 2, ..., 32}`` (times the local width) around every
#: place where an activation changes behaviour: ratio-2 panels keep it analytic
#: in an ellipse of parameter ~6 (8-node Gauss-Legendre: ~1e-13); beyond 32
#: the saturation or the asymptote is reached to e^-32.
_LADDER = 2.0 ** np.arange(6)
#: For user callables, whose asymptotics are unknown (arctan' decays like 1/x²),
#: ratio-2 breakpoints all the way to the end of the Gaussian range.
_LONG_LADDER = 2.0 ** np.arange(24)
_GL2 = 8
_PAIR_BATCH = 4
#: Gauss-Hermite inner rule where ``sy c <= 1/2`` for the built-in analytic
#: activations: ``σ(mu + τ w)`` is analytic in a strip of half-width
#: ``(π/2)/τ >= π`` (tanh's poles); 32 nodes already meet 1e-10 on the
#: reference grid.
_GH_TAU = 0.5
_GH_NODES = 40


def _rule(
    bp: np.ndarray, phi: bool, n_nodes: int = _GL2
) -> tuple[np.ndarray, np.ndarray]:
    """Composite Gauss-Legendre nodes/weights (``n_nodes`` per panel) on the
    sorted, clipped ``bp`` (last axis); weights times the normal density if
    ``phi``."""
    bp = np.clip(bp, -_L2, _L2)
    bp.sort(axis=-1)
    # Drop repeated points (clipped ladders pile up at ±9 and coincide), keeping
    # a common length: the row with most distinct points sets it, shorter rows
    # end in zero-width panels.
    dup = np.zeros(bp.shape, dtype=bool)
    dup[..., 1:] = bp[..., 1:] == bp[..., :-1]
    if dup.any():
        bp = np.where(dup, np.inf, bp)
        bp.sort(axis=-1)
        bp = bp[..., : int((~dup).sum(axis=-1).max())]
        bp = np.minimum(bp, _L2)
    xg, wg = gauss_legendre(n_nodes)
    half = 0.5 * (bp[..., 1:] - bp[..., :-1])
    mid = 0.5 * (bp[..., 1:] + bp[..., :-1])
    x = (mid[..., None] + half[..., None] * xg).reshape(*bp.shape[:-1], -1)
    w = (half[..., None] * wg).reshape(*bp.shape[:-1], -1)
    if phi:
        w = w * np.exp(-0.5 * x * x) * _INV_SQRT_2PI
    return x, w


def _ladder_points(
    center: np.ndarray, width: np.ndarray, ladder: np.ndarray
) -> np.ndarray:
    """``center`` and ``center ± width * ladder`` (stacked on a new last axis)."""
    c, w = center[..., None], width[..., None]
    return np.concatenate([c, c - w * ladder, c + w * ladder], axis=-1)


def pair_quadrature(
    fn: Callable[[np.ndarray], np.ndarray],
    dfn: Callable[[np.ndarray], np.ndarray] | None,
    kxx: np.ndarray,
    kxy: np.ndarray,
    kyy: np.ndarray,
    kinks: tuple[float, ...] = (),
    saturating: bool = True,
    smooth: Callable | None = None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """``E[σ(u)σ(v)]`` (and ``E[σ'(u)σ'(v)]`` if ``dfn``) by an iterated rule.

    With ``u = sx a`` and ``v = sy (ρ a + c w)``, ``c = sqrt(1 - ρ²)``, ``a, w``
    independent standard normals: the outer rule in ``a`` has breakpoints
    where ``σ(sx a)`` changes behaviour (``a = (k ± 2^j) / sx`` for the kinks
    ``k`` and 0) and where the conditional mean ``E[σ(v) | a]`` does
    (``sy ρ a = k ± 2^j max(1, sy c)``); the inner rule in ``w``, for each
    outer node, where ``σ(v)`` does.  Entries are 1-D arrays, evaluated on the
    canonical order ``kxx <= kyy`` (the dual is symmetric; this makes the
    computed one symmetric to the last bit).  ``saturating``: σ reaches its
    asymptotes (to ``e^-32``) within ``|x| <= 32``, as the built-in activations
    do; otherwise the breakpoints continue geometrically to the end of the
    range.  ``smooth(mu, tau, derivative)``, if given, is the closed form of
    the inner integral ``E_w[σ(mu + tau w)]`` (elu, selu) and replaces the
    inner rule.
    """
    kxx, kxy, kyy = (np.asarray(k, dtype=np.float64).ravel() for k in (kxx, kxy, kyy))
    swap = kxx > kyy
    kxx, kyy = np.where(swap, kyy, kxx), np.where(swap, kxx, kyy)
    sx, sy = np.sqrt(kxx), np.sqrt(kyy)
    pos = (sx > 0) & (sy > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        rho = np.where(pos, kxy * (1.0 / sx * (1.0 / sy)), 0.0)
        # c² = (kxx kyy - kxy²) / (kxx kyy) from error-free products: near
        # |ρ| = 1 at large scales the dual depends on c through sy c, and
        # 1 - ρ from a rounded ρ would be off by eps / (1 - ρ) relative.
        c = np.where(
            pos, np.sqrt(np.maximum(_det2(kxx, kyy, kxy), 0.0)) / (sx * sy), 1.0
        )
    rho = np.clip(rho, -1.0, 1.0)
    c = np.minimum(c, 1.0)
    centers = sorted({0.0, *map(float, kinks)})
    kinks = tuple(float(k) for k in kinks)
    ladder = _LADDER if saturating else _LONG_LADDER
    S = np.empty(kxx.size)
    Sd = np.empty(kxx.size) if dfn is not None else None
    # Pairs whose inner integrand is smooth on the scale of the Gaussian
    # (σ analytic, sy c <= 1) take a Gauss-Hermite inner rule.
    gh = np.zeros(kxx.size, dtype=bool)
    tabled = np.zeros(kxx.size, dtype=bool)
    if smooth is None and saturating and len(kinks) == 0:
        gh = sy * c <= _GH_TAU
        tabled = _tabled_pairs(fn, dfn, sx, sy, rho, c, S, Sd)
        gh &= ~tabled
    for group, batch, mode in (
        (
            np.flatnonzero(~gh & ~tabled),
            _PAIR_BATCH if smooth is None else 64 * _PAIR_BATCH,
            smooth,
        ),
        (np.flatnonzero(gh), 4 * _PAIR_BATCH, "gh"),
    ):
        for e0 in range(0, group.size, batch):
            sl = group[e0 : e0 + batch]
            S[sl], d = _pair_batch(
                fn, dfn, sx[sl], sy[sl], rho[sl], c[sl], centers, kinks, ladder, mode
            )
            if Sd is not None:
                Sd[sl] = d
    return S, Sd


#: Pairs per batch of the tabulated rule.
_TABLE_BATCH = 64


def _tabled_pairs(fn, dfn, sx, sy, rho, c, S, Sd) -> np.ndarray:
    """Computes, into ``S`` (and ``Sd``), the pairs whose ``τ = sy c`` lies in a
    tabulated octave whose tables pass their check; returns their mask."""
    tau = sy * c
    # Below the tables, σ(m + τ w) is analytic in w in a strip of half-width
    # >= 2^8 (π/2) / |pole distance of σ|: a few Gauss-Hermite nodes are exact
    # to rounding; τ = 0 (v = sy ρ a exactly) needs none.
    done = tau < 2.0**_G_OCT_MIN
    small = np.flatnonzero(done)
    for e0 in range(0, small.size, _TABLE_BATCH):
        sl = small[e0 : e0 + _TABLE_BATCH]
        S[sl], d = _table_batch(fn, dfn, sx[sl], sy[sl], rho[sl], c[sl], None)
        if Sd is not None:
            Sd[sl] = d
    with np.errstate(divide="ignore"):
        j = np.floor(np.log2(np.where(tau > 0, tau, 1.0)))
    inside = (tau > 0) & (j >= _G_OCT_MIN) & (j < _G_OCT_MAX)
    for jj in np.unique(j[inside]).astype(int):
        try:
            tabs = [_inner_table(fn, int(jj))]
            if dfn is not None:
                tabs.append(_inner_table(dfn, int(jj)))
        except TypeError:  # unhashable callable: no tables
            return done
        if any(t is None for t in tabs):
            continue
        sel = np.flatnonzero(inside & (j == jj))
        for e0 in range(0, sel.size, _TABLE_BATCH):
            sl = sel[e0 : e0 + _TABLE_BATCH]
            S[sl], d = _table_batch(fn, dfn, sx[sl], sy[sl], rho[sl], c[sl], tabs)
            if Sd is not None:
                Sd[sl] = d
        done[sel] = True
    return done


def _two_product(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``a b = p + e`` exactly (Dekker / Veltkamp splitting; |a|, |b| < 1e290)."""
    p = a * b

    def split(x):
        t = 134217729.0 * x  # 2^27 + 1
        hi = t - (t - x)
        return hi, x - hi

    ah, al = split(a)
    bh, bl = split(b)
    e = ((ah * bh - p) + ah * bl + al * bh) + al * bl
    return p, e


def _det2(kxx: np.ndarray, kyy: np.ndarray, kxy: np.ndarray) -> np.ndarray:
    """``kxx kyy - kxy²`` to a few ulps of the terms' rounding (not of the
    difference's): the products' rounding errors are carried exactly."""
    P, E = _two_product(kxx, kyy)
    p, e = _two_product(kxy, kxy)
    return (P - p) + (E - e)


def _pair_batch(fn, dfn, sx, sy, rho, c, centers, kinks, ladder, smooth=None):
    E = sx.size
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        isx = np.where(sx > 0, 1.0 / sx, np.inf)
        tau = sy * c
        big = np.maximum(1.0, tau)
        srho = sy * rho
        pts = [np.broadcast_to(_BASE2, (E, _BASE2.size))]
        for k in centers:
            pts.append(_ladder_points(np.full(E, k) * isx, isx, ladder))
            ok = srho != 0
            inv_srho = np.where(ok, 1.0 / np.where(ok, srho, 1.0), 0.0)
            widths = [big] + ([np.minimum(tau, 1.0)] if k in kinks else [])
            for wd in widths:
                # at a kink the conditional mean changes over the width tau itself
                m_pts = _ladder_points(
                    np.full(E, k) * inv_srho, wd * np.abs(inv_srho), ladder
                )
                m_pts[~ok] = 0.0
                pts.append(m_pts)
        pts = np.concatenate(pts, axis=1)
        pts = np.where(np.isfinite(pts), pts, 0.0)
        a, wa = _rule(pts, phi=True)  # (E, Ko)
        ua = sx[:, None] * a
        mu = srho[:, None] * a  # E[v | a]
        if isinstance(smooth, str):  # Gauss-Hermite inner rule
            zh, wh = gauss_hermite(_GH_NODES)
            v = mu[..., None] + tau[:, None, None] * zh
            S = np.einsum("ek,ek,ekl,l->e", wa, _eval(fn, ua), _eval(fn, v), wh)
            Sd = None
            if dfn is not None:
                Sd = np.einsum("ek,ek,ekl,l->e", wa, _eval(dfn, ua), _eval(dfn, v), wh)
            return S, Sd
        if smooth is not None:
            tb = np.broadcast_to(tau[:, None], mu.shape)
            S = np.einsum("ek,ek,ek->e", wa, _eval(fn, ua), smooth(mu, tb, False))
            Sd = None
            if dfn is not None:
                Sd = np.einsum("ek,ek,ek->e", wa, _eval(dfn, ua), smooth(mu, tb, True))
            return S, Sd
        inner = c > 0
        # inner breakpoints: sy (ρ a + c w) = k, k ± 2^j  =>  w = (. - mu) / tau
        inv_tau = np.where(inner, 1.0 / np.where(inner, tau, 1.0), 0.0)
        ipts = [np.broadcast_to(_BASE2, (*a.shape, _BASE2.size))]
        for k in centers:
            ipts.append(
                _ladder_points(
                    (k - mu) * inv_tau[:, None],
                    np.broadcast_to(inv_tau[:, None], a.shape),
                    ladder,
                )
            )
        ipts = np.concatenate(ipts, axis=-1)
        ipts = np.where(np.isfinite(ipts), ipts, 0.0)
        wn, ww = _rule(ipts, phi=True)  # (E, Ko, Ki)
        v = mu[..., None] + tau[:, None, None] * wn
        fu = _eval(fn, ua)
        m = np.einsum("ekl,ekl->ek", ww, _eval(fn, v))
        # c = 0: v = mu exactly (the inner weights sum to one)
        m[~inner] = _eval(fn, mu[~inner])
        S = np.einsum("ek,ek,ek->e", wa, fu, m)
        Sd = None
        if dfn is not None:
            md = np.einsum("ekl,ekl->ek", ww, _eval(dfn, v))
            md[~inner] = _eval(dfn, mu[~inner])
            Sd = np.einsum("ek,ek,ek->e", wa, _eval(dfn, ua), md)
    return S, Sd


# --------------------------------------------------------------------------- #
# Tier 3a: the inner integral tabulated once per activation
# --------------------------------------------------------------------------- #
#: For a smooth saturating activation the inner integral of the 2-D rule,
#: ``G(m, τ) = E_w[g(m + τ w)]`` (``g`` = σ or σ'), depends on the pair only
#: through the conditional mean ``m`` and standard deviation ``τ``.  It is
#: tabulated once per activation on each octave ``[2^j, 2^(j+1))`` of ``τ``
#: (Chebyshev in ``log2 τ``) times panels in ``m`` (Chebyshev on each), and
#: checked against direct values at interleaved points of both variables when
#: built, so a hard pair costs one 1-D outer rule instead of a 2-D one.
#: ``G`` is entire in ``m`` (a Gaussian smoothing of σ) and, where τ is small,
#: analytic in the strip of σ itself (``|Im m| < π/2`` for tanh): panels of
#: width ``max(1, 2^(j+1))`` with 20 points interpolate it to ~1e-13 (measured
#: for tanh, sigmoid, softplus, silu, mish; the check at build is what counts).
_G_P = 20
_G_OCT_MIN, _G_OCT_MAX = -8, 8  # τ from 4e-3 to 256; others use the 2-D rule
_G_TOL = 1e-12  # |table - direct| <= _G_TOL (1 + |G|) at the check points
#: A saturating σ is affine beyond ``|x| >= 32`` (to ``e^-32``), so for
#: ``|m| >= 32 + 9 τ`` the inner integrand is affine wherever the Gaussian has
#: mass, and a short Gauss-Hermite rule (exact for affine functions) is exact.
_G_REACH = 32.0
_G_FAR_NODES = 2
#: Inner Gauss-Hermite nodes for ``τ < 2^-8``: the rule's error is of order
#: ``τ^12 |σ^(12)| / 12!!`` (below 1e-25 for the built-in activations).
_G_SMALL_NODES = 6
_G_NODES = 10  # Gauss-Legendre nodes per panel of the direct inner rule
_g_tables: dict = {}


def _inner_direct(g: Callable, m: np.ndarray, tau: np.ndarray) -> np.ndarray:
    """``E_w[g(m + τ w)]`` for flat ``m``, ``τ > 0`` by the composite rule of the
    2-D quadrature's inner integral (unit panels, and ratio-2 panels around
    the transition ``w = -m/τ`` of width ``1/τ``), 10 nodes per panel
    (16 nodes change no value by more than ``2e-15 (1 + |G|)``)."""
    out = np.empty(m.size)
    step = 2048
    for e0 in range(0, m.size, step):
        mm, tt = m[e0 : e0 + step], tau[e0 : e0 + step]
        it = 1.0 / tt
        pts = np.concatenate(
            [
                np.broadcast_to(_BASE2, (mm.size, _BASE2.size)),
                _ladder_points(-mm * it, it, _LADDER),
            ],
            axis=1,
        )
        w, ww = _rule(pts, phi=True, n_nodes=_G_NODES)
        out[e0 : e0 + step] = np.einsum(
            "ek,ek->e", ww, _eval(g, mm[:, None] + tt[:, None] * w)
        )
    return out


class _InnerTable:
    """``G(m, τ)`` for ``τ`` in ``[2^j, 2^(j+1))`` and ``|m| <= M``."""

    def __init__(self, g: Callable, j: int):
        P = _G_P
        self.j = j
        self.h = max(1.0, 2.0 ** (j + 1))
        reach = _G_REACH + _L2 * 2.0 ** (j + 1)
        self.n_pan = int(np.ceil(2.0 * reach / self.h))
        self.M = 0.5 * self.n_pan * self.h  # >= reach
        x = _cheb_nodes(P)
        m = self._m_points(x)
        tau = 2.0 ** (j + 0.5 * (x + 1.0))
        tt, mm = np.meshgrid(tau, m, indexing="ij")
        vals = _inner_direct(g, mm.ravel(), tt.ravel()).reshape(P, self.n_pan, P)
        # values at the Chebyshev points in m -> Chebyshev coefficients (read by
        # Clenshaw's recurrence: no divisions per point, unlike barycentric)
        to_coef = np.linalg.inv(np.cos(np.outer(np.arccos(x), np.arange(P))))
        #: (P_tau, n_pan * P_m), F-ordered for the products of :func:`_combine`
        self.V = np.asfortranarray(
            np.einsum("kj,tpj->tpk", to_coef, vals).reshape(P, m.size)
        )

    def _m_points(self, x: np.ndarray) -> np.ndarray:
        pan = np.arange(self.n_pan)[:, None]
        return (-self.M + self.h * (pan + 0.5 * (x + 1.0))).ravel()

    def coefficients(self, tau: np.ndarray) -> np.ndarray:
        """Chebyshev coefficients in ``m`` at the scales ``tau``: ``(P, len(tau)
        * n_pan)``, column ``e * n_pan + p`` for pair ``e`` and panel ``p`` (each
        column a fixed sequence of operations on its own ``tau``)."""
        Lt = _bary(2.0 * (np.log2(tau) - self.j) - 1.0, _G_P)
        Vt = _combine(Lt, self.V)  # (len(tau), n_pan * P)
        return np.ascontiguousarray(Vt.reshape(tau.size * self.n_pan, _G_P).T)

    def __call__(self, tau: np.ndarray, pair: np.ndarray, m: np.ndarray) -> np.ndarray:
        """``G(m, tau[pair])`` for flat ``m``, ``|m| <= M``; every value is a
        fixed sequence of operations on its own pair's data."""
        return _table_values((self,), tau, pair, m)[0]

    def check(self, g: Callable) -> float:
        """Worst ``|table - direct| / (1 + |direct|)`` at the points interleaved
        with the Chebyshev points of both variables, on every panel."""
        n = _G_P - 1
        xc = np.cos(pi * (np.arange(n) + 0.5) / n)
        m = self._m_points(xc)
        tau = 2.0 ** (self.j + 0.5 * (xc + 1.0))
        direct = _inner_direct(g, np.tile(m, n), np.repeat(tau, m.size))
        approx = self(tau, np.repeat(np.arange(n), m.size), np.tile(m, n))
        return float(np.max(np.abs(approx - direct) / (1.0 + np.abs(direct))))


def _inner_table(g: Callable, j: int) -> _InnerTable | None:
    """The checked table of ``g`` on octave ``j`` (built on first use; None if
    its check fails, in which case the 2-D rule serves that octave)."""
    # A bound method compares its instance by identity; the activation's own
    # equality (a frozen dataclass) lets equal activations share tables.
    key = (getattr(g, "__self__", None), getattr(g, "__func__", g), j)
    tab = _g_tables.get(key)
    if tab is None:
        tab = _InnerTable(g, j)
        if not tab.check(g) <= _G_TOL:
            tab = False
        with _cache_lock:
            if len(_g_tables) >= 8 * _CACHE_SIZE:
                _g_tables.pop(next(iter(_g_tables)))
            _g_tables[key] = tab
    return tab or None


def _table_values(
    tabs: tuple[_InnerTable, ...], tau: np.ndarray, pair: np.ndarray, m: np.ndarray
) -> list[np.ndarray]:
    """``G(m, tau[pair])`` of each table (all of one octave, hence one panel
    geometry), for flat ``m`` with ``|m| <= M``: the panel and the local
    variable are found once, then each table's Chebyshev sum by Clenshaw's
    recurrence, reading the coefficients of every node's pair and panel
    (no divisions per point, unlike barycentric)."""
    t0 = tabs[0]
    P = _G_P
    s = (m + t0.M) * (1.0 / t0.h)
    p = np.clip(np.floor(s), 0, t0.n_pan - 1).astype(np.intp)
    x = 2.0 * (s - p) - 1.0
    flat = pair * t0.n_pan + p
    x2 = 2.0 * x
    out = []
    for tab in tabs:
        C = tab.coefficients(tau)
        b1 = C[P - 1].take(flat)
        b2 = np.zeros_like(x)
        b0 = np.empty_like(x)
        ck = np.empty_like(x)
        for k in range(P - 2, 0, -1):
            np.multiply(x2, b1, out=b0)
            b0 -= b2
            b0 += C[k].take(flat, out=ck)
            b2, b1, b0 = b1, b0, b2
        res = x * b1
        res -= b2
        res += C[0].take(flat, out=ck)
        out.append(res)
    return out


def _inner_values(
    gs: tuple[Callable, ...],
    tabs: tuple[_InnerTable, ...],
    tau: np.ndarray,
    m: np.ndarray,
) -> list[np.ndarray]:
    """``G(m, τ)`` of each ``g`` in ``gs`` (its table in ``tabs``, one octave)
    from the table where ``|m| <= M``, by Gauss-Hermite beyond."""
    mf = m.reshape(-1)
    far = np.abs(mf) > tabs[0].M
    near = np.flatnonzero(~far)
    vals = _table_values(tabs, tau, near // m.shape[1], mf[near])
    fidx = np.flatnonzero(far)
    outs = []
    for g, v in zip(gs, vals):
        o = np.empty(mf.size)
        o[near] = v
        if fidx.size:
            zh, wh = gauss_hermite(_G_FAR_NODES)
            e = fidx // m.shape[1]
            o[fidx] = _eval(g, mf[fidx][:, None] + tau[e][:, None] * zh) @ wh
        outs.append(o.reshape(m.shape))
    return outs


def _table_batch(fn, dfn, sx, sy, rho, c, tabs):
    """The 2-D rule of :func:`_pair_batch` (no kinks, saturating σ) with the
    inner integral read from the tables ``tabs`` (σ, and σ' if ``dfn``), or,
    for ``tabs=None`` (pairs with ``τ`` below the tables), by a few-node
    Gauss-Hermite rule (``g(m)`` itself where ``τ = 0``)."""
    E = sx.size
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        isx = np.where(sx > 0, 1.0 / sx, np.inf)
        tau = sy * c
        srho = sy * rho
        ok = srho != 0
        inv_srho = np.where(ok, 1.0 / np.where(ok, srho, 1.0), 0.0)
        m_pts = _ladder_points(
            np.zeros(E), np.maximum(1.0, tau) * np.abs(inv_srho), _LADDER
        )
        m_pts[~ok] = 0.0
        pts = np.concatenate(
            [
                np.broadcast_to(_BASE2, (E, _BASE2.size)),
                _ladder_points(np.zeros(E), isx, _LADDER),
                m_pts,
            ],
            axis=1,
        )
        pts = np.where(np.isfinite(pts), pts, 0.0)
        a, wa = _rule(pts, phi=True)
        ua = sx[:, None] * a
        mu = srho[:, None] * a
    gs = (fn, dfn)[: 1 + (dfn is not None)]
    inners = None if tabs is None else _inner_values(gs, tuple(tabs), tau, mu)
    out = []
    for q, g in enumerate(gs):
        if inners is not None:
            inner = inners[q]
        else:  # τ below the tables: few-node Gauss-Hermite, exact at τ = 0
            zh, wh = gauss_hermite(_G_SMALL_NODES)
            inner = _eval(g, mu[..., None] + tau[:, None, None] * zh) @ wh
            zero = tau == 0
            inner[zero] = _eval(g, mu[zero])
        out.append(np.einsum("ek,ek,ek->e", wa, _eval(g, ua), inner))
    return out[0], (out[1] if dfn is not None else None)


# --------------------------------------------------------------------------- #
# Driver
# --------------------------------------------------------------------------- #
def _layout(kxx: np.ndarray, kxy: np.ndarray, kyy: np.ndarray):
    """Batched ``(B, X, Y)`` views of broadcasting ``kxx``, ``kxy``, ``kyy``.

    Axes along which both variances vary are batch axes, those along which
    only ``kxx`` (``kyy``) varies are row (column) axes.  Returns the variances
    as ``(B, X)``/``(B, Y)``, ``kxy`` as ``(B, X, Y)``, and a function putting
    a ``(B, X, Y)`` result back in the broadcast shape.
    """
    shape = np.broadcast_shapes(kxx.shape, kxy.shape, kyy.shape)
    nd = len(shape)
    kx = kxx.reshape((1,) * (nd - kxx.ndim) + kxx.shape)
    ky = kyy.reshape((1,) * (nd - kyy.ndim) + kyy.shape)
    batch = [i for i in range(nd) if kx.shape[i] > 1 and ky.shape[i] > 1]
    rows = [i for i in range(nd) if kx.shape[i] > 1 and ky.shape[i] == 1]
    cols = [i for i in range(nd) if kx.shape[i] == 1 and i not in batch]
    perm = batch + rows + cols
    B = int(np.prod([shape[i] for i in batch]))
    X = int(np.prod([shape[i] for i in rows]))
    Y = int(np.prod([shape[i] for i in cols]))
    xy = np.broadcast_to(kxy, shape).transpose(perm)
    xy = np.ascontiguousarray(xy).reshape(B, X, Y)
    x2 = np.broadcast_to(
        kx, tuple(shape[i] if i in batch + rows else 1 for i in range(nd))
    )
    x2 = np.ascontiguousarray(x2.transpose(perm)).reshape(B, X)
    y2 = np.broadcast_to(
        ky, tuple(shape[i] if i in batch + cols else 1 for i in range(nd))
    )
    y2 = np.ascontiguousarray(y2.transpose(perm)).reshape(B, Y)
    permuted = tuple(shape[i] for i in perm)
    inverse = np.argsort(perm)

    def back(a: np.ndarray) -> np.ndarray:
        out = a.reshape(permuted).transpose(inverse)
        return out if out.flags.c_contiguous else out.copy()  # keeps 0-d shapes

    return x2, xy, y2, back


def _check_variances(name: str, k: np.ndarray) -> np.ndarray:
    if not np.all(np.isfinite(k)):
        raise ValueError(f"{name} must be finite; got non-finite values.")
    return k


#: Counters of pairs per tier since import (diagnostics for benchmarks).
stats = {"pairs": 0, "gathered": 0, "hard": 0}


def numerical_dual(
    act: Any,
    kxx: Any,
    kxy: Any,
    kyy: Any,
    derivative: bool,
    kinks: tuple[float, ...] = (),
) -> tuple[np.ndarray, np.ndarray | None]:
    """``Σ`` (and ``Σ̇`` if ``derivative``) of ``act`` for broadcasting NumPy arrays.

    ``act`` provides ``_fn``/``_deriv`` (vectorized NumPy) and its parity.
    Variances are clipped at 0 (rounding can make a tiny one negative); where
    a variance is 0 the correlation is taken as 0, so ``Σ = σ(0) E[σ(v)]``.
    """
    kxx, kxy, kyy = (
        _check_variances(n, np.asarray(k, dtype=np.float64))
        for n, k in (("kxx", kxx), ("kxy", kxy), ("kyy", kyy))
    )
    fns = [(act._fn, act_parity(act, False))]
    if derivative:
        fns.append((act._deriv, act_parity(act, True)))
    if kxx.shape == kxy.shape == kyy.shape and (
        (kxx is kxy and kxy is kyy)
        or (np.array_equal(kxx, kxy) and np.array_equal(kxx, kyy))
    ):
        return _diagonal(act, fns, kxx, derivative, kinks)
    x2, xy, y2, back = _layout(np.maximum(kxx, 0.0), kxy, np.maximum(kyy, 0.0))
    B, X, Y = xy.shape
    var, idx = np.unique(np.concatenate([x2.ravel(), y2.ravel()]), return_inverse=True)
    ix_all = idx[: x2.size].reshape(B, X)
    iy_all = idx[x2.size :].reshape(B, Y)
    r = np.sqrt(var)
    with np.errstate(divide="ignore"):
        inv = np.where(r > 0, 1.0 / r, 0.0)
    mom = []
    for q, (_, par) in enumerate(fns):
        m = scale_moments(act, bool(q), r, _bulk_degree(par), kinks)
        _check_finite(act, m, r)
        mom.append((m, _thresholds(m, _BULK_TIERS)))
    outs = [np.empty((B, X, Y)) for _ in fns]
    pend: list[list[np.ndarray]] = [[] for _ in fns]
    rows_per = max(1, _CHUNK // max(Y, 1))
    cand_lo = 1.0 - 2.0**-40  # |ρ| of an exact self pair is within ulps of 1
    specials = []
    if X * Y < _SMALL_BLOCK:  # e.g. 1-D pairs: no outer structure to exploit
        _flat_pass(mom, fns, ix_all, iy_all, inv, xy, outs, pend, specials, cand_lo)
    mirror = []  # symmetric batches: the upper triangle is computed, then copied
    for b in range(B if X * Y >= _SMALL_BLOCK else 0):
        iy_b = iy_all[b]
        # A batch of pairs of one set of inputs with itself (a diagonal tile
        # of the exact driver) is symmetric: (x, y) and (y, x) have the same
        # data, hence bitwise the same value, so only rows <= columns are
        # computed (by row blocks, from the block's first row on).
        sym = (
            X == Y
            and np.array_equal(ix_all[b], iy_b)
            and np.array_equal(xy[b], xy[b].T)
        )
        if sym:
            mirror.append(b)
        for r0 in range(0, X, rows_per):
            c0 = r0 if sym else 0
            iy = iy_b[c0:]
            Yc = iy.size
            ix = ix_all[b, r0 : r0 + rows_per]
            rho = _outer(inv[ix], inv[iy], np.empty((ix.size, Yc)))
            rho *= xy[b, r0 : r0 + rows_per, c0:]
            absr = np.abs(rho)
            top = absr.max(initial=0.0)
            if top > 1.0:  # rounding in kxy: correlations are clipped to [-1, 1]
                np.clip(rho, -1.0, 1.0, out=rho)
                np.minimum(absr, 1.0, out=absr)

            def to_flat(i, b=b, r0=r0, c0=c0, Yc=Yc):
                row, c = np.divmod(i, Yc)
                return (b * X + r0 + row) * Y + c0 + c

            if top >= cand_lo:
                specials.append(to_flat(np.flatnonzero(absr >= cand_lo)))
            var2 = rho * rho if any(par >= 0 for _, par in fns) else None
            powers = {}  # var^k shared by Σ and Σ̇ when they use the same variable
            for q, (m, gam) in enumerate(mom):
                gy = gam[:, iy]
                col = (
                    m.coef[:, iy][:, None, :],
                    gy[:, None, :],
                    gy.min(axis=1),
                    gy.max(axis=1),
                )
                o = np.empty((ix.size, Yc))
                vr = var2 if m.parity >= 0 else rho
                pw = powers.setdefault(m.parity >= 0, _Powers(vr))
                rest = _bulk_pass(m, gam, ix, iy, *col, rho, absr, vr, o, pw)
                outs[q][b, r0 : r0 + rows_per, c0:] = o
                if rest is not None:
                    pend[q].append(to_flat(rest))
    flat_xy = xy.reshape(-1)

    def flat_ix(e):
        return ix_all.reshape(-1)[e // Y]

    def flat_iy(e):
        b, rest = np.divmod(e, X * Y)
        return iy_all[b, rest % Y]

    # Exact self pairs (kxx == kyy == ±kxy bitwise): the 1-D moments.
    done_special = np.zeros(0, dtype=np.intp)
    if specials:
        e = np.concatenate(specials)
        same = flat_ix(e) == flat_iy(e)
        vx = var[flat_ix(e)]
        selfp = same & (flat_xy[e] == vx)
        antip = same & (flat_xy[e] == -vx) & (vx > 0)
        for q, (m, _) in enumerate(mom):
            o = outs[q].reshape(-1)
            o[e[selfp]] = m.sq[flat_ix(e[selfp])]
            o[e[antip]] = m.anti[flat_ix(e[antip])]
        done_special = e[selfp | antip]
    # Gathered series, then the 2-D rule, for the unsettled pairs.
    hard: list[np.ndarray] = []
    for q in range(len(fns)):
        if not pend[q]:
            hard.append(np.zeros(0, dtype=np.intp))
            continue
        e = np.setdiff1d(np.concatenate(pend[q]), done_special, assume_unique=True)
        if e.size == 0:
            hard.append(e)
            continue
        rho = flat_xy[e] * (inv[flat_ix(e)] * inv[flat_iy(e)])
        np.clip(rho, -1.0, 1.0, out=rho)
        S0 = outs[q].reshape(-1)[e]  # the bulk pass's partial sums
        # Higher degrees for fewer pairs: up to 255, then up to 1023 (the
        # coefficients come from the per-activation cache of each degree).
        stages = [(_GATHER_TIERS, _MAX_DEGREE)]
        # Degree-1023 tables, except for moving kinks (slow tables) and where the
        # 2-D rule has a closed-form inner integral (elu, selu: fast anyway).
        if (
            not any(k != 0 for k in kinks)
            and getattr(act, "_gauss_smooth", None) is None
        ):
            stages.append((_HIGH_TIERS, _TOP_DEGREE))
        # Every pair is offered to each stage: one whose bound passes no tier
        # costs only the test (nearly parallel pairs at moderate scales do
        # pass at degree 1023), the rest go to the 2-D rule.
        for tiers, deg in stages:
            sx_i, sy_i = flat_ix(e), flat_iy(e)
            # the scales in use, renumbered in order (no sort: marks)
            mark = np.zeros(r.size, dtype=bool)
            mark[sx_i] = True
            mark[sy_i] = True
            used = np.flatnonzero(mark)
            j = (np.cumsum(mark) - 1)[np.concatenate([sx_i, sy_i])]
            m2 = scale_moments(act, bool(q), r[used], deg, kinks)
            _check_finite(act, m2, r[used])
            vals, rest = _routed_series(
                m2, tiers, j[: e.size], j[e.size :], rho, S0, _BULK_TIERS[-1]
            )
            done = ~rest
            outs[q].reshape(-1)[e[done]] = vals[done]
            e, rho, S0 = e[rest], rho[rest], S0[rest]
            if e.size == 0:
                break
        hard.append(e)
    union = np.unique(np.concatenate(hard)) if hard else np.zeros(0, dtype=np.intp)
    stats["pairs"] += B * X * Y
    stats["gathered"] += sum(len(np.concatenate(p)) if p else 0 for p in pend)
    stats["hard"] += union.size
    if union.size:
        # Hard pairs repeat (equal patches in both images): each distinct
        # (smaller scale, kxy, larger scale) is integrated once; the 2-D rule
        # orders the scales itself, so the values are those of every copy.
        kx, ky, xyu = flat_ix(union), flat_iy(union), flat_xy[union]
        lo, hi = np.minimum(kx, ky), np.maximum(kx, ky)
        order = np.lexsort((xyu, hi, lo))
        new = np.ones(order.size, dtype=bool)
        new[1:] = (
            (lo[order[1:]] != lo[order[:-1]])
            | (hi[order[1:]] != hi[order[:-1]])
            | (xyu[order[1:]] != xyu[order[:-1]])
        )
        first = order[new]
        inverse = np.empty(order.size, dtype=np.intp)
        inverse[order] = np.cumsum(new) - 1
        S2, Sd2 = pair_quadrature(
            act._fn,
            act._deriv if derivative else None,
            var[lo[first]],
            xyu[first],
            var[hi[first]],
            kinks,
            getattr(act, "_saturating", True),
            getattr(act, "_gauss_smooth", None),
        )
        S2 = S2[inverse]
        Sd2 = None if Sd2 is None else Sd2[inverse]
        for q, res in enumerate((S2, Sd2)[: len(fns)]):
            sel = np.isin(union, hard[q], assume_unique=True)
            outs[q].reshape(-1)[union[sel]] = res[sel]
    # Below the computed band (row block r0:r1 took the columns from r0 on):
    # the transposed upper blocks.
    for b in mirror:
        for r0 in range(rows_per, X, rows_per):
            for o in outs:
                o[b, r0 : r0 + rows_per, :r0] = o[b, :r0, r0 : r0 + rows_per].T
    S = back(outs[0])
    Sd = back(outs[1]) if derivative else None
    return S, Sd


#: Blocks of fewer pairs than this (per batch) are processed as flat pairs.
_SMALL_BLOCK = 1024


def _flat_pass(mom, fns, ix_all, iy_all, inv, xy, outs, pend, specials, cand_lo):
    """The bulk series on flat pairs (same operations, hence the same bits, as
    the ``(rows, cols)`` blocks; see :func:`_series`)."""
    B, X, Y = xy.shape
    n = B * X * Y
    flat_out = [o.reshape(-1) for o in outs]
    for e0 in range(0, n, _CHUNK):
        e = np.arange(e0, min(n, e0 + _CHUNK))
        b, rest = np.divmod(e, X * Y)
        ix = ix_all[b, rest // Y]
        iy = iy_all[b, rest % Y]
        rho = inv[ix] * inv[iy]
        rho *= xy.reshape(-1)[e]
        absr = np.abs(rho)
        top = absr.max(initial=0.0)
        if top > 1.0:
            np.clip(rho, -1.0, 1.0, out=rho)
            np.minimum(absr, 1.0, out=absr)
        if top >= cand_lo:
            specials.append(e[absr >= cand_lo])
        var2 = rho * rho if any(par >= 0 for _, par in fns) else None
        for q, (m, gam) in enumerate(mom):
            vr = var2 if m.parity >= 0 else rho
            gx, gy = gam[:, ix], gam[:, iy]
            out = np.empty(e.size)

            def thr(t, buf, gx=gx, gy=gy):
                np.multiply(gx[t], gy[t], out=buf)

            left = _series(
                m,
                _BULK_TIERS,
                lambda d, ix=ix, m=m: np.take(m.coef[d], ix),
                lambda d, iy=iy, m=m: np.take(m.coef[d], iy),
                thr,
                rho,
                absr,
                vr,
                out,
            )
            if left is not None:
                pend[q].append(e[left])
            flat_out[q][e] = out  # values, or partial sums of the pending pairs


def _bulk_degree(par: int) -> int:
    return int(_degrees(par, _BULK_TIERS[-1])[-1])


def _diagonal(act, fns, k: np.ndarray, derivative: bool, kinks):
    """``Σ(x, x)`` (and ``Σ̇``) for the pairs of an input with itself (the same
    cached moments as a full call, so the values agree to the last bit)."""
    k = np.maximum(k, 0.0)
    var, idx = np.unique(k.ravel(), return_inverse=True)
    r = np.sqrt(var)
    res = []
    for q, (_, par) in enumerate(fns):
        m = scale_moments(act, bool(q), r, _bulk_degree(par), kinks)
        _check_finite(act, m, r)
        res.append(m.sq[idx].reshape(k.shape))
    return res[0], (res[1] if derivative else None)


def _check_finite(act: Any, m: Moments, r: np.ndarray) -> None:
    if not m.finite:
        bad = r[~np.all(np.isfinite(m.coef), axis=0) | ~np.isfinite(m.sq)]
        raise OverflowError(
            f"The dual of {act!r} is not finite in float64 at scale "
            f"sqrt(variance) = {bad.min():g} (its values or its square overflow)."
        )


def act_parity(act: Any, derivative: bool) -> int:
    """Parity of ``σ`` (or ``σ'``): declared by the class (``_parity``) or probed
    (a fixed probe, so the answer depends on the function alone)."""
    declared = getattr(act, "_parity", None)
    if declared is None:
        return parity(act._deriv if derivative else act._fn)
    if not derivative or declared < 0:
        return declared
    return 1 - declared


# Overflow is reported by the callers (``Moments.finite``, the finiteness
# checks of the Hermite coefficients), not as NumPy warnings.
@np.errstate(over="ignore", invalid="ignore")
def numerical_hermite(
    act: Any, r: np.ndarray, degree: int, kinks: tuple[float, ...] = ()
) -> tuple[np.ndarray, np.ndarray]:
    """``a_n(r)``, ``b_n(r)`` of ``act`` on the 1-D rule, ``(len(r), degree + 1)``."""
    out = []
    for derivative in (False, True):
        g = act._deriv if derivative else act._fn
        coef, _, _ = direct_moments(g, np.asarray(r, dtype=np.float64), degree, kinks)
        m = Moments(
            coef,
            np.ones(coef.shape[0]),
            np.ones(coef.shape[0]),
            act_parity(act, derivative),
        )
        out.append(np.ascontiguousarray(m.coef.T))
    return out[0], out[1]
