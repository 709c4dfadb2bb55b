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

__all__ = ["Dims", "Features", "KernelState", "LayerSketch", "scatter"]


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

    ``gap`` is the complement ``1 - |rho|`` of the correlation ``rho =
    K(x, y) / sqrt(K(x, x) K(y, y))``, shaped like ``nngp``, or ``None``
    when not tracked.  Where the inputs are nearly parallel (or antiparallel)
    ``rho`` computed from ``nngp`` has lost half its digits to rounding
    (``1 - rho`` has an absolute error ~1e-16, the angle one ~1e-8), which the
    duals of sign, step and the NTK of relu (``acos``/``asin`` of ``rho``,
    not Lipschitz at ``+-1``) pass on to the kernel.  The gap keeps its
    relative accuracy: it is computed from differences of the inputs, and
    every layer maps it with formulas free of cancellation where it is small
    (the activations' :meth:`~sklearn_ntk.activations.Activation._dual_gap`).
    The network tracks it only for activations that need it.
    """

    nngp: Any
    kxx: Any
    kyy: Any
    ntk: Any = None
    gap: Any = None

    def replace(self, **changes: Any) -> KernelState:
        return replace(self, **changes)


def scatter(a: Any, rows: np.ndarray, cols: np.ndarray, values: Any) -> Any:
    """``a[rows, cols] = values`` for a 2-D array of any namespace.

    In place for NumPy and PyTorch; other namespaces (the Array API has no
    integer-array assignment) go through the host.  Used on few entries (the
    pairs of identical inputs, the nearly parallel pairs).
    """
    if len(rows) == 0:
        return a
    if isinstance(a, np.ndarray):
        a[rows, cols] = values
        return a
    from .._backend import asxp, get_namespace_and_device, to_numpy

    xp, _, dev = get_namespace_and_device(a)
    if type(a).__module__.startswith("torch"):
        import torch

        r = torch.as_tensor(rows, device=a.device)
        c = torch.as_tensor(cols, device=a.device)
        a[r, c] = torch.as_tensor(values, dtype=a.dtype, device=a.device)
        return a
    host = np.array(to_numpy(a), copy=True)
    host[rows, cols] = to_numpy(values)
    return asxp(host, xp, device=dev)


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
