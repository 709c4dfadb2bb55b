"""Fully connected layers: ``Dense`` and ``Elementwise``, exact and sketched.

Conventions (neural-tangents, ``parameterization="ntk"``), for one layer:

* ``Dense``:        ``K' = W_std^2 K + b_std^2``,  ``Theta' = W_std^2 Theta + K'``;
  features ``phi' = [W_std phi ; b_std]``, ``psi' = [W_std psi ; phi']``.
* ``Elementwise``:  ``K' = Sigma(K)``, ``Theta' = Sigma_dot(K) * Theta``;
  features ``phi' = Phi_sigma(phi)``, ``psi' = T(psi (x) Phi_sigma'(phi))``.

``Phi_sigma(phi) = [a_0(r), a_1(r) S_1(u), ..., a_q(r) S_q(u)]`` with
``r = ||phi||``, ``u = phi / r``, the scale-dependent Hermite coefficients
``a_n(r)`` of the activation and a PolySketch ``S_n`` of ``u^{(x)n}``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.utils import check_random_state

from .._backend import asxp, get_namespace, is_numpy, to_numpy
from ..activations import Activation, _correlation, _gap_of, _prepare
from ..sketches import SRHT, CountSketch, PolySketch, TensorSketch, TensorSRHT
from .base import Dims, Features, KernelState, LayerSketch

__all__ = ["Dense", "Elementwise", "folded_hermite", "split_degrees"]


# ----------------------------------------------------------------------------
# Dense
# ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Dense:
    """Affine layer ``W_std / sqrt(fan_in) * W x + b_std * b`` at infinite width.

    The ``1 / sqrt(fan_in)`` of the NTK parameterization is applied once, to
    the input, by :class:`sklearn_ntk.networks.Network`; here a layer scales
    by ``W_std`` and appends the bias.
    """

    W_std: float = 1.0
    b_std: float = 0.0

    def kernel(self, k: KernelState) -> KernelState:
        w2, b2 = self.W_std**2, self.b_std**2
        nngp = _affine(k.nngp, w2, b2)
        ntk = None if k.ntk is None else _affine(k.ntk, w2, 0.0) + nngp
        if k.kxx is k.nngp:  # diagonal state: the pairs (x, x)
            return KernelState(nngp=nngp, kxx=nngp, kyy=nngp, ntk=ntk)
        kxx, kyy = w2 * k.kxx + b2, w2 * k.kyy + b2
        gap = k.gap
        if gap is not None and b2 != 0:
            gap = _dense_gap(k.nngp, k.kxx, k.kyy, kxx, kyy, gap, w2, b2)
        return KernelState(nngp=nngp, kxx=kxx, kyy=kyy, ntk=ntk, gap=gap)

    def output_width(self, phi_in: int) -> int:
        return phi_in + (self.b_std != 0)

    def sketch(self, dims: Dims, widths: tuple[int, int], random_state: Any = None):
        return DenseSketch(self, dims)


def _affine(a: Any, w2: float, b2: float) -> Any:
    """``w2 * a + b2``, skipping the passes that change nothing."""
    if w2 != 1.0:
        a = w2 * a
    return a + b2 if b2 != 0.0 else a


def _dense_gap(
    kxy: Any, kxx: Any, kyy: Any, kxx2: Any, kyy2: Any, gap: Any, w2: float, b2: float
) -> Any:
    """Gap ``1 - |rho'|`` after ``K' = w2 K + b2``, without cancellation.

    With ``P = sqrt(kxx' kyy')`` and ``Q = w2 sqrt(kxx kyy)``::

        P (1 - rho') = (P - Q - b2) + Q (1 - rho),
        P - Q - b2   = w2 b2 (sqrt(kxx) - sqrt(kyy))^2 / (P + Q + b2) >= 0,
        P (1 + rho') = (P - Q + b2) + Q (1 + rho),
        P - Q        = (w2 b2 (kxx + kyy) + b2^2) / (P + Q) >= 0,

    sums of nonnegative terms, each accurate (``1 -+ rho`` from the gap, see
    :func:`~sklearn_ntk.activations._plus_minus`).  Products of variances are
    never formed, so nothing under- or overflows.
    """
    from ..activations import _clip_gap, _plus_minus

    xp, _ = get_namespace(kxy)
    sx, sy = xp.sqrt(kxx), xp.sqrt(kyy)
    P = xp.sqrt(kxx2) * xp.sqrt(kyy2)
    Q = (w2 * sx) * sy
    u, v = _plus_minus(xp, kxy, gap)
    diff = sx - sy
    minus = (w2 * b2) * diff * diff / (P + Q + b2) + Q * u
    plus = ((w2 * b2) * (kxx + kyy) + b2 * b2) / (P + Q) + b2 + Q * v
    out = xp.minimum(minus, plus) / P
    return _clip_gap(xp, out)


class DenseSketch(LayerSketch):
    def __init__(self, layer: Dense, dims: Dims):
        self.W_std, self.b_std = float(layer.W_std), float(layer.b_std)
        w2, b2 = self.W_std**2, self.b_std**2
        phi = dims.phi + (self.b_std != 0)
        psi = None if dims.psi is None else (dims.psi + phi if dims.psi else phi)
        s2 = w2 * dims.scale2 + b2
        self.dims_out = Dims(
            phi=phi,
            psi=psi,
            scale2=s2,
            scale2_ntk=w2 * dims.scale2_ntk + s2,
            sparse=dims.sparse,
        )

    def __call__(self, f: Features) -> Features:
        phi = f.phi
        if sp.issparse(phi):
            phi = phi * self.W_std
            if self.b_std != 0:
                bias = np.full((phi.shape[0], 1), self.b_std, dtype=phi.dtype)
                phi = sp.hstack([phi, sp.csr_matrix(bias)], format="csr")
        else:
            xp, _ = get_namespace(phi)
            phi = phi * self.W_std
            if self.b_std != 0:
                bias = xp.full(
                    (phi.shape[0], 1), self.b_std, dtype=phi.dtype, device=_device(phi)
                )
                phi = xp.concat([phi, bias], axis=1)
        if self.dims_out.psi is None:
            return Features(phi)
        if f.psi is None:  # Theta = 0 before the first Dense layer
            return Features(phi, phi)
        xp, _ = get_namespace(f.psi)
        return Features(phi, xp.concat([f.psi * self.W_std, phi], axis=1))


# ----------------------------------------------------------------------------
# Elementwise activation
# ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Elementwise:
    """A nonlinearity applied coordinate-wise, at infinite width.

    Parameters
    ----------
    act : Activation
        The activation; its dual gives the exact rule, its scale-dependent
        Hermite coefficients the feature rule.
    degree : int
        Degree ``q`` of the Hermite expansion kept by the feature rule.
    """

    act: Activation
    degree: int = 8
    method: str = "auto"

    def kernel(self, k: KernelState, keep_gap: bool = True) -> KernelState:
        """Exact rule; ``keep_gap=False`` skips the output's gap (no later
        layer needs it).  The output variances ``kxx``, ``kyy`` are the dual
        on the input variances (the network may replace them by its own
        diagonal states, see :meth:`sklearn_ntk.networks.Network.kernel`)."""
        derivative = k.ntk is not None
        if k.kxx is k.nngp:  # diagonal state: the pairs (x, x)
            sig, sig_dot = self.act.dual(k.kxx, k.kxx, k.kxx, derivative=derivative)
            ntk = None if k.ntk is None else sig_dot * k.ntk
            return KernelState(nngp=sig, kxx=sig, kyy=sig, ntk=ntk)
        gap = None
        if k.gap is None:
            sig, sig_dot = self.act.dual(k.kxx, k.nngp, k.kyy, derivative=derivative)
        else:
            xp, kxx, kxy, kyy = _prepare(k.kxx, k.nngp, k.kyy)
            sig, sig_dot, gap = self.act._dual_gap(
                xp, kxx, kxy, kyy, k.gap, derivative, keep_gap
            )
        ntk = None
        if k.ntk is not None:
            own = isinstance(sig_dot, np.ndarray) and sig_dot is not sig
            if own and sig_dot.shape == sig.shape:
                sig_dot *= k.ntk  # a temporary of the dual: reuse it
                ntk = sig_dot
            else:
                ntk = sig_dot * k.ntk
        kxx, kyy = _diag_dual(self.act, k.kxx), _diag_dual(self.act, k.kyy)
        if k.gap is not None and keep_gap:
            xp, _ = get_namespace(sig)
            if gap is None:  # no accurate formula: from the output's correlation
                gap = _gap_of(xp, _correlation(xp, kxx, sig, kyy))
            if bool(xp.any(kxx == 0.0)) or bool(xp.any(kyy == 0.0)):
                dead = (kxx == 0.0) | (kyy == 0.0)  # rho' = 0 there
                gap = xp.maximum(gap, xp.astype(dead, gap.dtype))
        return KernelState(
            nngp=sig, kxx=kxx, kyy=kyy, ntk=ntk, gap=gap if keep_gap else None
        )

    def sketch(self, dims: Dims, widths: tuple[int, int], random_state: Any = None):
        return ElementwiseSketch(self.act, self.degree, dims, widths, random_state)


def _diag_dual(act: Activation, kxx: Any) -> Any:
    return act.dual(kxx, kxx, kxx, derivative=False)[0]


def folded_hermite(act: Activation, r: np.ndarray, degree: int, derivative: bool):
    """Hermite coefficients up to ``degree`` with the truncated tail folded in.

    The mass ``sum_{n > q} a_n(r)^2`` of the even (odd) degrees past ``q`` is
    added to the square of the highest even (odd) kept degree, so that the
    truncated dual is exact at ``rho = +-1``: features keep the exact norm
    ``||Phi_sigma(x)||^2 = Sigma(x, x)``, and deeper layers see exact scales.
    Returns ``(a, b)`` of shape ``(len(r), degree + 1)`` (``b`` is ``None``
    unless ``derivative``).
    """
    r = np.asarray(r, dtype=np.float64)
    a, b = act.hermite(r, degree)
    r2 = r * r
    sig_p, dot_p = act.dual(r2, r2, r2, derivative=derivative)
    sig_m, dot_m = act.dual(r2, -r2, r2, derivative=derivative)
    a = _fold(a, sig_p, sig_m)
    b = _fold(b, dot_p, dot_m) if derivative else None
    return a, b


def _fold(c: np.ndarray, total_p: np.ndarray, total_m: np.ndarray) -> np.ndarray:
    c = np.array(c, dtype=np.float64, copy=True)
    q = c.shape[1] - 1
    sq = c * c
    for parity, total in (
        (0, 0.5 * (total_p + total_m)),
        (1, 0.5 * (total_p - total_m)),
    ):
        n_top = q if q % 2 == parity else q - 1
        if n_top < 0:
            continue
        tail = total - sq[:, parity::2].sum(axis=1)
        # Only add mass: rounding can make the tail slightly negative.
        tail = np.where(np.isfinite(tail), np.maximum(tail, 0.0), 0.0)
        top = c[:, n_top]
        sign = np.where(top < 0, -1.0, 1.0)
        c[:, n_top] = sign * np.sqrt(top * top + tail)
    return c


def split_degrees(
    weights: np.ndarray, budget: int, cost: np.ndarray | None = None, minimum: int = 4
) -> np.ndarray:
    """Split ``budget`` features across the parts of a feature map.

    Part ``k`` carries the share ``w_k`` of the kernel and, with ``m_k``
    features, a variance ``~ w_k^2 c_k / m_k``.  Minimizing the sum under
    ``sum m_k = budget`` gives ``m_k ~ w_k sqrt(c_k)``.  For the degree-``n``
    PolySketch ``c_n ~ n`` (the default ``cost``: its variance relative to
    ``rho^n`` grows with ``n``).  Every part with non-negligible weight gets
    at least ``minimum`` features.
    """
    w = np.asarray(weights, dtype=np.float64)
    c = np.arange(1, w.size + 1, dtype=np.float64) if cost is None else np.asarray(cost)
    active = w > 1e-10 * max(w.max(initial=0.0), 1e-300)
    if budget <= 0 or not active.any():
        return np.zeros(w.size, dtype=int)
    score = np.where(active, w * np.sqrt(c), 0.0)
    n_active = int(active.sum())
    floor = min(minimum, budget // n_active)
    rest = budget - floor * n_active
    share = rest * score / score.sum()
    m = np.floor(share).astype(int)
    # Largest remainders get the leftover features, so the total is exact.
    left = rest - m.sum()
    order = np.argsort(-(share - m))
    m[order[:left]] += 1
    return np.where(active, m + floor, 0)


def _has_pointwise(act: Activation) -> bool:
    try:
        act(np.zeros(1))
    except TypeError:  # defined by its dual alone (exp_normalized)
        return False
    return True


# Relative tail mass above which the tail gets Monte-Carlo features.
_TAIL_THRESHOLD = 1e-3
# Variance factor of the Monte-Carlo tail, in the units of ``split_degrees``.
_TAIL_COST = 2.0


class ElementwiseSketch(LayerSketch):
    """Drawn feature rule of an :class:`Elementwise` layer.

    ``Phi_sigma(phi) = [a_0(r), a_1(r) S_1(u), ..., a_q(r) S_q(u), t(phi)]``:

    * low degrees are exact when the input is narrow (degree 1 is ``u``
      itself, degree 2 the symmetric part of ``u (x) u``); the others are
      PolySketched (TensorSketched, in input-sparsity time, on sparse input);
    * the tail ``sum_{n > q}`` is either covered without bias by Monte-Carlo
      features ``t = [sigma(r z_j) - sum_{n<=q} a_n(r) h_n(z_j)] / sqrt(m_t)``
      with ``z = u G`` Gaussian (Mehler: their expected inner product is the
      tail exactly), or, when it is negligible or ``sigma`` has no pointwise
      form, folded into the top even and odd degrees (exact at ``rho = +-1``).

    ``sigma`` and ``sigma'`` share the sketches ``S_n(u)`` and ``z``.
    """

    def __init__(self, act: Activation, degree: int, dims: Dims, widths, random_state):
        rng = check_random_state(random_state)
        n_phi, n_psi = int(widths[0]), int(widths[1])
        self.act = act
        self.ntk = dims.psi is not None
        d = dims.phi
        r_ref = math.sqrt(max(dims.scale2, 1e-12)) * np.array([0.5, 1.0, 2.0])

        budget = n_phi - 1  # degree 0 is the exact constant feature a_0(r)
        self.exact1 = (not dims.sparse) and d <= budget // 4
        narrow2 = self.exact1 and d * (d + 1) // 2 <= budget // 4
        # Measured (benchmarks/bench_fc.py): per feature, Monte-Carlo tail
        # features beat PolySketches of degree >= 2 (>= 3 when degree 2 is
        # exact), so with a samplable tail only the exact or JL-cheap low
        # degrees are sketched.  Otherwise (sparse input, kernel-only
        # activations, negligible tail) the expansion goes to ``degree`` and
        # the tail is folded.
        samplable = not dims.sparse and _has_pointwise(act)
        self.degree = (
            min(int(degree), 2 if narrow2 else 1) if samplable else int(degree)
        )
        weights, tail = self._weights(r_ref)
        self.mc_tail = samplable and tail > _TAIL_THRESHOLD
        if not self.mc_tail and self.degree != int(degree):
            self.degree = int(degree)
            weights, tail = self._weights(r_ref)
        q = self.degree
        self.exact2 = narrow2 and q >= 2
        if self.exact1:
            budget -= d
        if self.exact2:
            budget -= d * (d + 1) // 2
            self._iu = np.triu_indices(d)
            self._iu_w = np.where(self._iu[0] == self._iu[1], 1.0, math.sqrt(2.0))

        first = 1 + self.exact1 + self.exact2
        parts = np.append(weights[first - 1 :], tail if self.mc_tail else 0.0)
        cost = np.append(np.arange(first, q + 1, dtype=np.float64), _TAIL_COST)
        alloc = (
            split_degrees(parts, budget, cost)
            if first <= q or self.mc_tail
            else parts * 0
        )
        m = np.zeros(q, dtype=int)
        m[first - 1 :] = alloc[:-1]
        self.m, self.m_tail = m, int(alloc[-1])
        self._pad = budget - int(m.sum()) - self.m_tail  # nothing to sketch: zeros
        self._kept = np.ones(q + 1, dtype=bool)
        self._kept[1:] = m > 0
        self._kept[1] |= self.exact1
        if q >= 2:
            self._kept[2] |= self.exact2

        self.poly = self.sparse_sketches = self.G = None
        if m.sum() > 0:
            if dims.sparse:
                self.sparse_sketches = [
                    None
                    if m[n - 1] == 0
                    else (
                        CountSketch(d, int(m[n - 1]), rng)
                        if n == 1
                        else TensorSketch(d, n, int(m[n - 1]), rng)
                    )
                    for n in range(1, q + 1)
                ]
            else:
                top = int(np.nonzero(m)[0].max()) + 1
                self.poly = PolySketch(d, top, [int(v) for v in m[:top]], rng)
        if self.m_tail > 0:
            self.G = rng.standard_normal((d, self.m_tail))

        self.tensor = self.psi_project = self.psi_first_stage = None
        self.psi_exact = False
        if self.ntk:
            self._init_ntk(dims, n_phi, n_psi, rng)

        r1 = np.array([math.sqrt(dims.scale2)])
        a, b = self._coefs(r1)
        if self.mc_tail:  # the tail features make the norms exact in expectation
            s2, s2_dot = (
                float(v[0]) if v is not None else 0.0
                for v in act.dual(r1**2, r1**2, r1**2, derivative=self.ntk)
            )
        else:
            s2 = float((a[0, self._kept] ** 2).sum())
            s2_dot = float((b[0, self._kept] ** 2).sum()) if self.ntk else 0.0
        self.dims_out = Dims(
            phi=n_phi,
            psi=n_psi if self.ntk else None,
            scale2=s2,
            scale2_ntk=s2_dot * dims.scale2_ntk,
        )

    def _coefs(self, r: np.ndarray):
        if self.mc_tail:
            a, b = self.act.hermite(r, self.degree)
            return a, (b if self.ntk else None)
        return folded_hermite(self.act, r, self.degree, self.ntk)

    def _weights(self, r: np.ndarray) -> tuple[np.ndarray, float]:
        """Share of the dual carried by each degree 1..q, and by the tail.

        Maximum over a few typical scales, and over ``sigma`` and ``sigma'``
        for the NTK, of the unfolded ``a_n(r)^2 / E[sigma(r z)^2]``.
        """
        a, b = self.act.hermite(r, self.degree)
        r2 = r * r
        tot_a, tot_b = self.act.dual(r2, r2, r2, derivative=self.ntk)
        pairs = [(a, tot_a)] + ([(b, tot_b)] if self.ntk else [])
        w = np.zeros(self.degree)
        tail = 0.0
        for c, tot in pairs:
            tot = np.maximum(np.asarray(tot, dtype=np.float64), 1e-300)
            share = (c * c) / tot[:, None]
            w = np.maximum(w, share[:, 1:].max(axis=0))
            tail = max(tail, float(np.clip(1.0 - share.sum(axis=1), 0.0, None).max()))
        return w, tail

    def _init_ntk(self, dims: Dims, n_phi: int, n_psi: int, rng) -> None:
        """Draw the NTK part: ``psi' = [b_0(r) P psi ; T(psi (x) Phi'_{>=1})]``.

        ``psi (x) Phi_sigma'`` splits by degree: its degree-0 block is
        ``b_0(r) psi``, a rescaling that needs no tensor sketch.  It is kept
        exactly when ``psi`` is narrow (``P = I``) or projected by an SRHT
        (whose variance is well below a TensorSRHT's); only the degrees
        ``n >= 1`` (and the tail) go through the TensorSRHT.  The budget is
        split in proportion to the two parts' weight at the reference scale.
        """
        d_psi = dims.psi
        r = math.sqrt(max(dims.scale2, 1e-12)) * np.array([0.5, 1.0, 2.0])
        _, b = self._coefs(r)
        _, tot = self.act.dual(r * r, r * r, r * r)
        w0 = float((b[:, 0] ** 2).max())
        w_rest = float(np.maximum(np.asarray(tot) - b[:, 0] ** 2, 0.0).max())
        n_rest_in = n_phi - 1 - self._pad  # width of Phi'_{>=1}
        if w_rest <= 1e-12 * max(w0, 1e-300) or n_rest_in <= 0:
            n0 = n_psi
        elif w0 <= 1e-12 * w_rest:
            n0 = 0
        else:
            n0 = round(n_psi * w0 / (w0 + math.sqrt(2.0) * w_rest))
            n0 = min(max(n0, 1), n_psi - 1)
            if not dims.sparse and d_psi <= n0:
                n0 = d_psi  # exact: the rest goes to the tensor sketch
        self.n0 = n0
        self.shared_spread = False
        if n0 > 0:
            if not dims.sparse and d_psi == n0:
                self.psi_exact = True
            elif dims.sparse:
                self.psi_project = CountSketch(d_psi, n0, rng)
            elif n_psi - n0 > 0:
                # The SRHT of psi reads the TensorSRHT's FFT of psi (one
                # transform of the widest array instead of two).
                self.shared_spread = True
            else:
                self.psi_project = SRHT(d_psi, n0, rng)
        if n_psi - n0 > 0:
            if dims.sparse:  # psi is the sparse input: count-sketch it first
                self.psi_first_stage = CountSketch(d_psi, min(d_psi, n_phi), rng)
                d_psi = min(d_psi, n_phi)
            self.tensor = TensorSRHT(
                d_psi,
                n_rest_in,
                n_psi - n0,
                rng,
                n_linear=n0 if self.shared_spread else 0,
            )

    def _basis(self, xp: Any, u: Any) -> list[Any]:
        """Sketches ``S_n(u)`` for n = 1..q (``None`` where a degree is dropped)."""
        q = self.degree
        out: list[Any] = [None] * q
        if self.exact1:
            out[0] = u
        if self.exact2:
            i, j = (asxp(v, xp, device=_device(u)) for v in self._iu)
            w = asxp(self._iu_w, xp, device=_device(u), dtype=u.dtype)
            out[1] = xp.take(u, i, axis=1) * xp.take(u, j, axis=1) * w
        if self.poly is not None:
            for n, s in enumerate(self.poly(u), start=1):
                if self.m[n - 1] > 0:
                    out[n - 1] = s
        if self.sparse_sketches is not None:
            for n, s in enumerate(self.sparse_sketches, start=1):
                if s is not None:
                    out[n - 1] = asxp(s(u), xp)
        return out

    def _tails(self, xp: Any, u: Any, r: Any, a: Any, b: Any) -> tuple[Any, Any]:
        """Monte-Carlo features of ``sigma`` (and ``sigma'``) minus degrees <= q."""
        z = u @ asxp(self.G, xp, device=_device(u), dtype=u.dtype)
        scale = 1.0 / math.sqrt(self.m_tail)
        # The 1/sqrt(m_t) scale rides on the small coefficient arrays.
        a = a * scale
        rz = r[:, None] * z
        t = _scaled(xp, self.act(rz), z.dtype, scale)
        dt = None
        if self.ntk:
            b = b * scale
            dt = _scaled(xp, self.act.derivative(rz), z.dtype, scale)
        del rz
        # Subtract sum_{n<=q} c_n h_n(z), normalized Hermite by recurrence;
        # in place on NumPy, where these passes dominate the layer's cost.
        inplace = is_numpy(xp)
        h_prev, h = None, 1.0  # h_0 = 1
        for n in range(self.degree + 1):
            if n == 1:
                h_prev, h = h, z
            elif n >= 2:
                h_prev, h = h, (z * h - math.sqrt(n - 1) * h_prev) / math.sqrt(n)
            for out, c in ((t, a), (dt, b)):
                if out is None:
                    continue
                term = c[:, n : n + 1] if n == 0 else c[:, n : n + 1] * h
                if inplace:
                    out -= term
                elif out is t:
                    t = t - term
                else:
                    dt = dt - term
        return t, dt

    def __call__(self, f: Features) -> Features:
        phi = f.phi
        if sp.issparse(phi):
            phi = phi.tocsr()
            xp = get_namespace(np.empty(0))[0]
            r_host = np.sqrt(np.asarray(phi.multiply(phi).sum(axis=1)).ravel())
            inv = np.where(r_host > 0, 1.0 / np.where(r_host > 0, r_host, 1.0), 0.0)
            u = sp.diags(inv.astype(phi.dtype)) @ phi
            dtype, dev = phi.dtype, None
        else:
            xp, _ = get_namespace(phi)
            dtype, dev = phi.dtype, _device(phi)
            r = xp.sqrt(xp.sum(phi * phi, axis=1))
            r_host = to_numpy(r).astype(np.float64)
            safe = xp.where(r > 0, r, xp.ones_like(r))
            u = phi / safe[:, None]
        a_full, b_full = self._coefs(r_host)
        a = asxp(a_full[:, self._kept], xp, device=dev, dtype=dtype)
        kept_basis = [s for s in self._basis(xp, u) if s is not None]
        tail = dtail = None
        if self.m_tail > 0:
            tail, dtail = self._tails(
                xp,
                u,
                asxp(r_host, xp, device=dev, dtype=dtype),
                asxp(a_full, xp, device=dev, dtype=dtype),
                None if b_full is None else asxp(b_full, xp, device=dev, dtype=dtype),
            )
        n_rows = phi.shape[0]

        def assemble(coef: Any, tail_part: Any, constant: bool = True) -> Any:
            cols = [coef[:, 0:1]] if constant else []
            cols += [coef[:, k + 1 : k + 2] * s for k, s in enumerate(kept_basis)]
            if tail_part is not None:
                cols.append(tail_part)
            if self._pad and constant:
                cols.append(xp.zeros((n_rows, self._pad), dtype=dtype, device=dev))
            return xp.concat(cols, axis=1)

        phi_out = assemble(a, tail)
        if not self.ntk:
            return Features(phi_out)
        b = asxp(b_full[:, self._kept], xp, device=dev, dtype=dtype)
        parts = []
        if self.n0 > 0 and not self.shared_spread:
            psi0 = f.psi if self.psi_exact else self.psi_project(f.psi)
            parts.append(b[:, 0:1] * asxp(psi0, xp, device=dev, dtype=dtype))
        if self.tensor is not None:
            psi = f.psi
            if self.psi_first_stage is not None:
                psi = asxp(self.psi_first_stage(psi), xp, device=dev, dtype=dtype)
            rest = assemble(b, dtail, constant=False)
            if self.shared_spread:
                psi0, tensor = self.tensor.linear_and_tensor(psi, rest)
                parts += [b[:, 0:1] * psi0, tensor]
            else:
                parts.append(self.tensor(psi, rest))
        psi_out = parts[0] if len(parts) == 1 else xp.concat(parts, axis=1)
        return Features(phi_out, psi_out)


def _scaled(xp: Any, values: Any, dtype: Any, scale: float) -> Any:
    """``values * scale`` in ``dtype``, in place when NumPy allows it."""
    values = xp.astype(values, dtype, copy=False)
    if is_numpy(xp):
        values *= scale
        return values
    return values * scale


def _device(a: Any) -> Any:
    from .._backend import device

    return device(a)
