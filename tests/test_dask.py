"""Dask arrays: lazy, chunk-by-chunk transforms, on a 2-process LocalCluster."""

import numpy as np
import pytest
from conftest import assert_allclose_reordered

da = pytest.importorskip(
    "dask.array", reason="needs dask[array] (pip install '.[dask]')"
)

from sklearn_ntk import NNGPSketch, NTKSketch  # noqa: E402


def _data(n=250, d=9, seed=0, dtype=np.float64):
    return np.random.RandomState(seed).randn(n, d).astype(dtype)


@pytest.fixture(scope="module")
def client():
    distributed = pytest.importorskip("distributed", reason="needs dask.distributed")
    with (
        distributed.LocalCluster(
            n_workers=2,
            processes=True,
            threads_per_worker=1,
            dashboard_address=":0",
            memory_limit="2GiB",
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        yield client


@pytest.mark.parametrize("Est", [NNGPSketch, NTKSketch])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_lazy_and_same_features(Est, dtype):
    X = _data(dtype=dtype)
    est = Est(act="erf", depth=2, n_components=64, random_state=0).fit(X)
    ref = est.transform(X)
    Xd = da.from_array(X, chunks=(60, 4))  # column chunks get merged
    Zd = est.transform(Xd)
    assert isinstance(Zd, da.Array)
    assert Zd.shape == ref.shape and Zd.dtype == dtype
    assert Zd.chunks == ((60, 60, 60, 60, 10), (64,))
    Z = Zd.compute(scheduler="threads")
    assert Z.dtype == dtype
    # Chunks of 60 rows are other batches than transform's: roundoff only.
    assert_allclose_reordered(Z, ref)


def test_distributed_cluster(client):
    X = _data(n=400)
    est = NTKSketch(act="relu", depth=2, n_components=128, random_state=0).fit(X)
    ref = est.transform(X)
    Xd = da.from_array(X, chunks=(100, -1))
    Zd = est.transform(Xd)
    # Both worker processes take part.
    Zd = client.persist(Zd)
    distributed = pytest.importorskip("distributed")
    distributed.wait(Zd)
    who = client.who_has(Zd)
    assert len({w for workers in who.values() for w in workers}) == 2
    assert_allclose_reordered(Zd.compute(), ref)
    # Reductions stay lazy and chunked: Z^T Z without materializing Z.
    assert_allclose_reordered((Zd.T @ Zd).compute(), ref.T @ ref)


def test_fit_on_dask_array_reads_only_the_head():
    X = _data()
    Xd = da.from_array(X, chunks=(50, -1))
    est = NNGPSketch(n_components=32, random_state=0).fit(Xd)
    assert est.n_features_in_ == X.shape[1]
    ref = NNGPSketch(n_components=32, random_state=0).fit(X).transform(X)
    assert_allclose_reordered(est.transform(Xd).compute(), ref)
    # fit_transform gives a lazy array too.
    assert isinstance(NNGPSketch(n_components=8).fit_transform(Xd), da.Array)


def test_dask_errors():
    est = NNGPSketch(n_components=8, random_state=0).fit(_data())
    with pytest.raises(ValueError, match="features"):
        est.transform(da.zeros((10, 3)))
    with pytest.raises(ValueError, match="out is not supported"):
        est.transform(da.zeros((10, 9)), out=np.empty((10, 8)))


def test_integer_dask_input_is_float64():
    X = np.arange(40).reshape(10, 4)
    est = NNGPSketch(n_components=8, random_state=0).fit(X)
    Z = est.transform(da.from_array(X, chunks=(5, -1)))
    assert Z.dtype == np.float64
    assert_allclose_reordered(Z.compute(), est.transform(X))
