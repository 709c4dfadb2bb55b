"""Convolutional layers: image input, ``Conv``, pooling and readouts.

Exact states follow the pixel-pair conventions of neural-tangents (see
``shared/reference/kernels.md``): a kernel between images is indexed by a pair
of pixels ``(i, j)``.  Arrays put the spatial axes first and the image pairs
last, so every spatial operation is a handful of strided adds over long
contiguous runs of image pairs:

* ``full`` states (needed by pooling and the global average readout) are
  ``(H, W, H, W, *batch)``: ``K[a, b, c, d, ...] = K(x, y)[(a, b), (c, d)]``;
* ``diagonal`` states (enough for a ``Flatten`` readout without pooling, like
  neural-tangents' ``diagonal_spatial``) keep the pairs ``i = j`` only:
  ``(H, W, *batch)``.

``batch`` is ``(n, m)`` for the pairs between two sets of images and ``(n,)``
for the pairs ``(x, x)`` (the "self" states whose pixel diagonals feed the
dual activations).

Feature states are per pixel: ``phi`` is ``(n, H, W, D)`` with
``<phi(x)[i], phi(y)[j]> ~ K(x, y)[i, j]``.  A ``Conv`` concatenates the
features of each pixel's ``k x k`` neighbourhood (zero padded) scaled by
``W_std / k``; pooling averages features; activations run the fully connected
feature rule pixel by pixel (:class:`PixelwiseSketch`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from .base import Dims, Features, KernelState, LayerSketch

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


def _joint_shift_sum(K: np.ndarray, axes: tuple[int, ...], k: int) -> np.ndarray:
    """``out[i] = sum_delta K[i + delta]`` with ``delta`` added to every axis of
    ``axes`` at once (zero outside the image), for the ``k`` offsets of a
    ``SAME`` filter.  Returns a new array."""
    n = K.shape[axes[0]]
    offsets = [d for d in same_offsets(k) if d != 0 and abs(d) < n]
    if not offsets:
        return K.copy()

    def regions(d: int) -> tuple[tuple, tuple]:
        dst = [slice(None)] * K.ndim
        src = [slice(None)] * K.ndim
        for ax in axes:
            dst[ax] = slice(0, n - d) if d > 0 else slice(-d, n)
            src[ax] = slice(d, n) if d > 0 else slice(0, n + d)
        return tuple(dst), tuple(src)

    # The first offset is added while copying (one pass instead of two); the
    # pixels without a partner at that offset are copied alone.
    out = np.empty_like(K)
    d = offsets[0]
    dst, src = regions(d)
    np.add(K[dst], K[src], out=out[dst])
    for ax in axes:
        rest = [slice(None)] * K.ndim
        rest[ax] = slice(n - d, n) if d > 0 else slice(0, -d)
        out[tuple(rest)] = K[tuple(rest)]
    for d in offsets[1:]:
        dst, src = regions(d)
        out[dst] += K[src]
    return out


def _conv_sum(K: np.ndarray, k: int, diagonal: bool) -> np.ndarray:
    """``sum_delta K[i + delta, j + delta]`` over the ``k x k`` offsets.

    The 2-D sum factorizes into a row pass and a column pass because the
    offset moves both pixels of a pair together, axis by axis (and the zero
    padding condition is a product over axes).
    """
    if diagonal:  # (H, W, *batch): a box filter of the diagonal
        return _joint_shift_sum(_joint_shift_sum(K, (0,), k), (1,), k)
    return _joint_shift_sum(_joint_shift_sum(K, (0, 2), k), (1, 3), k)


def _is_zero(theta: Any) -> bool:
    return not isinstance(theta, np.ndarray) and theta is not None and theta == 0.0


@dataclass(frozen=True)
class Conv:
    """``k x k`` convolution, stride 1, ``SAME`` zero padding, at infinite width.

    ``K'[i, j] = W_std^2 / k^2 sum_delta K[i + delta, j + delta] + b_std^2``
    and ``Theta'[i, j] = K'[i, j] + W_std^2 / k^2 sum_delta Theta[i + delta,
    j + delta]``.
    """

    filter_size: int = 3
    W_std: float = 1.0
    b_std: float = 0.0

    def kernel(self, k: KernelState, diagonal: bool = False) -> KernelState:
        """Exact rule on a pixel-pair state (``kxx``/``kyy`` are dropped: the
        network recomputes the pixel variances from the self states)."""
        scale = self.W_std**2 / self.filter_size**2
        b2 = self.b_std**2
        nngp = _conv_sum(k.nngp, self.filter_size, diagonal)
        ntk = k.ntk
        if ntk is not None and not _is_zero(ntk):
            # Theta' = scale * sum(Theta + K) + b^2: one sum instead of two.
            ntk = _conv_sum(ntk + k.nngp, self.filter_size, diagonal)
            ntk *= scale
            ntk += b2
        nngp *= scale
        nngp += b2
        if ntk is not None and _is_zero(ntk):
            ntk = nngp
        return KernelState(nngp=nngp, kxx=None, kyy=None, ntk=ntk)

    def sketch(self, dims: Dims, widths: Any = None, random_state: Any = None):
        return ConvSketch(self, dims)


@dataclass(frozen=True)
class AvgPool:
    """``AvgPool(window x window, stride = window, VALID)``: the kernel of the
    pooled images averages over the ``window^2 x window^2`` pixel pairs.

    An axis shorter than ``window`` is pooled whole (so a ``1 x d`` image
    keeps its single row), where neural-tangents would return an empty image.
    """

    window: int = 2

    def kernel(self, k: KernelState, diagonal: bool = False) -> KernelState:
        if diagonal:
            raise ValueError("AvgPool needs the full pixel-pair kernel.")
        return KernelState(
            nngp=_pool(k.nngp, self.window),
            kxx=None,
            kyy=None,
            ntk=k.ntk
            if k.ntk is None or _is_zero(k.ntk)
            else _pool(k.ntk, self.window),
        )

    def output_shape(self, h: int, w: int) -> tuple[int, int]:
        ph, pw = pool_windows(h, w, self.window)
        return h // ph, w // pw

    def sketch(self, dims: Dims, widths: Any = None, random_state: Any = None):
        return AvgPoolSketch(self.window, dims)


def pool_windows(h: int, w: int, window: int) -> tuple[int, int]:
    """Window per axis: ``window``, or the whole axis when it is shorter (an
    axis of one pixel is left alone instead of vanishing)."""
    return min(window, h), min(window, w)


def _pool(K: np.ndarray, p: int) -> np.ndarray:
    ph, pw = pool_windows(K.shape[0], K.shape[1], p)
    H, W = K.shape[0] // ph, K.shape[1] // pw
    # Sum the strided views of the window offsets: every add runs over
    # contiguous image pairs.
    out = None
    for a in range(ph):
        for b in range(pw):
            for c in range(ph):
                for d in range(pw):
                    v = K[
                        a : H * ph : ph,
                        b : W * pw : pw,
                        c : H * ph : ph,
                        d : W * pw : pw,
                    ]
                    if out is None:
                        out = v.copy()
                    else:
                        out += v
    out *= 1.0 / (ph * pw) ** 2
    return out


@dataclass(frozen=True)
class GlobalAvgPool:
    """Global average pooling readout: ``K(x, y) = mean_{i, j} K[i, j]``
    (then a :class:`~sklearn_ntk.layers.Dense` layer)."""

    def kernel(self, k: KernelState, diagonal: bool = False) -> KernelState:
        if diagonal:
            raise ValueError("GlobalAvgPool needs the full pixel-pair kernel.")
        axes = (0, 1, 2, 3)
        ntk = k.ntk
        if ntk is not None and not _is_zero(ntk):
            ntk = ntk.mean(axis=axes)
        return KernelState(nngp=k.nngp.mean(axis=axes), kxx=0.0, kyy=0.0, ntk=ntk)

    def sketch(self, dims: Dims, widths: Any = None, random_state: Any = None):
        return ReadoutSketch("global_avg", dims)


@dataclass(frozen=True)
class Flatten:
    """Flatten readout: ``K(x, y) = mean_i K[i, i]`` (then ``Dense``)."""

    def kernel(self, k: KernelState, diagonal: bool = False) -> KernelState:
        def mean_diag(a: Any) -> Any:
            if diagonal:
                return a.mean(axis=(0, 1))
            return np.einsum("ijij...->ij...", a).mean(axis=(0, 1))

        ntk = k.ntk
        if ntk is not None and not _is_zero(ntk):
            ntk = mean_diag(ntk)
        return KernelState(nngp=mean_diag(k.nngp), kxx=0.0, kyy=0.0, ntk=ntk)

    def sketch(
        self,
        dims: Dims,
        widths: Any = None,
        random_state: Any = None,
        n_pixels: int = 1,
    ):
        return ReadoutSketch("flatten", dims, n_pixels)


def pixel_diagonal(K: np.ndarray, diagonal: bool) -> np.ndarray:
    """Per-pixel variances ``K(x, x)[i, i]`` of a self state, ``(H, W, n)``."""
    if diagonal:
        return K
    return np.einsum("ijij...->ij...", K)


# ----------------------------------------------------------------------------
# Input rule
# ----------------------------------------------------------------------------


def _rescale(K: np.ndarray, ex: Any, ey: Any, same: bool = False) -> None:
    """Put the images' binary scales back on a Gram: ``K *= 2**(e_a + e_b)``.

    Image axes last: ``(..., n, m)``, or ``(..., n)`` for the self pairs
    (``same``).  Two multiplications by exact powers of two: nothing rounds
    unless the true value is outside the float range.
    """
    if ex is None and ey is None:
        return
    n = K.shape[-1] if same else K.shape[-2]
    fx = np.ldexp(1.0, ex) if ex is not None else np.ones(n)
    with np.errstate(over="ignore", under="ignore"):
        if same:
            K *= fx
            K *= fx
        else:
            fy = np.ldexp(1.0, ey) if ey is not None else np.ones(K.shape[-1])
            K *= fx[:, None]
            K *= fy


def patches(X: np.ndarray, k: int) -> np.ndarray:
    """``(n, H, W, k * k * C)``: each pixel's ``SAME`` zero-padded neighbourhood."""
    n, H, W, C = X.shape
    lo = (k - 1) // 2
    hi = k - 1 - lo
    P = np.pad(X, ((0, 0), (lo, hi), (lo, hi), (0, 0)))
    out = np.empty((n, H, W, k * k * C), dtype=X.dtype)
    for t, (dy, dx) in enumerate((a, b) for a in range(k) for b in range(k)):
        out[..., t * C : (t + 1) * C] = P[:, dy : dy + H, dx : dx + W, :]
    return out


@dataclass(frozen=True)
class ImageInput:
    """Input rule of a convolutional network on ``(H, W, C)`` images.

    ``K(x, y)[i, j] = <x_i, y_j> / C`` and ``Theta = 0``.  When the first
    layer is a :class:`Conv`, :meth:`kernel` applies it too, as one matrix
    product of pixel neighbourhoods (much cheaper than shifting the input
    kernel ``k^2`` times).
    """

    image_shape: tuple[int, int, int]

    def as_images(self, X: Any) -> np.ndarray:
        H, W, C = self.image_shape
        return np.asarray(X).reshape(X.shape[0], H, W, C)

    def _pixels(
        self, X: np.ndarray, conv: Conv | None
    ) -> tuple[np.ndarray, float, float, np.ndarray | None]:
        """Per-pixel vectors, the (scale, bias) of the Gram of the input rule
        (followed by ``conv`` if given), and the images' binary scales.

        Scale-safe like :class:`~sklearn_ntk.networks.DenseInput`: images
        whose largest ``|x|`` lies outside ``2**+-400`` are divided by the
        power of two ``2**e`` (exactly), so that the Gram neither under- nor
        overflows; ``e`` (``None`` when no image needed it) is put back on
        the kernel by :func:`_rescale`.
        """
        C = X.shape[3]
        big = np.abs(X).reshape(X.shape[0], -1).max(axis=1, initial=0.0)
        _, e = np.frexp(big)
        out = (big > 0) & (np.abs(e) > 400)
        ex = None
        if out.any():
            ex = np.where(out, e, 0)
            X = X * np.ldexp(1.0, -ex)[:, None, None, None]
        if conv is None:
            return X, 1.0 / C, 0.0, ex
        k = conv.filter_size
        return patches(X, k), conv.W_std**2 / (k * k * C), conv.b_std**2, ex

    def kernel(
        self, X: np.ndarray, Y: np.ndarray, ntk: bool, diagonal: bool, conv: Conv | None
    ) -> KernelState:
        """Cross state between image batches ``X`` (n) and ``Y`` (m)."""
        px, scale, b2, ex = self._pixels(X, conv)
        py, _, _, ey = (px, 0, 0, ex) if Y is X else self._pixels(Y, conv)
        n, H, W, F = px.shape
        m = py.shape[0]
        P = H * W
        A = np.ascontiguousarray(px.reshape(n, P, F).transpose(1, 0, 2))  # (P, n, F)
        B = np.ascontiguousarray(py.reshape(m, P, F).transpose(1, 2, 0))  # (P, F, m)
        if diagonal:
            K = np.matmul(A, B).reshape(H, W, n, m)
        else:
            K = np.matmul(A[:, None], B[None, :]).reshape(H, W, H, W, n, m)
        K *= scale
        _rescale(K, ex, ey)
        if b2:
            K += b2
        return KernelState(nngp=K, kxx=None, kyy=None, ntk=self._theta(K, ntk, conv))

    def kernel_self(
        self, X: np.ndarray, ntk: bool, diagonal: bool, conv: Conv | None
    ) -> KernelState:
        """Self state, the pairs ``(x, x)``: ``(H, W, H, W, n)`` or ``(H, W, n)``."""
        px, scale, b2, ex = self._pixels(X, conv)
        n, H, W, F = px.shape
        P = H * W
        flat = px.reshape(n, P, F)
        if diagonal:
            K = np.einsum("npf,npf->pn", flat, flat).reshape(H, W, n)
        else:
            K = np.matmul(flat, flat.transpose(0, 2, 1))  # (n, P, P)
            K = np.ascontiguousarray(K.transpose(1, 2, 0)).reshape(H, W, H, W, n)
        K *= scale
        _rescale(K, ex, ex, same=True)
        if b2:
            K += b2
        return KernelState(nngp=K, kxx=None, kyy=None, ntk=self._theta(K, ntk, conv))

    @staticmethod
    def _theta(K: np.ndarray, ntk: bool, conv: Conv | None) -> Any:
        if not ntk:
            return None
        # Theta = 0 at the input; after a first Conv, Theta' = K'.
        return 0.0 if conv is None else K

    # -- feature rule --------------------------------------------------------

    def dims(self, n_features: int, ntk: bool) -> Dims:
        # Reference input: standardized pixels, <x_i, x_i> / C = 1.
        return Dims(phi=self.image_shape[2], psi=0 if ntk else None, scale2=1.0)

    def features(self, X: Any) -> Features:
        H, W, C = self.image_shape
        return Features(X.reshape(X.shape[0], H, W, C) * (1.0 / math.sqrt(C)))


# ----------------------------------------------------------------------------
# Feature rules
# ----------------------------------------------------------------------------


def _neighbourhoods(phi: Any, k: int, scale: float, bias: float) -> Any:
    """``(n, H, W, k*k*D [+1])``: concatenated zero-padded neighbourhoods times
    ``scale``, plus a constant ``bias`` column when ``bias != 0``."""
    n, H, W, D = phi.shape
    lo = (k - 1) // 2
    width = k * k * D + (bias != 0)
    out = np.zeros((n, H, W, width), dtype=phi.dtype)
    for t, (dy, dx) in enumerate((a, b) for a in range(k) for b in range(k)):
        oy, ox = dy - lo, dx - lo  # output pixel i reads input pixel i + (oy, ox)
        ys, xs = slice(max(0, -oy), min(H, H - oy)), slice(max(0, -ox), min(W, W - ox))
        yi, xi = slice(max(0, oy), min(H, H + oy)), slice(max(0, ox), min(W, W + ox))
        np.multiply(phi[:, yi, xi, :], scale, out=out[:, ys, xs, t * D : (t + 1) * D])
    if bias != 0:
        out[..., -1] = bias
    return out


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
        s2 = self.W_std**2 * dims.scale2 + self.b_std**2
        self.dims_out = Dims(
            phi=phi, psi=psi, scale2=s2, scale2_ntk=self.W_std**2 * dims.scale2_ntk + s2
        )

    @staticmethod
    def _reduce(a: Any, srht: Any, keep_norm: bool) -> Any:
        if srht is None:
            return a
        shape = a.shape[:-1]
        flat = a.reshape(-1, a.shape[-1])
        out = srht(flat)
        if keep_norm:
            r = np.sqrt(np.einsum("ij,ij->i", flat, flat))
            r_out = np.sqrt(np.einsum("ij,ij->i", out, out))
            out *= (r / np.where(r_out > 0, r_out, 1.0)).astype(out.dtype)[:, None]
        return out.reshape(*shape, -1)

    def __call__(self, f: Features) -> Features:
        scale = self.W_std / self.k
        phi = _neighbourhoods(f.phi, self.k, scale, self.b_std)
        phi = self._reduce(phi, self.srht_phi, keep_norm=True)
        if self.dims_out.psi is None:
            return Features(phi)
        if f.psi is None:  # Theta = 0 before the first Conv
            return Features(phi, phi)
        psi = _neighbourhoods(f.psi, self.k, scale, 0.0)
        psi = self._reduce(psi, self.srht_psi, keep_norm=False)
        return Features(phi, np.concatenate([psi, phi], axis=-1))


class PixelwiseSketch(LayerSketch):
    """Runs a fully connected feature rule (``(N, D)`` rows) on every pixel.

    A pure layout adapter: ``(n, H, W, D)`` features are read as ``n H W``
    rows, mapped by ``inner`` (an activation's
    :class:`~sklearn_ntk.layers.activation_features.ElementwiseSketch`, the
    same rule as for dense layers) and reshaped back.
    """

    def __init__(self, inner: LayerSketch):
        self.inner = inner
        self.dims_out = inner.dims_out

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
    n, H, W, D = a.shape
    ph, pw = pool_windows(H, W, p)
    h, w = H // ph, W // pw
    return a[:, : h * ph, : w * pw].reshape(n, h, ph, w, pw, D).mean(axis=(2, 4))


class AvgPoolSketch(LayerSketch):
    """Feature rule of :class:`AvgPool`: average the features of each window."""

    def __init__(self, window: int, dims: Dims):
        self.window = int(window)
        self.dims_out = dims

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
        self.dims_out = Dims(
            phi=m * dims.phi,
            psi=None if dims.psi is None else m * dims.psi,
            scale2=dims.scale2,
            scale2_ntk=dims.scale2_ntk,
        )

    def _apply(self, a: Any) -> Any:
        if a is None:
            return None
        if self.kind == "global_avg":
            return a.mean(axis=(1, 2))
        n, H, W, _ = a.shape
        return a.reshape(n, -1) * (1.0 / math.sqrt(H * W))

    def __call__(self, f: Features) -> Features:
        return Features(self._apply(f.phi), self._apply(f.psi))
