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

from dataclasses import dataclass, replace
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp

from .._backend import get_namespace
from ..activations import Activation, _correlation, _gap_of, _prepare
from .activation_features import ElementwiseSketch
from .base import (
    Dims,
    Features,
    KernelState,
    Layer,
    LayerSketch,
    Widths,
    affine,
    affine_ntk,
)

__all__ = ["Dense", "Elementwise"]


# ----------------------------------------------------------------------------
# Dense
# ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Dense(Layer):
    """Affine layer ``W_std / sqrt(fan_in) * W x + b_std * b`` at infinite width.

    The ``1 / sqrt(fan_in)`` of the NTK parameterization is applied once, to
    the input, by the input rule; here a layer scales by ``W_std`` and
    appends the bias.  Any layout: spatial axes, if any, are carried along.
    """

    W_std: float = 1.0
    b_std: float = 0.0

    carries_gap: ClassVar[bool] = True

    def kernel(self, k: KernelState) -> KernelState:
        w2, b2 = self.W_std**2, self.b_std**2
        nngp = affine(k.nngp, w2, b2)
        ntk = affine_ntk(nngp, k.ntk, w2)
        if k.layout.self_pairs:
            return KernelState(nngp=nngp, ntk=ntk, layout=k.layout)
        kxx = kyy = gap = None
        if k.kxx is not None:
            kxx, kyy = affine(k.kxx, w2, b2), affine(k.kyy, w2, b2)
        gap = k.gap
        if gap is not None and b2 != 0:
            gap = _dense_gap(k.nngp, k.kxx, k.kyy, kxx, kyy, gap, w2, b2)
        return KernelState(
            nngp=nngp, kxx=kxx, kyy=kyy, ntk=ntk, gap=gap, layout=k.layout
        )

    def feature_width(self, width: int, spatial: tuple[int, int] | None) -> int:
        return width + (self.b_std != 0)

    def features(self, dims: Dims, widths: Widths, rng: Any) -> LayerSketch:
        return DenseSketch(self, dims)


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
    """Feature rule of :class:`Dense`: ``phi' = [W_std phi ; b_std]``,
    ``psi' = [W_std psi ; phi']`` (``phi'`` alone while ``Theta = 0``).

    ``dims_out`` gives the widths; its scales are the network's (the exact
    rule on the reference state)."""

    def __init__(self, layer: Dense, dims: Dims):
        self.W_std, self.b_std = float(layer.W_std), float(layer.b_std)
        phi = dims.phi + (self.b_std != 0)
        psi = None if dims.psi is None else (dims.psi + phi if dims.psi else phi)
        self.dims_out = replace(dims, phi=phi, psi=psi)

    def __call__(self, f: Features) -> Features:
        phi = f.phi
        if sp.issparse(phi):
            phi = phi * self.W_std
            if self.b_std != 0:
                bias = np.full((phi.shape[0], 1), self.b_std, dtype=phi.dtype)
                phi = sp.hstack([phi, sp.csr_matrix(bias)], format="csr")
        else:
            xp, _ = get_namespace(phi)
            if self.W_std != 1.0:  # x * 1.0 == x: skip a copy of the features
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
        psi = f.psi * self.W_std if self.W_std != 1.0 else f.psi
        return Features(phi, xp.concat([psi, phi], axis=1))


# ----------------------------------------------------------------------------
# Elementwise activation
# ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Elementwise(Layer):
    """A nonlinearity applied coordinate-wise (pixel by pixel), at infinite width.

    Parameters
    ----------
    act : Activation
        The activation; its dual gives the exact rule, its scale-dependent
        Hermite coefficients the feature rule.
    degree : int
        Degree ``q`` of the Hermite expansion kept by the feature rule (how
        each ``method`` uses it: :mod:`sklearn_ntk.layers.activation_features`).
    method : {"auto", "hermite", "hybrid", "sparse"}
        The feature rule, one of the named strategies of
        :mod:`sklearn_ntk.layers.activation_features` (``"auto"`` picks per
        layer by measured accuracy, see its ``choose_method``).
    """

    act: Activation
    degree: int = 8
    method: str = "auto"

    takes_budget: ClassVar[bool] = True
    carries_gap: ClassVar[bool] = True

    def needs_gap(self, ntk: bool, scale: float) -> bool:
        return self.act._needs_gap(ntk, scale)

    def kernel(self, k: KernelState) -> KernelState:
        """Exact rule, any layout.  The variances the dual reads come from the
        state (:meth:`KernelState.variances`: the diagonal of a self state,
        those the network set on a cross state).  The output's gap is
        computed when the state carries one and ``k.gap_out``; a cross
        state's output variances are the dual on its input variances."""
        derivative = k.ntk is not None
        kxx, kyy = k.variances()
        if k.layout.self_pairs:
            sig, sig_dot = self.act.dual(kxx, k.nngp, kyy, derivative=derivative)
            ntk = None if k.ntk is None else sig_dot * k.ntk
            return KernelState(nngp=sig, ntk=ntk, layout=k.layout)
        keep_gap = k.gap_out
        gap = None
        if k.gap is None:
            sig, sig_dot = self.act.dual(kxx, k.nngp, kyy, derivative=derivative)
        else:
            xp, kxx, kxy, kyy = _prepare(kxx, k.nngp, kyy)
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
        kxx_out = kyy_out = None
        if k.gap is not None and keep_gap:
            kxx_out, kyy_out = _diag_dual(self.act, kxx), _diag_dual(self.act, kyy)
            xp, _ = get_namespace(sig)
            if gap is None:  # no accurate formula: from the output's correlation
                gap = _gap_of(xp, _correlation(xp, kxx_out, sig, kyy_out))
            if bool(xp.any(kxx_out == 0.0)) or bool(xp.any(kyy_out == 0.0)):
                dead = (kxx_out == 0.0) | (kyy_out == 0.0)  # rho' = 0 there
                gap = xp.maximum(gap, xp.astype(dead, gap.dtype))
        return KernelState(
            nngp=sig,
            kxx=kxx_out,
            kyy=kyy_out,
            ntk=ntk,
            gap=gap if keep_gap else None,
            layout=k.layout,
        )

    def features(self, dims: Dims, widths: Widths, rng: Any) -> LayerSketch:
        """The activation's feature rule on rows, run pixel by pixel (with the
        per-pixel norms made exact) when the features are per pixel."""
        inner = ElementwiseSketch(
            self.act,
            self.degree,
            dims,
            (widths.phi, widths.psi),
            rng,
            method=self.method,
        )
        if dims.spatial is None:
            return inner
        from .conv import PixelwiseSketch

        return PixelwiseSketch(inner, spatial=dims.spatial)


def _diag_dual(act: Activation, kxx: Any) -> Any:
    return act.dual(kxx, kxx, kxx, derivative=False)[0]


def _device(a: Any) -> Any:
    from .._backend import device

    return device(a)
