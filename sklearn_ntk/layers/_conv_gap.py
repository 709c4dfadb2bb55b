"""The gap ``1 - |rho|`` through sums of pixel-pair kernels, without cancellation.

A ``Conv`` (and the ``Flatten`` readout) sums pixel-pair kernels: ``S =
sum_d c_d`` with variances ``A = sum_d a_d``, ``B = sum_d b_d`` (``c_d``,
``a_d``, ``b_d``: the kernel and the variances of the pair read at offset
``d``).  With ``s_d = sqrt(a_d b_d)`` and ``rho_d = c_d / s_d``::

    sqrt(A B) - S = [sqrt(A B) - sum_d s_d] + sum_d s_d (1 - rho_d),
    sqrt(A B) + S = [sqrt(A B) - sum_d s_d] + sum_d s_d (1 + rho_d).

Every term is nonnegative.  The bracket is ``|u| |w| - <u, w>`` for the
vectors ``u = (sqrt(a_d))_d``, ``w = (sqrt(b_d))_d`` (Cauchy-Schwarz; its
Lagrange form is ``1/2 sum_{d, d'} (u_d w_d' - u_d' w_d)^2``): the gap of
two vectors, computed like the input's (:func:`vector_gaps`), accurate where
small.  ``1 -+ rho_d`` come from the carried gap.  So the output gap keeps
its relative accuracy where the summed pairs are nearly parallel.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._backend import asxp, device, get_namespace, is_numpy, to_numpy

__all__ = ["add_vector_gap", "pair_term", "sum_gap", "vector_gaps"]

#: Gaps below this (from normalized Gram entries, absolute error ~eps) are
#: recomputed from differences of the unit vectors.
_NEAR = 1e-3


def vector_gaps(U: Any, W: Any, spatial: str, only: Any = None) -> Any:
    """``1 - |<u, w>| / (|u| |w|)`` between per-pixel vectors, accurate.

    ``U`` is ``(n, H, W, F)``, ``W`` ``(m, H, W, F)``; the result is laid out
    like a cross state: ``(H, W, H, W, n, m)`` for ``spatial="full"`` (every
    pixel pair), ``(H, W, n, m)`` for ``"diagonal"`` (the pairs ``(i, i)``),
    ``(n, m)`` for ``"none"`` (then ``U`` is ``(n, F)``).  Zero vectors have
    gap 1 (``rho = 0``).  Entries below ``_NEAR`` are recomputed from the
    Gram determinant in double-double arithmetic (see
    :func:`sklearn_ntk.networks._gram_gap`), only where ``only`` (a boolean
    array broadcasting against the result, ``None``: everywhere) is true:
    the caller passes where the gap it adds this one to may be small.
    """
    xp, _ = get_namespace(U, W)
    if spatial == "none":
        U, W = U[:, None, None, :], W[:, None, None, :]
        spatial = "diagonal"
    n, H, Wd, F = U.shape
    m = W.shape[0]
    P = H * Wd
    Uf, Wf = xp.reshape(U, (n, P, F)), xp.reshape(W, (m, P, F))
    A = xp.permute_dims(_unit_rows(xp, Uf), (1, 0, 2))  # (P, n, F)
    B = xp.permute_dims(_unit_rows(xp, Wf), (1, 2, 0))  # (P, F, m)
    if spatial == "diagonal":
        G = xp.reshape(xp.matmul(A, B), (H, Wd, n, m))
    else:
        G = xp.reshape(xp.matmul(A[:, None, ...], B[None, ...]), (H, Wd, H, Wd, n, m))
    if is_numpy(xp):
        gap = np.abs(G)  # G is read again below for the signs
        np.subtract(1.0, gap, out=gap)
        np.clip(gap, 0.0, 1.0, out=gap)
    else:
        gap = xp.clip(1.0 - xp.abs(G), 0.0, 1.0)
    near = np.asarray(to_numpy(gap < _NEAR))
    if only is not None:
        near &= np.asarray(to_numpy(only), dtype=bool)
    if not near.any():
        return gap
    idx = np.nonzero(near)
    if spatial == "diagonal":
        (i1, i2, a, b) = idx
        j1, j2 = i1, i2
    else:
        (i1, i2, j1, j2, a, b) = idx
    Uh, Wh = _unit_host(U), _unit_host(W)
    sign = np.sign(np.asarray(to_numpy(G))[idx])
    values = np.empty(len(a))
    chunk = max(1, 2**20 // max(F, 1))
    for s in range(0, len(a), chunk):
        sl = slice(s, s + chunk)
        diff = Uh[a[sl], i1[sl], i2[sl]] - sign[sl, None] * Wh[b[sl], j1[sl], j2[sl]]
        values[sl] = 0.5 * np.einsum("ij,ij->i", diff, diff)
    flat = np.ravel_multi_index(idx, near.shape)
    return _put_flat(xp, gap, flat, np.minimum(values, 1.0))


def _unit_host(V: Any) -> np.ndarray:
    """Unit vectors (last axis) on the host in float64; zero vectors stay 0."""
    h = np.asarray(to_numpy(V), dtype=np.float64)
    big = np.abs(h).max(axis=-1, keepdims=True)
    _, e = np.frexp(np.where(big > 0, big, 1.0))
    h = np.ldexp(h, -e)  # exact: no under/overflow in the norms below
    r = np.sqrt(np.einsum("...i,...i->...", h, h))[..., None]
    return h / np.where(r > 0, r, 1.0)


def _unit_rows(xp: Any, V: Any) -> Any:
    """Rows scaled to unit norm (zero rows stay zero), last axis the vector."""
    big = xp.max(xp.abs(V), axis=-1, keepdims=True)
    V = V / xp.where(big > 0, big, xp.ones_like(big))  # no under/overflow below
    r = xp.sqrt(xp.sum(V * V, axis=-1, keepdims=True))
    return V / xp.where(r > 0, r, xp.ones_like(r))


def _put_flat(xp: Any, a: Any, flat: np.ndarray, values: np.ndarray) -> Any:
    """``a.reshape(-1)[flat] = values`` for a fresh array of any namespace."""
    shape = tuple(a.shape)
    if is_numpy(xp) and isinstance(a, np.ndarray):
        out = np.ascontiguousarray(a)
        out.reshape(-1)[flat] = values
        return out
    if type(a).__module__.startswith("torch"):
        import torch

        out = a.contiguous().reshape(-1)
        out[torch.as_tensor(flat, device=a.device)] = torch.as_tensor(
            values, dtype=a.dtype, device=a.device
        )
        return out.reshape(shape)
    host = np.array(to_numpy(a), copy=True)
    host.reshape(-1)[flat] = values
    return asxp(host, xp, device=device(a))


def sum_gap(
    xp: Any,
    summed: Any,
    vector_gap: Any,
    sum_s_minus: Any,
    sum_s_plus: Any,
    inv_x: Any,
    inv_y: Any,
) -> Any:
    """Gap of a sum of pixel-pair kernels (module docstring).

    ``summed`` is ``S``, ``vector_gap`` the gap of ``u`` and ``w`` (a fresh
    array, consumed), ``sum_s_minus`` (``sum_s_plus``) is ``sum_d s_d (1 -
    rho_d)`` (``(1 + rho_d)``; ``None`` when no ``rho_d`` is negative), and
    ``inv_x``, ``inv_y`` are ``1 / sqrt(A)``, ``1 / sqrt(B)`` (0 where the
    variance is 0: there the vector gap is 1, ``rho = 0``), small arrays
    broadcasting against the others.
    """
    other = pair_term(xp, summed, sum_s_minus, sum_s_plus, inv_x, inv_y)
    return add_vector_gap(xp, vector_gap, other)


def pair_term(
    xp: Any, summed: Any, sum_s_minus: Any, sum_s_plus: Any, inv_x: Any, inv_y: Any
) -> Any:
    """The second term of a sum's gap, ``sum_d s_d (1 -+ rho_d) / sqrt(A B)``
    (the arguments of :func:`sum_gap`; ``sum_s_minus`` and ``sum_s_plus``
    are consumed).  The gap is at least this, so where it is not small the
    vector gap needs no accurate recomputation (``vector_gaps(only=...)``)."""
    numpy = is_numpy(xp) and isinstance(sum_s_minus, np.ndarray)

    def scaled(a: Any) -> Any:
        if numpy:
            a *= inv_x
            a *= inv_y
            return a
        return a * inv_x * inv_y

    minus = scaled(sum_s_minus)
    if sum_s_plus is not None:
        plus = scaled(sum_s_plus)
        minus = xp.where(summed < 0, xp.minimum(minus, plus), minus)
    return minus


def add_vector_gap(xp: Any, vector_gap: Any, other: Any) -> Any:
    """``clip(vector_gap + other, 0, 1)``, in place for NumPy (``vector_gap``
    is consumed)."""
    if is_numpy(xp) and isinstance(vector_gap, np.ndarray):
        vector_gap += other
        return np.clip(vector_gap, 0.0, 1.0, out=vector_gap)
    return xp.clip(vector_gap + other, 0.0, 1.0)
