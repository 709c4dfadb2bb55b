"""Convolutional networks: exact CNNGP/CNTK kernels and their feature maps.

A convolutional network is a :class:`sklearn_ntk.networks.Network` (the one
composition of every network) whose input rule is an
:class:`~sklearn_ntk.layers.conv.ImageInput`, followed by layers (``Conv``,
``Elementwise``, ``AvgPool``, a readout and a final ``Dense``), each with an
exact and a feature rule.

Exact kernels (:func:`cnngp_kernel`, :func:`cntk_kernel`) are computed by
the one exact driver (:mod:`sklearn_ntk._exact`) in tiles of image pairs, on
pixel-pair kernels laid out spatial axes first and image pairs last (see
:mod:`sklearn_ntk.layers.conv`), in the namespace of the input images.

Image layout: ``(H, W, C)``, channels last, like neural-tangents.  Functions
accept ``(n, H, W, C)`` arrays, ``(n, H, W)`` single-channel images, or flat
rows with ``image_shape=(H, W, C)``; flat rows without ``image_shape`` must
have a perfect-square width (:func:`infer_image_shape`).
"""

from __future__ import annotations

import math
from numbers import Integral
from typing import Any

import numpy as np
from sklearn.utils import check_array

from ._backend import (
    Interval,
    StrOptions,
    asxp,
    get_namespace,
    get_namespace_and_device,
    is_numpy,
    to_numpy,
    validate_params,
)
from ._exact import exact_matrix
from ._validation import check_n_jobs
from .activations import Activation, get
from .kernels import N_JOBS, STD
from .layers.conv import AvgPool, Conv, Flatten, GlobalAvgPool, ImageInput
from .layers.dense import Dense, Elementwise
from .networks import Network

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

#: Convolutional networks are :class:`~sklearn_ntk.networks.Network` objects
#: with an :class:`~sklearn_ntk.layers.conv.ImageInput` (one composition for
#: every network); the name is kept for the estimators' annotations.
ConvNetwork = Network


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
) -> Network:
    """``[Conv(filter_size, SAME), act] * depth``, readout, ``Dense``."""
    layers: list[Any] = []
    for _ in range(depth):
        layers += [Conv(filter_size, W_std, b_std), Elementwise(act, degree, method)]
    layers += [_readout(readout), Dense(W_std, b_std)]
    return Network(ImageInput(tuple(image_shape)), tuple(layers))


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
) -> Network:
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
    return Network(ImageInput(tuple(image_shape)), tuple(layers))


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
) -> Network:
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


def exact_conv_kernel(
    network: Network,
    X4: Any,
    Y4: Any = None,
    *,
    ntk: bool,
    n_jobs: int | None = None,
    verbose: int = 0,
    tile: int | None = None,
) -> Any:
    """Exact CNNGP (``ntk=False``) or CNTK kernel matrix of ``network``.

    ``X4`` and ``Y4`` are ``(n, H, W, C)`` images of any Array API namespace
    (the result is in theirs).  The one exact driver
    (:func:`sklearn_ntk._exact.exact_matrix`) runs tiles of image pairs on
    ``n_jobs`` threads; ``tile`` overrides the images per tile side.
    """
    if Y4 is not None and tuple(X4.shape[1:]) != tuple(Y4.shape[1:]):
        raise ValueError(
            f"X has images of shape {tuple(X4.shape[1:])} but Y of shape "
            f"{tuple(Y4.shape[1:])}."
        )
    check_n_jobs(n_jobs)
    K = exact_matrix(
        network, X4, Y4, ntk=ntk, n_jobs=n_jobs, verbose=verbose, tile=tile
    )
    xp, _ = get_namespace(K)
    if not bool(xp.all(xp.isfinite(K))):
        raise OverflowError(
            "The exact convolutional kernel overflows float64 for some pairs "
            "of images: their kernel is not representable."
        )
    return K


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
    # Validated on the host; computed in the namespace of X (under
    # array_api_dispatch), on its device.
    xp, _, dev = get_namespace_and_device(X)
    X4 = as_images(X, image_shape)
    Y4 = None if Y is None else as_images(Y, X4.shape[1:], name="Y", shape_from="X")
    if not is_numpy(xp):
        X4 = asxp(X4, xp, device=dev)
        Y4 = None if Y4 is None else asxp(Y4, xp, device=dev)
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
