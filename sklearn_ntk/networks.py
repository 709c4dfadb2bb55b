"""Networks as lists of layers, and their drawn feature maps.

A :class:`Network` is an input rule followed by layers (see
:mod:`sklearn_ntk.layers`).  The same object gives the exact kernels
(:meth:`Network.kernel`) and, once drawn, the sketched feature map
(:meth:`Network.sketch`), so exact and approximate paths cannot drift apart.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.utils import check_random_state

from ._backend import get_namespace
from .activations import Activation
from .layers.base import Dims, Features, KernelState
from .layers.dense import Dense, Elementwise
from .sketches import SRHT

__all__ = [
    "DenseInput",
    "Network",
    "NetworkSketch",
    "fully_connected",
    "split_ntk_budget",
]


@dataclass(frozen=True)
class DenseInput:
    """Input rule of a fully connected network: ``K = <x, y> / d``, ``Theta = 0``."""

    def kernel(
        self, X: Any, Y: Any, ntk: bool, diag_offset: int | None = None
    ) -> KernelState:
        """Input state; ``diag_offset`` says that ``X`` is ``Y[offset:offset + n]``."""
        d = X.shape[1]
        if sp.issparse(X) or sp.issparse(Y):
            gram = X @ Y.T
            gram = gram.toarray() if sp.issparse(gram) else np.asarray(gram)
            kxx = _sparse_row_sq(X)
            kyy = _sparse_row_sq(Y)
            xp = np
        else:
            xp, _ = get_namespace(X, Y)
            gram = X @ Y.T
            kxx = xp.sum(X * X, axis=1)
            kyy = xp.sum(Y * Y, axis=1)
        k = KernelState(
            nngp=gram / d,
            kxx=kxx[:, None] / d,
            kyy=kyy[None, :] / d,
            ntk=0.0 if ntk else None,
            diag=_self_pairs(X.shape[0], Y.shape[0], diag_offset),
        )
        return k.with_diag()

    def kernel_diag(self, X: Any, ntk: bool) -> KernelState:
        """State of the pairs ``(x, x)``: every array is ``(n,)``."""
        if sp.issparse(X):
            kxx = _sparse_row_sq(X)
        else:
            xp, _ = get_namespace(X)
            kxx = xp.sum(X * X, axis=1)
        kxx = kxx / X.shape[1]
        return KernelState(nngp=kxx, kxx=kxx, kyy=kxx, ntk=0.0 if ntk else None)

    def dims(self, n_features: int, ntk: bool) -> Dims:
        # Reference input: ||x||^2 / d = 1 (standardized data).
        return Dims(phi=n_features, psi=0 if ntk else None, scale2=1.0)

    def features(self, X: Any) -> Features:
        return Features(X * (1.0 / math.sqrt(X.shape[1])))


def _self_pairs(n: int, m: int, offset: int | None) -> tuple | None:
    """Indices ``(i, offset + i)`` of the self-pairs in an ``(n, m)`` block."""
    if offset is None:
        return None
    rows = np.arange(max(0, min(n, m - offset)))
    return rows, rows + offset


def _sparse_row_sq(X: Any) -> np.ndarray:
    if sp.issparse(X):
        return np.asarray(X.multiply(X).sum(axis=1)).ravel()
    return np.einsum("ij,ij->i", X, X)


@dataclass(frozen=True)
class Network:
    """An input rule and a list of layers, each with an exact and a feature rule."""

    input: Any
    layers: tuple

    def kernel(
        self, X: Any, Y: Any, ntk: bool = False, diag_offset: int | None = None
    ) -> KernelState:
        """Exact kernels between the rows of ``X`` and ``Y``.

        ``diag_offset`` marks ``X`` as the rows ``offset:offset + n`` of ``Y``,
        so that the pairs of an input with itself are kept exactly consistent.
        """
        k = self.input.kernel(X, Y, ntk, diag_offset)
        for layer in self.layers:
            k = layer.kernel(k)
        return k

    def kernel_diag(self, X: Any, ntk: bool = False) -> KernelState:
        """Exact ``K(x, x)`` (and ``Theta(x, x)``) for each row of ``X``."""
        k = self.input.kernel_diag(X, ntk)
        for layer in self.layers:
            k = layer.kernel(k)
        return k

    def reference_scales(self, ntk: bool) -> tuple[float, float]:
        """``K(x, x)`` and ``Theta(x, x)`` at the output for a reference input."""
        one = np.ones(1)
        k = KernelState(nngp=one, kxx=one, kyy=one, ntk=0.0 if ntk else None)
        for layer in self.layers:
            k = layer.kernel(k)
        return float(k.nngp[0]), float(np.asarray(k.ntk).reshape(-1)[0]) if ntk else 0.0

    def sketch(
        self,
        n_features: int,
        n_components: int,
        *,
        ntk: bool,
        random_state: Any = None,
        sparse: bool = False,
    ) -> NetworkSketch:
        """Draw a feature map with exactly ``n_components`` output features."""
        rng = check_random_state(random_state)
        dims = self.input.dims(n_features, ntk)
        dims = Dims(dims.phi, dims.psi, dims.scale2, dims.scale2_ntk, sparse=sparse)
        widths = self._widths(n_components, ntk)
        sketches = []
        for layer in self.layers:
            s = layer.sketch(dims, widths, rng)
            sketches.append(s)
            dims = s.dims_out
        width = dims.psi if ntk else dims.phi
        resize = None
        if width > n_components:
            resize = SRHT(width, n_components, rng)
        return NetworkSketch(self.input, sketches, ntk, n_components, resize)

    def _widths(self, n_components: int, ntk: bool) -> tuple[int, int]:
        """Widths ``(phi, psi)`` of every activation layer's output.

        The final ``Dense`` appends a bias column (when ``b_std != 0``) and,
        for the NTK, stacks ``[W psi ; phi]``: the widths are chosen so that
        the output has exactly ``n_components`` columns.  The NTK budget is
        split between the NNGP part and the tensor-sketched part in proportion
        to their share of ``Theta`` at the reference scale.
        """
        last_dense = next(
            (la for la in reversed(self.layers) if isinstance(la, Dense)), None
        )
        bias = int(last_dense is not None and last_dense.b_std != 0)
        budget = max(n_components - bias, 2)
        return (
            split_ntk_budget(budget, *self.reference_scales(ntk=True))
            if ntk
            else (budget, 0)
        )


def split_ntk_budget(budget: int, k_out: float, theta_out: float) -> tuple[int, int]:
    """Split an NTK feature budget into ``(phi, tensor part)`` widths.

    In proportion to ``K / Theta`` at the reference scale, the tensor-sketched
    part counting about twice the variance per feature; each part keeps at
    least a fifth of the budget.
    """
    frac = k_out / theta_out if theta_out > 0 else 0.5
    share = frac / (frac + (1 - frac) * math.sqrt(2.0))
    n_phi = round(budget * min(max(share, 0.2), 0.8))
    return n_phi, budget - n_phi


class NetworkSketch:
    """A drawn feature map: ``__call__(X)`` returns ``(n, n_components)`` features."""

    def __init__(self, input_rule, sketches, ntk, n_components, resize):
        self.input = input_rule
        self.sketches = sketches
        self.ntk = ntk
        self.n_components = n_components
        self.resize = resize

    def __call__(self, X: Any) -> Any:
        f = self.input.features(X)
        for s in self.sketches:
            f = s(f)
        Z = f.psi if self.ntk else f.phi
        if self.ntk and Z is None:  # depth 0: Theta = K
            Z = f.phi
        if sp.issparse(Z):
            Z = Z.toarray()
        xp, _ = get_namespace(Z)
        if self.resize is not None:
            Z = self.resize(Z)
        elif Z.shape[1] < self.n_components:
            from ._backend import device

            pad = xp.zeros(
                (Z.shape[0], self.n_components - Z.shape[1]),
                dtype=Z.dtype,
                device=device(Z),
            )
            Z = xp.concat([Z, pad], axis=1)
        return Z


def fully_connected(
    act: Activation, depth: int, W_std: float, b_std: float, degree: int = 8
) -> Network:
    """``[Dense, act] * depth + [Dense]``, the network of kernels.md."""
    layers: list[Any] = [Dense(W_std, b_std)]
    for _ in range(depth):
        layers += [Elementwise(act, degree), Dense(W_std, b_std)]
    return Network(DenseInput(), tuple(layers))
