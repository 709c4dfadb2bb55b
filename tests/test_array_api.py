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


@pytest.mark.parametrize(
    "cls", sorted(activations._XP_POINTWISE, key=lambda c: c.__name__)
)
@pytest.mark.parametrize("ns", NAMESPACES)
def test_pointwise_activation_in_namespace(cls, ns, dispatch):
    act = cls()
    x = np.linspace(-4.0, 4.0, 33)
    xa, back, typ = _to(ns, x)
    for f in (act, act.derivative):
        y = f(xa)
        assert isinstance(y, typ)
        ref = f(x)
        np.testing.assert_allclose(
            back(y), ref, rtol=1e-12, atol=1e-12 * np.abs(ref).max()
        )


@pytest.mark.parametrize("ns", NAMESPACES)
def test_pointwise_host_fallback(ns, dispatch):
    """Activations without an Array API form go through NumPy and come back."""
    act = activations.get("elu")
    assert type(act) not in activations._XP_POINTWISE
    x = np.linspace(-3.0, 3.0, 13)
    xa, back, typ = _to(ns, x)
    y = act(xa)
    assert isinstance(y, typ)
    # The same NumPy function on the same values: bit-identical by design.
    np.testing.assert_array_equal(back(y), act(x))


def test_array_api_support_tag():
    assert NNGPSketch().__sklearn_tags__().array_api_support
    assert NTKSketch().__sklearn_tags__().array_api_support
