"""Scikit-learn transformers: sketched NNGP and NTK feature maps.

One private base, :class:`_BaseNeuralSketch`, holds everything the four
public transformers share: the parameter table, ``fit`` (validate, resolve
the activation, draw the network's sketch), ``transform`` (namespaces,
``backend``, batches, ``out``, progress, Dask arrays) and the feature names.
A family supplies only its input check, its network and how that network
draws its sketch: :class:`_FullyConnectedSketch` here for
:class:`NNGPSketch` / :class:`NTKSketch`, and
``conv_estimators._ConvSketch`` for the convolutional ones.  As in
scikit-learn's ``kernel_approximation``, public estimators never subclass
one another.
"""

from __future__ import annotations

import inspect
import time
from numbers import Integral, Real
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp
from sklearn import get_config
from sklearn.base import (
    BaseEstimator,
    ClassNamePrefixFeaturesOutMixin,
    TransformerMixin,
)
from sklearn.exceptions import NotFittedError
from sklearn.utils import gen_batches
from sklearn.utils.validation import check_is_fitted, validate_data

from . import _dask, _validation
from . import homogeneous as _homogeneous
from ._backend import (
    BACKENDS,
    Interval,
    StrOptions,
    _fit_context,
    any_namespace,
    check_same_namespace,
    from_backend,
    get_namespace,
    get_namespace_and_device,
    import_cupy,
    is_numpy,
    to_backend,
    to_numpy,
)
from ._error_estimate import fit_error_estimate
from ._validation import (
    all_finite,
    check_finite_result,
    check_float32_range,
    check_memory,
    check_out,
    check_reference_scales,
    check_row_scales,
    network_summary,
    scale_text,
    trusted_inputs,
)
from .activations import Activation, get
from .kernels import STD
from .networks import Network, _scaled_rows, fully_connected

__all__ = ["METHODS", "NNGPSketch", "NTKSketch"]

#: Values of the estimators' ``method`` parameter: the feature rule of the
#: activation layers.  The one place to register a new strategy (its
#: ``Elementwise`` layer reads ``method``); every estimator validates against
#: this set.
METHODS = {"auto", "hermite", "hybrid", "sparse", "homogeneous"}

#: The one parameter table of the four transformers.  Each class validates
#: the entries its ``__init__`` names (see ``_BaseNeuralSketch.__init_subclass__``).
_PARAMETERS: dict[str, list] = {
    # Names are checked, case-insensitively, by activations.get at fit
    # (StrOptions is case-sensitive).
    "act": [str, Activation, callable],
    "architecture": [StrOptions({"myrtle", "conv_stack"})],
    "depth": [Interval(Integral, 0, None, closed="left")],
    "filter_size": [Interval(Integral, 1, None, closed="left")],
    "readout": [StrOptions({"global_avg", "flatten"})],
    "image_shape": ["array-like", None],
    # "auto": chosen from the statistical dimension (method="homogeneous").
    "n_components": [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"})],
    "alpha": [Interval(Real, 0, None, closed="neither")],
    "n_channels": [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"})],
    "degree": [Interval(Integral, 1, None, closed="left")],
    "method": [StrOptions(METHODS)],
    "W_std": STD,
    "b_std": STD,
    "batch_size": [Interval(Integral, 1, None, closed="left"), None],
    "backend": [StrOptions(set(BACKENDS))],
    "verbose": ["verbose"],
    "random_state": ["random_state"],
}


class _BaseNeuralSketch(
    ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator
):
    """Machinery shared by every sketching transformer.

    A family of transformers supplies ``_check_input`` (validation of ``X``;
    sets ``n_features_in_`` at fit), ``_network()`` (the network its
    parameters describe) and ``_draw(network)`` (the network's sketch with
    ``n_components`` outputs), plus its memory estimates; a public class adds
    ``__init__``, its docstring and ``_ntk``.  ``fit`` draws ``sketch_``;
    ``transform`` handles namespaces, ``backend``, batches, ``out``, progress
    and Dask arrays, and calls ``sketch_`` on each batch.
    """

    _ntk = False
    #: Whether the estimator accepts any Array API namespace (estimator tag).
    _array_api_support = False
    #: Whether method="homogeneous" (a fully connected network) is offered.
    _homogeneous_support = False
    _parameter_constraints: ClassVar[dict] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        # One parameter table: a class validates exactly the parameters its
        # __init__ names, with the constraints of _PARAMETERS.
        super().__init_subclass__(**kwargs)
        init = cls.__dict__.get("__init__")
        if init is not None:
            names = [p for p in inspect.signature(init).parameters if p != "self"]
            cls._parameter_constraints = {k: _PARAMETERS[k] for k in names}

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X: Any, y: Any = None) -> _BaseNeuralSketch:
        """Validate the parameters and draw the random sketches.

        The sketches depend on ``n_features_in_``, the parameters and
        ``random_state`` (and, for the first layer, on whether ``X`` is
        sparse); the fully connected ones also on the range of ``||x||^2 /
        d`` in ``X`` (five quantiles), far from 1 only: the feature rules
        serve those scales too.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Training data; its shape, sparsity and row scales are used.  The
            convolutional transformers also take images of shape
            (n_samples, H, W, C) or (n_samples, H, W).  A
            ``dask.array.Array`` is not computed: only its first rows are
            validated.
        y : None
            Ignored.

        Returns
        -------
        self : object
            The fitted transformer.
        """
        if _dask.is_dask_array(X):
            X = _dask.head(X)
        X = self._check_input(X, reset=True)
        if self.backend == "cupy":
            import_cupy()  # fail at fit, not after a long pipeline
            if sp.issparse(X):
                raise TypeError('backend="cupy" does not accept sparse input.')
        self.activation_ = _resolve_act(self)
        self.sparse_input_ = sp.issparse(X)
        # Under array_api_dispatch, transform checks that X has the namespace
        # and device seen here (scikit-learn's convention for fitted arrays).
        self._fit_probe = None
        if get_config()["array_api_dispatch"] and not self.sparse_input_:
            xp, _, dev = get_namespace_and_device(X)
            self._fit_probe = xp.zeros(0, dtype=X.dtype, device=dev)
        network = self._network()
        check_reference_scales(network, self._ntk, type(self).__name__)
        method = self._resolve_method()
        if method == "homogeneous" and not self._homogeneous_support:
            raise ValueError(
                f'{type(self).__name__}: method="homogeneous" sketches fully '
                "connected networks only; choose another method."
            )
        self.method_ = method
        self.n_components_ = _homogeneous.resolve_n_components(self, X, method)
        self._check_memory_one_row()
        self._input_scales = self._data_scales(X)
        with _naming_memory(self):
            if method == "homogeneous":  # one sketch of the whole network
                self.sketch_ = _homogeneous.estimator_sketch(self, X)
            else:
                self.sketch_ = self._draw(network)
        # The homogeneous sketch may be narrower than asked (exact degrees).
        self.n_components_ = int(self.sketch_.n_components)
        # The sketch's own error on data like X (sklearn_ntk/_error_estimate.py).
        self.error_estimate_ = fit_error_estimate(self, X)
        self._fitted_params = self._structural_params()
        return self

    # Parameters that transform and batch sizing may change after fit.
    _RUNTIME_PARAMS: ClassVar[frozenset] = frozenset(
        {"batch_size", "backend", "verbose"}
    )

    def _structural_params(self) -> dict:
        params = self.get_params(deep=False)
        return {k: v for k, v in params.items() if k not in self._RUNTIME_PARAMS}

    def _check_unchanged(self) -> None:
        """Refuse to transform with a sketch drawn for other parameters."""
        fitted = getattr(self, "_fitted_params", None)
        if fitted is None:
            return
        now = self._structural_params()
        changed = [k for k in fitted if not _same_param(fitted[k], now.get(k))]
        if changed:
            diff = ", ".join(f"{k}: {fitted[k]!r} -> {now.get(k)!r}" for k in changed)
            raise NotFittedError(
                f"The parameters of this {type(self).__name__} changed since fit "
                f"({diff}); the drawn sketch_ belongs to the old ones. Call fit "
                "again (only batch_size, backend and verbose may change after fit)."
            )

    def _data_scales(self, X: Any) -> tuple[float, ...] | None:
        """Scales of the training rows handed to ``_draw`` (``None``: the
        family's sketches take their scales from the parameters alone)."""
        return None

    def _resolve_method(self) -> str:
        """``method``, with ``"auto"`` resolved to ``"homogeneous"`` where that
        sketch of the whole network is the more accurate (fully connected
        networks, see :func:`sklearn_ntk.homogeneous.preferred`)."""
        method = getattr(self, "method", "auto")
        if (
            method == "auto"
            and self._homogeneous_support
            and _homogeneous.preferred(self.activation_, self.depth, self.b_std)
        ):
            return "homogeneous"
        return method

    def _n_out(self) -> int:
        """Output width: ``n_components_``, which ``fit`` sets before it
        checks the memory and again to the drawn sketch's width."""
        return int(self.n_components_)

    def _check_memory_one_row(self) -> None:
        check_memory(
            self._min_bytes_per_row(),
            f"{type(self).__name__}(n_components={self.n_components}) (to draw its "
            "sketch and transform a single row)",
            "lower n_components.",
        )

    def _batch_rows(self) -> int:
        """Rows per batch: ``batch_size``, or sized from ``working_memory``."""
        if self.batch_size is not None:
            return int(self.batch_size)
        per_row = self._per_row_bytes()
        return max(1, int(get_config()["working_memory"] * 2**20 // per_row))

    def transform(self, X: Any, *, out: Any = None) -> Any:
        """Map ``X`` to features whose inner products approximate the kernel.

        Rows go through the feature map in batches of ``_batch_rows()`` rows
        (``batch_size``, or sized from scikit-learn's ``working_memory``), so
        memory beyond the output is bounded by the batch size, not by the
        number of rows.

        Parameters
        ----------
        X : {array-like, sparse matrix, dask array} of shape (n_samples, n_features)
            Data to transform, anywhere in ``R^d``.  With
            ``sklearn.set_config(array_api_dispatch=True)``, any Array API
            array that scikit-learn supports (NumPy, CuPy, PyTorch, ...).
            A ``dask.array.Array`` gives a lazy ``dask.array.Array``,
            transformed chunk by chunk.
        out : array of shape (n_samples, n_components), default=None
            Array to write the features into, e.g. a :func:`numpy.memmap`
            for outputs larger than memory; ``None`` allocates one in the
            namespace and on the device of ``X``.  Not for dask arrays.
            It must be writeable, of a real floating dtype at least as
            precise as the features (float64 for float64 input), and must
            not share memory with ``X``.

        Returns
        -------
        Z : array of shape (n_samples, n_components)
            Features with ``Z @ Z.T`` close to the exact kernel; float32 for
            float32 input, float64 otherwise; ``out`` when given, else of the
            namespace and device of ``X`` (whatever ``backend``).

        Raises
        ------
        NotFittedError
            Before ``fit``, or when parameters other than ``batch_size``,
            ``backend`` and ``verbose`` changed since ``fit``.
        ValueError
            When a nonzero row has ``||x||^2 / d`` outside ``[1e-300,
            1e300]`` (its squared norm would under- or overflow), when
            float32 rows have squared norms beyond the float32 range, or
            when the features are not finite (the message names the
            activation, the depth and the input scale).
        TypeError
            When ``out`` has a dtype that would lose precision.
        MemoryError
            When a batch or the output cannot fit in this machine's memory.
        """
        check_is_fitted(self)
        self._check_unchanged()
        if _dask.is_dask_array(X):
            if out is not None:
                raise ValueError(
                    "out is not supported for dask arrays; use dask.array.store."
                )
            return _dask.transform(self, X)
        return self._transform_array(X, out=out, verbose=self.verbose)

    def _transform_array(self, X: Any, out: Any = None, verbose: int = 0) -> Any:
        """``transform`` of an in-memory array, without the set_output wrapper."""
        if getattr(self, "_fit_probe", None) is not None:
            check_same_namespace(X, self, attribute="_fit_probe", method="transform")
        X = self._check_input(X, reset=False)
        check_float32_range(X, f"{type(self).__name__}.transform")
        check_row_scales(X, f"{type(self).__name__}.transform")
        backend = self.backend
        sparse = sp.issparse(X)
        if sparse and backend == "cupy":
            raise TypeError('backend="cupy" does not accept sparse input.')
        if self.sparse_input_ and not sparse:
            # The first layer's sketches were drawn for sparse input.
            X = sp.csr_matrix(_backend_to_numpy(X))
            sparse = True
        xp, _, dev = (np, False, None) if sparse else get_namespace_and_device(X)
        n, m = X.shape[0], self._n_out()
        rows_per_batch = self._batch_rows()
        if self.batch_size is None:
            # working_memory can exceed what this machine has: keep an
            # automatic batch within half of the memory available.
            limit = _validation.available_memory()
            if limit is not None:
                fit = int(limit // (2 * self._min_bytes_per_row()))
                rows_per_batch = max(1, min(rows_per_batch, fit))
        self._check_transform_memory(n, min(n, rows_per_batch), X, out is None)
        if out is None:
            out = (
                np.empty((n, m), dtype=X.dtype)
                if is_numpy(xp)
                else xp.empty((n, m), dtype=X.dtype, device=dev)
            )
        else:
            check_out(out, (n, m), X.dtype, X)
        batches = list(gen_batches(n, rows_per_batch))
        network = None
        report = _progress(type(self).__name__, n, len(batches), verbose)
        for i, rows in enumerate(batches):
            batch = X[rows] if sparse else X[rows, ...]
            if sparse and not self.sparse_input_:
                batch = batch.toarray()
            # Activations skip their argument checks: Z is checked below.
            with trusted_inputs(), _in_context(self, batch):
                if backend == "auto":
                    Z = self.sketch_(batch)
                elif backend == "numpy":
                    Z = from_backend(
                        self.sketch_(to_backend(batch, "numpy")), "numpy", xp, dev
                    )
                else:
                    with any_namespace():
                        Z = self.sketch_(to_backend(batch, "cupy"))
                    Z = from_backend(Z, "cupy", xp, dev)
            if not all_finite(Z):  # the team rule: never a silent NaN
                network = network or self._network()
                check_finite_result(
                    Z,
                    what=f"{type(self).__name__}.transform",
                    network=network,
                    ntk=self._ntk,
                    X=batch,
                )
            _write(out, rows, Z)
            del Z, batch
            report(i, rows.stop)
        return out

    def _check_transform_memory(
        self, n: int, batch_rows: int, X: Any, allocate_out: bool
    ) -> None:
        """Refuse up front a transform whose batch or output cannot fit in memory."""
        name = type(self).__name__
        batch = batch_rows * self._min_bytes_per_row()
        check_memory(
            batch,
            f"{name}.transform with batches of {batch_rows} rows "
            f"(batch_size={self.batch_size!r}, n_components={self.n_components})",
            "lower batch_size (None sizes batches from working_memory)"
            if self.batch_size is not None
            else "lower n_components.",
        )
        if allocate_out:
            itemsize = 4 if "float32" in str(X.dtype) else 8
            check_memory(
                batch + float(n) * self._n_out() * itemsize,
                f"{name}.transform of {n} rows into a new {n} x {self._n_out()} output",
                "transform fewer rows at a time, pass out=np.memmap(...), or lower "
                "n_components.",
            )

    @property
    def _n_features_out(self) -> int:
        # AttributeError before fit, so that get_feature_names_out says "not
        # fitted"; after fit, the width of the drawn sketch.
        if not hasattr(self, "sketch_"):
            raise AttributeError("_n_features_out is set by fit")
        return self.sketch_.n_components

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        """Output feature names: the lowercased class name and an index.

        Parameters
        ----------
        input_features : array-like of str or None, default=None
            Only checked against the names seen at fit.

        Returns
        -------
        feature_names_out : ndarray of str objects
            ``["<classname>0", "<classname>1", ...]``, one per component.
        """
        check_is_fitted(self)
        self._check_unchanged()
        return super().get_feature_names_out(input_features)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        tags.array_api_support = self._array_api_support
        return tags


def _resolve_act(est: Any) -> Activation:
    """``activations.get(est.act)``, with errors that name the parameter."""
    try:
        return get(est.act)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"The 'act' parameter of {type(est).__name__}: {exc}") from exc


class _naming_memory:
    """Re-raise a ``MemoryError`` of drawing the sketch with ``n_components``."""

    def __init__(self, est: Any):
        self.est = est

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc_type is not None and issubclass(exc_type, MemoryError):
            raise MemoryError(
                f"{type(self.est).__name__}(n_components={self.est.n_components}): "
                f"drawing the sketch ran out of memory ({exc}); lower n_components."
            ) from exc
        return False


class _in_context:
    """Prefix arithmetic errors of a transform with the network and the scale."""

    def __init__(self, est: Any, batch: Any):
        self.est, self.batch = est, batch

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc_type is None or not issubclass(exc_type, ArithmeticError | ValueError):
            return False
        msg = (
            f"{type(self.est).__name__}.transform of {network_summary(self.est._network())} "
            f"at the input scale max ||x||^2/d = {scale_text(self.batch)}: {exc}"
        )
        try:
            new = exc_type(msg)
        except Exception:
            new = ValueError(msg)
        raise new from exc


def _same_param(a: Any, b: Any) -> bool:
    """Whether a parameter kept its value (identity, or equal values)."""
    if a is b:
        return True
    if type(a) is not type(b):
        return False
    try:
        if isinstance(a, np.ndarray | list | tuple):
            return bool(np.array_equal(np.asarray(a), np.asarray(b)))
        return bool(a == b)
    except Exception:
        return False


def _backend_to_numpy(X: Any) -> np.ndarray:
    return X if sp.issparse(X) else to_numpy(X)


def _write(out: Any, rows: slice, Z: Any) -> None:
    """``out[rows] = Z``, across namespaces (NumPy or memmap ``out``) and dtypes."""
    if isinstance(out, np.ndarray):
        out[rows] = to_numpy(Z)
        return
    xp, _ = get_namespace(out)
    if Z.dtype != out.dtype:
        Z = xp.astype(Z, out.dtype)
    out[rows, ...] = Z


def _progress(name: str, n: int, n_batches: int, verbose: int):
    """Progress printer: about 10 lines at ``verbose=1``, every batch above."""
    start = time.perf_counter()
    every = 1 if verbose > 1 else max(1, n_batches // 10)

    def report(i: int, done: int) -> None:
        if verbose > 0 and ((i + 1) % every == 0 or i + 1 == n_batches):
            elapsed = time.perf_counter() - start
            print(
                f"[{name}] transform: {done}/{n} rows, batch {i + 1}/{n_batches}, "
                f"{elapsed:.1f}s",
                flush=True,
            )

    return report


class _FullyConnectedSketch(_BaseNeuralSketch):
    """The fully connected family: rows of ``R^d``, dense or CSR."""

    _array_api_support = True
    _homogeneous_support = True

    def _check_input(self, X: Any, reset: bool) -> Any:
        if sp.issparse(X):
            dtype = [np.float64, np.float32]
        else:
            xp, _ = get_namespace(X)
            dtype = [xp.float64, xp.float32]
        return validate_data(self, X, accept_sparse="csr", dtype=dtype, reset=reset)

    def _network(self) -> Network:
        return fully_connected(
            self.activation_,
            self.depth,
            self.W_std,
            self.b_std,
            self.degree,
            method=self.method,
        )

    def _draw(self, network: Network) -> Any:
        return network.sketch(
            self.n_components_,
            n_features=self.n_features_in_,
            ntk=self._ntk,
            random_state=self.random_state,
            sparse=self.sparse_input_,
            input_scales=self._input_scales,
        )

    def _data_scales(self, X: Any) -> tuple[float, ...] | None:
        """Quantiles (0, 5, 50, 95, 100%) of the training rows' ``||x||^2 /
        d``: the feature rules split their budgets, and choose between
        Hermite and Monte-Carlo tails, at these scales too (a tail that is
        light at ``||x||^2 / d = 1`` can be heavy at ``1e8``).  Host floats,
        not an array (fitted arrays must live in the input's namespace)."""
        try:
            kxx = _scaled_rows(X)[1]
        except OverflowError:
            # float32 rows near 1e19: ||x||^2 / d only overflows float32.
            try:
                if sp.issparse(X):
                    wide = X.astype(np.float64)
                else:
                    wide = np.asarray(to_numpy(X), dtype=np.float64)
                kxx = _scaled_rows(wide)[1]
            except OverflowError:  # not representable: the reference alone
                return None
        kxx = np.asarray(to_numpy(kxx), dtype=np.float64)
        kxx = kxx[np.isfinite(kxx)]
        if kxx.size == 0:
            return (1.0,)
        return tuple(float(v) for v in np.quantile(kxx, [0.0, 0.05, 0.5, 0.95, 1.0]))

    def _min_bytes_per_row(self) -> float:
        """Lower bound of the memory to fit and transform one row.

        Measured with tracemalloc (depth 1, dense and sparse input, NNGP and
        NTK, degrees 2 and 8): at least 4 float64 arrays of n_components.
        """
        return 32.0 * self._n_out()

    def _per_row_bytes(self) -> float:
        """Estimated working memory of one row in a batch (see ``_batch_rows``).

        Measured peak of a batch (benchmarks/bench_memory.py): below
        (degree + 6) float64 arrays of n_components per row.
        """
        return 8.0 * self._n_out() * (self.degree + 6)


class NNGPSketch(_FullyConnectedSketch):
    """Random features for the NNGP kernel of an infinitely wide network.

    ``Z = NNGPSketch(...).fit_transform(X)`` satisfies ``Z @ Z.T ~ K`` where
    ``K = nngp_kernel(X, act=act, depth=depth, W_std=W_std, b_std=b_std)``
    is the NNGP kernel of ``[Dense, act] * depth + [Dense]``.  Each layer maps
    its features through the Hermite expansion of the activation, with
    scale-dependent coefficients (inputs anywhere in ``R^d``) and PolySketch
    for the tensor powers (Han et al., 2022).

    Parameters
    ----------
    act : str, Activation or callable, default="relu"
        Activation: a name of :func:`sklearn_ntk.activations.available`
        (case-insensitive: ``"relu"``, ``"ReLU"``, ``"erf"``, ...), an
        :class:`~sklearn_ntk.activations.Activation` such as
        ``activations.get("leaky_relu", alpha=0.1)``, or any callable.
    depth : int, default=1
        Number of hidden layers (nonlinearities).
    n_components : int or "auto", default=1024
        Number of output features.  ``"auto"`` (with ``method="homogeneous"``)
        chooses it at fit from the statistical dimension
        ``tr(K (K + alpha I)^-1)`` of the exact kernel of up to 2000 sampled
        training rows (see ``n_components_`` and
        :func:`sklearn_ntk.homogeneous.choose_n_components`).  ``fit``
        refuses (``MemoryError``) a value whose sketch cannot fit in this
        machine's memory (at least 32 bytes per component to draw the sketch
        and transform one row).
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
        in input-sparsity time (for CSR input); ``"homogeneous"``: one
        sketch of the whole network from the Taylor series of its kernel in
        the input correlation, for positively homogeneous activations (relu,
        leaky_relu, abs, step, sign, monomials, rectified monomials,
        exp_normalized) with ``b_std=0`` (or ``depth <= 1``), dense or CSR
        input in input-sparsity time, ``degree`` then being the highest
        series degree that gets features (:mod:`sklearn_ntk.homogeneous`);
        ``"auto"``: ``"homogeneous"`` where it is the more accurate (see
        ``method_``), else chosen per layer from measured accuracy.
    alpha : float, default=1.0
        Ridge penalty of the downstream model; used only by
        ``n_components="auto"``.
    W_std : float, default=1.0
        Standard deviation of the weights.
    b_std : float, default=0.0
        Standard deviation of the biases.
    batch_size : int, default=None
        Rows transformed at once; ``None`` sizes batches from scikit-learn's
        ``working_memory``, so memory stays bounded whatever the number of rows.
    backend : {"auto", "numpy", "cupy"}, default="auto"
        Where ``transform`` computes.  ``"auto"`` follows the input: NumPy,
        or with ``sklearn.set_config(array_api_dispatch=True)`` the input's
        Array API namespace and device (CuPy, PyTorch, ...).  ``"numpy"``
        computes on the host and ``"cupy"`` on the current CUDA device (batch
        by batch); both return the input's type, so a GPU transform of NumPy
        data feeds CPU-only estimators.  ``"cupy"`` raises ``ImportError``
        without CuPy and ``RuntimeError`` without a CUDA device.
    verbose : int, default=0
        Report the progress of ``transform`` over batches when positive.
    random_state : int, RandomState instance or None, default=None
        Seeds the sketches; pass an int for reproducible features.

    Attributes
    ----------
    activation_ : Activation
        The resolved activation.
    n_components_ : int
        Number of output features: ``n_components``, or the ``"auto"``
        choice, or fewer when the homogeneous sketch keeps every degree
        exactly (for instance a monomial activation on narrow input).
    method_ : str
        The method used: ``method``, where ``"auto"`` became
        ``"homogeneous"`` for relu, leaky_relu, abs and rectified monomials
        with ``b_std=0`` at ``depth >= 2`` (measured more accurate and faster
        there), and stays ``"auto"`` (chosen layer by layer) otherwise.
    error_estimate_ : float
        Estimated relative Frobenius error ``||Z Z^T - K||_F / ||K||_F`` of
        the drawn features on data like the training data: measured against
        the exact kernel on a subsample of the training rows and
        extrapolated to their number.  ``fit`` warns when it exceeds 0.5.
    sketch_ : NetworkSketch or HomogeneousSketch
        The drawn feature map.
    sparse_input_ : bool
        Whether the first layer was drawn for sparse input (CountSketch and
        TensorSketch in input-sparsity time).
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during fit, when ``X`` has string column names.

    See Also
    --------
    NTKSketch : The same for the neural tangent kernel.
    CNNGPSketch : The same for convolutional networks on images.
    sklearn_ntk.nngp_kernel : The exact kernel.
    sklearn.kernel_approximation.Nystroem : Data-dependent features of a
        given kernel.

    References
    ----------
    .. [1] I. Han, A. Zandieh, J. Lee, R. Novak, L. Xiao, A. Karbasi. "Fast
       Neural Kernel Embeddings for General Activations." NeurIPS 2022.
    .. [2] J. Lee, Y. Bahri, R. Novak, S. Schoenholz, J. Pennington,
       J. Sohl-Dickstein. "Deep Neural Networks as Gaussian Processes."
       ICLR 2018.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_ntk import NNGPSketch, nngp_kernel
    >>> X = np.random.RandomState(0).randn(100, 5)
    >>> sketch = NNGPSketch(act="erf", depth=2, n_components=2048, random_state=0)
    >>> Z = sketch.fit_transform(X)
    >>> Z.shape
    (100, 2048)
    >>> K = nngp_kernel(X, act="erf", depth=2)
    >>> bool(np.linalg.norm(Z @ Z.T - K) / np.linalg.norm(K) < 0.05)
    True
    """

    _ntk = False

    def __init__(
        self,
        *,
        act="relu",
        depth=1,
        n_components=1024,
        degree=8,
        method="auto",
        alpha=1.0,
        W_std=1.0,
        b_std=0.0,
        batch_size=None,
        backend="auto",
        verbose=0,
        random_state=None,
    ):
        self.act = act
        self.depth = depth
        self.n_components = n_components
        self.degree = degree
        self.method = method
        self.alpha = alpha
        self.W_std = W_std
        self.b_std = b_std
        self.batch_size = batch_size
        self.backend = backend
        self.verbose = verbose
        self.random_state = random_state


class NTKSketch(_FullyConnectedSketch):
    """Random features for the neural tangent kernel of an infinitely wide network.

    ``Z = NTKSketch(...).fit_transform(X)`` satisfies ``Z @ Z.T ~ Theta``
    where ``Theta = ntk_kernel(X, act=act, depth=depth, W_std=W_std,
    b_std=b_std)`` is the NTK of ``[Dense, act] * depth + [Dense]``.  The NTK
    features stack the NNGP features with a degree-2 tensor sketch of the
    previous layer's NTK features and the derivative features, which share
    the sketches of the activation features (Han et al., 2022).

    Parameters
    ----------
    act : str, Activation or callable, default="relu"
        Activation: a name of :func:`sklearn_ntk.activations.available`
        (case-insensitive: ``"relu"``, ``"ReLU"``, ``"erf"``, ...), an
        :class:`~sklearn_ntk.activations.Activation` such as
        ``activations.get("leaky_relu", alpha=0.1)``, or any callable.
    depth : int, default=1
        Number of hidden layers (nonlinearities).
    n_components : int or "auto", default=1024
        Number of output features.  ``"auto"`` (with ``method="homogeneous"``)
        chooses it at fit from the statistical dimension
        ``tr(K (K + alpha I)^-1)`` of the exact kernel of up to 2000 sampled
        training rows (see ``n_components_`` and
        :func:`sklearn_ntk.homogeneous.choose_n_components`).  ``fit``
        refuses (``MemoryError``) a value whose sketch cannot fit in this
        machine's memory (at least 32 bytes per component to draw the sketch
        and transform one row).
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
        in input-sparsity time (for CSR input); ``"homogeneous"``: one
        sketch of the whole network from the Taylor series of its kernel in
        the input correlation, for positively homogeneous activations (relu,
        leaky_relu, abs, step, sign, monomials, rectified monomials,
        exp_normalized) with ``b_std=0`` (or ``depth <= 1``), dense or CSR
        input in input-sparsity time, ``degree`` then being the highest
        series degree that gets features (:mod:`sklearn_ntk.homogeneous`);
        ``"auto"``: ``"homogeneous"`` where it is the more accurate (see
        ``method_``), else chosen per layer from measured accuracy.
    alpha : float, default=1.0
        Ridge penalty of the downstream model; used only by
        ``n_components="auto"``.
    W_std : float, default=1.0
        Standard deviation of the weights.
    b_std : float, default=0.0
        Standard deviation of the biases.
    batch_size : int, default=None
        Rows transformed at once; ``None`` sizes batches from scikit-learn's
        ``working_memory``, so memory stays bounded whatever the number of rows.
    backend : {"auto", "numpy", "cupy"}, default="auto"
        Where ``transform`` computes.  ``"auto"`` follows the input: NumPy,
        or with ``sklearn.set_config(array_api_dispatch=True)`` the input's
        Array API namespace and device (CuPy, PyTorch, ...).  ``"numpy"``
        computes on the host and ``"cupy"`` on the current CUDA device (batch
        by batch); both return the input's type, so a GPU transform of NumPy
        data feeds CPU-only estimators.  ``"cupy"`` raises ``ImportError``
        without CuPy and ``RuntimeError`` without a CUDA device.
    verbose : int, default=0
        Report the progress of ``transform`` over batches when positive.
    random_state : int, RandomState instance or None, default=None
        Seeds the sketches; pass an int for reproducible features.

    Attributes
    ----------
    activation_ : Activation
        The resolved activation.
    n_components_ : int
        Number of output features: ``n_components``, or the ``"auto"``
        choice, or fewer when the homogeneous sketch keeps every degree
        exactly (for instance a monomial activation on narrow input).
    method_ : str
        The method used: ``method``, where ``"auto"`` became
        ``"homogeneous"`` for relu, leaky_relu, abs and rectified monomials
        with ``b_std=0`` at ``depth >= 2`` (measured more accurate and faster
        there), and stays ``"auto"`` (chosen layer by layer) otherwise.
    error_estimate_ : float
        Estimated relative Frobenius error ``||Z Z^T - K||_F / ||K||_F`` of
        the drawn features on data like the training data: measured against
        the exact kernel on a subsample of the training rows and
        extrapolated to their number.  ``fit`` warns when it exceeds 0.5.
    sketch_ : NetworkSketch or HomogeneousSketch
        The drawn feature map.
    sparse_input_ : bool
        Whether the first layer was drawn for sparse input (CountSketch and
        TensorSketch in input-sparsity time).
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during fit, when ``X`` has string column names.

    See Also
    --------
    NNGPSketch : The same for the NNGP kernel.
    CNTKSketch : The same for convolutional networks on images.
    sklearn_ntk.ntk_kernel : The exact kernel.

    References
    ----------
    .. [1] I. Han, A. Zandieh, J. Lee, R. Novak, L. Xiao, A. Karbasi. "Fast
       Neural Kernel Embeddings for General Activations." NeurIPS 2022.
    .. [2] A. Jacot, F. Gabriel, C. Hongler. "Neural Tangent Kernel:
       Convergence and Generalization in Neural Networks." NeurIPS 2018.
    .. [3] A. Zandieh, I. Han, H. Avron, N. Shoham, C. Kim, J. Shin. "Scaling
       Neural Tangent Kernels via Sketching and Random Features." NeurIPS 2021.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from sklearn.linear_model import RidgeClassifier
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.preprocessing import StandardScaler
    >>> from sklearn_ntk import NTKSketch
    >>> X, y = load_digits(return_X_y=True)
    >>> model = make_pipeline(StandardScaler(), NTKSketch(act="erf", random_state=0),
    ...                       RidgeClassifier())
    >>> model.fit(X[:1000], y[:1000]).score(X[1000:], y[1000:]) > 0.9
    True
    """

    _ntk = True

    def __init__(
        self,
        *,
        act="relu",
        depth=1,
        n_components=1024,
        degree=8,
        method="auto",
        alpha=1.0,
        W_std=1.0,
        b_std=0.0,
        batch_size=None,
        backend="auto",
        verbose=0,
        random_state=None,
    ):
        self.act = act
        self.depth = depth
        self.n_components = n_components
        self.degree = degree
        self.method = method
        self.alpha = alpha
        self.W_std = W_std
        self.b_std = b_std
        self.batch_size = batch_size
        self.backend = backend
        self.verbose = verbose
        self.random_state = random_state
