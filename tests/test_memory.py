"""Bounded memory and progress of transform: batches, ``out=``, ``verbose``."""

import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
import sklearn
from conftest import assert_allclose_reordered

from sklearn_ntk import NNGPSketch, NTKSketch, nngp_kernel

sys.path.insert(0, str(Path(__file__).parents[1] / "benchmarks"))
bench_memory = pytest.importorskip("bench_memory")


def _data(n=50, d=6, dtype=np.float64):
    return np.random.RandomState(0).randn(n, d).astype(dtype)


@pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="reads /proc/self/statm"
)
def test_peak_memory_bounded_by_batch_not_n():
    """20,000 x 100 float32 rows at n_components=2048, in a fresh process.

    With ``working_memory=64`` (MB) the memory beyond the output stays well
    under 200 MB, and does not grow with the number of rows.
    """
    small = bench_memory.measure(5_000, 100, 2048, "NTKSketch", working_memory=64.0)
    large = bench_memory.measure(20_000, 100, 2048, "NTKSketch", working_memory=64.0)
    assert large["finite"] and large["dtype"] == "float32"
    assert large["batch_rows"] < 5_000
    # Anonymous memory: RSS would also count shared-library pages mapped
    # on first use (SCIPY_ARRAY_API=1 can import array libraries lazily).
    assert large["anon_above_output_mb"] < 200, large
    # 4x the rows, 4x the output (234 MB more), but no more working memory.
    assert large["anon_above_output_mb"] < small["anon_above_output_mb"] + 40, (
        small,
        large,
    )


@pytest.mark.smoke
@pytest.mark.parametrize("Est", [NNGPSketch, NTKSketch])
def test_batches_do_not_change_features(Est):
    X = _data()
    ref = Est(n_components=64, random_state=0).fit_transform(X)
    for batch_size in (1, 7, 50):
        Z = Est(n_components=64, batch_size=batch_size, random_state=0).fit_transform(X)
        # Other batches reorder float sums: equal to roundoff, not bitwise.
        assert_allclose_reordered(Z, ref)
    with sklearn.config_context(working_memory=0.05):
        est = Est(n_components=64, random_state=0).fit(X)
        assert est._batch_rows() < X.shape[0]
        assert_allclose_reordered(est.transform(X), ref)


@pytest.mark.smoke
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_transform_into_out(dtype):
    X = _data(dtype=dtype)
    est = NTKSketch(n_components=32, batch_size=8, random_state=0).fit(X)
    ref = est.transform(X)
    out = np.full((X.shape[0], 32), np.nan, dtype=dtype)
    assert est.transform(X, out=out) is out
    # Same estimator, same batches: bit-identical by design.
    np.testing.assert_array_equal(out, ref)
    # A float64 output for float32 input: values are cast on write (exactly).
    out64 = np.empty((X.shape[0], 32))
    est.transform(X, out=out64)
    np.testing.assert_array_equal(out64, ref.astype(np.float64))
    with pytest.raises(ValueError, match="out has shape"):
        est.transform(X, out=np.empty((3, 32), dtype=dtype))


def test_transform_into_memmap(tmp_path):
    X = _data(n=40)
    est = NNGPSketch(n_components=16, batch_size=9, random_state=0).fit(X)
    Z = np.lib.format.open_memmap(
        tmp_path / "Z.npy", mode="w+", dtype=np.float64, shape=(40, 16)
    )
    est.transform(X, out=Z)
    Z.flush()
    del Z
    # Same estimator, same batches: bit-identical by design.
    np.testing.assert_array_equal(np.load(tmp_path / "Z.npy"), est.transform(X))


def test_out_with_sparse_input():
    X = sp.random(30, 10, density=0.3, format="csr", random_state=0)
    est = NNGPSketch(n_components=16, batch_size=7, random_state=0).fit(X)
    out = np.empty((30, 16))
    # Same estimator, same batches: bit-identical by design.
    np.testing.assert_array_equal(est.transform(X, out=out), est.transform(X))


def test_set_output_pandas_with_out():
    pd = pytest.importorskip("pandas")
    X = _data()
    est = (
        NNGPSketch(n_components=8, random_state=0).set_output(transform="pandas").fit(X)
    )
    out = np.empty((X.shape[0], 8))
    df = est.transform(X, out=out)
    assert isinstance(df, pd.DataFrame)
    assert list(df.columns) == [f"nngpsketch{i}" for i in range(8)]
    np.testing.assert_array_equal(df.to_numpy(), out)  # the same values, wrapped
    assert isinstance(est.fit_transform(X), pd.DataFrame)


def test_verbose_reports_progress(capsys):
    X = _data(n=100)
    NTKSketch(n_components=16, batch_size=10, verbose=1, random_state=0).fit_transform(
        X
    )
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 10
    assert lines[-1].startswith("[NTKSketch] transform: 100/100 rows, batch 10/10")
    NTKSketch(n_components=16, batch_size=10, verbose=2, random_state=0).fit_transform(
        X[:35]
    )
    assert len(capsys.readouterr().out.strip().splitlines()) == 4
    NTKSketch(n_components=16, batch_size=10, random_state=0).fit_transform(X)
    assert capsys.readouterr().out == ""


def test_exact_kernel_verbose(capsys):
    X = _data(n=40)
    with sklearn.config_context(working_memory=0.001):
        nngp_kernel(X, verbose=1)
    assert "kernel rows 40/40" in capsys.readouterr().out
