"""Convolutional layers: image input, ``Conv``, pooling and readouts.

Exact states follow the pixel-pair conventions of neural-tangents (see
``shared/reference/kernels.md``): a kernel between images is indexed by a pair
of pixels ``(i, j)``.  Arrays put the spatial axes first and the image pairs
last (:class:`~sklearn_ntk.layers.base.Layout`), so every spatial operation is
a handful of shifted adds over long contiguous runs of image pairs:

* ``full`` states (needed by pooling and the global average readout) are
  ``(H, W, H, W, *batch)``: ``K[a, b, c, d, ...] = K(x, y)[(a, b), (c, d)]``;
* ``diagonal`` states (enough for a ``Flatten`` readout without pooling, like
  neural-tangents' ``diagonal_spatial``) keep the pairs ``i = j`` only:
  ``(H, W, *batch)``;
* a state without spatial axes stands for spatially constant images: there
  a ``Conv`` is a ``Dense`` and pooling the identity (the reference input of
  the feature budgets).

``batch`` is ``(n, m)`` for the pairs between two sets of images and ``(n,)``
for the pairs ``(x, x)``.  Every rule is written once for any Array API
namespace (slices, ``concat``, ``matmul``, ``sum``); NumPy gets in-place adds
where they save a pass.

Feature states are per pixel: ``phi`` is ``(n, H, W, D)`` with
``<phi(x)[i], phi(y)[j]> ~ K(x, y)[i, j]``.  A ``Conv`` concatenates the
features of each pixel's ``k x k`` neighbourhood (zero padded) scaled by
``W_std / k``; pooling averages features; activations run the fully connected
feature rule pixel by pixel (:class:`PixelwiseSketch`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any, ClassVar

import numpy as np

from .._backend import asxp, device, get_namespace, is_numpy, to_numpy
from .base import (
    Dims,
    Features,
    KernelState,
    Layer,
    LayerSketch,
    Layout,
    Widths,
    affine,
    affine_ntk,
    is_zero,
)

__all__ = [
    "AvgPool",
    "Conv",
    "Flatten",
    "GlobalAvgPool",
    "ImageInput",
    "PixelwiseSketch",
    "patches",
    "pixel_diagonal",
    "pool_windows",
    "same_offsets",
]


def same_offsets(k: int) -> range:
    """Pixel offsets ``delta`` read by a ``SAME`` filter of size ``k``.

    XLA pads ``(k - 1) // 2`` before and ``k // 2`` after, so output pixel
    ``i`` reads input pixels ``i - (k - 1) // 2, ..., i + k // 2``.
    """
    lo = (k - 1) // 2
    return range(-lo, k - lo)


# ----------------------------------------------------------------------------
# Exact rules: spatial operations on pixel-pair kernels
# ----------------------------------------------------------------------------


def _regions(ndim: int, axes: tuple[int, ...], n: int, d: int) -> tuple[tuple, tuple]:
    """``(dst, src)`` slices with ``out[dst] <- K[src]`` = ``K[i + d]``."""
    dst = [slice(None)] * ndim
    src = [slice(None)] * ndim
    for ax in axes:
        dst[ax] = slice(0, n - d) if d > 0 else slice(-d, n)
        src[ax] = slice(d, n) if d > 0 else slice(0, n + d)
    return tuple(dst), tuple(src)


def _joint_shift_sum(K: Any, axes: tuple[int, ...], k: int) -> Any:
    """``out[i] = sum_delta K[i + delta]`` with ``delta`` added to every axis of
    ``axes`` at once (zero outside the image), for the ``k`` offsets of a
    ``SAME`` filter.  Returns a new array."""
    xp, _ = get_namespace(K)
    n = K.shape[axes[0]]
    offsets = [d for d in same_offsets(k) if d != 0 and abs(d) < n]
    if not is_numpy(xp):
        out = xp.asarray(K, copy=True)
        for d in offsets:
            dst, src = _regions(K.ndim, axes, n, d)
            out[dst] = out[dst] + K[src]
        return out
    if not offsets:
        return K.copy()
    # NumPy: the first offset is added while copying (one pass instead of
    # two); the pixels without a partner at that offset are copied alone.
    out = np.empty_like(K)
    d = offsets[0]
    dst, src = _regions(K.ndim, axes, n, d)
    np.add(K[dst], K[src], out=out[dst])
    for ax in axes:
        rest = [slice(None)] * K.ndim
        rest[ax] = slice(n - d, n) if d > 0 else slice(0, -d)
        out[tuple(rest)] = K[tuple(rest)]
    for d in offsets[1:]:
        dst, src = _regions(K.ndim, axes, n, d)
        out[dst] += K[src]
    return out


def _conv_sum(K: Any, k: int, spatial: str) -> Any:
    """``sum_delta K[i + delta, j + delta]`` over the ``k x k`` offsets.

    The 2-D sum factorizes into a row pass and a column pass because the
    offset moves both pixels of a pair together, axis by axis (and the zero
    padding condition is a product over axes).
    """
    if spatial == "diagonal":  # (H, W, *batch): a box filter of the diagonal
        return _joint_shift_sum(_joint_shift_sum(K, (0,), k), (1,), k)
    return _joint_shift_sum(_joint_shift_sum(K, (0, 2), k), (1, 3), k)


@dataclass(frozen=True)
class Conv(Layer):
    """``k x k`` convolution, stride 1, ``SAME`` zero padding, at infinite width.

    ``K'[i, j] = W_std^2 / k^2 sum_delta K[i + delta, j + delta] + b_std^2``
    and ``Theta'[i, j] = K'[i, j] + W_std^2 / k^2 sum_delta Theta[i + delta,
    j + delta]``: the dense rule (:func:`~sklearn_ntk.layers.base.affine`)
    on the sum over the filter.  On a state without spatial axes (spatially
    constant images) the sum is ``k^2`` times the kernel: a ``Dense`` layer.
    """

    filter_size: int = 3
    W_std: float = 1.0
    b_std: float = 0.0

    carries_gap: ClassVar[bool] = True

    def kernel(self, k: KernelState) -> KernelState:
        """Exact rule (the output's ``kxx``/``kyy`` are left to the network)."""
        spatial = k.layout.spatial
        if spatial == "none":
            w2 = self.W_std**2
            nngp = affine(k.nngp, w2, self.b_std**2)
            return KernelState(
                nngp=nngp, ntk=affine_ntk(nngp, k.ntk, w2), layout=k.layout
            )
        w2 = self.W_std**2 / self.filter_size**2
        b2 = self.b_std**2
        summed = _conv_sum(k.nngp, self.filter_size, spatial)
        gap = None
        if k.gap is not None and not k.layout.self_pairs:
            gap = _conv_gap(k, summed, self.filter_size, w2, b2)
        ntk = k.ntk
        if ntk is not None and not is_zero(ntk):
            # Theta' = w2 sum(Theta + K) + b2 = w2 sum(Theta) + K': one
            # filter sum instead of two.
            ntk = _conv_sum(ntk + k.nngp, self.filter_size, spatial)
            ntk = affine(ntk, w2, b2, True)
            nngp = affine(summed, w2, b2, True)
        else:
            nngp = affine(summed, w2, b2, True)
            ntk = affine_ntk(nngp, ntk, w2)
        return KernelState(nngp=nngp, ntk=ntk, gap=gap, layout=k.layout)

    def feature_width(self, width: int, spatial: tuple[int, int] | None) -> int:
        return self.filter_size**2 * width + (self.b_std != 0)

    def features(self, dims: Dims, widths: Widths, rng: Any) -> LayerSketch:
        return ConvSketch(self, dims, (widths.reduce, widths.reduce), rng)


def _pixel_roots(k: KernelState) -> tuple[Any, Any]:
    """``sqrt`` of the per-pixel variances of a cross state, ``(n, H, W)``
    and ``(m, H, W)`` (the vectors whose gap enters a sum's gap)."""
    xp, _ = get_namespace(k.nngp)
    H, W = k.nngp.shape[:2]
    n, m = k.nngp.shape[-2:]
    vx = xp.reshape(k.kxx, (H, W, n))
    vy = xp.reshape(k.kyy, (H, W, m))
    rx = xp.permute_dims(xp.sqrt(xp.clip(vx, 0.0, None)), (2, 0, 1))
    ry = xp.permute_dims(xp.sqrt(xp.clip(vy, 0.0, None)), (2, 0, 1))
    return rx, ry


def _inverse(xp: Any, r: Any) -> Any:
    return xp.where(r > 0, 1.0 / xp.where(r > 0, r, xp.ones_like(r)), 0.0 * r)


def _weighted(xp: Any, t: Any, sx: Any, sy: Any) -> Any:
    """``t * sx * sy`` as a new array (in place after the first product)."""
    out = t * sx
    if isinstance(out, np.ndarray):
        out *= sy
        return out
    return out * sy


def _one_minus_plus(xp: Any, kxy: Any, gap: Any) -> tuple[Any, Any]:
    """``(1 - rho, 1 + rho)`` from the gap; ``1 + rho`` is ``None`` when no
    ``rho`` is negative (it is then never the smaller one)."""
    from ..activations import _negative, _plus_minus

    if not _negative(xp, kxy):
        return gap, None
    return _plus_minus(xp, kxy, gap)


def _conv_gap(k: KernelState, summed: Any, f: int, w2: float, b2: float) -> Any:
    """Gap after a ``Conv`` (see :mod:`sklearn_ntk.layers._conv_gap`)."""
    from ._conv_gap import _NEAR, add_vector_gap, pair_term, vector_gaps
    from .dense import _dense_gap

    xp, _ = get_namespace(k.nngp)
    spatial = k.layout.spatial
    rx, ry = _pixel_roots(k)
    U, V = patches(rx[..., None], f), patches(ry[..., None], f)  # (n, H, W, f*f)
    # |u|^2 = sum_d a_d: the variances of the summed kernel.
    nu = xp.permute_dims(xp.sqrt(xp.sum(U * U, axis=-1)), (1, 2, 0))
    nv = xp.permute_dims(xp.sqrt(xp.sum(V * V, axis=-1)), (1, 2, 0))
    inv_u, inv_v = k.layout.outer(_inverse(xp, nu), _inverse(xp, nv))
    sx, sy = k.layout.outer(
        xp.permute_dims(rx, (1, 2, 0)), xp.permute_dims(ry, (1, 2, 0))
    )
    t_minus, t_plus = _one_minus_plus(xp, k.nngp, k.gap)
    s_minus = _conv_sum(_weighted(xp, t_minus, sx, sy), f, spatial)
    s_plus = None
    if t_plus is not None:
        s_plus = _conv_sum(_weighted(xp, t_plus, sx, sy), f, spatial)
    other = pair_term(xp, summed, s_minus, s_plus, inv_u, inv_v)
    # Where the summed pairs' own term is not small the output gap is not
    # either: the vector gap's rounding (~eps) is then below eps / _NEAR of
    # it, and its accurate recomputation is skipped.
    g_uw = vector_gaps(U, V, spatial, only=other < _NEAR)
    gap = add_vector_gap(xp, g_uw, other)
    if b2 == 0.0:
        return gap
    A, B = k.layout.outer(nu * nu, nv * nv)
    return _dense_gap(summed, A, B, affine(A, w2, b2), affine(B, w2, b2), gap, w2, b2)


def _flatten_gap(k: KernelState) -> Any:
    """Gap after the ``Flatten`` readout: of the sum of the pixel-diagonal
    kernels (the mean has the same correlation)."""
    from ._conv_gap import sum_gap, vector_gaps

    xp, _ = get_namespace(k.nngp)
    rx, ry = _pixel_roots(k)
    n, m = rx.shape[0], ry.shape[0]
    U, V = xp.reshape(rx, (n, -1)), xp.reshape(ry, (m, -1))
    g_uw = vector_gaps(U, V, "none")
    diag = Layout(True, k.layout.spatial)
    K = diag.pixel_variances(k.nngp)  # (H, W, n, m): the pairs (i, i)
    g = diag.pixel_variances(k.gap)
    s = (
        xp.permute_dims(rx, (1, 2, 0))[..., None]
        * xp.permute_dims(ry, (1, 2, 0))[..., None, :]
    )
    t_minus, t_plus = _one_minus_plus(xp, K, g)
    s_minus = xp.sum(s * t_minus, axis=(0, 1))
    s_plus = None if t_plus is None else xp.sum(s * t_plus, axis=(0, 1))
    nu = xp.sqrt(xp.sum(U * U, axis=1))[:, None]
    nv = xp.sqrt(xp.sum(V * V, axis=1))[None, :]
    summed = xp.sum(K, axis=(0, 1))
    return sum_gap(
        xp, summed, g_uw, s_minus, s_plus, _inverse(xp, nu), _inverse(xp, nv)
    )


def pool_windows(h: int, w: int, window: int) -> tuple[int, int]:
    """Window per axis: ``window``, or the whole axis when it is shorter (an
    axis of one pixel is left alone instead of vanishing)."""
    return min(window, h), min(window, w)


@dataclass(frozen=True)
class AvgPool(Layer):
    """``AvgPool(window x window, stride = window, VALID)``: the kernel of the
    pooled images averages over the ``window^2 x window^2`` pixel pairs.

    An axis shorter than ``window`` is pooled whole (so a ``1 x d`` image
    keeps its single row), where neural-tangents would return an empty image.
    """

    window: int = 2

    needs_full_pixel_pairs: ClassVar[bool] = True

    def kernel(self, k: KernelState) -> KernelState:
        if k.layout.spatial == "none":
            return KernelState(nngp=k.nngp, ntk=k.ntk, layout=k.layout)
        if k.layout.spatial != "full":
            raise ValueError("AvgPool needs the full pixel-pair kernel.")
        ntk = k.ntk
        if ntk is not None and not is_zero(ntk):
            ntk = _pool(ntk, self.window)
        return KernelState(nngp=_pool(k.nngp, self.window), ntk=ntk, layout=k.layout)

    def out_spatial(self, spatial: tuple[int, int] | None) -> tuple[int, int] | None:
        if spatial is None:
            return None
        h, w = spatial
        ph, pw = pool_windows(h, w, self.window)
        return h // ph, w // pw

    def output_shape(self, h: int, w: int) -> tuple[int, int]:
        return self.out_spatial((h, w))  # type: ignore[return-value]

    def features(self, dims: Dims, widths: Widths, rng: Any) -> LayerSketch:
        return AvgPoolSketch(self.window, dims, self.out_spatial(dims.spatial))


def _pool(K: Any, p: int) -> Any:
    xp, _ = get_namespace(K)
    ph, pw = pool_windows(K.shape[0], K.shape[1], p)
    H, W = K.shape[0] // ph, K.shape[1] // pw
    # Sum the strided views of the window offsets: every add runs over
    # contiguous image pairs.
    out = None
    numpy = is_numpy(xp)
    for a in range(ph):
        for b in range(pw):
            for c in range(ph):
                for d in range(pw):
                    v = K[
                        a : H * ph : ph,
                        b : W * pw : pw,
                        c : H * ph : ph,
                        d : W * pw : pw,
                        ...,
                    ]
                    if out is None:
                        out = xp.asarray(v, copy=True)
                    elif numpy:
                        out += v
                    else:
                        out = out + v
    return out * (1.0 / (ph * pw) ** 2)


@dataclass(frozen=True)
class GlobalAvgPool(Layer):
    """Global average pooling readout: ``K(x, y) = mean_{i, j} K[i, j]``
    (then a :class:`~sklearn_ntk.layers.Dense` layer)."""

    needs_full_pixel_pairs: ClassVar[bool] = True

    def kernel(self, k: KernelState) -> KernelState:
        layout = k.layout.with_spatial("none")
        if k.layout.spatial == "none":
            return KernelState(nngp=k.nngp, ntk=k.ntk, layout=layout)
        if k.layout.spatial != "full":
            raise ValueError("GlobalAvgPool needs the full pixel-pair kernel.")
        xp, _ = get_namespace(k.nngp)
        axes = (0, 1, 2, 3)
        ntk = k.ntk
        if ntk is not None and not is_zero(ntk):
            ntk = xp.mean(ntk, axis=axes)
        return KernelState(nngp=xp.mean(k.nngp, axis=axes), ntk=ntk, layout=layout)

    def out_spatial(self, spatial: tuple[int, int] | None) -> None:
        return None

    def features(self, dims: Dims, widths: Widths, rng: Any) -> LayerSketch:
        return ReadoutSketch("global_avg", dims)


@dataclass(frozen=True)
class Flatten(Layer):
    """Flatten readout: ``K(x, y) = mean_i K[i, i]`` (then ``Dense``)."""

    carries_gap: ClassVar[bool] = True

    def kernel(self, k: KernelState) -> KernelState:
        layout = k.layout.with_spatial("none")
        if k.layout.spatial == "none":
            return KernelState(nngp=k.nngp, ntk=k.ntk, layout=layout)

        def mean_diag(a: Any) -> Any:
            xp, _ = get_namespace(a)
            return xp.mean(k.layout.pixel_variances(a), axis=(0, 1))

        ntk = k.ntk
        if ntk is not None and not is_zero(ntk):
            ntk = mean_diag(ntk)
        gap = None
        if k.gap is not None and not k.layout.self_pairs:
            gap = _flatten_gap(k)
        return KernelState(nngp=mean_diag(k.nngp), ntk=ntk, gap=gap, layout=layout)

    def out_spatial(self, spatial: tuple[int, int] | None) -> None:
        return None

    def feature_width(self, width: int, spatial: tuple[int, int] | None) -> int:
        return width * (1 if spatial is None else spatial[0] * spatial[1])

    def features(self, dims: Dims, widths: Widths, rng: Any) -> LayerSketch:
        n_pixels = 1 if dims.spatial is None else dims.spatial[0] * dims.spatial[1]
        return ReadoutSketch("flatten", dims, n_pixels)


def pixel_diagonal(K: Any, spatial: str = "full") -> Any:
    """Per-pixel variances ``K(x, x)[i, i]`` of a self state, ``(H, W, n)``."""
    return Layout(True, spatial).pixel_variances(K)


# ----------------------------------------------------------------------------
# Input rule
# ----------------------------------------------------------------------------


def _pow2(xp: Any, e: np.ndarray | None, n: int, like: Any) -> Any:
    """``2**e`` (ones where ``e`` is None) as an array of ``xp``, exact."""
    v = np.ones(n) if e is None else np.ldexp(1.0, e)
    return asxp(v, xp, device=device(like), dtype=like.dtype)


def _rescale(K: Any, ex: Any, ey: Any, same: bool = False) -> Any:
    """Put the images' binary scales back on a Gram: ``K * 2**(e_a + e_b)``.

    Image axes last: ``(..., n, m)``, or ``(..., n)`` for the self pairs
    (``same``).  Two multiplications by exact powers of two: nothing rounds
    unless the true value is outside the float range.
    """
    if ex is None and ey is None:
        return K
    xp, _ = get_namespace(K)
    n = K.shape[-1] if same else K.shape[-2]
    fx = _pow2(xp, ex, n, K)
    with np.errstate(over="ignore", under="ignore"):
        if same:
            return K * fx * fx
        fy = _pow2(xp, ey, K.shape[-1], K)
        return K * fx[:, None] * fy


def _pad_spatial(xp: Any, X: Any, lo: int, hi: int) -> Any:
    """Zero-pad axes 1 and 2 of ``(n, H, W, C)`` by ``lo`` before, ``hi`` after."""
    n, _, W, C = X.shape
    dev = device(X)
    if lo or hi:
        parts = [xp.zeros((n, lo, W, C), dtype=X.dtype, device=dev)] if lo else []
        parts += [X]
        parts += [xp.zeros((n, hi, W, C), dtype=X.dtype, device=dev)] if hi else []
        X = xp.concat(parts, axis=1)
        H2 = X.shape[1]
        parts = [xp.zeros((n, H2, lo, C), dtype=X.dtype, device=dev)] if lo else []
        parts += [X]
        parts += [xp.zeros((n, H2, hi, C), dtype=X.dtype, device=dev)] if hi else []
        X = xp.concat(parts, axis=2)
    return X


def patches(X: Any, k: int) -> Any:
    """``(n, H, W, k * k * C)``: each pixel's ``SAME`` zero-padded neighbourhood."""
    xp, _ = get_namespace(X)
    H, W = X.shape[1:3]
    lo = (k - 1) // 2
    P = _pad_spatial(xp, X, lo, k - 1 - lo)
    return xp.concat(
        [P[:, dy : dy + H, dx : dx + W, :] for dy in range(k) for dx in range(k)],
        axis=3,
    )


def _pixel_variances(xp: Any, p: Any, scale: float, e: Any) -> Any:
    """``scale * |p_i|^2`` per pixel, scales put back: ``(H, W, n)``."""
    v = xp.permute_dims(xp.sum(p * p, axis=-1), (1, 2, 0)) * scale
    return _rescale(v, e, e, same=True)


def _contiguous(xp: Any, a: Any) -> Any:
    return np.ascontiguousarray(a) if is_numpy(xp) else a


@dataclass(frozen=True)
class ImageInput:
    """Input rule of a convolutional network on ``(H, W, C)`` images.

    ``K(x, y)[i, j] = <x_i, y_j> / C`` and ``Theta = 0``.  When the first
    layer is a ``Conv``, the input rule applies it too (:meth:`fuses`), as
    one matrix product of pixel neighbourhoods (much cheaper than shifting
    the input kernel ``k^2`` times).  Arrays of any Array API namespace.
    """

    image_shape: tuple[int, int, int]

    carries_gap: ClassVar[bool] = True

    def as_images(self, X: Any) -> Any:
        xp, _ = get_namespace(X)
        H, W, C = self.image_shape
        return xp.reshape(X, (X.shape[0], H, W, C))

    def spatial_layout(self, needs_full: bool) -> str:
        return "full" if needs_full else "diagonal"

    def fuses(self, layers: tuple) -> int:
        """How many leading layers the input rule applies itself: a first
        ``Conv`` (the Gram of patches is the convolved input kernel)."""
        return int(bool(layers) and isinstance(layers[0], Conv))

    def describe(self, X: Any, i: int) -> str:
        """Names input ``i`` and its scale, for error messages."""
        x = np.asarray(to_numpy(X[i, ...]), dtype=np.float64)
        with np.errstate(over="ignore"):
            scale = float(np.mean(np.square(x)))
        return f"image {i} of the input, whose mean squared pixel is {scale:.3g}"

    def _pixels(self, X: Any, fused: tuple) -> tuple[Any, float, float, Any]:
        """Per-pixel vectors, the (scale, bias) of the Gram of the input rule
        (followed by the fused ``Conv`` if any), and the images' binary scales.

        Scale-safe like :class:`~sklearn_ntk.networks.DenseInput`: images
        whose largest ``|x|`` lies outside ``2**+-400`` are divided by the
        power of two ``2**e`` (exactly), so that the Gram neither under- nor
        overflows; ``e`` (``None`` when no image needed it) is put back on
        the kernel by :func:`_rescale`.
        """
        xp, _ = get_namespace(X)
        C = X.shape[3]
        host = np.abs(np.asarray(to_numpy(X), dtype=np.float64))
        big = host.reshape(X.shape[0], -1).max(axis=1, initial=0.0)
        _, e = np.frexp(big)
        out = (big > 0) & (np.abs(e) > 400)
        ex = None
        if out.any():
            ex = np.where(out, e, 0)
            X = X * _pow2(xp, -ex, X.shape[0], X)[:, None, None, None]
        if not fused:
            return X, 1.0 / C, 0.0, ex
        conv = fused[0]
        k = conv.filter_size
        return patches(X, k), conv.W_std**2 / (k * k * C), conv.b_std**2, ex

    @staticmethod
    def _theta(K: Any, ntk: bool, fused: tuple) -> Any:
        if not ntk:
            return None
        # Theta = 0 at the input; after a first Conv, Theta' = K'.
        return 0.0 if not fused else K

    def cross_state(
        self,
        X: Any,
        Y: Any,
        ntk: bool,
        spatial: str,
        fused: tuple,
        pairs: Any = None,
        gap: bool = False,
    ) -> KernelState:
        """Cross state between image batches ``X`` (n) and ``Y`` (m); with
        ``gap``, also the gap ``1 - |rho|`` of every pixel pair, accurate for
        nearly parallel neighbourhoods (:func:`._conv_gap.vector_gaps`)."""
        xp, _ = get_namespace(X, Y)
        px, scale, b2, ex = self._pixels(X, fused)
        py, _, _, ey = (px, 0, 0, ex) if Y is X else self._pixels(Y, fused)
        n, H, W, F = px.shape
        m = py.shape[0]
        P = H * W
        A = _contiguous(xp, xp.permute_dims(xp.reshape(px, (n, P, F)), (1, 0, 2)))
        B = _contiguous(xp, xp.permute_dims(xp.reshape(py, (m, P, F)), (1, 2, 0)))
        if spatial == "diagonal":
            K = xp.reshape(xp.matmul(A, B), (H, W, n, m))
        else:
            K = xp.matmul(A[:, None, ...], B[None, ...])
            K = xp.reshape(K, (H, W, H, W, n, m))
        K = _rescale(affine(K, scale, 0.0, True), ex, ey)
        g = None
        if gap:
            from ._conv_gap import vector_gaps

            g = vector_gaps(px, py, spatial)
            if b2 != 0.0:
                from .dense import _dense_gap

                layout = Layout(False, spatial)
                vx = _pixel_variances(xp, px, scale, ex)
                vy = vx if Y is X else _pixel_variances(xp, py, scale, ey)
                kxx, kyy = layout.outer(vx, vy)
                g = _dense_gap(
                    K, kxx, kyy, affine(kxx, 1.0, b2), affine(kyy, 1.0, b2), g, 1.0, b2
                )
        K = affine(K, 1.0, b2, not gap)
        return KernelState(
            nngp=K, ntk=self._theta(K, ntk, fused), gap=g, layout=Layout(False, spatial)
        )

    def self_state(self, X: Any, ntk: bool, spatial: str, fused: tuple) -> KernelState:
        """Self state, the pairs ``(x, x)``: ``(H, W, H, W, n)`` or ``(H, W, n)``."""
        xp, _ = get_namespace(X)
        px, scale, b2, ex = self._pixels(X, fused)
        n, H, W, F = px.shape
        P = H * W
        flat = xp.reshape(px, (n, P, F))
        if spatial == "diagonal":
            K = xp.reshape(
                xp.permute_dims(xp.sum(flat * flat, axis=2), (1, 0)), (H, W, n)
            )
        else:
            K = xp.matmul(flat, xp.permute_dims(flat, (0, 2, 1)))  # (n, P, P)
            K = _contiguous(xp, xp.permute_dims(K, (1, 2, 0)))
            K = xp.reshape(K, (H, W, H, W, n))
        K = affine(_rescale(affine(K, scale, 0.0, True), ex, ex, True), 1.0, b2, True)
        return KernelState(
            nngp=K, ntk=self._theta(K, ntk, fused), layout=Layout(True, spatial)
        )

    def reference_state(self, ntk: bool) -> KernelState:
        """Standardized pixels, ``<x_i, x_i> / C = 1``, spatially constant."""
        one = np.ones(1)
        return KernelState(nngp=one, ntk=0.0 if ntk else None, layout=Layout(True))

    # -- feature rule --------------------------------------------------------

    def dims(self, n_features: int | None, ntk: bool, sparse: bool = False) -> Dims:
        H, W, C = self.image_shape
        return Dims(phi=C, psi=0 if ntk else None, scale2=1.0, spatial=(H, W))

    def features(self, X: Any) -> Features:
        return Features(self.as_images(X) * (1.0 / math.sqrt(self.image_shape[2])))


# ----------------------------------------------------------------------------
# Feature rules
# ----------------------------------------------------------------------------


def _neighbourhoods(phi: Any, k: int, scale: float, bias: float) -> Any:
    """``(n, H, W, k*k*D [+1])``: concatenated zero-padded neighbourhoods times
    ``scale``, plus a constant ``bias`` column when ``bias != 0``."""
    xp, _ = get_namespace(phi)
    n, H, W = phi.shape[:3]
    parts = [patches(phi * scale, k)]
    if bias != 0:
        parts.append(xp.full((n, H, W, 1), bias, dtype=phi.dtype, device=device(phi)))
    return parts[0] if len(parts) == 1 else xp.concat(parts, axis=3)


def _row_norms(xp: Any, a: Any) -> Any:
    if is_numpy(xp):  # one pass, no temporary as wide as the neighbourhoods
        return np.sqrt(np.einsum("ij,ij->i", a, a))
    return xp.sqrt(xp.sum(a * a, axis=1))


class ConvSketch(LayerSketch):
    """Feature rule of :class:`Conv`:
    ``phi'[i] = [W/k * concat_delta phi[i + delta] ; b]`` and
    ``psi'[i] = [W/k * concat_delta psi[i + delta] ; phi'[i]]``.

    The concatenation is exact but ``k^2`` times wider than its input.  With
    ``reduce=(r_phi, r_psi)`` it is mapped by an SRHT to ``r_phi`` (``r_psi``)
    features when wider: one FFT per pixel instead of ``degree`` FFTs of the
    wide vector in the activation sketch that follows.  The reduced ``phi'``
    is rescaled to the exact norm of the concatenation, so the per-pixel
    variances ``K'(x, x)[i, i]`` (which set the Hermite coefficients of the
    next activation) stay exact.
    """

    def __init__(
        self,
        layer: Conv,
        dims: Dims,
        reduce: tuple[int | None, int | None] = (None, None),
        random_state: Any = None,
    ):
        from sklearn.utils import check_random_state

        from ..sketches import SRHT

        rng = check_random_state(random_state)
        self.k = int(layer.filter_size)
        self.W_std, self.b_std = float(layer.W_std), float(layer.b_std)
        kk = self.k * self.k
        phi = kk * dims.phi + (self.b_std != 0)
        self.srht_phi = None
        if reduce[0] is not None and phi > reduce[0]:
            self.srht_phi = SRHT(phi, int(reduce[0]), rng)
            phi = int(reduce[0])
        psi = None
        self.srht_psi = None
        if dims.psi:
            psi = kk * dims.psi
            if reduce[1] is not None and psi > reduce[1]:
                self.srht_psi = SRHT(psi, int(reduce[1]), rng)
                psi = int(reduce[1])
            psi += phi
        elif dims.psi is not None:
            psi = phi
        self.dims_out = replace(dims, phi=phi, psi=psi)

    @staticmethod
    def _reduce(a: Any, srht: Any, keep_norm: bool) -> Any:
        if srht is None:
            return a
        xp, _ = get_namespace(a)
        shape = tuple(a.shape[:-1])
        flat = xp.reshape(a, (-1, a.shape[-1]))
        out = srht(flat)
        if keep_norm:
            r, r_out = _row_norms(xp, flat), _row_norms(xp, out)
            fac = (r / xp.where(r_out > 0, r_out, xp.ones_like(r_out)))[:, None]
            if is_numpy(xp):  # the SRHT's own output: scaled in place
                out *= fac
            else:
                out = out * fac
        return xp.reshape(out, (*shape, out.shape[-1]))

    def __call__(self, f: Features) -> Features:
        scale = self.W_std / self.k
        phi = _neighbourhoods(f.phi, self.k, scale, self.b_std)
        phi = self._reduce(phi, self.srht_phi, keep_norm=True)
        if self.dims_out.psi is None:
            return Features(phi)
        if f.psi is None:  # Theta = 0 before the first Conv
            return Features(phi, phi)
        xp, _ = get_namespace(phi)
        psi = _neighbourhoods(f.psi, self.k, scale, 0.0)
        psi = self._reduce(psi, self.srht_psi, keep_norm=False)
        return Features(phi, xp.concat([psi, phi], axis=-1))


class PixelwiseSketch(LayerSketch):
    """Runs a fully connected feature rule (``(N, D)`` rows) on every pixel.

    A pure layout adapter: ``(n, H, W, D)`` features are read as ``n H W``
    rows, mapped by ``inner`` (an activation's
    :class:`~sklearn_ntk.layers.activation_features.ElementwiseSketch`, the
    same rule as for dense layers) and reshaped back.
    """

    def __init__(self, inner: LayerSketch, spatial: tuple[int, int] | None = None):
        self.inner = inner
        self.dims_out = replace(inner.dims_out, spatial=spatial)

    def __call__(self, f: Features) -> Features:
        from .._backend import get_namespace

        xp, _ = get_namespace(f.phi)
        n, H, W = f.phi.shape[:3]

        def rows(a: Any) -> Any:
            return None if a is None else xp.reshape(a, (n * H * W, a.shape[-1]))

        def images(a: Any) -> Any:
            return None if a is None else xp.reshape(a, (n, H, W, a.shape[-1]))

        out = self.inner(Features(rows(f.phi), rows(f.psi)))
        return Features(images(out.phi), images(out.psi))


def _avg_pool_features(a: Any, p: int) -> Any:
    xp, _ = get_namespace(a)
    n, H, W, D = a.shape
    ph, pw = pool_windows(H, W, p)
    h, w = H // ph, W // pw
    a = xp.reshape(a[:, : h * ph, : w * pw, :], (n, h, ph, w, pw, D))
    return xp.mean(a, axis=(2, 4))


class AvgPoolSketch(LayerSketch):
    """Feature rule of :class:`AvgPool`: average the features of each window."""

    def __init__(self, window: int, dims: Dims, spatial: tuple[int, int] | None = None):
        self.window = int(window)
        self.dims_out = replace(dims, spatial=spatial)

    def __call__(self, f: Features) -> Features:
        p = self.window
        return Features(
            _avg_pool_features(f.phi, p),
            None if f.psi is None else _avg_pool_features(f.psi, p),
        )


class ReadoutSketch(LayerSketch):
    """Feature rule of the readouts: ``global_avg`` averages the pixel
    features, ``flatten`` stacks them scaled by ``1 / sqrt(H W)``."""

    def __init__(self, kind: str, dims: Dims, n_pixels: int = 1):
        self.kind = kind
        self.n_pixels = int(n_pixels)
        m = 1 if kind == "global_avg" else self.n_pixels
        self.dims_out = replace(
            dims,
            phi=m * dims.phi,
            psi=None if dims.psi is None else m * dims.psi,
            spatial=None,
        )

    def _apply(self, a: Any) -> Any:
        if a is None:
            return None
        xp, _ = get_namespace(a)
        if self.kind == "global_avg":
            return xp.mean(a, axis=(1, 2))
        n = a.shape[0]
        return xp.reshape(a, (n, -1)) * (1.0 / math.sqrt(self.n_pixels))

    def __call__(self, f: Features) -> Features:
        return Features(self._apply(f.phi), self._apply(f.psi))
