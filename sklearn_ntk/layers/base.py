"""What flows between layers: exact kernel states and feature states.

Every layer of :mod:`sklearn_ntk.layers` states two rules side by side, as
neural-tangents' ``stax`` layers do:

* ``kernel(state)``: the exact rule, mapping the NNGP kernel ``K`` (and the
  NTK ``Theta``) of its input to those of its output;
* ``sketch(dims, n_components, random_state)``: draws the random state of the
  feature rule and returns a :class:`LayerSketch`, a picklable callable that
  maps the features ``(phi, psi)`` of its input (``<phi(x), phi(y)> ~ K``,
  ``<psi(x), psi(y)> ~ Theta``) to those of its output.

The exact kernel functions and the sketching estimators are compositions of
the same layers (see :mod:`sklearn_ntk.networks`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

__all__ = ["Dims", "Features", "KernelState", "LayerSketch"]


@dataclass(frozen=True)
class KernelState:
    """Exact kernels between the rows of ``X`` (n) and of ``Y`` (m).

    ``nngp`` is ``K(x, y)``; ``kxx`` and ``kyy`` are the variances
    ``K(x, x)``, ``K(y, y)`` that the dual activations need, shaped to
    broadcast against ``nngp``; ``ntk`` is ``Theta(x, y)`` (the scalar ``0.0``
    while ``Theta = 0``), or ``None`` when only the NNGP kernel is wanted.
    For fully connected networks the arrays are ``(n, m)``, ``(n, 1)`` and
    ``(1, m)``; for the diagonal ``K(x, x)`` alone all three are ``(n,)``.
    Convolutional layers add spatial axes (see :mod:`sklearn_ntk.layers.conv`).
    """

    nngp: Any
    kxx: Any
    kyy: Any
    ntk: Any = None
    #: ``(rows, cols)`` of the entries of ``nngp`` that pair an input with
    #: itself (``Y is X``).  Layers copy the variances there, so that those
    #: entries stay bitwise equal to ``kxx``: the duals of sign, abs, relu...
    #: are not Lipschitz at ``rho = 1``, and a rounding gap of 1e-16 between
    #: ``K(x, x)`` computed two ways would cost 1e-8 in the kernel.
    diag: Any = None

    def with_diag(self) -> KernelState:
        """Copy the variances onto the self-pair entries of ``nngp``."""
        if self.diag is None:
            return self
        rows, cols = self.diag
        if isinstance(self.nngp, np.ndarray) or self.nngp.ndim != 2:
            self.nngp[rows, cols] = self.kxx[rows, 0]
            return self
        # Array API: no integer-array assignment, but the self-pairs are the
        # diagonal ``j = i + offset``, which a mask selects.
        from .._backend import get_namespace_and_device

        xp, _, dev = get_namespace_and_device(self.nngp)
        n, m = self.nngp.shape
        offset = int(cols[0]) - int(rows[0]) if len(rows) else m
        mask = (
            xp.arange(m, device=dev)[None, :] - xp.arange(n, device=dev)[:, None]
        ) == offset
        return replace(self, nngp=xp.where(mask, self.kxx, self.nngp))

    def replace(self, **changes: Any) -> KernelState:
        return replace(self, **changes)


@dataclass(frozen=True)
class Features:
    """Features of a batch of rows: ``phi`` for the NNGP, ``psi`` for the NTK.

    ``psi`` is ``None`` when the NTK is not tracked, and also before the first
    ``Dense`` layer, where ``Theta = 0``.
    """

    phi: Any
    psi: Any = None


@dataclass(frozen=True)
class Dims:
    """Feature widths entering a layer, plus the typical scale of its input.

    ``scale2`` is ``K(x, x)`` of a reference input with ``||x||^2 / d = 1``
    (standardized data); layers use it to split their budget of features
    across Hermite degrees, so the split depends on the parameters alone.
    ``scale2_ntk`` is ``Theta(x, x)`` of the same reference input.  ``psi``
    is ``None`` when the NTK is not tracked and ``0`` while ``Theta = 0``.
    """

    phi: int
    psi: int | None
    scale2: float
    scale2_ntk: float = 0.0
    sparse: bool = False


class LayerSketch(ABC):
    """Drawn random state of one layer's feature rule.

    Subclasses set ``dims_out`` and implement ``__call__(features)``; they
    hold NumPy parameters only, so they pickle and move to any namespace.
    """

    dims_out: Dims

    @abstractmethod
    def __call__(self, features: Features) -> Features:
        """Map the features of a batch of inputs to those of the outputs."""
