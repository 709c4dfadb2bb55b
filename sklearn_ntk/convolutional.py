"""Convolutional networks: exact CNNGP/CNTK kernels and their feature maps.

A :class:`ConvNetwork` is an :class:`~sklearn_ntk.layers.conv.ImageInput`
followed by layers (``Conv``, ``Elementwise``, ``AvgPool``, a readout and a
final ``Dense``), each with an exact and a feature rule, like
:class:`sklearn_ntk.networks.Network` for fully connected networks.

Exact kernels (:func:`cnngp_kernel`, :func:`cntk_kernel`) are computed in
tiles of image pairs, on pixel-pair kernels laid out spatial axes first and
image pairs last (see :mod:`sklearn_ntk.layers.conv`).  The per-pixel
variances that the dual activations need are computed once per image from
the "self" states ``K(x, x)``, not once per pair.  When ``Y`` is ``X`` only
the upper triangle of tiles is computed.

Image layout: ``(H, W, C)``, channels last, like neural-tangents.  Functions
accept ``(n, H, W, C)`` arrays, ``(n, H, W)`` single-channel images, or flat
rows with ``image_shape=(H, W, C)``; flat rows without ``image_shape`` must
have a perfect-square width (:func:`infer_image_shape`).
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from numbers import Integral
from typing import Any

import numpy as np
from sklearn import get_config
from sklearn.utils import check_array, check_random_state

from ._backend import Interval, StrOptions, to_numpy, validate_params
from ._validation import check_finite_result, check_n_jobs, trusted_inputs
from .activations import Activation, get
from .kernels import N_JOBS, STD
from .layers.base import KernelState
from .layers.conv import (
    AvgPool,
    AvgPoolSketch,
    Conv,
    ConvSketch,
    Flatten,
    GlobalAvgPool,
    ImageInput,
    PixelwiseSketch,
    ReadoutSketch,
    pixel_diagonal,
)
from .layers.dense import Dense, Elementwise
from .networks import (
    DenseInput,
    Network,
    NetworkSketch,
    identical_pairs,
    split_ntk_budget,
)
from .sketches import SRHT

__all__ = [
    "MYRTLE_DEPTHS",
    "ConvNetwork",
    "cnngp_kernel",
    "cntk_kernel",
    "conv_stack",
    "exact_conv_kernel",
    "infer_image_shape",
    "myrtle",
]

#: Convolutions per stage ``(k1, k2, k3)`` of the Myrtle networks.
MYRTLE_DEPTHS = {5: (2, 1, 1), 7: (2, 2, 2), 10: (3, 3, 3)}

_SPATIAL = (Conv, AvgPool, GlobalAvgPool, Flatten)


# ----------------------------------------------------------------------------
# Image shapes
# ----------------------------------------------------------------------------


def infer_image_shape(n_features: int, *, name: str = "X") -> tuple[int, int, int]:
    """Image shape of flat rows of ``n_features`` values given without a shape.

    Only a perfect square ``s * s`` has an unambiguous reading: a
    single-channel ``s x s`` image (scikit-learn's 8 x 8 digits, MNIST).  Any
    other width raises a ``ValueError`` that asks for ``image_shape``: rows of
    32 x 32 x 3 values read as 1 x 3072 x 1 images would give a valid but
    wrong kernel.

    Raises
    ------
    ValueError
        When ``n_features`` is not a perfect square.
    """
    n = int(n_features)
    s = math.isqrt(n)
    if s * s == n and n > 0:
        return (s, s, 1)
    hint = ""
    for c in (3, 4, 2):
        r = math.isqrt(n // c) if n % c == 0 else 0
        if r and r * r * c == n:
            hint = f" (for example image_shape=({r}, {r}, {c}) for {r} x {r} images with {c} channels)"
            break
    raise ValueError(
        f"{name} has {n} features per row, not a perfect square, so the image "
        f"shape cannot be inferred: pass image_shape=(H, W, C){hint}, "
        "image_shape=(1, d, 1) for 1-D signals, or the images as an array of "
        "shape (n_samples, H, W, C) or (n_samples, H, W)."
    )


def check_image_shape(
    image_shape: Any, n_features: int | None = None, *, name: str = "X"
) -> tuple[int, int, int]:
    """Validate ``image_shape`` (``(H, W, C)``, or ``(H, W)`` for ``C = 1``).

    One entry may be ``-1``, as in :func:`numpy.reshape`: it is inferred from
    ``n_features`` (``(1, -1, 1)`` reads rows of any width ``d`` as ``1 x d x
    1`` signals, ``(32, 32, -1)`` infers the channels).  ``name`` is the
    input whose rows hold ``n_features`` values (for messages).
    """
    if image_shape is None:
        if n_features is None:
            raise ValueError("image_shape is needed.")
        return infer_image_shape(n_features, name=name)
    try:
        shape = tuple(int(v) for v in image_shape)
        ok = all(int(v) == v for v in image_shape)
    except (TypeError, ValueError):
        ok, shape = False, ()
    free = [i for i, v in enumerate(shape) if v == -1]
    if (
        not ok
        or len(shape) not in (2, 3)
        or len(free) > 1
        or min((v for v in shape if v != -1), default=1) < 1
    ):
        raise ValueError(
            "image_shape must be (H, W, C) or (H, W) with positive integers, one "
            f"of which may be -1 (inferred from the width), got {image_shape!r}."
        )
    if len(shape) == 2:
        shape = (*shape, 1)
    if free:
        known = math.prod(v for v in shape if v != -1)
        if n_features is None or n_features % known or n_features == 0:
            raise ValueError(
                f"image_shape={tuple(image_shape)}: the -1 entry cannot be "
                f"inferred from {name}, with {n_features} features per row."
            )
        shape = tuple(n_features // known if v == -1 else v for v in shape)
    if n_features is not None and math.prod(shape) != n_features:
        raise ValueError(
            f"image_shape={shape} holds {math.prod(shape)} values per image but "
            f"{name} has {n_features} features per row."
        )
    return shape  # type: ignore[return-value]


def as_images(
    X: Any, image_shape: Any = None, *, name: str = "X", shape_from: str | None = None
) -> np.ndarray:
    """``(n, H, W, C)`` float64 images from 4-D, 3-D (``C = 1``) or flat input.

    ``name`` is the input's name in error messages; ``shape_from`` says where
    ``image_shape`` came from when it is not the user's parameter (``Y`` is
    read with the shape of the images of ``X``).
    """
    if hasattr(X, "toarray") or type(X).__module__.startswith("scipy.sparse"):
        raise TypeError(
            f"{name}: sparse input is not supported by the convolutional kernels; "
            "pass a dense array."
        )
    X = np.asarray(to_numpy(X)) if not isinstance(X, np.ndarray) else X
    if X.dtype.kind == "c":
        raise ValueError(f"{name}: Complex data not supported (dtype {X.dtype}).")
    given = "" if shape_from is None else f" (the shape of the images of {shape_from})"
    if X.ndim in (3, 4):
        X4 = X if X.ndim == 4 else X[..., None]
        try:
            expect = (
                X4.shape[1:]
                if image_shape is None
                else check_image_shape(image_shape, math.prod(X4.shape[1:]))
            )
        except ValueError:
            expect = None
        if expect != X4.shape[1:]:
            raise ValueError(
                f"image_shape={tuple(image_shape)}{given} does not match the "
                f"images of {name}, of shape {X4.shape[1:]}."
            )
        if min(X4.shape[1:]) < 1:
            raise ValueError(
                f"{name} has images of shape {X4.shape[1:]} (H, W, C): every "
                "dimension must be at least 1."
            )
        try:
            X4 = np.asarray(X4, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{name}: {exc}") from exc
    elif X.ndim == 2:
        try:
            X = check_array(X, dtype=np.float64, input_name=name)
        except ValueError as exc:
            if f" {name} " in str(exc):
                raise
            raise ValueError(f"{name}: {exc}") from exc
        try:
            shape = check_image_shape(image_shape, X.shape[1], name=name)
        except ValueError as exc:
            if not given:
                raise
            raise ValueError(f"{exc}{given}") from exc
        X4 = X.reshape(X.shape[0], *shape)
    else:
        raise ValueError(
            f"{name} must be flat rows (n_samples, H * W * C), single-channel "
            f"images (n_samples, H, W) or images (n_samples, H, W, C); got an "
            f"array of shape {X.shape}."
        )
    if X4.size and not np.all(np.isfinite(X4)):
        raise ValueError(f"Input {name} contains NaN or infinity.")
    if X4.shape[0] == 0:
        raise ValueError(
            f"{name}: found 0 images (shape {X4.shape}); a minimum of 1 is required."
        )
    return X4


# ----------------------------------------------------------------------------
# The network
# ----------------------------------------------------------------------------


def _pin_pixels(K: np.ndarray, dx: np.ndarray, pairs: tuple, diagonal: bool) -> None:
    """``K[i, i, a, b] = dx[i, a]`` for every pixel ``i`` and identical images
    ``(a, b)`` of ``pairs`` (in place; any strides)."""
    rows, cols = pairs
    H, W = dx.shape[:2]
    hh = np.arange(H)[:, None, None]
    ww = np.arange(W)[None, :, None]
    r, c = rows[None, None, :], cols[None, None, :]
    if diagonal:
        K[hh, ww, r, c] = dx[hh, ww, r]
    else:
        K[hh, ww, hh, ww, r, c] = dx[hh, ww, r]


def _largest_mean_sq(X4: np.ndarray) -> float:
    with np.errstate(over="ignore"):
        return float(np.square(X4).reshape(len(X4), -1).mean(axis=1).max(initial=0.0))


def _check_self(k: KernelState, i: int, layer: Any, X4: np.ndarray) -> None:
    """Raise ``OverflowError`` naming the layer where a self state overflows."""
    for name, a in (("CNNGP kernel K", k.nngp), ("CNTK Theta", k.ntk)):
        if not isinstance(a, np.ndarray):
            continue
        if not np.all(np.isfinite(a)):
            img = int(
                np.flatnonzero(~np.isfinite(a).reshape(-1, a.shape[-1]).all(0))[0]
            )
            with np.errstate(over="ignore"):
                scale = float(np.mean(np.square(X4[img])))
            raise OverflowError(
                f"The {name}(x, x) overflows float64 after layer {i} ({layer!r}) "
                f"for image {img} of the input, whose mean squared pixel is "
                f"{scale:.3g}: the exact kernel is not representable (the "
                "activation grows too fast for this scale and depth)."
            )


@dataclass(frozen=True)
class ConvNetwork:
    """An image input rule and layers, each with an exact and a feature rule.

    ``layers`` holds :class:`~sklearn_ntk.layers.conv.Conv`,
    :class:`~sklearn_ntk.layers.Elementwise`,
    :class:`~sklearn_ntk.layers.conv.AvgPool`, one readout
    (:class:`~sklearn_ntk.layers.conv.GlobalAvgPool` or
    :class:`~sklearn_ntk.layers.conv.Flatten`) and
    :class:`~sklearn_ntk.layers.Dense` layers after the readout.
    """

    input: ImageInput
    layers: tuple

    @property
    def diagonal(self) -> bool:
        """Whether the diagonal pixel pairs suffice (no pooling, flatten readout)."""
        return not any(isinstance(la, AvgPool | GlobalAvgPool) for la in self.layers)

    def _split_first_conv(self) -> tuple[Conv | None, tuple]:
        if self.layers and isinstance(self.layers[0], Conv):
            return self.layers[0], self.layers[1:]
        return None, self.layers

    # -- exact rule ----------------------------------------------------------

    def self_states(
        self, X4: np.ndarray, ntk: bool = False
    ) -> tuple[list, KernelState]:
        """Pixel variances before each activation, and the output ``K(x, x)``.

        Returns the list of ``(H_l, W_l, n)`` diagonals ``K(x, x)[i, i]`` that
        the activations read, and the state after the last layer (``(n,)``
        arrays once past the readout).
        """
        diagonal = self.diagonal
        conv, layers = self._split_first_conv()
        with np.errstate(over="ignore", invalid="ignore"):  # checked below
            k = self.input.kernel_self(X4, ntk, diagonal, conv)
        _check_self(k, 0, conv or self.input, X4)
        diags = []
        for i, layer in enumerate(layers, start=1):
            try:
                with np.errstate(over="ignore", invalid="ignore"):
                    k = self._self_layer(layer, k, diagonal, diags)
            except OverflowError as exc:
                raise OverflowError(
                    f"{exc} (after layer {i} of {len(layers)}, {layer!r}; input "
                    f"images up to a mean squared pixel of {_largest_mean_sq(X4):.3g})"
                ) from exc
            _check_self(k, i, layer, X4)
        return diags, k

    @staticmethod
    def _self_layer(layer: Any, k: KernelState, diagonal: bool, diags: list) -> Any:
        """One layer of :meth:`self_states` (appends the activations' variances)."""
        if isinstance(layer, Elementwise):
            d = pixel_diagonal(k.nngp, diagonal)
            diags.append(d)
            if diagonal:
                k = KernelState(nngp=k.nngp, kxx=k.nngp, kyy=k.nngp, ntk=k.ntk)
            else:
                H, W, n = d.shape
                k = KernelState(
                    nngp=k.nngp,
                    kxx=d.reshape(H, W, 1, 1, n),
                    kyy=d.reshape(1, 1, H, W, n),
                    ntk=k.ntk,
                )
            k = layer.kernel(k)
        elif isinstance(layer, _SPATIAL):
            k = layer.kernel(k, diagonal)
        else:
            k = layer.kernel(k)
        return k

    def cross_state(
        self,
        X4: np.ndarray,
        Y4: np.ndarray,
        diags_x: list,
        diags_y: list,
        ntk: bool,
        pairs: tuple | None = None,
    ) -> KernelState:
        """Exact state between the images of ``X4`` (n) and ``Y4`` (m).

        ``pairs`` are the ``(rows, cols)`` of identical images: before each
        activation their pixel self-pairs are pinned to the pixel variances of
        the self states, so that the dual sees ``rho = 1`` exactly there (the
        cross Gram rounds differently from the self one, and the duals of
        relu, sign... are not Lipschitz at ``rho = 1``).
        """
        diagonal = self.diagonal
        conv, layers = self._split_first_conv()
        k = self.input.kernel(X4, Y4, ntk, diagonal, conv)
        i_act = 0
        for layer in layers:
            if isinstance(layer, Elementwise):
                dx, dy = diags_x[i_act], diags_y[i_act]
                i_act += 1
                H, W, n = dx.shape
                m = dy.shape[2]
                if pairs is not None and len(pairs[0]):
                    _pin_pixels(k.nngp, dx, pairs, diagonal)
                if diagonal:
                    kxx, kyy = dx.reshape(H, W, n, 1), dy.reshape(H, W, 1, m)
                else:
                    kxx, kyy = (
                        dx.reshape(H, W, 1, 1, n, 1),
                        dy.reshape(1, 1, H, W, 1, m),
                    )
                k = layer.kernel(KernelState(nngp=k.nngp, kxx=kxx, kyy=kyy, ntk=k.ntk))
            elif isinstance(layer, _SPATIAL):
                k = layer.kernel(k, diagonal)
            else:
                k = layer.kernel(k)
        return k

    def kernel_diag(self, X4: np.ndarray, ntk: bool = False) -> np.ndarray:
        """Exact ``K(x, x)`` (or ``Theta(x, x)``) of every image, ``(n,)``."""
        k = self.self_states(X4, ntk)[1]
        return np.asarray(k.ntk if ntk else k.nngp)

    # -- feature rule --------------------------------------------------------

    def reference_scales(self, ntk: bool) -> tuple[float, float]:
        """``K(x, x)`` and ``Theta(x, x)`` at the output for a reference input,
        from the fully connected network that a spatially constant image sees."""
        fc = []
        for layer in self.layers:
            if isinstance(layer, Conv):
                fc.append(Dense(layer.W_std, layer.b_std))
            elif isinstance(layer, Dense | Elementwise):
                fc.append(layer)
        return Network(DenseInput(), tuple(fc)).reference_scales(ntk)

    def sketch(
        self,
        n_components: int,
        *,
        ntk: bool,
        n_channels: int = 192,
        reduce: float | None = 2.0,
        random_state: Any = None,
    ) -> NetworkSketch:
        """Draw a feature map with exactly ``n_components`` output features.

        Hidden activations output ``n_channels`` features per pixel (for both
        ``phi`` and, with ``ntk``, ``psi``); the last activation gets the
        output budget: ``n_components`` in all for ``global_avg``, at least
        ``n_components / n_pixels`` per pixel for ``flatten`` (stacked and
        then reduced to ``n_components`` by an SRHT).  ``reduce``: a ``Conv``
        whose concatenated neighbourhoods are wider than ``reduce *
        n_channels`` maps them to that width by an SRHT (``None``: never).
        """
        rng = check_random_state(random_state)
        H, W, _ = self.input.image_shape
        dims = self.input.dims(math.prod(self.input.image_shape), ntk)
        acts = [i for i, la in enumerate(self.layers) if isinstance(la, Elementwise)]
        last_act = acts[-1] if acts else -1
        hidden = (int(n_channels), int(n_channels) if ntk else 0)
        final = self._final_widths(n_components, ntk, n_channels)
        sketches = []
        for i, layer in enumerate(self.layers):
            if isinstance(layer, Elementwise):
                widths = final if i == last_act else hidden
                s = PixelwiseSketch(layer.sketch(dims, widths, rng))
            elif isinstance(layer, Conv):
                r = None if reduce is None else max(1, round(reduce * n_channels))
                s = ConvSketch(layer, dims, (r, r), rng)
            elif isinstance(layer, AvgPool):
                s = AvgPoolSketch(layer.window, dims)
                H, W = layer.output_shape(H, W)
            elif isinstance(layer, GlobalAvgPool):
                s = ReadoutSketch("global_avg", dims)
            elif isinstance(layer, Flatten):
                s = ReadoutSketch("flatten", dims, H * W)
            else:
                s = layer.sketch(dims, final, rng)
            sketches.append(s)
            dims = s.dims_out
        width = dims.psi if ntk and dims.psi is not None else dims.phi
        resize = SRHT(width, n_components, rng) if width > n_components else None
        return NetworkSketch(self.input, sketches, ntk, n_components, resize)

    def _final_widths(
        self, n_components: int, ntk: bool, n_channels: int
    ) -> tuple[int, int]:
        """Per-pixel ``(phi, psi)`` widths of the last activation."""
        dense = [la for la in self.layers if isinstance(la, Dense)]
        bias = int(bool(dense) and dense[-1].b_std != 0)
        # Tiny budgets get a few features more; the output SRHT trims them.
        budget = max(n_components - bias, 8)
        if any(isinstance(la, Flatten) for la in self.layers):
            H, W, _ = self.input.image_shape
            for la in self.layers:
                if isinstance(la, AvgPool):
                    H, W = la.output_shape(H, W)
            budget = max(int(n_channels), -(-budget // (H * W)), 8)
        if not ntk:
            return budget, 0
        return split_ntk_budget(budget, *self.reference_scales(ntk=True))


# ----------------------------------------------------------------------------
# Builders
# ----------------------------------------------------------------------------


def _readout(readout: str) -> Any:
    if readout == "global_avg":
        return GlobalAvgPool()
    if readout == "flatten":
        return Flatten()
    raise ValueError(f"readout must be 'global_avg' or 'flatten', got {readout!r}.")


def conv_stack(
    act: Activation,
    depth: int,
    image_shape: tuple[int, int, int],
    *,
    filter_size: int = 3,
    readout: str = "global_avg",
    W_std: float = math.sqrt(2.0),
    b_std: float = 0.0,
    degree: int = 8,
    method: str = "auto",
) -> ConvNetwork:
    """``[Conv(filter_size, SAME), act] * depth``, readout, ``Dense``."""
    layers: list[Any] = []
    for _ in range(depth):
        layers += [Conv(filter_size, W_std, b_std), Elementwise(act, degree, method)]
    layers += [_readout(readout), Dense(W_std, b_std)]
    return ConvNetwork(ImageInput(tuple(image_shape)), tuple(layers))


def myrtle(
    act: Activation,
    depth: int,
    image_shape: tuple[int, int, int],
    *,
    filter_size: int = 3,
    readout: str = "global_avg",
    W_std: float = math.sqrt(2.0),
    b_std: float = 0.0,
    degree: int = 8,
    method: str = "auto",
) -> ConvNetwork:
    """Myrtle network of depth 5, 7 or 10 (Shankar et al., 2020).

    ``[Conv, act] * k1, AvgPool 2, [Conv, act] * k2, AvgPool 2,
    [Conv, act] * k3``, readout (global average by default), ``Dense``, with
    ``(k1, k2, k3)`` from :data:`MYRTLE_DEPTHS`.
    """
    if depth not in MYRTLE_DEPTHS:
        raise ValueError(f"Myrtle depth must be one of 5, 7, 10; got {depth!r}.")
    layers: list[Any] = []
    for stage, n_conv in enumerate(MYRTLE_DEPTHS[depth]):
        if stage:
            layers.append(AvgPool(2))
        for _ in range(n_conv):
            layers += [
                Conv(filter_size, W_std, b_std),
                Elementwise(act, degree, method),
            ]
    layers += [_readout(readout), Dense(W_std, b_std)]
    return ConvNetwork(ImageInput(tuple(image_shape)), tuple(layers))


def build_network(
    act: Any,
    architecture: str,
    depth: int,
    image_shape: tuple[int, int, int],
    *,
    filter_size: int = 3,
    readout: str = "global_avg",
    W_std: float = math.sqrt(2.0),
    b_std: float = 0.0,
    degree: int = 8,
    method: str = "auto",
) -> ConvNetwork:
    """The network named by ``architecture`` (``"myrtle"`` or ``"conv_stack"``)."""
    builder = {"myrtle": myrtle, "conv_stack": conv_stack}.get(architecture)
    if builder is None:
        raise ValueError(
            f"architecture must be 'myrtle' or 'conv_stack', got {architecture!r}."
        )
    return builder(
        get(act),
        depth,
        image_shape,
        filter_size=filter_size,
        readout=readout,
        W_std=W_std,
        b_std=b_std,
        degree=degree,
        method=method,
    )


# ----------------------------------------------------------------------------
# Exact kernel matrices
# ----------------------------------------------------------------------------

#: Pixel-pair entries per tile array: about 4 MB, so that the dozen passes of
#: the dual activations over a tile mostly stay in cache.
_TILE_ENTRIES = 1 << 19


def _tile_size(network: ConvNetwork, image_shape: tuple[int, int, int]) -> int:
    """Images per side of a square tile of image pairs."""
    H, W, _ = image_shape
    per_pair = H * W if network.diagonal else (H * W) ** 2
    budget = get_config()["working_memory"] * 2**20 / (8 * 12 * per_pair)
    pairs = max(1.0, min(_TILE_ENTRIES / per_pair, budget))
    return max(1, int(math.sqrt(pairs)))


def _n_threads(n_jobs: int | None, n_tasks: int) -> int:
    check_n_jobs(n_jobs)
    if n_jobs is None:
        n_jobs = 1
    if n_jobs < 0:
        import os

        n_jobs = max(1, (os.cpu_count() or 1) + 1 + n_jobs)
    return max(1, min(int(n_jobs), n_tasks))


def exact_conv_kernel(
    network: ConvNetwork,
    X4: np.ndarray,
    Y4: np.ndarray | None = None,
    *,
    ntk: bool,
    n_jobs: int | None = None,
    verbose: int = 0,
    tile: int | None = None,
) -> np.ndarray:
    """Exact CNNGP (``ntk=False``) or CNTK kernel matrix of ``network``.

    ``X4`` and ``Y4`` are ``(n, H, W, C)`` float64 images.  Tiles of image
    pairs run on ``n_jobs`` threads (NumPy releases the GIL in every pass).
    """
    symmetric = Y4 is None or Y4 is X4
    Y4 = X4 if symmetric else Y4
    if X4.shape[1:] != Y4.shape[1:]:
        raise ValueError(
            f"X has images of shape {X4.shape[1:]} but Y of shape {Y4.shape[1:]}."
        )
    check_n_jobs(n_jobs)
    n, m = X4.shape[0], Y4.shape[0]
    b = tile or _tile_size(network, X4.shape[1:])
    threads = _n_threads(n_jobs, max(n, m) // b + 1)

    def diagonals(Z: np.ndarray) -> tuple[list, np.ndarray]:
        """Pixel variances before each activation, and the output K(x, x)."""
        step = max(b * b, 1)
        with trusted_inputs():  # the result below is checked
            parts = [
                network.self_states(Z[s : s + step], ntk)
                for s in range(0, Z.shape[0], step)
            ]
        diags = [np.concatenate(ds, axis=-1) for ds in zip(*(p[0] for p in parts))]
        finals = np.concatenate(
            [np.asarray(p[1].ntk if ntk else p[1].nngp).reshape(-1) for p in parts]
        )
        return diags, finals

    diags_x, final_x = diagonals(X4)
    diags_y = diags_x if symmetric else diagonals(Y4)[0]
    pair_rows, pair_cols = identical_pairs(
        X4.reshape(n, -1), None if symmetric else Y4.reshape(m, -1)
    )
    rows = [slice(s, min(n, s + b)) for s in range(0, n, b)]
    cols = [slice(s, min(m, s + b)) for s in range(0, m, b)]
    tasks = [
        (r, c)
        for i, r in enumerate(rows)
        for j, c in enumerate(cols)
        if not symmetric or j >= i
    ]
    out = np.empty((n, m))

    kind = "CNTK" if ntk else "CNNGP kernel"

    def run(task: tuple[slice, slice]) -> None:
        r, c = task
        inside = (
            (pair_rows >= r.start)
            & (pair_rows < r.stop)
            & (pair_cols >= c.start)
            & (pair_cols < c.stop)
        )
        with trusted_inputs():  # checked by the guard below
            k = network.cross_state(
                X4[r],
                Y4[c],
                [d[..., r] for d in diags_x],
                [d[..., c] for d in diags_y],
                ntk,
                (pair_rows[inside] - r.start, pair_cols[inside] - c.start),
            )
        K = k.ntk if ntk else k.nngp
        # The guard of the team rule: never a NaN with only a RuntimeWarning.
        check_finite_result(
            K,
            what=f"The exact {kind}",
            network=network,
            ntk=ntk,
            X=X4[r],
            Y=None if symmetric else Y4[c],
        )
        out[r, c] = K
        if symmetric and r != c:
            out[c, r] = K.T

    if threads == 1:
        for i, t in enumerate(tasks):
            run(t)
            if verbose and (i + 1) % max(1, len(tasks) // 10) == 0:
                print(f"[sklearn_ntk] tiles {i + 1}/{len(tasks)}")
    else:
        with ThreadPoolExecutor(max_workers=threads) as pool:
            for i, _ in enumerate(pool.map(run, tasks)):
                if verbose and (i + 1) % max(1, len(tasks) // 10) == 0:
                    print(f"[sklearn_ntk] tiles {i + 1}/{len(tasks)}")
    if symmetric:  # exact symmetry despite rounding in the tiles
        out = 0.5 * (out + out.T)
    # Identical images get K(x, x) of the self states: K(X), K(X, X) and
    # K(X, X.copy()) agree on them by construction.
    out[pair_rows, pair_cols] = final_x[pair_rows]
    if not np.all(np.isfinite(out)):
        raise OverflowError(
            "The exact convolutional kernel overflows float64 for some pairs "
            "of images: their kernel is not representable."
        )
    return out


_kernel_params = {
    "X": ["array-like"],
    "Y": ["array-like", None],
    "act": [str, Activation, callable],
    "architecture": [StrOptions({"myrtle", "conv_stack"})],
    "depth": [Interval(Integral, 0, None, closed="left")],
    "filter_size": [Interval(Integral, 1, None, closed="left")],
    "readout": [StrOptions({"global_avg", "flatten"})],
    "W_std": STD,
    "b_std": STD,
    "image_shape": ["array-like", None],
    "n_jobs": N_JOBS,
    "verbose": ["verbose"],
}


def _conv_kernel(
    X,
    Y,
    ntk,
    act,
    architecture,
    depth,
    filter_size,
    readout,
    W_std,
    b_std,
    image_shape,
    n_jobs,
    verbose,
):
    X4 = as_images(X, image_shape)
    Y4 = None if Y is None else as_images(Y, X4.shape[1:], name="Y", shape_from="X")
    net = build_network(
        act,
        architecture,
        depth,
        X4.shape[1:],
        filter_size=filter_size,
        readout=readout,
        W_std=W_std,
        b_std=b_std,
    )
    return exact_conv_kernel(net, X4, Y4, ntk=ntk, n_jobs=n_jobs, verbose=verbose)


_DOC_PARAMS = """
    Parameters
    ----------
    X : array-like of shape (n_samples_X, H, W, C), (n_samples_X, H, W) or \
(n_samples_X, n_features)
        Images, channels last; flat rows are reshaped with ``image_shape``.
    Y : array-like of the same kind, default=None
        Second images; ``None`` means ``Y = X`` (only half the pairs are
        computed).
    act : str, Activation or callable, default="relu"
        Activation (see :func:`sklearn_ntk.nngp_kernel`).
    architecture : {"myrtle", "conv_stack"}, default="myrtle"
        ``"myrtle"``: the Myrtle network of depth 5, 7 or 10, ``[Conv, act] *
        k1, AvgPool 2, [Conv, act] * k2, AvgPool 2, [Conv, act] * k3``;
        ``"conv_stack"``: ``[Conv, act] * depth``.  Both end with the readout
        and a ``Dense`` layer.
    depth : int, default=5
        Myrtle depth (5, 7 or 10), or number of convolutions of the stack.
    filter_size : int, default=3
        Convolution filters are ``filter_size x filter_size``, stride 1,
        ``SAME`` zero padding.
    readout : {"global_avg", "flatten"}, default="global_avg"
        Global average pooling or flattening before the ``Dense`` readout.
    W_std, b_std : float, default=sqrt(2), 0.0
        Standard deviations of the weights and biases (NTK parameterization).
    image_shape : tuple (H, W, C) or (H, W), default=None
        Shape of the images when ``X`` holds flat rows (channels last);
        ignored for image arrays, whose shape it must match if given.
        ``None`` reads a perfect-square width ``s * s`` as ``s x s x 1``
        images and raises a ``ValueError`` for any other width (pass
        ``image_shape=(1, d, 1)`` for 1-D signals; see
        :func:`infer_image_shape`).
    n_jobs : int, default=None
        Threads over tiles of image pairs (``None`` means 1, ``-1`` all cores).
    verbose : int, default=0
        Report progress over tiles when positive.
"""


@validate_params(_kernel_params, prefer_skip_nested_validation=True)
def cnngp_kernel(
    X: Any,
    Y: Any = None,
    *,
    act: Any = "relu",
    architecture: str = "myrtle",
    depth: int = 5,
    filter_size: int = 3,
    readout: str = "global_avg",
    W_std: float = math.sqrt(2.0),
    b_std: float = 0.0,
    image_shape: Any = None,
    n_jobs: int | None = None,
    verbose: int = 0,
) -> np.ndarray:
    return _conv_kernel(
        X,
        Y,
        False,
        act,
        architecture,
        depth,
        filter_size,
        readout,
        W_std,
        b_std,
        image_shape,
        n_jobs,
        verbose,
    )


@validate_params(_kernel_params, prefer_skip_nested_validation=True)
def cntk_kernel(
    X: Any,
    Y: Any = None,
    *,
    act: Any = "relu",
    architecture: str = "myrtle",
    depth: int = 5,
    filter_size: int = 3,
    readout: str = "global_avg",
    W_std: float = math.sqrt(2.0),
    b_std: float = 0.0,
    image_shape: Any = None,
    n_jobs: int | None = None,
    verbose: int = 0,
) -> np.ndarray:
    return _conv_kernel(
        X,
        Y,
        True,
        act,
        architecture,
        depth,
        filter_size,
        readout,
        W_std,
        b_std,
        image_shape,
        n_jobs,
        verbose,
    )


cnngp_kernel.__doc__ = (
    """Exact NNGP kernel of an infinitely wide convolutional network.

    Conventions of neural-tangents (``stax``, NTK parameterization): the input
    kernel is ``K(x, y)[i, j] = <x_i, y_j> / C`` over pixel pairs, a ``Conv``
    averages it over jointly shifted pairs, activations apply their dual
    pixel pair by pixel pair, pooling averages windows of pairs and the
    readout averages all pairs (``global_avg``) or the diagonal (``flatten``).
"""
    + _DOC_PARAMS
    + """
    Returns
    -------
    K : ndarray of shape (n_samples_X, n_samples_Y)
        The kernel matrix (float64).

    See Also
    --------
    cntk_kernel : The convolutional neural tangent kernel.
    CNNGPSketch : Random features that approximate this kernel.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_ntk.convolutional import cnngp_kernel
    >>> X = np.random.RandomState(0).randn(3, 8, 8, 1)
    >>> K = cnngp_kernel(X, architecture="myrtle", depth=5)
    >>> K.shape
    (3, 3)
    >>> bool(np.allclose(K, K.T))
    True
    """
)

cntk_kernel.__doc__ = (
    """Exact neural tangent kernel of an infinitely wide convolutional network.

    ``Theta`` follows ``K`` through the layers: a ``Conv`` gives
    ``Theta' = K' + W_std^2 / k^2 sum_delta Theta[i + delta, j + delta]``, an
    activation multiplies by the derivative dual, pooling and readout average
    like ``K`` and the final ``Dense`` adds ``K`` (see :func:`cnngp_kernel`).
"""
    + _DOC_PARAMS
    + """
    Returns
    -------
    K : ndarray of shape (n_samples_X, n_samples_Y)
        The CNTK matrix (float64).

    See Also
    --------
    cnngp_kernel : The NNGP kernel of the same network.
    CNTKSketch : Random features that approximate this kernel.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_ntk.convolutional import cntk_kernel
    >>> X = np.random.RandomState(0).randn(3, 64)   # read as 8 x 8 x 1 images
    >>> cntk_kernel(X, architecture="conv_stack", depth=2).shape
    (3, 3)
    """
)
