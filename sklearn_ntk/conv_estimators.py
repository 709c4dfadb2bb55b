"""Scikit-learn transformers: sketched CNNGP and CNTK feature maps of images.

``CNNGPSketch`` and ``CNTKSketch`` draw, at ``fit``, the feature map of a
:class:`~sklearn_ntk.networks.Network`: per-pixel features go
through each ``Conv`` (concatenation of the ``k x k`` neighbourhood), each
activation (the feature rule of the fully connected sketches, pixel by
pixel), pooling and the readout; on small images each output row is then
rescaled to the exact ``K(x, x)`` (:func:`exact_output_norms`).
``transform`` runs it in batches of images.
Everything else (validation, ``fit``, ``transform``, backends, batches) is
the base of :mod:`sklearn_ntk.estimators`; this family adds only its input
check (images), its network and the widths of its sketch.

Input: ``(n, H, W, C)`` arrays (channels last), ``(n, H, W)`` single-channel
images, or flat rows of ``H * W * C`` values with ``image_shape=(H, W, C)``.
Flat rows without ``image_shape`` must have a perfect-square width ``s * s``
(read as ``s x s x 1`` images, e.g. scikit-learn's 8 x 8 digits); any other
width raises a ``ValueError`` asking for ``image_shape``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from sklearn.utils.validation import validate_data

from ._backend import get_namespace
from .convolutional import build_network, check_image_shape
from .estimators import _BaseNeuralSketch
from .networks import Network

__all__ = ["CNNGPSketch", "CNTKSketch", "auto_channels", "exact_output_norms"]

_SQRT2 = math.sqrt(2.0)


def auto_channels(n_components: int) -> int:
    """Hidden width ``n_components // 16``, clipped to ``[32, 1024]``.

    What ``n_channels="auto"`` gives: the hidden features per pixel grow in
    proportion to ``n_components``, so that ``n_components`` sets the
    accuracy.  Measured (benchmarks/bench_cntk_components.py, Myrtle-5 on
    digits): the error of the sketch is dominated by the hidden widths (at
    a fixed width it barely moves from 512 to 8192 output features) and falls
    no faster than about ``n_channels^(-1/2)``, so a width growing like
    ``sqrt(n_components)`` would not make the error fall like
    ``n_components^(-1/2)``; a proportional width does.  Below 32 the first
    activation loses its exact degree-1 part (wide filters on one channel);
    above 1024 a transform costs seconds per image.
    """
    return int(min(1024, max(32, int(n_components) // 16)))


def exact_output_norms(image_shape: tuple[int, int, int], n_channels: int) -> bool:
    """Whether the features' norms are made exact: images of at most
    ``2 * n_channels`` pixels.

    The sketch errors of the hidden layers reach the output mostly as one
    scale common to all kernel entries (the deep features of all images are
    nearly collinear); rescaling each output row to the exact ``K(x, x)``
    removes it (:class:`~sklearn_ntk.networks.NetworkSketch`).  That costs
    an exact self state per image, quadratic in the pixels, against a
    transform linear in them: measured (Myrtle-5, one thread) 0.3 ms per
    8 x 8 image against a 0.66 ms transform at 32 channels, 190 ms per
    32 x 32 image against 160 ms at 256 channels.  Hence only where the
    pixels are at most twice the hidden width (the exact norms cost at most
    about half a transform).
    """
    H, W, _ = image_shape
    return H * W <= 2 * int(n_channels)


class _ConvSketch(_BaseNeuralSketch):
    """The convolutional family: images, a Myrtle network or a conv stack."""

    # The feature rules are namespace-generic: any Array API input.
    _array_api_support = True

    def _check_input(self, X: Any, reset: bool) -> Any:
        """Flat float rows of ``X`` (images are flattened, channels last).

        At fit, sets ``image_shape_``; at transform, checks that images have
        that shape.  ``n_features_in_`` is the flat width ``H * W * C``.
        """
        if isinstance(X, list | tuple) and np.ndim(X) in (3, 4):
            X = np.asarray(X)
        images = _image_shape_of(X)
        if images is not None:
            xp, _ = get_namespace(X)
            X = xp.reshape(X, (X.shape[0], math.prod(images)))
        xp, _ = get_namespace(X)
        X = validate_data(self, X, dtype=[xp.float64, xp.float32], reset=reset)
        if reset:
            if images is None:
                self.image_shape_ = check_image_shape(self.image_shape, X.shape[1])
            elif self.image_shape is None:
                self.image_shape_ = images
            elif check_image_shape(self.image_shape, math.prod(images)) != images:
                raise ValueError(
                    f"image_shape={tuple(self.image_shape)} does not match the "
                    f"images of X, of shape {images}."
                )
            else:
                self.image_shape_ = images
        elif images is not None and images != self.image_shape_:
            raise ValueError(
                f"X has images of shape {images}, but {type(self).__name__} was "
                f"fitted on images of shape {self.image_shape_}."
            )
        return X

    def _network(self) -> Network:
        return build_network(
            self.activation_,
            self.architecture,
            self.depth,
            self.image_shape_,
            filter_size=self.filter_size,
            readout=self.readout,
            W_std=self.W_std,
            b_std=self.b_std,
            degree=self.degree,
            method=self.method,
        )

    def _hidden_channels(self) -> int:
        if self.n_channels == "auto":
            return auto_channels(self.n_components)
        return int(self.n_channels)

    def _draw(self, network: Network) -> Any:
        self.n_channels_ = self._hidden_channels()
        return network.sketch(
            self.n_components_,
            ntk=self._ntk,
            n_channels=self.n_channels_,
            random_state=self.random_state,
            output_norms=self._output_norms(),
        )

    def _output_norms(self) -> bool:
        """Whether the output rows get their exact norms (see
        :func:`exact_output_norms`)."""
        return exact_output_norms(self.image_shape_, self.n_channels_)

    def _min_bytes_per_row(self) -> float:
        """Lower bound of the memory to fit and transform one image.

        The output budget (as for the fully connected sketches), plus the
        concatenated ``filter_size x filter_size`` neighbourhoods of the
        hidden features that every pixel feeds a hidden activation.
        """
        H, W, _ = self.image_shape_
        k2 = self.filter_size**2
        return 32.0 * self.n_components + 8.0 * H * W * k2 * self._hidden_channels()

    def _per_row_bytes(self) -> float:
        H, W, _ = self.image_shape_
        k2 = self.filter_size**2
        width = max(self._hidden_channels(), self.n_components // max(H * W, 1))
        # Per pixel: the concatenated neighbourhoods (phi and psi) and the
        # degree-wise sketches of the widest hidden layer.
        per_row = 8 * H * W * width * (k2 * (2 + 2 * self._ntk) + self.degree + 6)
        return per_row + 8 * self.n_components * (self.degree + 6)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = False
        return tags


def _image_shape_of(X: Any) -> tuple[int, int, int] | None:
    """``(H, W, C)`` of an image array (4-D, or 3-D single-channel), else None."""
    ndim = getattr(X, "ndim", None)
    if ndim not in (3, 4):
        return None
    shape = tuple(int(s) for s in X.shape[1:])
    return shape if ndim == 4 else (*shape, 1)  # type: ignore[return-value]


class CNNGPSketch(_ConvSketch):
    """Random features for the NNGP kernel of an infinitely wide CNN.

    ``Z = CNNGPSketch(...).fit_transform(X)`` satisfies ``Z @ Z.T ~ K`` where
    ``K = cnngp_kernel(X, ...)`` with the same parameters.  Per-pixel features
    go through every layer: a ``Conv`` concatenates the features of each
    pixel's neighbourhood, an activation maps them through its Hermite
    expansion with PolySketch (Han et al., 2022), pooling and the readout
    average them.

    Parameters
    ----------
    act : str, Activation or callable, default="relu"
        Activation: a name of :func:`sklearn_ntk.activations.available`
        (``"relu"``, ``"exp_normalized"``, ``"erf"``, ...), an
        :class:`~sklearn_ntk.activations.Activation`, or any callable.
    architecture : {"myrtle", "conv_stack"}, default="myrtle"
        ``"myrtle"``: ``[Conv, act] * k1, AvgPool 2, [Conv, act] * k2,
        AvgPool 2, [Conv, act] * k3`` with ``(k1, k2, k3)`` = (2, 1, 1),
        (2, 2, 2), (3, 3, 3) for depth 5, 7, 10; ``"conv_stack"``:
        ``[Conv, act] * depth``.  Both end with the readout and ``Dense``.
    depth : int, default=5
        Myrtle depth (5, 7 or 10) or number of convolutions of the stack.
    filter_size : int, default=3
        Filters are ``filter_size x filter_size``, stride 1, ``SAME`` padding.
    readout : {"global_avg", "flatten"}, default="global_avg"
        Global average pooling or flattening before the ``Dense`` readout.
    image_shape : tuple (H, W, C) or (H, W), default=None
        Shape of the images when ``X`` holds flat rows (channels last).
        ``None`` reads a perfect-square width ``s * s`` as ``s x s x 1``
        images and refuses any other width (pass ``(1, d, 1)`` for 1-D
        signals).  Image arrays ``(n, H, W, C)`` or ``(n, H, W)`` carry
        their shape; ``image_shape``, if given, must match it.
    n_components : int, default=1024
        Number of output features; with ``n_channels="auto"`` it also sets
        the hidden widths, so that it controls the accuracy.
    n_channels : int or "auto", default="auto"
        Features per pixel after each hidden activation (the last activation
        gets the ``n_components`` budget); a ``Conv`` feeds ``filter_size**2
        * n_channels`` features per pixel to the next activation, reduced to
        ``2 * n_channels`` by an SRHT.  Larger is more accurate and slower.
        ``"auto"``: :func:`auto_channels` of ``n_components``.
    degree : int, default=8
        Highest Hermite degree of the expansion for methods ``"hermite"`` and
        ``"sparse"``; ``"hybrid"`` keeps degrees up to ``min(degree, 2)``
        exact and covers the rest by Monte-Carlo features of the tail;
        ``"auto"`` picks per layer (see the user guide).
    method : {"auto", "hermite", "hybrid", "sparse"}, default="auto"
        Feature rule of each activation layer.  ``"hermite"``: the paper's
        truncated Hermite expansion, PolySketches of the degrees up to
        ``degree`` with the tail folded into the top even and odd degrees;
        ``"hybrid"``: exact low degrees and unbiased Monte-Carlo features of
        the rest of the expansion; ``"sparse"``: CountSketch and TensorSketch
        in input-sparsity time; ``"auto"``: chosen per layer from measured
        accuracy.
    W_std : float, default=sqrt(2)
        Standard deviation of the weights.
    b_std : float, default=0.0
        Standard deviation of the biases.
    batch_size : int, default=None
        Images transformed at once; ``None`` sizes batches from
        scikit-learn's ``working_memory``.
    backend : {"auto", "numpy", "cupy"}, default="auto"
        Where ``transform`` computes: ``"auto"`` follows the input,
        ``"numpy"`` on the host, ``"cupy"`` on the current CUDA device (batch
        by batch); the features have the input's type whatever the backend.
        ``"cupy"`` raises ``ImportError`` without CuPy and ``RuntimeError``
        without a CUDA device.
    verbose : int, default=0
        Report progress over batches when positive.
    random_state : int, RandomState instance or None, default=None
        Seeds the sketches; pass an int for reproducible features.

    Attributes
    ----------
    activation_ : Activation
        The resolved activation.
    image_shape_ : tuple of int
        The ``(H, W, C)`` shape of the images.
    n_channels_ : int
        Hidden features per pixel of the drawn sketch.
    sketch_ : NetworkSketch
    n_components_ : int
        Number of features drawn (``n_components``).
    method_ : str
        The method used (``method``; ``"auto"`` is chosen layer by layer).
    error_estimate_ : float
        Estimated relative Frobenius error ``||Z Z^T - K||_F / ||K||_F`` of
        the drawn features on data like the training data: measured against
        the exact kernel on a subsample of 12 training images and
        extrapolated to their number.  ``fit`` warns when it exceeds 0.5.
        The drawn feature map.
    sparse_input_ : bool
        Always False: images are dense.
    n_features_in_ : int
        Number of values per image seen during fit, ``H * W * C``.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during fit, when ``X`` has string column names.

    See Also
    --------
    CNTKSketch : The same for the convolutional neural tangent kernel.
    NNGPSketch : The same for fully connected networks.
    sklearn_ntk.convolutional.cnngp_kernel : The exact kernel.

    References
    ----------
    .. [1] I. Han, A. Zandieh, J. Lee, R. Novak, L. Xiao, A. Karbasi. "Fast
       Neural Kernel Embeddings for General Activations." NeurIPS 2022.
    .. [2] R. Novak, L. Xiao, J. Lee, Y. Bahri, G. Yang, J. Hron, D. Abolafia,
       J. Pennington, J. Sohl-Dickstein. "Bayesian Deep Convolutional
       Networks with Many Channels are Gaussian Processes." ICLR 2019.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_ntk import CNNGPSketch, cnngp_kernel
    >>> X = np.random.RandomState(0).rand(20, 8, 8, 1)     # 20 images 8 x 8 x 1
    >>> Z = CNNGPSketch(n_components=2048, random_state=0).fit_transform(X)
    >>> Z.shape
    (20, 2048)
    >>> K = cnngp_kernel(X)
    >>> bool(np.linalg.norm(Z @ Z.T - K) / np.linalg.norm(K) < 0.1)
    True
    """

    _ntk = False

    def __init__(
        self,
        *,
        act="relu",
        architecture="myrtle",
        depth=5,
        filter_size=3,
        readout="global_avg",
        image_shape=None,
        n_components=1024,
        n_channels="auto",
        degree=8,
        method="auto",
        W_std=_SQRT2,
        b_std=0.0,
        batch_size=None,
        backend="auto",
        verbose=0,
        random_state=None,
    ):
        self.act = act
        self.architecture = architecture
        self.depth = depth
        self.filter_size = filter_size
        self.readout = readout
        self.image_shape = image_shape
        self.n_components = n_components
        self.n_channels = n_channels
        self.degree = degree
        self.method = method
        self.W_std = W_std
        self.b_std = b_std
        self.batch_size = batch_size
        self.backend = backend
        self.verbose = verbose
        self.random_state = random_state


class CNTKSketch(_ConvSketch):
    """Random features for the neural tangent kernel of an infinitely wide CNN.

    ``Z = CNTKSketch(...).fit_transform(X)`` satisfies ``Z @ Z.T ~ Theta``
    where ``Theta = cntk_kernel(X, ...)`` with the same parameters.  The NTK
    features follow the NNGP features through the spatial layers, and each
    activation combines them with the derivative features by a degree-2
    tensor sketch (Zandieh et al., 2021; Han et al., 2022).

    Parameters
    ----------
    act : str, Activation or callable, default="relu"
        Activation: a name of :func:`sklearn_ntk.activations.available`
        (``"relu"``, ``"exp_normalized"``, ``"erf"``, ...), an
        :class:`~sklearn_ntk.activations.Activation`, or any callable.
    architecture : {"myrtle", "conv_stack"}, default="myrtle"
        ``"myrtle"``: ``[Conv, act] * k1, AvgPool 2, [Conv, act] * k2,
        AvgPool 2, [Conv, act] * k3`` with ``(k1, k2, k3)`` = (2, 1, 1),
        (2, 2, 2), (3, 3, 3) for depth 5, 7, 10; ``"conv_stack"``:
        ``[Conv, act] * depth``.  Both end with the readout and ``Dense``.
    depth : int, default=5
        Myrtle depth (5, 7 or 10) or number of convolutions of the stack.
    filter_size : int, default=3
        Filters are ``filter_size x filter_size``, stride 1, ``SAME`` padding.
    readout : {"global_avg", "flatten"}, default="global_avg"
        Global average pooling or flattening before the ``Dense`` readout.
    image_shape : tuple (H, W, C) or (H, W), default=None
        Shape of the images when ``X`` holds flat rows (channels last).
        ``None`` reads a perfect-square width ``s * s`` as ``s x s x 1``
        images and refuses any other width (pass ``(1, d, 1)`` for 1-D
        signals).  Image arrays ``(n, H, W, C)`` or ``(n, H, W)`` carry
        their shape; ``image_shape``, if given, must match it.
    n_components : int, default=1024
        Number of output features; with ``n_channels="auto"`` it also sets
        the hidden widths, so that it controls the accuracy.
    n_channels : int or "auto", default="auto"
        Features per pixel after each hidden activation, for the NNGP and
        the NTK features each (the last activation gets the
        ``n_components`` budget); a ``Conv`` feeds ``filter_size**2 *
        n_channels`` features per pixel to the next activation, reduced to
        ``2 * n_channels`` by an SRHT.  Larger is more accurate and slower.
        ``"auto"``: :func:`auto_channels` of ``n_components``.
    degree : int, default=8
        Highest Hermite degree of the expansion for methods ``"hermite"`` and
        ``"sparse"``; ``"hybrid"`` keeps degrees up to ``min(degree, 2)``
        exact and covers the rest by Monte-Carlo features of the tail;
        ``"auto"`` picks per layer (see the user guide).
    method : {"auto", "hermite", "hybrid", "sparse"}, default="auto"
        Feature rule of each activation layer.  ``"hermite"``: the paper's
        truncated Hermite expansion, PolySketches of the degrees up to
        ``degree`` with the tail folded into the top even and odd degrees;
        ``"hybrid"``: exact low degrees and unbiased Monte-Carlo features of
        the rest of the expansion; ``"sparse"``: CountSketch and TensorSketch
        in input-sparsity time; ``"auto"``: chosen per layer from measured
        accuracy.
    W_std : float, default=sqrt(2)
        Standard deviation of the weights.
    b_std : float, default=0.0
        Standard deviation of the biases.
    batch_size : int, default=None
        Images transformed at once; ``None`` sizes batches from
        scikit-learn's ``working_memory``.
    backend : {"auto", "numpy", "cupy"}, default="auto"
        Where ``transform`` computes: ``"auto"`` follows the input,
        ``"numpy"`` on the host, ``"cupy"`` on the current CUDA device (batch
        by batch); the features have the input's type whatever the backend.
        ``"cupy"`` raises ``ImportError`` without CuPy and ``RuntimeError``
        without a CUDA device.
    verbose : int, default=0
        Report progress over batches when positive.
    random_state : int, RandomState instance or None, default=None
        Seeds the sketches; pass an int for reproducible features.

    Attributes
    ----------
    activation_ : Activation
        The resolved activation.
    image_shape_ : tuple of int
        The ``(H, W, C)`` shape of the images.
    n_channels_ : int
        Hidden features per pixel of the drawn sketch.
    sketch_ : NetworkSketch
    n_components_ : int
        Number of features drawn (``n_components``).
    method_ : str
        The method used (``method``; ``"auto"`` is chosen layer by layer).
    error_estimate_ : float
        Estimated relative Frobenius error ``||Z Z^T - K||_F / ||K||_F`` of
        the drawn features on data like the training data: measured against
        the exact kernel on a subsample of 12 training images and
        extrapolated to their number.  ``fit`` warns when it exceeds 0.5.
        The drawn feature map.
    sparse_input_ : bool
        Always False: images are dense.
    n_features_in_ : int
        Number of values per image seen during fit, ``H * W * C``.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during fit, when ``X`` has string column names.

    See Also
    --------
    CNNGPSketch : The same for the NNGP kernel.
    NTKSketch : The same for fully connected networks.
    sklearn_ntk.convolutional.cntk_kernel : The exact kernel.

    References
    ----------
    .. [1] I. Han, A. Zandieh, J. Lee, R. Novak, L. Xiao, A. Karbasi. "Fast
       Neural Kernel Embeddings for General Activations." NeurIPS 2022.
    .. [2] A. Zandieh, I. Han, H. Avron, N. Shoham, C. Kim, J. Shin. "Scaling
       Neural Tangent Kernels via Sketching and Random Features." NeurIPS 2021.
    .. [3] S. Arora, S. Du, W. Hu, Z. Li, R. Salakhutdinov, R. Wang. "On Exact
       Computation with an Infinitely Wide Neural Net." NeurIPS 2019.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from sklearn.linear_model import RidgeClassifier
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn_ntk import CNTKSketch
    >>> X, y = load_digits(return_X_y=True)
    >>> X = X / 16                                     # 8 x 8 images, pixels in [0, 1]
    >>> model = make_pipeline(CNTKSketch(n_components=1024, random_state=0),
    ...                       RidgeClassifier(alpha=1e-4, fit_intercept=False))
    >>> model.fit(X[:500], y[:500]).score(X[1000:1300], y[1000:1300]) > 0.9
    True
    """

    _ntk = True

    def __init__(
        self,
        *,
        act="relu",
        architecture="myrtle",
        depth=5,
        filter_size=3,
        readout="global_avg",
        image_shape=None,
        n_components=1024,
        n_channels="auto",
        degree=8,
        method="auto",
        W_std=_SQRT2,
        b_std=0.0,
        batch_size=None,
        backend="auto",
        verbose=0,
        random_state=None,
    ):
        self.act = act
        self.architecture = architecture
        self.depth = depth
        self.filter_size = filter_size
        self.readout = readout
        self.image_shape = image_shape
        self.n_components = n_components
        self.n_channels = n_channels
        self.degree = degree
        self.method = method
        self.W_std = W_std
        self.b_std = b_std
        self.batch_size = batch_size
        self.backend = backend
        self.verbose = verbose
        self.random_state = random_state
