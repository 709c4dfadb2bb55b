"""A clear error for every bad input (issue 9).

Each test pins one way the package used to accept a bad input, return NaN,
or raise an error naming the wrong thing; benchmarks/hostile_pass.py runs
the whole matrix of hostile inputs.
"""

import math
import re
import warnings

import mpmath
import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.gaussian_process import GaussianProcessRegressor
from sklearn.gaussian_process.kernels import WhiteKernel

from sklearn_ntk import (
    NNGPSketch,
    NTKSketch,
    _validation,
    activations,
    nngp_kernel,
    ntk_kernel,
)
from sklearn_ntk.conv_estimators import CNNGPSketch, CNTKSketch
from sklearn_ntk.convolutional import cnngp_kernel, cntk_kernel
from sklearn_ntk.kernels import NNGPKernel, NTKKernel, exact_kernel
from sklearn_ntk.networks import fully_connected


def _X(n=6, d=4, seed=0):
    return np.random.RandomState(seed).randn(n, d)


# --------------------------------------------------------------------------- #
# out=
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize(
    "in_dtype, out_dtype",
    [
        (np.float64, np.int64),
        (np.float64, np.float32),
        (np.float64, np.float16),
        (np.float32, np.float16),
        (np.float32, np.int32),
        (np.float64, np.complex128),
        (np.float64, bool),
    ],
)
def test_out_dtype_that_loses_precision_is_refused(in_dtype, out_dtype):
    X = _X().astype(in_dtype)
    est = NNGPSketch(n_components=8, random_state=0).fit(X)
    out = np.zeros((X.shape[0], 8), dtype=out_dtype)
    with pytest.raises(TypeError, match=r"^out has dtype"):
        est.transform(X, out=out)
    assert not out.any()  # nothing written


@pytest.mark.parametrize(
    "make_out, match",
    [
        (lambda n, m: np.zeros((n, m + 1)), r"^out has shape"),
        (lambda n, m: np.zeros(n * m), r"^out has shape"),
        (lambda n, m: np.zeros((n, m, 1)), r"^out has shape"),
        (lambda n, m: _readonly(n, m), r"^out is read-only"),
        (lambda n, m: sp.csr_matrix((n, m)), r"^out must be a dense array"),
        (lambda n, m: [[0.0] * m] * n, r"^out must be a dense array"),
    ],
)
def test_out_shape_and_layout_are_checked(make_out, match):
    X = _X()
    est = NNGPSketch(n_components=8, random_state=0).fit(X)
    with pytest.raises((TypeError, ValueError), match=match):
        est.transform(X, out=make_out(X.shape[0], 8))


def _readonly(n, m):
    out = np.zeros((n, m))
    out.flags.writeable = False
    return out


def test_out_aliasing_the_input_is_refused():
    # n_components == n_features: transform(X, out=X) would overwrite rows
    # of X before reading them.
    X = _X(n=6, d=8)
    est = NNGPSketch(n_components=8, random_state=0).fit(X)
    with pytest.raises(ValueError, match="out shares memory with X"):
        est.transform(X, out=X)


def test_good_out_arrays_are_written():
    X = _X()
    est = NNGPSketch(n_components=8, random_state=0).fit(X)
    Z = est.transform(X)
    # Fortran order and wider dtypes are fine; bitwise equal to the same
    # call without out (same code path, same batch size).
    out = np.zeros((8, X.shape[0])).T
    assert est.transform(X, out=out) is out
    np.testing.assert_array_equal(out, Z)
    est32 = NNGPSketch(n_components=8, random_state=0).fit(X.astype(np.float32))
    out64 = np.zeros((X.shape[0], 8))
    est32.transform(X.astype(np.float32), out=out64)
    Z32 = est32.transform(X.astype(np.float32))
    np.testing.assert_array_equal(out64, Z32.astype(np.float64))


# --------------------------------------------------------------------------- #
# NNGPKernel / NTKKernel are validated like nngp_kernel
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("Kern", [NNGPKernel, NTKKernel])
@pytest.mark.parametrize(
    "param, value",
    [
        ("W_std", np.nan),
        ("W_std", -1.0),
        ("W_std", 1e200),
        ("b_std", np.inf),
        ("depth", -1),
        ("depth", 1.7),
        ("depth", "2"),
        ("act", 3),
    ],
)
def test_gp_kernels_validate_like_nngp_kernel(Kern, param, value):
    X = _X()
    with pytest.raises(ValueError) as ref:
        nngp_kernel(X, **{param: value})
    expected = str(ref.value).replace("nngp_kernel", Kern.__name__)
    kernel = Kern(**{param: value})  # __init__ stores, never validates
    assert kernel.get_params()[param] is value
    for call in (lambda: kernel(X), lambda: kernel.diag(X), lambda: kernel.theta):
        with pytest.raises(ValueError) as got:
            call()
        assert str(got.value) == expected


@pytest.mark.parametrize(
    "bounds", ["bad", (1.0,), (2.0, 1.0), (-1.0, 1.0), (0, np.inf)]
)
def test_gp_kernel_bounds_are_validated(bounds):
    kernel = NNGPKernel(W_std_bounds=bounds)
    for call in (lambda: kernel(_X()), lambda: kernel.theta, lambda: kernel.bounds):
        with pytest.raises(ValueError, match="'W_std_bounds' parameter of NNGPKernel"):
            call()


@pytest.mark.parametrize("Kern", [NNGPKernel, NTKKernel])
def test_gp_kernel_inputs_are_validated(Kern):
    X = _X()
    kernel = Kern()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no ComplexWarning: an error
        with pytest.raises(ValueError, match="X: Complex data not supported"):
            kernel(X + 1j)
        with pytest.raises(ValueError, match="Y: Complex data not supported"):
            kernel(X, X + 1j)
    Xnan = np.vstack([X, np.full(X.shape[1], np.nan)])
    for call in (kernel, kernel.diag):
        with pytest.raises(ValueError, match="X contains NaN"):
            call(Xnan)
        with pytest.raises(ValueError, match="dim 3"):
            call(X[:, :, None])
    with pytest.raises(ValueError, match="X has 4 features but Y has 3"):
        kernel(X, X[:, :3])


def test_gp_kernels_still_clone_and_optimize():
    X = _X(n=30, d=3)
    y = np.sin(X[:, 0])
    kernel = NNGPKernel(
        act="erf",
        depth=2,
        W_std=1.2,
        b_std=0.3,
        W_std_bounds=(0.1, 10.0),
        b_std_bounds=(1e-3, 10.0),
    )
    # clone and set_params keep the parameters untouched, bad values included.
    assert clone(kernel).get_params() == kernel.get_params()
    assert clone(kernel).set_params(W_std=-1.0).W_std == -1.0
    assert np.all(np.isfinite(kernel.theta)) and np.all(np.isfinite(kernel.bounds))
    gp = GaussianProcessRegressor(kernel + WhiteKernel(1e-2), random_state=0)
    gp.fit(X, y)
    fitted = gp.kernel_.k1
    assert (fitted.W_std, fitted.b_std) != (1.2, 0.3)  # the optimizer moved them
    assert gp.score(X, y) > 0.9


@pytest.mark.parametrize("param", ["W_std", "b_std"])
def test_log_space_hyperparameter_at_zero_is_refused(param):
    # Before: NNGPKernel(b_std_bounds=(1e-5, 10)).theta == [-inf].
    kernel = NNGPKernel(**{param: 0.0, f"{param}_bounds": (1e-5, 10.0)})
    for call in (lambda: kernel.theta, lambda: kernel(_X())):
        with pytest.raises(
            ValueError, match=f"{param} must be > 0 when {param}_bounds"
        ):
            call()
    ok = NNGPKernel(**{param: 0.1, f"{param}_bounds": (1e-5, 10.0)})
    np.testing.assert_allclose(ok.theta, [math.log(0.1)], rtol=1e-15)


# --------------------------------------------------------------------------- #
# n_jobs=0
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize(
    "call",
    [
        lambda X: nngp_kernel(X, n_jobs=0),
        lambda X: ntk_kernel(X, n_jobs=0),
        lambda X: cnngp_kernel(X, architecture="conv_stack", depth=1, n_jobs=0),
        lambda X: cntk_kernel(X, architecture="conv_stack", depth=1, n_jobs=0),
        lambda X: exact_kernel(
            fully_connected(activations.get("relu"), 1, 1.0, 0.0),
            X,
            ntk=False,
            n_jobs=0,
        ),
    ],
)
def test_n_jobs_zero_is_refused(call):
    with pytest.raises(ValueError, match="n_jobs"):
        call(_X(d=4))


def test_n_jobs_negative_and_none_still_work():
    X = _X()
    K = nngp_kernel(X)
    np.testing.assert_allclose(nngp_kernel(X, n_jobs=-1), K, rtol=1e-14)
    np.testing.assert_allclose(nngp_kernel(X, n_jobs=2), K, rtol=1e-14)


# --------------------------------------------------------------------------- #
# NaN instead of an error
# --------------------------------------------------------------------------- #
def _nan_act(x):
    return x * np.nan


@pytest.mark.parametrize(
    "call",
    [
        lambda X: nngp_kernel(X, act=_nan_act),
        lambda X: ntk_kernel(X, act=_nan_act),
        lambda X: NNGPSketch(act=_nan_act, n_components=16).fit_transform(X),
        lambda X: NTKSketch(act=_nan_act, n_components=16).fit_transform(X),
        lambda X: activations.get(_nan_act).dual(1.0, 0.5, 1.0),
        lambda X: activations.get(_nan_act).hermite([1.0], 3),
    ],
)
def test_nan_returning_callable_is_named(call):
    # Before: an all-NaN kernel, or "Hermite coefficients ... overflow".
    with pytest.raises(
        ValueError, match=r"callable .*_nan_act \(fn\) returned NaN at x"
    ):
        call(_X())


@pytest.mark.parametrize("call", [nngp_kernel, ntk_kernel])
def test_monomial_overflow_names_activation_layer_and_scale(call):
    act = activations.get("monomial", degree=30)
    # The true kernel is beyond float64: an OverflowError naming the cause.
    with pytest.raises(OverflowError) as exc:
        call(_X(), act=act, depth=2)
    msg = str(exc.value)
    assert "Monomial(degree=30)" in msg and "overflows float64 after layer" in msg
    assert re.search(r"input scale max \|\|x\|\|\^2/d = \d", msg)
    with pytest.raises(
        ValueError, match=r"Monomial\(degree=30\).*reference input scale"
    ):
        NTKSketch(act=act, depth=2).fit(_X())


def _erf_ntk_mpmath(X):
    """Depth-1 erf NTK (W_std=1, b_std=0) in 700-digit arithmetic (Williams 1997).

    700 digits: at ||x||^2/d ~ 1e300 the diagonal's ``(1+2a)(1+2b) - 4c^2 =
    1 + 4a`` is a difference of numbers of size 1e600.
    """
    n, d = X.shape
    out = np.empty((n, n))
    with mpmath.workdps(700):
        G = [
            [
                mpmath.fsum(mpmath.mpf(X[i, k]) * mpmath.mpf(X[j, k]) for k in range(d))
                / d
                for j in range(n)
            ]
            for i in range(n)
        ]
        for i in range(n):
            for j in range(n):
                a, c, b = G[i][i], G[i][j], G[j][j]
                S = (
                    2
                    / mpmath.pi
                    * mpmath.asin(2 * c / mpmath.sqrt((1 + 2 * a) * (1 + 2 * b)))
                )
                Sd = 4 / mpmath.pi / mpmath.sqrt((1 + 2 * a) * (1 + 2 * b) - 4 * c * c)
                out[i, j] = float(S + Sd * c)
    return out


def test_erf_at_1e150_is_right_or_a_named_error():
    X = _X(n=4) * 1e150
    try:
        K = ntk_kernel(X, act="erf")
    except ValueError as exc:
        msg = str(exc)
        assert "Erf(" in msg and "input scale" in msg and "e+300" in msg
        return
    # Finite: then it must be right (the scale engineer's fix).
    np.testing.assert_allclose(K, _erf_ntk_mpmath(X), rtol=1e-8)


def test_float32_rows_near_1e19_are_right_or_a_named_error():
    X64 = np.abs(_X(n=4, d=8)) + 0.5
    X = (X64 * 1e19).astype(np.float32)
    for call in (
        lambda A: nngp_kernel(A),
        lambda A: NNGPSketch(n_components=64, random_state=0).fit(A).transform(A),
    ):
        try:
            K = call(X)
        except ValueError as exc:
            assert "float32" in str(exc) and "scale" in str(exc)
            continue
        # ReLU is 2-homogeneous: K(c X) = c^2 K(X), the unit-scale kernel of
        # the same float32 values as the reference.
        assert np.all(np.isfinite(K))
        if K.shape == (4, 4):
            ref = nngp_kernel(X.astype(np.float64) / 1e19) * 1e38
            np.testing.assert_allclose(K, ref, rtol=1e-5)


def test_sketch_transform_never_returns_nan():
    # exp at a large scale: the features overflow; the transform says so.
    est = NNGPSketch(act=activations.get("exp"), n_components=32, random_state=0)
    est.fit(_X())
    with pytest.raises((ValueError, OverflowError), match=r"Exp\(a=1.0, b=1.0\)"):
        est.transform(_X() * 1e3)


# --------------------------------------------------------------------------- #
# Errors that named the wrong thing
# --------------------------------------------------------------------------- #
def test_huge_W_std_names_W_std():
    # Before: OverflowError: (34, 'Numerical result out of range').
    for call in (
        lambda: NNGPSketch(W_std=1e200).fit(_X()),
        lambda: nngp_kernel(_X(), W_std=1e200),
        lambda: CNNGPSketch(W_std=1e200).fit(np.ones((2, 16))),
    ):
        with pytest.raises(ValueError, match="'W_std' parameter"):
            call()


@pytest.mark.parametrize(
    "name, params, bad",
    [
        ("sin", {"a": 1e200}, "a"),
        ("cos", {"b": 1e200}, "b"),
        ("erf", {"c": -1e200}, "c"),
        ("exp", {"a": 1e200}, "a"),
        ("polynomial", {"coef": (0.0, 1e200)}, "coef"),
        ("monomial", {"degree": 10**6}, "degree"),
    ],
)
def test_activation_parameters_that_overflow_are_named(name, params, bad):
    # Before: get("sin", a=1e200) passed, then NTKSketch raised "cannot
    # convert float NaN to integer" and nngp_kernel returned inf.
    with pytest.raises(ValueError, match=rf"{bad}"):
        activations.get(name, **params)


def test_sketch_reference_overflow_names_activation():
    # Before: fit passed, and the exact NTK of the same network was inf.
    act = activations.get("sin", a=1e150)
    with pytest.raises(ValueError, match=r"Sin\(a=1e\+150.*hidden layer 2"):
        NTKSketch(act=act, depth=2).fit(_X())


def test_conv_kernel_errors_name_the_right_input():
    rng = np.random.RandomState(0)
    with pytest.raises(ValueError, match="but Y has 9 features"):
        cnngp_kernel(rng.rand(3, 16), rng.rand(3, 9))
    with pytest.raises(ValueError, match=r"images of shape \(4, 4, 0\)"):
        cnngp_kernel(np.zeros((3, 4, 4, 0)))
    with pytest.raises(ValueError, match=r"images of Y, of shape \(4, 0, 1\)"):
        cnngp_kernel(rng.rand(3, 4, 4), np.zeros((2, 4, 0)))
    with pytest.raises(ValueError, match="Input Y contains NaN"):
        cntk_kernel(rng.rand(3, 16), np.full((2, 16), np.nan))
    with pytest.raises(ValueError, match="Y: Complex"):
        cnngp_kernel(rng.rand(3, 16), rng.rand(2, 16) + 1j)
    with pytest.raises(ValueError, match=r"X must be flat rows .* shape \(3,\)"):
        cnngp_kernel(rng.rand(3))


@pytest.mark.parametrize(
    "Est, kw",
    [
        (NNGPSketch, {}),
        (NTKSketch, {}),
        (CNNGPSketch, {"architecture": "conv_stack", "depth": 1, "n_channels": 8}),
    ],
)
@pytest.mark.parametrize(
    "param, value", [("n_components", 8), ("depth", 2), ("W_std", 2.0)]
)
def test_parameters_changed_after_fit_need_a_refit(Est, kw, param, value):
    X = np.random.RandomState(0).rand(5, 16)
    est = Est(n_components=16, random_state=0, **kw).fit(X)
    est.set_params(**{param: value})
    with pytest.raises(NotFittedError, match=rf"{param}: .* -> {value!r}.*fit again"):
        est.transform(X)
    with pytest.raises(NotFittedError, match=param):
        est.get_feature_names_out()
    assert est.fit(X).transform(X).shape == (5, est.n_components)
    # Runtime parameters may change without a refit.
    est.set_params(batch_size=2, verbose=0)
    assert est.transform(X).shape == (5, est.n_components)


# --------------------------------------------------------------------------- #
# Activation names are case-insensitive everywhere
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("name", ["ReLU", "RELU", " Leaky-ReLU ", "GeLU"])
def test_activation_names_are_case_insensitive_everywhere(name):
    X = np.random.RandomState(0).rand(5, 16)
    canon = name.strip().lower().replace("-", "_")
    np.testing.assert_array_equal(nngp_kernel(X, act=name), nngp_kernel(X, act=canon))
    for Est, kw in (
        (NNGPSketch, {}),
        (NTKSketch, {}),
        (CNNGPSketch, {"architecture": "conv_stack", "depth": 1, "n_channels": 8}),
        (CNTKSketch, {"architecture": "conv_stack", "depth": 1, "n_channels": 8}),
    ):
        # Bitwise: the same draws and the same code path.
        Z = Est(act=name, n_components=16, random_state=0, **kw).fit_transform(X)
        Zc = Est(act=canon, n_components=16, random_state=0, **kw).fit_transform(X)
        np.testing.assert_array_equal(Z, Zc)


def test_unknown_activation_lists_sorted_names():
    for call in (
        lambda: activations.get("nope"),
        lambda: nngp_kernel(_X(), act="nope"),
        lambda: NTKSketch(act="nope").fit(_X()),
        lambda: NNGPKernel(act="nope")(_X()),
    ):
        with pytest.raises(ValueError, match="Unknown activation 'nope'") as exc:
            call()
        names = str(exc.value).split("Valid names: ")[1].rstrip(".").split(", ")
        assert names == sorted(activations.available())


# --------------------------------------------------------------------------- #
# Memory that cannot exist
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("Est", [NNGPSketch, NTKSketch])
@pytest.mark.parametrize("sparse", [False, True])
def test_impossible_n_components_is_refused_up_front(Est, sparse):
    # 32 TB of float64 at the very least: refused before anything is drawn.
    # Before: the sparse NTKSketch reached 3.3 GB before a MemoryError.
    X = sp.random(4, 10, density=0.5, random_state=0, format="csr") if sparse else _X()
    with pytest.raises(MemoryError, match=r"n_components=1000000000000.*GiB"):
        Est(n_components=10**12).fit(X)


def test_memory_rule_against_a_small_machine(monkeypatch):
    monkeypatch.setattr(_validation, "available_memory", lambda: 2.0**20)  # 1 MiB
    X = _X(n=5000, d=4)
    with pytest.raises(MemoryError, match=r"n_components=100000\).*GiB"):
        NNGPSketch(n_components=10**5).fit(X)
    est = NNGPSketch(n_components=64, random_state=0).fit(X[:10])
    with pytest.raises(MemoryError, match=r"5000 rows .*out=np.memmap"):
        est.transform(X)
    est.set_params(batch_size=1000)
    with pytest.raises(MemoryError, match=r"batch_size=1000"):
        est.transform(X, out=np.empty((5000, 64)))
    # Within the budget: a memmap-like out and small batches are fine.
    est.set_params(batch_size=100)
    assert est.transform(X, out=np.empty((5000, 64))).shape == (5000, 64)


# --------------------------------------------------------------------------- #
# Hostile pass findings (benchmarks/hostile_pass.py)
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("name", ["relu", "erf", "tanh", "exp_normalized"])
def test_dual_refuses_arguments_that_are_not_a_covariance(name):
    # Before: NaN, negative variances and |kxy| > sqrt(kxx kyy) gave finite
    # numbers (the quadrature replaced a NaN correlation by 0).
    act = activations.get(name)
    with pytest.raises(ValueError, match="kxy contains NaN"):
        act.dual(1.0, np.nan, 1.0)
    with pytest.raises(ValueError, match="kxx must be >= 0"):
        act.dual(-1.0, 0.0, 1.0)
    with pytest.raises(ValueError, match="not a covariance"):
        act.dual(1.0, 5.0, 1.0)
    # Rounding past |rho| = 1 is let through.
    S, _ = act.dual(1.0, 1.0 + 1e-15, 1.0)
    assert np.isfinite(S)


def test_dual_that_overflows_names_activation_and_scale():
    """An OverflowError naming the activation and the scale, and no NumPy
    RuntimeWarning on the way (warnings are errors here)."""
    warnings.simplefilter("error", RuntimeWarning)
    act = activations.get(lambda x: np.exp(50 * x))
    with pytest.raises(
        OverflowError,
        match=r"dual of Numerical.*not finite in float64 at scale sqrt\(variance\)",
    ):
        act.dual(1.0, 0.3, 2.0)


@pytest.mark.parametrize("name", ["relu", "erf", "tanh"])
def test_pointwise_refuses_complex_and_keeps_nan(name):
    act = activations.get(name)
    x = np.array([-1.0, 0.5, 2.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no ComplexWarning: an error
        for f in (act, act.derivative):
            with pytest.raises(TypeError, match="complex input"):
                f(x + 1j)
            # NaN in, NaN out (relu.derivative(nan) was 0).
            out = f(np.array([np.nan, 1.0]))
            assert np.isnan(out[0]) and np.isfinite(out[1])


def _constant(x):
    return 1.0


@pytest.mark.parametrize(
    "fn, exc, match",
    [
        (lambda x: np.tanh(x).ravel()[:3], ValueError, r"returned shape \(3,\)"),
        (lambda x: np.tanh(x) + 0j, TypeError, "returned complex values"),
        (lambda x: np.full(np.shape(x), "a"), TypeError, "returned dtype <U1"),
    ],
)
def test_misbehaving_callables_are_named(fn, exc, match):
    for call in (
        lambda: nngp_kernel(_X(), act=fn),
        lambda: NTKSketch(act=fn, n_components=16).fit(_X()),
        lambda: activations.get(fn).hermite([1.0], 3),
    ):
        with pytest.raises(exc, match=r"activation callable <lambda> .*" + match):
            call()


def test_constant_callable_broadcasts():
    # E[1 * 1] = 1 at every layer: K = W_std^2 + b_std^2 = 1, and the NTK
    # adds W_std^2 E[0 * 0] Theta = 0.
    np.testing.assert_allclose(nngp_kernel(_X(), act=_constant), 1.0, rtol=1e-14)
    np.testing.assert_allclose(ntk_kernel(_X(), act=_constant), 1.0, rtol=1e-14)
    Z = NTKSketch(act=_constant, n_components=16, random_state=0).fit_transform(_X())
    assert np.all(np.isfinite(Z))


@pytest.mark.parametrize("Est", [NNGPSketch, NTKSketch])
@pytest.mark.parametrize("scale, word", [(1e-200, "underflow"), (1e200, "overflow")])
def test_sketch_rows_out_of_float64_range_are_refused(Est, scale, word):
    # Before: rows with ||x||^2/d = 1e-400 gave wrong features (their norms
    # underflowed to 0), and 1e+400 raised "r must contain finite, nonnegative
    # scales".
    est = Est(n_components=32, random_state=0).fit(_X())
    with pytest.raises(ValueError, match=rf"\|\|x\|\|\^2/d .*{word} float64"):
        est.transform(_X() * scale)
    # Inside the range: the ReLU features are 1-homogeneous.
    Z = est.transform(_X())
    for c in (1e-140, 1e140):
        np.testing.assert_allclose(est.transform(_X() * c), Z * c, rtol=1e-10)


@pytest.mark.parametrize("Est", [CNNGPSketch, CNTKSketch])
def test_conv_sketches_take_another_namespace(Est, dispatch):
    """The convolutional sketches are namespace-generic: an array-api-strict
    input gives features in its namespace, equal to NumPy's (it used to be
    refused, and before that to fail inside NumPy on the other dtype)."""
    xps = pytest.importorskip("array_api_strict")
    X = np.random.RandomState(0).rand(4, 16)
    est = Est(n_components=32, random_state=0)
    Z = est.fit(xps.asarray(X)).transform(xps.asarray(X))
    assert type(Z) is type(xps.asarray(X))
    ref = Est(n_components=32, random_state=0).fit_transform(X)
    np.testing.assert_allclose(np.asarray(Z), ref, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("fmt", ["csr", "csc", "coo"])
def test_dense_x_with_sparse_y(fmt):
    """A dense X with a sparse Y (and the reverse) is a valid pair: the kernel
    equals the dense one, and the identical rows get the exact diagonal."""
    X = _X(n=5, d=6)
    X[:, 1] = 0.0
    K = nngp_kernel(X, act="sign", depth=2)
    Ks = nngp_kernel(X, sp.csr_matrix(X).asformat(fmt), act="sign", depth=2)
    Kd = nngp_kernel(sp.csr_matrix(X).asformat(fmt), X, act="sign", depth=2)
    for M in (Ks, Kd):
        np.testing.assert_allclose(M, K, rtol=0, atol=64 * np.finfo(float).eps)
        # Identical rows: the diagonal states, bit for bit by construction.
        np.testing.assert_array_equal(np.diag(M), np.diag(K))
