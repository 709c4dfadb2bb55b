"""Normalized Hermite polynomials and the quadrature rules built on them.

Private helpers for :mod:`sklearn_ntk.activations`.  Everything here works in
float64 NumPy.  Polynomials are the normalized probabilists' Hermite
polynomials ``h_n = He_n / sqrt(n!)``, orthonormal under ``z ~ N(0, 1)``; they
are always evaluated with the normalized three-term recurrence

    h_{n+1}(z) = (z h_n(z) - sqrt(n) h_{n-1}(z)) / sqrt(n + 1),

which never forms ``n!`` and so cannot overflow for any practical degree.
Closed-form coefficients use log-gamma for the same reason.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from math import lgamma, log, pi, sqrt

import numpy as np
from scipy import special

__all__ = [
    "bivariate_gauss_hermite",
    "gauss_hermite",
    "gauss_legendre",
    "hermite_coefficients_quadrature",
    "hermite_normalized",
    "log_double_factorial",
    "monomial_hermite_coefficients",
]

_LOG_SQRT_2PI = 0.5 * log(2.0 * pi)


def hermite_normalized(degree: int, z: np.ndarray) -> np.ndarray:
    """Evaluate ``h_0, ..., h_degree`` at ``z``.

    Parameters
    ----------
    degree : int
        Highest degree, ``>= 0``.
    z : ndarray
        Points, any shape.

    Returns
    -------
    H : ndarray of shape (degree + 1, *z.shape)
        ``H[n] = h_n(z)``.
    """
    z = np.asarray(z, dtype=np.float64)
    H = np.empty((degree + 1, *z.shape))
    H[0] = 1.0
    if degree >= 1:
        H[1] = z
    for n in range(1, degree):
        # h_{n+1} = (z h_n - sqrt(n) h_{n-1}) / sqrt(n+1)
        np.multiply(z, H[n], out=H[n + 1])
        H[n + 1] -= sqrt(n) * H[n - 1]
        H[n + 1] *= 1.0 / sqrt(n + 1)
    return H


@lru_cache(maxsize=64)
def gauss_hermite(n_nodes: int) -> tuple[np.ndarray, np.ndarray]:
    """Gauss-Hermite rule for ``E_{z ~ N(0,1)}[f(z)]``.

    Returns nodes and weights (summing to one) such that
    ``E[f(z)] ~= sum(w * f(x))``, exact for polynomials of degree
    ``< 2 n_nodes``.  The arrays are cached and read-only.
    """
    if n_nodes < 1:
        raise ValueError(f"n_nodes must be >= 1, got {n_nodes}.")
    # scipy's rule stays finite for large n (numpy's hermegauss overflows
    # beyond ~150 nodes).
    x, w = special.roots_hermitenorm(n_nodes)
    w = w / w.sum()  # = w / sqrt(2 pi), renormalized against rounding
    x.flags.writeable = False
    w.flags.writeable = False
    return x, w


@lru_cache(maxsize=16)
def gauss_legendre(n_nodes: int) -> tuple[np.ndarray, np.ndarray]:
    """Gauss-Legendre rule on ``[-1, 1]`` (cached, read-only)."""
    x, w = np.polynomial.legendre.leggauss(n_nodes)
    x.flags.writeable = False
    w.flags.writeable = False
    return x, w


def log_double_factorial(m: int) -> float:
    """``log(m!!)`` for an odd or even ``m >= -1`` (with ``(-1)!! = 0!! = 1``)."""
    if m <= 0:
        return 0.0
    if m % 2 == 0:
        k = m // 2
        return k * log(2.0) + lgamma(k + 1)
    k = (m + 1) // 2  # m!! = (2k)! / (2^k k!)
    return lgamma(2 * k + 1) - k * log(2.0) - lgamma(k + 1)


def monomial_hermite_coefficients(k: int, degree: int) -> np.ndarray:
    """``E[z^k h_n(z)]`` for ``n = 0..degree``.

    From ``z^k = sum_m k! / (m! (k-2m)! 2^m) He_{k-2m}(z)``:
    ``E[z^k h_n] = k! / (m! 2^m sqrt(n!))`` with ``n = k - 2m``, else 0.
    """
    out = np.zeros(degree + 1)
    for n in range(k % 2, min(k, degree) + 1, 2):
        m = (k - n) // 2
        out[n] = np.exp(
            lgamma(k + 1) - lgamma(m + 1) - m * log(2.0) - 0.5 * lgamma(n + 1)
        )
    return out


# Scales (in units of 1/r) at which a saturating or kinked activation evaluated
# at r z changes behaviour; breakpoints there keep every panel smooth even when
# r is huge (tanh(1e4 z) is a step resolved on [-30/r, 30/r]).
_SCALE_POINTS = (0.1, 0.3, 1.0, 3.0, 10.0, 30.0)


def _composite_rule(
    r: np.ndarray, degree: int, kinks: tuple[float, ...], panel_nodes: int
) -> tuple[np.ndarray, np.ndarray]:
    """Per-scale composite Gauss-Legendre nodes/weights for ``E[g(z)]``.

    Returns ``(z, w)`` of shape ``(len(r), n)``; ``w`` already includes the
    standard normal density.  All scales share the node count (clipped
    breakpoints give empty panels with zero weight), so the rule vectorizes.
    """
    # Beyond sqrt(4 degree + 2) the weight phi(z) h_n(z)^2 decays like a Gaussian,
    # 10 more units make the tail < 1e-20.  Capped at 30: by Cramér's inequality
    # |h_n(z)| <= 1.09 exp(z^2 / 4) for every n, so |h_n phi| <= exp(-z^2 / 4)
    # is below 1e-97 there whatever the degree, and h_n cannot overflow.
    L = min(sqrt(4 * degree + 2) + 10.0, 30.0)
    base = np.linspace(-L, L, int(np.ceil(2 * L / 0.5)) + 1)  # width-0.5 panels
    with np.errstate(divide="ignore", invalid="ignore"):
        inv_r = np.where(r > 0, 1.0 / np.where(r > 0, r, 1.0), np.inf)
    pts = [s * inv_r for s in _SCALE_POINTS]
    pts += [-p for p in pts]
    pts += [np.zeros_like(inv_r) if k == 0 else k * inv_r for k in kinks]
    extra = np.clip(np.stack(pts, axis=1), -L, L) if pts else np.empty((len(r), 0))
    bp = np.concatenate([np.broadcast_to(base, (len(r), base.size)), extra], axis=1)
    bp = np.concatenate([bp, np.zeros((len(r), 1))], axis=1)
    bp.sort(axis=1)
    lo, hi = bp[:, :-1], bp[:, 1:]
    half = 0.5 * (hi - lo)
    mid = 0.5 * (hi + lo)
    xg, wg = gauss_legendre(panel_nodes)
    z = (mid[:, :, None] + half[:, :, None] * xg).reshape(len(r), -1)
    w = (half[:, :, None] * wg).reshape(len(r), -1)
    w *= np.exp(-0.5 * z * z - _LOG_SQRT_2PI)
    return z, w


def hermite_coefficients_quadrature(
    f: Callable[[np.ndarray], np.ndarray],
    r: np.ndarray,
    degree: int,
    *,
    kinks: tuple[float, ...] = (),
    panel_nodes: int = 24,
    chunk: int = 256,
) -> np.ndarray:
    """``E_{z~N(0,1)}[f(r_i z) h_n(z)]`` by composite Gauss-Legendre quadrature.

    Parameters
    ----------
    f : callable
        Vectorized function of one real variable.
    r : ndarray of shape (n_scales,)
        Nonnegative scales.
    degree : int
        Highest Hermite degree.
    kinks : tuple of float
        Points ``t`` where ``f`` is not smooth; breakpoints go to ``t / r``.
    panel_nodes : int
        Gauss-Legendre nodes per panel.
    chunk : int
        Number of scales processed at once (bounds memory).

    Returns
    -------
    a : ndarray of shape (n_scales, degree + 1)
    """
    r = np.asarray(r, dtype=np.float64)
    out = np.empty((r.size, degree + 1))
    for start in range(0, r.size, chunk):
        rr = r[start : start + chunk]
        z, w = _composite_rule(rr, degree, kinks, panel_nodes)
        with np.errstate(over="ignore", under="ignore", invalid="ignore"):
            fw = np.asarray(f(rr[:, None] * z), dtype=np.float64) * w
        # (1e4 z) * 0 -> f is finite wherever the weight matters; guard anyway.
        fw[w == 0.0] = 0.0
        # Recurrence on the fly: keeps memory at O(chunk * nodes).
        h_prev = np.ones_like(z)
        out[start : start + chunk, 0] = fw.sum(axis=1)
        if degree >= 1:
            h = z.copy()
            out[start : start + chunk, 1] = np.einsum("ij,ij->i", fw, h)
            for n in range(1, degree):
                h_next = z * h
                h_next -= sqrt(n) * h_prev
                h_next *= 1.0 / sqrt(n + 1)
                h_prev, h = h, h_next
                out[start : start + chunk, n + 1] = np.einsum("ij,ij->i", fw, h)
    return out


def bivariate_gauss_hermite(
    fn: Callable[[np.ndarray], np.ndarray],
    deriv: Callable[[np.ndarray], np.ndarray] | None,
    kxx: np.ndarray,
    kxy: np.ndarray,
    kyy: np.ndarray,
    n_nodes: int,
) -> tuple[np.ndarray, np.ndarray | None]:
    """``E[fn(u) fn(v)]`` (and ``E[deriv(u) deriv(v)]``) by a product rule.

    For ``(u, v) ~ N(0, [[kxx, kxy], [kxy, kyy]])`` written as
    ``u = sqrt(kxx) z1``, ``v = sqrt(kyy) (ρ z1 + sqrt(1 - ρ²) z2)``, with the
    ``n_nodes``-point rule :func:`gauss_hermite` in each of ``z1, z2``: exact
    for polynomials of degree ``< 2 n_nodes`` in each variable, slow
    (algebraic) convergence for kinked functions.

    Parameters
    ----------
    fn, deriv : callable or None
        Vectorized float64 NumPy functions (``deriv=None``: not computed).
    kxx, kxy, kyy : ndarray of shape (n,)
        Variances and covariances, float64.
    n_nodes : int
        Nodes per dimension, ``>= 1``.

    Returns
    -------
    S : ndarray of shape (n,)
    Sd : ndarray of shape (n,), or None when ``deriv`` is None
    """
    z, w = gauss_hermite(n_nodes)
    sx = np.sqrt(np.maximum(kxx, 0.0))
    sy = np.sqrt(np.maximum(kyy, 0.0))
    with np.errstate(divide="ignore", invalid="ignore"):
        rho = np.where((sx > 0) & (sy > 0), kxy / (sx * sy), 0.0)
    rho = np.nan_to_num(np.clip(rho, -1.0, 1.0))
    rc = np.sqrt(np.maximum(1.0 - rho * rho, 0.0))
    S = np.empty(kxx.size)
    Sd = np.empty(kxx.size) if deriv is not None else None
    # Blocks of about 2e6 nodes: the (block, n, n) array of v stays small.
    chunk = max(1, 2_000_000 // (n_nodes * n_nodes))
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        for s in range(0, kxx.size, chunk):
            sl = slice(s, s + chunk)
            u = sx[sl, None] * z  # (N, n): z1 nodes
            # v at (z1_i, z2_j): (N, n, n)
            v = sy[sl, None, None] * (
                rho[sl, None, None] * z[None, :, None]
                + rc[sl, None, None] * z[None, None, :]
            )
            S[sl] = np.einsum("ni,i,ni->n", fn(u), w, fn(v) @ w)
            if deriv is not None:
                Sd[sl] = np.einsum("ni,i,ni->n", deriv(u), w, deriv(v) @ w)
    return S, Sd
