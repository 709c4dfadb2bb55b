"""One code path for every Array API namespace.

The same estimator with the same ``random_state`` gives the same features
(to float tolerance) under NumPy, array-api-strict and PyTorch (CPU), and the
exact kernels the same matrices; outputs keep the input's type and dtype.
"""

import numpy as np
import pytest
import sklearn
from conftest import assert_allclose_reordered

from sklearn_ntk import NNGPSketch, NTKSketch, activations, nngp_kernel, ntk_kernel
from sklearn_ntk._backend import get_namespace


def _to(name, X):
    """``X`` in namespace ``name``, a converter back to NumPy, and the array type."""
    if name == "torch":
        torch = pytest.importorskip("torch")
        return torch.asarray(X), lambda a: a.numpy(), torch.Tensor
    xps = pytest.importorskip("array_api_strict")
    return xps.asarray(X), np.asarray, type(xps.asarray(1.0))


NAMESPACES = ["array_api_strict", "torch"]


def _data(n=17, d=6, seed=0, dtype=np.float64):
    rng = np.random.RandomState(seed)
    return (rng.randn(n, d) * rng.uniform(0.3, 3.0, size=(n, 1))).astype(dtype)


@pytest.mark.parametrize("ns", NAMESPACES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("Est", [NNGPSketch, NTKSketch])
@pytest.mark.parametrize(
    "act, depth, d",
    [
        ("relu", 2, 6),
        ("erf", 1, 30),
        ("gelu", 2, 6),
        ("tanh", 1, 6),
        ("sin", 1, 30),
        ("leaky_relu", 2, 30),
        ("softplus", 1, 6),
    ],
)
def test_estimator_same_features(Est, act, depth, d, dtype, ns, dispatch):
    X = _data(d=d, dtype=dtype)
    params = dict(act=act, depth=depth, n_components=96, b_std=0.2, random_state=0)
    # batch_size=5: several batches, the last one partial.
    ref = Est(batch_size=5, **params).fit_transform(X)
    Xa, back, typ = _to(ns, X)
    Z = Est(batch_size=5, **params).fit(Xa).transform(Xa)
    assert isinstance(Z, typ)
    Z = back(Z)
    assert Z.dtype == dtype == ref.dtype
    tol = 2e-5 if dtype == np.float32 else 1e-10
    np.testing.assert_allclose(Z, ref, rtol=tol, atol=tol * np.abs(ref).max())


@pytest.mark.parametrize("ns", NAMESPACES)
@pytest.mark.parametrize("kernel", [nngp_kernel, ntk_kernel])
@pytest.mark.parametrize("with_Y", [False, True])
def test_exact_kernel_same_matrix(kernel, with_Y, ns, dispatch):
    X, Y = _data(n=9), _data(n=7, seed=1)
    kw = dict(act="erf", depth=2, b_std=0.1)
    ref = kernel(X, Y if with_Y else None, **kw)
    Xa, back, typ = _to(ns, X)
    Ya = _to(ns, Y)[0] if with_Y else None
    # A tiny working_memory forces several row blocks.
    with sklearn.config_context(working_memory=1e-4):
        K = kernel(Xa, Ya, **kw)
    assert isinstance(K, typ)
    np.testing.assert_allclose(back(K), ref, rtol=1e-10, atol=1e-12 * np.abs(ref).max())


@pytest.mark.parametrize("ns", NAMESPACES)
def test_backend_numpy_keeps_input_type(ns, dispatch):
    X = _data()
    Xa, back, typ = _to(ns, X)
    est = NTKSketch(n_components=32, backend="numpy", random_state=0).fit(Xa)
    Z = est.transform(Xa)
    assert isinstance(Z, typ)
    # backend="numpy" computes in NumPy: the same numbers, to roundoff.
    assert_allclose_reordered(
        back(Z), NTKSketch(n_components=32, random_state=0).fit_transform(X)
    )


@pytest.mark.parametrize("ns", NAMESPACES)
def test_out_in_namespace(ns, dispatch):
    X = _data()
    Xa, back, _ = _to(ns, X)
    est = NNGPSketch(n_components=16, batch_size=4, random_state=0).fit(Xa)
    ref = back(est.transform(Xa))
    xp = get_namespace(Xa)[0]
    out = xp.zeros((X.shape[0], 16), dtype=xp.float64)
    assert est.transform(Xa, out=out) is out
    # Same estimator, same batches: bit-identical by design.
    np.testing.assert_array_equal(back(out), ref)


#: Non-default parameters, so that every term of each pointwise formula counts.
_POINTWISE_PARAMS = {
    "leaky_relu": {"alpha": 0.2},
    "erf": {"a": 1.5, "b": 0.7, "c": -0.2},
    "sin": {"a": 1.5, "b": 2.0, "c": 0.3},
    "cos": {"a": 1.5, "b": 2.0, "c": 0.3},
    "gaussian": {"a": 0.5, "b": -0.3},
    "exp": {"a": 0.5, "b": 0.3},
    "rbf": {"gamma": 0.3},
    "monomial": {"degree": 3},
    "rectified_monomial": {"degree": 2},
    "polynomial": {"coef": (0.5, -1.0, 0.25, 0.125)},
    "hermite": {"degree": 5},
    "elu": {"alpha": 0.5},
}


def _pointwise_cases():
    """Every registered activation that has a pointwise function, by name."""
    cases = []
    for name in activations._REGISTRY:
        for params in ({}, _POINTWISE_PARAMS.get(name)):
            if params is None:
                continue
            try:
                activations.get(name, **params)(0.0)
            except TypeError:  # defined by its dual only (exp_normalized)
                continue
            cases.append(pytest.param(name, params, id=f"{name}-{len(params)}"))
    return cases


@pytest.mark.parametrize("name, params", _pointwise_cases())
@pytest.mark.parametrize("ns", NAMESPACES)
def test_pointwise_activation_in_namespace(name, params, ns, dispatch):
    """One pointwise formula per activation: the same values in every namespace.

    The NumPy path runs the same namespace-generic function on NumPy arrays.
    array-api-strict wraps NumPy, so the values are bit-identical there;
    PyTorch's exp, tanh, erf... may differ from NumPy's by an ulp, and sums
    that cancel (``erf(b x) + c`` near its root, ``1 - tanh²``) magnify
    that: the tolerance is 1e-15 relative to ``max(|σ(x)|, |x|, 1)``, the
    size of the terms (``x`` of order 1 to 40 here).
    """
    act = activations.get(name, **params)
    x = np.concatenate(
        [np.linspace(-8.0, 8.0, 161), [-40.0, -20.0, 20.0, 40.0, 1e-300, -0.0]]
    )
    xa, back, typ = _to(ns, x)
    for f in (act, act.derivative):
        y = f(xa)
        assert isinstance(y, typ)
        assert y.dtype == xa.dtype
        ref = f(x)
        y = back(y)
        if ns == "array_api_strict":
            np.testing.assert_array_equal(y, ref)
        scale = np.maximum(np.maximum(np.abs(ref), np.abs(x)), 1.0)
        assert np.all(np.abs(y - ref) <= 1e-15 * scale), (name, f)


@pytest.mark.parametrize("ns", NAMESPACES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_pointwise_keeps_dtype(ns, dtype, dispatch):
    """Float32 arrays stay float32 (constants are 0-d arrays of x's dtype)."""
    x = np.linspace(-3.0, 3.0, 13).astype(dtype)
    xa, back, _ = _to(ns, x)
    for name in ("relu", "leaky_relu", "rectified_monomial", "elu", "softplus", "tanh"):
        act = activations.get(name)
        for f in (act, act.derivative):
            y = f(xa)
            assert y.dtype == xa.dtype
            tol = 1e-6 if dtype == np.float32 else 1e-15
            np.testing.assert_allclose(
                back(y), f(x.astype(np.float64)), rtol=tol, atol=tol
            )


@pytest.mark.parametrize("ns", NAMESPACES)
def test_pointwise_host_fallback(ns, dispatch):
    """User callables (NumPy functions) go through NumPy and come back."""
    act = activations.get(np.arctan, derivative=lambda x: 1.0 / (1.0 + x * x))
    assert not act._array_api
    x = np.linspace(-3.0, 3.0, 13)
    xa, back, typ = _to(ns, x)
    for f in (act, act.derivative):
        y = f(xa)
        assert isinstance(y, typ)
        # The same NumPy function on the same values: bit-identical by design.
        np.testing.assert_array_equal(back(y), f(x))


def test_array_api_support_tag():
    assert NNGPSketch().__sklearn_tags__().array_api_support
    assert NTKSketch().__sklearn_tags__().array_api_support
