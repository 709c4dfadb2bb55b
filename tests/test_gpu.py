"""``backend="cupy"``: the CuPy glue, with a stand-in module, and on a real GPU.

The stand-in ``cupy`` module wraps array-api-strict: its arrays go through
the same Array API code as CuPy's would, so these tests cover everything
between the estimator and CuPy (import and device checks, moves in and out,
namespace handling with ``array_api_dispatch`` off).  Tests marked ``gpu`` run
the estimators on real CuPy where a CUDA device exists and skip elsewhere.
"""

import sys
import types

import numpy as np
import pytest
import scipy.sparse as sp
import sklearn

from sklearn_ntk import CNNGPSketch, CNTKSketch, NNGPSketch, NTKSketch
from sklearn_ntk._backend import from_backend, import_cupy, to_backend


def _data(n=23, d=7, seed=0):
    return np.random.RandomState(seed).randn(n, d)


# ------------------------------------------------------------ stand-in CuPy
def _fake_cupy(n_devices=1, fail=False):
    xps = pytest.importorskip("array_api_strict")
    calls = {"asarray": 0, "asnumpy": 0}

    def asarray(a):
        calls["asarray"] += 1
        assert isinstance(a, np.ndarray)
        return xps.asarray(a)

    def asnumpy(a):
        calls["asnumpy"] += 1
        assert isinstance(a, type(xps.asarray(1.0)))
        return np.asarray(a)

    def get_device_count():
        if fail:
            raise RuntimeError("cudaErrorNoDevice: no CUDA-capable device is detected")
        return n_devices

    cupy = types.ModuleType("cupy")
    # Not the stand-in's array type: array_api_compat must not mistake the
    # array-api-strict arrays for CuPy's.
    cupy.ndarray = type("ndarray", (), {})
    cupy.asarray, cupy.asnumpy = asarray, asnumpy
    cupy.cuda = types.SimpleNamespace(
        runtime=types.SimpleNamespace(getDeviceCount=get_device_count)
    )
    cupy.calls = calls
    return cupy


@pytest.fixture
def fake_cupy(monkeypatch):
    cupy = _fake_cupy()
    monkeypatch.setitem(sys.modules, "cupy", cupy)
    return cupy


@pytest.mark.parametrize("Est", [NNGPSketch, NTKSketch])
@pytest.mark.parametrize("act", ["relu", "erf"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_cupy_backend_numpy_in_numpy_out(Est, act, dtype, fake_cupy):
    X = _data().astype(dtype)
    kw = dict(act=act, depth=2, n_components=64, batch_size=10, random_state=0)
    ref = Est(**kw).fit_transform(X)
    est = Est(backend="cupy", **kw).fit(X)
    Z = est.transform(X)
    assert type(Z) is np.ndarray and Z.dtype == dtype
    # Three batches, each moved in and out once.
    assert fake_cupy.calls == {"asarray": 3, "asnumpy": 3}
    tol = 2e-5 if dtype == np.float32 else 1e-10
    np.testing.assert_allclose(Z, ref, rtol=tol, atol=tol * np.abs(ref).max())


def test_cupy_backend_feeds_cpu_estimator(fake_cupy):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    X = _data(n=60)
    y = (X[:, 0] > 0).astype(int)
    model = make_pipeline(
        NTKSketch(n_components=64, backend="cupy", random_state=0), LogisticRegression()
    )
    assert model.fit(X, y).score(X, y) > 0.8


def test_cupy_backend_keeps_torch_type(fake_cupy, monkeypatch):
    torch = pytest.importorskip("torch")
    monkeypatch.setenv("SCIPY_ARRAY_API", "1")
    X = _data()
    ref = NNGPSketch(n_components=32, random_state=0).fit_transform(X)
    with sklearn.config_context(array_api_dispatch=True):
        Xt = torch.asarray(X)
        Z = (
            NNGPSketch(n_components=32, backend="cupy", random_state=0)
            .fit(Xt)
            .transform(Xt)
        )
    assert isinstance(Z, torch.Tensor)
    np.testing.assert_allclose(
        Z.numpy(), ref, rtol=1e-10, atol=1e-12 * np.abs(ref).max()
    )


def test_to_from_backend(fake_cupy):
    X = _data(n=3)
    G = to_backend(X, "cupy")
    # Copies there and back: bit-identical by design.
    np.testing.assert_array_equal(from_backend(G, "cupy", np), X)
    assert to_backend(X, "auto") is X and from_backend(X, "auto", np) is X
    assert to_backend(X, "numpy") is X
    with pytest.raises(TypeError, match="sparse"):
        to_backend(sp.csr_matrix(X), "cupy")
    with pytest.raises(ValueError, match="backend must be one of"):
        to_backend(X, "jax")


def test_missing_cupy_is_a_clear_import_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "cupy", None)  # import cupy -> ImportError
    with pytest.raises(ImportError, match=r"sklearn-ntk\[gpu\]"):
        NTKSketch(backend="cupy").fit(_data())


@pytest.mark.parametrize(
    "kw, match",
    [
        ({"n_devices": 0}, "found no CUDA device"),
        ({"fail": True}, "no usable CUDA device"),
    ],
)
def test_missing_device_is_a_clear_runtime_error(kw, match, monkeypatch):
    monkeypatch.setitem(sys.modules, "cupy", _fake_cupy(**kw))
    with pytest.raises(RuntimeError, match=match):
        import_cupy()
    with pytest.raises(RuntimeError, match=match):
        NNGPSketch(backend="cupy").fit(_data())


def test_cupy_backend_rejects_sparse(fake_cupy):
    X = sp.random(10, 6, density=0.5, format="csr", random_state=0)
    with pytest.raises(TypeError, match="sparse"):
        NNGPSketch(backend="cupy").fit(X)
    est = NNGPSketch(n_components=8, random_state=0).fit(X.toarray())
    est.set_params(backend="cupy")
    with pytest.raises(TypeError, match="sparse"):
        est.transform(X)


def test_invalid_backend():
    with pytest.raises(ValueError, match="backend"):
        NNGPSketch(backend="jax").fit(_data())


# ------------------------------------------------- convolutional estimators


def _images(n=7, seed=0):
    return np.random.RandomState(seed).rand(n, 6, 6, 2)


_CONV_KW = dict(n_components=32, n_channels=8, batch_size=3, random_state=0)


@pytest.mark.parametrize("Est", [CNNGPSketch, CNTKSketch])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_cupy_backend_conv_numpy_in_numpy_out(Est, dtype, fake_cupy):
    X = _images().astype(dtype)
    ref = Est(**_CONV_KW).fit_transform(X)
    est = Est(backend="cupy", **_CONV_KW).fit(X)
    Z = est.transform(X)
    assert type(Z) is np.ndarray and Z.dtype == dtype
    # Three batches, each moved in and out once.
    assert fake_cupy.calls == {"asarray": 3, "asnumpy": 3}
    tol = 2e-5 if dtype == np.float32 else 1e-10
    np.testing.assert_allclose(Z, ref, rtol=tol, atol=tol * np.abs(ref).max())


@pytest.mark.parametrize("Est", [CNNGPSketch, CNTKSketch])
def test_numpy_backend_conv_keeps_the_input_type(Est, monkeypatch):
    """backend="numpy" computes on the host and returns the input's type."""
    torch = pytest.importorskip("torch")
    monkeypatch.setenv("SCIPY_ARRAY_API", "1")
    X = _images()
    ref = Est(**_CONV_KW).fit_transform(X)
    Z = Est(backend="numpy", **_CONV_KW).fit_transform(X)
    assert type(Z) is np.ndarray
    # Same operations on the same NumPy batches: bit-identical by design.
    np.testing.assert_array_equal(Z, ref)
    with sklearn.config_context(array_api_dispatch=True):
        Xt = torch.asarray(X)
        Zt = Est(backend="numpy", **_CONV_KW).fit(Xt).transform(Xt)
    assert isinstance(Zt, torch.Tensor)
    np.testing.assert_allclose(Zt.numpy(), ref, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("Est", [CNNGPSketch, CNTKSketch])
def test_conv_cupy_refusals(Est, monkeypatch):
    monkeypatch.setitem(sys.modules, "cupy", None)  # import cupy -> ImportError
    with pytest.raises(ImportError, match=r"sklearn-ntk\[gpu\]"):
        Est(backend="cupy").fit(_images())
    monkeypatch.setitem(sys.modules, "cupy", _fake_cupy(n_devices=0))
    with pytest.raises(RuntimeError, match="found no CUDA device"):
        Est(backend="cupy").fit(_images())
    with pytest.raises(ValueError, match="'backend' parameter"):
        Est(backend="jax").fit(_images())


# ------------------------------------------------------------------ real GPU
def _cuda_reason():
    try:
        import_cupy()
    except (ImportError, RuntimeError) as exc:
        return str(exc)
    return None


_REASON = _cuda_reason() if "cupy" not in sys.modules else None


@pytest.mark.gpu
@pytest.mark.skipif(
    _REASON is not None, reason=f"needs CuPy and a CUDA device: {_REASON}"
)
@pytest.mark.parametrize("Est", [NNGPSketch, NTKSketch])
@pytest.mark.parametrize("act", ["relu", "erf", "gelu"])
def test_cupy_matches_numpy(Est, act):
    X = _data(n=200, d=16).astype(np.float32)
    kw = dict(act=act, depth=2, n_components=256, random_state=0)
    ref = Est(**kw).fit_transform(X)
    Z = Est(backend="cupy", **kw).fit_transform(X)
    assert type(Z) is np.ndarray and Z.dtype == np.float32
    np.testing.assert_allclose(Z, ref, rtol=1e-4, atol=1e-4 * np.abs(ref).max())


@pytest.mark.gpu
@pytest.mark.skipif(
    _REASON is not None, reason=f"needs CuPy and a CUDA device: {_REASON}"
)
def test_cupy_arrays_under_dispatch(monkeypatch):
    import cupy

    monkeypatch.setenv("SCIPY_ARRAY_API", "1")
    X = _data(n=50, d=8)
    ref = NTKSketch(n_components=64, random_state=0).fit_transform(X)
    with sklearn.config_context(array_api_dispatch=True):
        Xg = cupy.asarray(X)
        Z = NTKSketch(n_components=64, random_state=0).fit(Xg).transform(Xg)
    assert isinstance(Z, cupy.ndarray)
    np.testing.assert_allclose(
        cupy.asnumpy(Z), ref, rtol=1e-8, atol=1e-10 * np.abs(ref).max()
    )
