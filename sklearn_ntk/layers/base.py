"""What flows between layers: exact kernel states and feature states.

Every layer of :mod:`sklearn_ntk.layers` states two rules side by side, as
neural-tangents' ``stax`` layers do, with the same signature for dense and
convolutional layers:

* ``kernel(state) -> state``: the exact rule, mapping the NNGP kernel ``K``
  (and the NTK ``Theta``) of its input to those of its output.  The state
  carries its :class:`Layout` (cross or self pairs; no spatial axes, every
  pixel pair, or the diagonal pixel pairs), so a rule never guesses it.
* ``features(dims, widths, rng) -> LayerSketch``: draws the random state of
  the feature rule, a picklable callable that maps the features ``(phi,
  psi)`` of its input (``<phi(x), phi(y)> ~ K``, ``<psi(x), psi(y)> ~
  Theta``) to those of its output.

A layer also declares what it needs from the network as class attributes
(:class:`Layer`): the network reads them instead of testing layer types.
The exact kernel functions and the sketching estimators are compositions of
the same layers (see :mod:`sklearn_ntk.networks`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, replace
from typing import Any, ClassVar

import numpy as np

__all__ = [
    "Dims",
    "Features",
    "KernelState",
    "Layer",
    "LayerSketch",
    "Layout",
    "Widths",
    "affine",
    "scatter",
]

#: Spatial layouts of a kernel state (see :class:`Layout`).
SPATIAL_LAYOUTS = ("none", "full", "diagonal")


@dataclass(frozen=True)
class Layout:
    """How a :class:`KernelState`'s arrays are indexed.

    ``self_pairs``: the pairs ``(x, x)`` of one batch of ``n`` inputs (batch
    axis ``(n,)``), or the cross pairs ``(x, y)`` of two batches (``(n, m)``).

    ``spatial`` (the spatial axes come first, the batch axes last):

    * ``"none"``: no spatial axes (fully connected, or after a readout).  A
      convolutional layer reads such a state as the kernel of spatially
      constant images (a ``Conv`` is then a ``Dense``, pooling the
      identity): the reference input of the feature budgets;
    * ``"full"``: every pixel pair, ``(H, W, H, W, *batch)``, as pooling
      and the global average readout need;
    * ``"diagonal"``: the pixel pairs ``(i, i)`` only, ``(H, W, *batch)``
      (neural-tangents' ``diagonal_spatial``), enough for ``Conv``,
      activations and the ``Flatten`` readout.
    """

    self_pairs: bool = False
    spatial: str = "none"

    def __post_init__(self) -> None:
        if self.spatial not in SPATIAL_LAYOUTS:
            raise ValueError(f"spatial layout must be one of {SPATIAL_LAYOUTS}.")

    @property
    def n_spatial(self) -> int:
        """Number of leading spatial axes."""
        return {"none": 0, "full": 4, "diagonal": 2}[self.spatial]

    def pixel_variances(self, a: Any) -> Any:
        """``a[i, i]`` per pixel ``i`` of a self-pairs array: ``(H, W, n)``
        (``(n,)`` without spatial axes)."""
        if self.spatial != "full":
            return a
        from .._backend import get_namespace

        xp, _ = get_namespace(a)
        H, W = a.shape[:2]
        batch = tuple(a.shape[4:])
        P = H * W
        flat = xp.reshape(a, (P * P, *batch))
        idx = xp.arange(0, P * P, P + 1, device=_device(a))
        return xp.reshape(xp.take(flat, idx, axis=0), (H, W, *batch))

    def outer(self, vx: Any, vy: Any) -> tuple[Any, Any]:
        """``(kxx, kyy)``: per-pixel variances ``vx`` (of ``x``) and ``vy`` (of
        ``y``), ``(H, W, n)`` and ``(H, W, m)`` (``(n,)``, ``(m,)`` without
        spatial axes), shaped to broadcast against this layout's arrays.

        For self pairs ``vy`` is ``vx``."""
        from .._backend import get_namespace

        xp, _ = get_namespace(vx)
        if self.spatial == "full":
            H, W = vx.shape[:2]
            if self.self_pairs:
                n = vx.shape[2]
                return (
                    xp.reshape(vx, (H, W, 1, 1, n)),
                    xp.reshape(vx, (1, 1, H, W, n)),
                )
            return (
                xp.reshape(vx, (H, W, 1, 1, vx.shape[2], 1)),
                xp.reshape(vy, (1, 1, H, W, 1, vy.shape[2])),
            )
        if self.self_pairs:
            return vx, vx
        return vx[..., :, None], vy[..., None, :]

    def with_spatial(self, spatial: str) -> Layout:
        return replace(self, spatial=spatial)


@dataclass(frozen=True)
class KernelState:
    """Exact kernels between the inputs ``x`` of one batch and ``y`` of another.

    ``nngp`` is ``K(x, y)``, ``ntk`` is ``Theta(x, y)`` (the scalar ``0.0``
    while ``Theta = 0``), or ``None`` when only the NNGP kernel is wanted;
    both are indexed as ``layout`` says (:class:`Layout`).

    ``kxx`` and ``kyy`` are the variances ``K(x, x)``, ``K(y, y)`` per pixel
    that the dual activations read, shaped to broadcast against ``nngp``
    (:meth:`Layout.outer`).  Self states do not store them: they are read
    off ``nngp`` itself (:meth:`variances`); for cross states the network
    sets them from the self states of the two batches after every layer.

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
    The network tracks it only for activations that need it; ``gap_out``
    says whether the layer receiving this state must return its output's gap
    (``False`` after the last layer that reads one).
    """

    nngp: Any
    kxx: Any = None
    kyy: Any = None
    ntk: Any = None
    gap: Any = None
    layout: Layout = Layout()
    gap_out: bool = True

    def replace(self, **changes: Any) -> KernelState:
        return replace(self, **changes)

    def variances(self) -> tuple[Any, Any]:
        """``(kxx, kyy)`` broadcasting against ``nngp``: stored for cross
        states, read off the diagonal of ``nngp`` for self states."""
        if self.layout.self_pairs:
            v = self.layout.pixel_variances(self.nngp)
            return self.layout.outer(v, v)
        return self.kxx, self.kyy


def is_zero(theta: Any) -> bool:
    """Whether an NTK entry is the scalar ``0.0`` (``Theta = 0`` so far)."""
    return isinstance(theta, float) and theta == 0.0


def affine(a: Any, w2: float, b2: float, inplace: bool = False) -> Any:
    """``w2 * a + b2``: the dense rule ``K' = W_std^2 K + b_std^2``.

    The one place the affine rule is written: ``Dense``, ``Conv`` (on the
    sum over its filter), the image input (on the Gram of patches) and the
    NTK's ``Theta' = W_std^2 Theta + K'`` (:func:`affine_ntk`) all call it.
    Skips the passes that change nothing; returns a new array unless
    ``w2 == 1`` and ``b2 == 0``, or ``inplace`` (``a`` is a temporary of the
    caller: NumPy arrays are then updated in place, saving an allocation).
    """
    if inplace and isinstance(a, np.ndarray):
        if w2 != 1.0:
            a *= w2
        if b2 != 0.0:
            a += b2
        return a
    if w2 != 1.0:
        a = w2 * a
    return a + b2 if b2 != 0.0 else a


def affine_ntk(nngp_out: Any, ntk: Any, w2: float) -> Any:
    """``Theta' = w2 * Theta + K'`` (``K'`` itself while ``Theta = 0``;
    ``None`` when the NTK is not tracked)."""
    if ntk is None:
        return None
    if is_zero(ntk):
        return nngp_out
    return affine(ntk, w2, 0.0) + nngp_out


def scatter(a: Any, rows: np.ndarray, cols: np.ndarray, values: Any) -> Any:
    """``a[..., rows, cols] = values`` for an array of any namespace.

    The last two axes are indexed (the batch axes of a cross state);
    ``values`` broadcasts against ``a[..., rows, cols]``.  In place for NumPy
    and PyTorch; other namespaces (the Array API has no integer-array
    assignment) go through the host.  Used on few entries (the pairs of
    identical inputs, the nearly parallel pairs).
    """
    if len(rows) == 0:
        return a
    if isinstance(a, np.ndarray):
        a[..., rows, cols] = values
        return a
    from .._backend import asxp, get_namespace_and_device, to_numpy

    xp, _, dev = get_namespace_and_device(a)
    if type(a).__module__.startswith("torch"):
        import torch

        r = torch.as_tensor(rows, device=a.device)
        c = torch.as_tensor(cols, device=a.device)
        a[..., r, c] = torch.as_tensor(
            to_numpy(values) if not isinstance(values, torch.Tensor) else values,
            dtype=a.dtype,
            device=a.device,
        )
        return a
    host = np.array(to_numpy(a), copy=True)
    host[..., rows, cols] = to_numpy(values)
    return asxp(host, xp, device=dev)


@dataclass(frozen=True)
class Features:
    """Features of a batch of inputs: ``phi`` for the NNGP, ``psi`` for the NTK.

    ``(n, D)`` rows, or ``(n, H, W, D)`` per pixel.  ``psi`` is ``None`` when
    the NTK is not tracked, and also before the first ``Dense`` (``Conv``)
    layer, where ``Theta = 0``.
    """

    phi: Any
    psi: Any = None


@dataclass(frozen=True)
class Dims:
    """Feature widths entering a layer, plus the typical scale of its input.

    ``scale2`` is ``K(x, x)`` of the reference input (standardized data,
    ``||x||^2 / d = 1``, or standardized pixels), ``scale2_ntk`` its
    ``Theta(x, x)``: the network takes both from the exact rules on the
    reference state; layers use them to split their budget of features
    across Hermite degrees, so the split depends on the parameters (and on
    ``scales2``, below).
    ``psi`` is ``None`` when the NTK is not tracked and ``0`` while ``Theta =
    0``.  ``sparse``: the features are a SciPy sparse matrix.  ``spatial``:
    ``(H, W)`` of per-pixel features ``(n, H, W, D)``, ``None`` for rows.
    ``scales2``: further ``K(x, x)`` the rule must serve, from the training
    data when its rows are far from standardized (``None``: only ``scale2``).
    """

    phi: int
    psi: int | None
    scale2: float
    scale2_ntk: float = 0.0
    sparse: bool = False
    spatial: tuple[int, int] | None = None
    scales2: tuple[float, ...] | None = None


@dataclass(frozen=True)
class Widths:
    """Feature budget the network hands a layer's feature rule.

    ``phi``, ``psi``: output widths of an activation (per pixel for images);
    ``reduce``: width to which a ``Conv`` maps its concatenated
    neighbourhoods when they are wider (``None``: never).  Layers read the
    fields that concern them.
    """

    phi: int = 0
    psi: int = 0
    reduce: int | None = None


class LayerSketch(ABC):
    """Drawn random state of one layer's feature rule.

    Subclasses set ``dims_out`` and implement ``__call__(features)``; they
    hold NumPy parameters only, so they pickle and move to any namespace.
    """

    dims_out: Dims

    @abstractmethod
    def __call__(self, features: Features) -> Features:
        """Map the features of a batch of inputs to those of the outputs."""


class Layer:
    """What every layer declares to the network besides its two rules.

    Subclasses are frozen dataclasses with ``kernel(state)`` and
    ``features(dims, widths, rng)``.  The class attributes below have the
    defaults of a layer that needs nothing special.
    """

    #: The exact rule needs every pixel pair (``Layout.spatial == "full"``).
    needs_full_pixel_pairs: ClassVar[bool] = False
    #: The feature rule's output width is the network's budget (activations).
    takes_budget: ClassVar[bool] = False
    #: The exact rule maps the gap ``1 - |rho|`` of a cross state.
    carries_gap: ClassVar[bool] = False

    def needs_gap(self, ntk: bool, scale: float) -> bool:
        """Whether the exact rule reads the gap ``1 - |rho|`` of its input
        (at input variances up to ``scale``)."""
        return False

    def out_spatial(self, spatial: tuple[int, int] | None) -> tuple[int, int] | None:
        """``(H, W)`` of the output images (``None`` once flat)."""
        return spatial

    def feature_width(self, width: int, spatial: tuple[int, int] | None) -> int:
        """Output feature width (per pixel, or per row once flat) of an input
        ``width`` wide: what the budget of the last activation must cover."""
        return width


def _device(a: Any) -> Any:
    from .._backend import device

    return device(a)
