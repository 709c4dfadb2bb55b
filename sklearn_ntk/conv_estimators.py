"""Scikit-learn transformers: sketched CNNGP and CNTK feature maps of images.

``CNNGPSketch`` and ``CNTKSketch`` draw, at ``fit``, the feature map of a
:class:`~sklearn_ntk.convolutional.ConvNetwork`: per-pixel features go
through each ``Conv`` (concatenation of the ``k x k`` neighbourhood), each
activation (the Hermite/PolySketch feature rule of the fully connected
sketches, pixel by pixel), pooling and the readout.  ``transform`` runs it in
batches of images.

Input: scikit-learn wants 2-D data, so images come as flat rows of
``H * W * C`` values, channels last (``X4.reshape(n, -1)`` for an
``(n, H, W, C)`` array), with ``image_shape=(H, W, C)``.  Without
``image_shape``, a perfect-square width ``s * s`` is read as single-channel
``s x s`` images (e.g. scikit-learn's 8 x 8 digits) and any other width ``d``
as ``1 x d x 1`` images (1-D signals).
"""

from __future__ import annotations

import math
from numbers import Integral
from typing import Any, ClassVar

import numpy as np
from sklearn.utils.validation import validate_data

from . import _dask
from ._backend import Interval, StrOptions, _fit_context, array_api_compat
from ._error_estimate import fit_error_estimate
from ._validation import check_reference_scales
from .activations import Activation
from .convolutional import ConvNetwork, build_network, check_image_shape
from .estimators import _BaseNeuralSketch, _naming_memory, _resolve_act
from .kernels import STD

__all__ = ["CNNGPSketch", "CNTKSketch"]

_SQRT2 = math.sqrt(2.0)


class _BaseConvSketch(_BaseNeuralSketch):
    """Machinery shared by :class:`CNNGPSketch` and :class:`CNTKSketch`."""

    _ntk = False

    _parameter_constraints: ClassVar[dict] = {
        # Names are checked, case-insensitively, by activations.get at fit.
        "act": [str, Activation, callable],
        "architecture": [StrOptions({"myrtle", "conv_stack"})],
        "depth": [Interval(Integral, 0, None, closed="left")],
        "filter_size": [Interval(Integral, 1, None, closed="left")],
        "readout": [StrOptions({"global_avg", "flatten"})],
        "image_shape": ["array-like", None],
        "n_components": [Interval(Integral, 1, None, closed="left")],
        "n_channels": [Interval(Integral, 1, None, closed="left")],
        "degree": [Interval(Integral, 1, None, closed="left")],
        "W_std": STD,
        "b_std": STD,
        "batch_size": [Interval(Integral, 1, None, closed="left"), None],
        # The convolutional feature path is NumPy code (shifted adds, einsum):
        # no "cupy" backend yet, and no Array API dispatch.
        "backend": [StrOptions({"auto", "numpy"})],
        "verbose": ["verbose"],
        "random_state": ["random_state"],
    }

    def __init__(
        self,
        act="relu",
        architecture="myrtle",
        depth=5,
        filter_size=3,
        readout="global_avg",
        image_shape=None,
        n_components=1024,
        n_channels=192,
        degree=8,
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
        self.W_std = W_std
        self.b_std = b_std
        self.batch_size = batch_size
        self.backend = backend
        self.verbose = verbose
        self.random_state = random_state

    def _check_input(self, X: Any, reset: bool) -> Any:
        # The convolutional layers compute with NumPy only: say so, rather
        # than let NumPy fail on another namespace's dtype.
        if (
            array_api_compat.is_array_api_obj(X)
            and not isinstance(X, np.ndarray)
            and not _dask.is_dask_array(X)
        ):
            raise TypeError(
                f"{type(self).__name__} computes with NumPy only: X is a "
                f"{type(X).__module__}.{type(X).__name__}; pass a NumPy array "
                "(for example numpy.asarray(X) or X.cpu().numpy())."
            )
        X = validate_data(self, X, dtype=[np.float64, np.float32], reset=reset)
        if reset:
            self.image_shape_ = check_image_shape(self.image_shape, X.shape[1])
        return X

    def _network(self) -> ConvNetwork:
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
        )

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X: Any, y: Any = None) -> _BaseConvSketch:
        """Validate the parameters and draw the random sketches.

        The sketches depend only on the image shape, the parameters and
        ``random_state``, not on the values in ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, H * W * C)
            Training images as flat rows; only the shape is used.
        y : None
            Ignored.

        Returns
        -------
        self : object
            The fitted transformer.
        """
        self._check_input(X, reset=True)
        self.activation_ = _resolve_act(self)
        self.sparse_input_ = False
        network = self._network()
        check_reference_scales(network, self._ntk, type(self).__name__)
        self._check_memory_one_row()
        with _naming_memory(self):
            self.sketch_ = network.sketch(
                self.n_components,
                ntk=self._ntk,
                n_channels=self.n_channels,
                random_state=self.random_state,
            )
        # Error estimate (issue 12): see sklearn_ntk/_error_estimate.py.
        self.error_estimate_ = fit_error_estimate(
            self, self._check_input(X, reset=False)
        )
        self._fitted_params = self._structural_params()
        return self

    def _min_bytes_per_row(self) -> float:
        """Lower bound of the memory to fit and transform one image.

        The output budget (as for the fully connected sketches), plus the
        concatenated ``filter_size x filter_size`` neighbourhoods of
        ``n_channels`` features that every pixel feeds a hidden activation.
        """
        H, W, _ = self.image_shape_
        k2 = self.filter_size**2
        return 32.0 * self.n_components + 8.0 * H * W * k2 * self.n_channels

    def _per_row_bytes(self) -> float:
        H, W, _ = self.image_shape_
        k2 = self.filter_size**2
        width = max(self.n_channels, self.n_components // max(H * W, 1))
        # Per pixel: the concatenated neighbourhoods (phi and psi) and the
        # degree-wise sketches of the widest hidden layer.
        per_row = 8 * H * W * width * (k2 * (2 + 2 * self._ntk) + self.degree + 6)
        return per_row + 8 * self.n_components * (self.degree + 6)

    def _batch_rows(self) -> int:
        if self.batch_size is not None:
            return int(self.batch_size)
        from sklearn import get_config

        per_row = self._per_row_bytes()
        return max(1, int(get_config()["working_memory"] * 2**20 // per_row))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = False
        return tags


_CONV_DOC_PARAMS = """
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
        Shape of the images whose flat rows (channels last) make ``X``.
        ``None`` reads a perfect-square width ``s * s`` as ``s x s x 1``
        images and any other width ``d`` as ``1 x d x 1`` images.
    n_components : int, default=1024
        Number of output features.
    n_channels : int, default=192
        Features per pixel after each hidden activation (the last activation
        gets the ``n_components`` budget).  Larger is more accurate and
        slower: a ``Conv`` feeds ``filter_size**2 * n_channels`` features per
        pixel to the next activation sketch.
    degree : int, default=8
        Degree of the Hermite expansion of the activation that is sketched;
        the tail is folded into the last even and odd degrees, so that the
        features keep the exact norms.
    W_std : float, default=sqrt(2)
        Standard deviation of the weights.
    b_std : float, default=0.0
        Standard deviation of the biases.
    batch_size : int, default=None
        Images transformed at once; ``None`` sizes batches from
        scikit-learn's ``working_memory``.
    backend : {"auto", "numpy"}, default="auto"
        Where the features are computed: in NumPy on the host, for both
        values.  The convolutional feature path is NumPy code for now: input
        is converted to a NumPy array and the features are NumPy arrays (no
        ``"cupy"`` backend and no Array API dispatch yet).
    verbose : int, default=0
        Report progress over batches when positive.
    random_state : int, RandomState instance or None, default=None
        Seeds the sketches; pass an int for reproducible features.

    Attributes
    ----------
    activation_ : Activation
        The resolved activation.
    image_shape_ : tuple of int
        The ``(H, W, C)`` shape the rows of ``X`` are read as.
    sketch_ : NetworkSketch
        The drawn feature map.
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during fit, when ``X`` has string column names.
"""


class CNNGPSketch(_BaseConvSketch):
    __doc__ = (
        """Random features for the NNGP kernel of an infinitely wide CNN.

    ``Z = CNNGPSketch(...).fit_transform(X)`` satisfies ``Z @ Z.T ~ K`` where
    ``K = cnngp_kernel(X, ...)`` with the same parameters.  Per-pixel features
    go through every layer: a ``Conv`` concatenates the features of each
    pixel's neighbourhood, an activation maps them through its Hermite
    expansion with PolySketch (Han et al., 2022), pooling and the readout
    average them.
"""
        + _CONV_DOC_PARAMS
        + """
    See Also
    --------
    CNTKSketch : The same for the convolutional neural tangent kernel.
    sklearn_ntk.convolutional.cnngp_kernel : The exact kernel.

    References
    ----------
    .. [1] I. Han, A. Zandieh, J. Lee, R. Novak, L. Xiao, A. Karbasi. "Fast
       Neural Kernel Embeddings for General Activations." NeurIPS 2022.
    .. [2] A. Zandieh, I. Han, H. Avron, N. Shoham, C. Kim, J. Shin. "Scaling
       Neural Tangent Kernels via Sketching and Random Features." NeurIPS 2021.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_ntk.conv_estimators import CNNGPSketch
    >>> from sklearn_ntk.convolutional import cnngp_kernel
    >>> X = np.random.RandomState(0).rand(20, 64)          # 8 x 8 images
    >>> Z = CNNGPSketch(n_components=2048, random_state=0).fit_transform(X)
    >>> Z.shape
    (20, 2048)
    >>> K = cnngp_kernel(X)
    >>> bool(np.linalg.norm(Z @ Z.T - K) / np.linalg.norm(K) < 0.1)
    True
    """
    )

    _ntk = False


class CNTKSketch(_BaseConvSketch):
    __doc__ = (
        """Random features for the neural tangent kernel of an infinitely wide CNN.

    ``Z = CNTKSketch(...).fit_transform(X)`` satisfies ``Z @ Z.T ~ Theta``
    where ``Theta = cntk_kernel(X, ...)`` with the same parameters.  The NTK
    features follow the NNGP features through the spatial layers, and each
    activation combines them with the derivative features by a degree-2
    tensor sketch.
"""
        + _CONV_DOC_PARAMS
        + """
    See Also
    --------
    CNNGPSketch : The same for the NNGP kernel.
    sklearn_ntk.convolutional.cntk_kernel : The exact kernel.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from sklearn.linear_model import RidgeClassifier
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn_ntk.conv_estimators import CNTKSketch
    >>> X, y = load_digits(return_X_y=True)
    >>> X = X / 16                                     # 8 x 8 images, pixels in [0, 1]
    >>> model = make_pipeline(CNTKSketch(n_components=1024, random_state=0),
    ...                       RidgeClassifier(alpha=1e-4, fit_intercept=False))
    >>> model.fit(X[:500], y[:500]).score(X[1000:1300], y[1000:1300]) > 0.9
    True
    """
    )

    _ntk = True
