"""Tests of the random sketches: unbiasedness, variance scaling, determinism,
Array API namespaces, sparse input and argument validation."""

import pickle

import numpy as np
import pytest
import scipy.sparse as sp
from conftest import assert_allclose_reordered

from sklearn_ntk import sketches
from sklearn_ntk.sketches import SRHT, CountSketch, PolySketch, TensorSketch, TensorSRHT


def _pair(d, rho=0.8, seed=0):
    """Two unit vectors with inner product about ``rho``, as a (2, d) array."""
    rng = np.random.default_rng(seed)
    u = rng.standard_normal(d)
    w = rng.standard_normal(d)
    w -= (w @ u) / (u @ u) * u
    u /= np.linalg.norm(u)
    w /= np.linalg.norm(w)
    return np.stack([u, rho * u + np.sqrt(1 - rho**2) * w])


def _samples(make, X, n_seeds, seed0=0):
    """<S(x0), S(x1)> over independent seeds; ``make(seed)`` returns a callable
    giving a list of sketched (2, m) arrays (one per degree)."""
    out = []
    for s in range(seed0, seed0 + n_seeds):
        out.append([Y[0] @ Y[1] for Y in make(s)(X)])
    return np.array(out)


def _single(cls, *args):
    return lambda s: lambda X: [cls(*args, random_state=s)(X)]


def _tensor_srht(d, m):
    def make(s):
        T = TensorSRHT(d, d, m, random_state=s)
        return lambda X: [T(X, X)]

    return make


def _poly(d, degree, m, internal=None):
    return lambda s: PolySketch(
        d, degree, m, random_state=s, internal_components=internal
    )


def _assert_unbiased(samples, targets, n_se=5.0):
    samples = np.atleast_2d(samples.T).T
    mean = samples.mean(axis=0)
    se = samples.std(axis=0, ddof=1) / np.sqrt(samples.shape[0])
    targets = np.broadcast_to(targets, mean.shape)
    assert np.all(np.abs(mean - targets) <= n_se * se + 1e-12), (mean, targets, se)


# ------------------------------------------------------------- unbiasedness
CASES = {
    # name: (factory(seed) -> callable, degree of the target)
    "srht": (_single(SRHT, 48, 12), 1),
    "srht_blocks": (_single(SRHT, 20, 50), 1),  # m > d: stacked blocks
    "countsketch": (_single(CountSketch, 48, 12), 1),
    "tensorsketch2": (_single(TensorSketch, 48, 2, 16), 2),
    "tensorsketch3": (_single(TensorSketch, 48, 3, 16), 3),
    "tensor_srht": (_tensor_srht(48, 16), 2),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_unbiased(name):
    make, p = CASES[name]
    X = _pair(48 if name != "srht_blocks" else 20)
    rho = X[0] @ X[1]
    _assert_unbiased(_samples(make, X, 1000)[:, 0], rho**p)


def test_polysketch_unbiased_all_degrees():
    X = _pair(24, rho=0.9)
    rho = X[0] @ X[1]
    samples = _samples(_poly(24, 6, 16), X, 1000)
    _assert_unbiased(samples, rho ** np.arange(1, 7))


def test_polysketch_unbiased_mixed_sizes():
    # per-degree sizes, a skipped degree and an internal width != outputs
    X = _pair(10, rho=-0.7)
    rho = X[0] @ X[1]
    samples = _samples(_poly(10, 5, [3, 0, 7, 12, 5], internal=9), X, 1000)
    assert np.all(samples[:, 1] == 0)
    keep = [0, 2, 3, 4]
    _assert_unbiased(samples[:, keep], rho ** (np.array(keep) + 1))


def test_exact_when_srht_is_full():
    # m a multiple of the padded length: each block is an isometry
    X = np.random.default_rng(1).standard_normal((5, 16))
    Y = SRHT(16, 32, random_state=0)(X)
    assert_allclose_reordered(Y @ Y.T, X @ X.T)


# ---------------------------------------------------------------- variance
def _var_ratio(make_m, make_4m, X, n_seeds):
    a = _samples(make_m, X, n_seeds)
    b = _samples(make_4m, X, n_seeds, seed0=10_000)
    return a.var(axis=0) / b.var(axis=0)


# Ratio var(m) / var(4m); ideal 4 (slightly more for sampling without
# replacement). With 400 seeds the estimate is within a factor ~1.6.
VAR_CASES = {
    "srht": (_single(SRHT, 512, 4), _single(SRHT, 512, 16), 512),
    "countsketch": (
        _single(CountSketch, 256, 8),
        _single(CountSketch, 256, 32),
        256,
    ),
    "tensorsketch": (
        _single(TensorSketch, 64, 2, 8),
        _single(TensorSketch, 64, 2, 32),
        64,
    ),
    "tensor_srht": (_tensor_srht(64, 8), _tensor_srht(64, 32), 64),
}


@pytest.mark.parametrize("name", sorted(VAR_CASES))
def test_variance_scales_as_one_over_m(name):
    make_m, make_4m, d = VAR_CASES[name]
    ratio = _var_ratio(make_m, make_4m, _pair(d, rho=0.5), 400)
    assert 2.5 <= ratio[0] <= 6.5, ratio


def test_polysketch_variance_scales_as_one_over_m():
    d = 256
    ratio = _var_ratio(_poly(d, 3, 16), _poly(d, 3, 64), _pair(d, rho=0.5), 300)
    assert np.all((ratio >= 2.5) & (ratio <= 6.5)), ratio


@pytest.mark.slow
def test_polysketch_variance_all_degrees_slow():
    # d >> m so that sampling without replacement adds little to the ratio
    d = 2048
    X = _pair(d, rho=0.5)
    ratio = _var_ratio(_poly(d, 6, 32), _poly(d, 6, 128), X, 2000)
    assert np.all((ratio >= 3.0) & (ratio <= 6.0)), ratio
    _assert_unbiased(_samples(_poly(d, 6, 32), X, 2000), 0.5 ** np.arange(1, 7))


# ------------------------------------------------------------- determinism
def _all_sketches(d=12):
    return {
        "srht": SRHT(d, 7, random_state=3),
        "srht_blocks": SRHT(d, 40, random_state=3),
        "tensor_srht": TensorSRHT(d, d, 9, random_state=3),
        "poly": PolySketch(d, 5, [4, 6, 0, 8, 3], random_state=3),
        "count": CountSketch(d, 5, random_state=3),
        "tensorsketch": TensorSketch(d, 3, 8, random_state=3),
    }


def _init_args(S):
    names = {
        SRHT: ("n_features", "n_components"),
        TensorSRHT: ("n_features_1", "n_features_2", "n_components"),
        PolySketch: ("n_features", "degree", "n_components"),
        CountSketch: ("n_features", "n_components"),
        TensorSketch: ("n_features", "degree", "n_components"),
    }[type(S)]
    return {k: getattr(S, k) for k in names}


def _apply(S, X):
    out = S(X, X) if isinstance(S, TensorSRHT) else S(X)
    return out if isinstance(out, list) else [out]


@pytest.mark.smoke
@pytest.mark.parametrize("name", sorted(_all_sketches()))
def test_deterministic_batches_and_pickle(name, monkeypatch):
    X = np.random.default_rng(0).standard_normal((50, 12))
    S = _all_sketches()[name]
    full = _apply(S, X)
    # Bit-identical by design: the same seed twice, and a pickle round trip,
    # on the same rows.
    for a, b in zip(full, _apply(_all_sketches()[name], X)):
        np.testing.assert_array_equal(a, b)
    S2 = pickle.loads(pickle.dumps(S))
    assert "_cache" not in S2.__dict__
    for a, b in zip(full, _apply(S2, X)):
        np.testing.assert_array_equal(a, b)
    # Row batches, also with tiny internal row chunks: roundoff only.
    monkeypatch.setattr(sketches, "_CHUNK_ELEMS_NUMPY", 64)
    parts = [_apply(S, X[i : i + 17]) for i in range(0, 50, 17)]
    for p, ref in enumerate(full):
        assert_allclose_reordered(np.concatenate([q[p] for q in parts]), ref)
    # a different seed gives a different sketch
    other = type(S).__new__(type(S))
    other.__init__(**{**_init_args(S), "random_state": 4})
    assert not np.allclose(_apply(other, X)[0], full[0])


def test_random_state_instance_and_none():
    rs = np.random.RandomState(5)
    a = SRHT(8, 4, random_state=rs)
    b = SRHT(8, 4, random_state=np.random.RandomState(5))
    # The same draws on the same input: bit-identical by design.
    np.testing.assert_array_equal(a(np.eye(8)), b(np.eye(8)))
    assert SRHT(8, 4)(np.eye(8)).shape == (8, 4)


# -------------------------------------------------------------- namespaces
def _namespaces():
    out = [pytest.param("array_api_strict", id="array_api_strict")]
    out.append(pytest.param("torch", id="torch"))
    return out


def _to(name, X):
    if name == "torch":
        torch = pytest.importorskip("torch")
        return torch.asarray(X), lambda a: a.numpy(), torch.Tensor
    xps = pytest.importorskip("array_api_strict")
    return xps.asarray(X), lambda a: np.asarray(a), type(xps.asarray(1.0))


@pytest.mark.parametrize("ns", _namespaces())
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name", sorted(_all_sketches()))
def test_namespaces(name, dtype, ns, dispatch):
    X = np.random.default_rng(0).standard_normal((6, 12)).astype(dtype)
    S = _all_sketches()[name]
    ref = _apply(S, X)
    Xa, back, typ = _to(ns, X)
    got = _apply(S, Xa)
    tol = 1e-4 if dtype == np.float32 else 1e-10
    for r, g in zip(ref, got):
        assert isinstance(g, typ)
        g = back(g)
        assert g.dtype == dtype and r.dtype == dtype
        np.testing.assert_allclose(g, r, rtol=tol, atol=tol * np.abs(r).max(initial=0))


def test_integer_input_is_float64():
    Y = SRHT(4, 3, random_state=0)(np.arange(8).reshape(2, 4))
    assert Y.dtype == np.float64


# ------------------------------------------------------------------ sparse
@pytest.mark.smoke
@pytest.mark.parametrize("fmt", ["csr", "csc", "coo"])
@pytest.mark.parametrize("cls", ["count", "tensorsketch", "srht", "poly"])
def test_sparse_equals_dense(cls, fmt):
    X = sp.random(30, 40, density=0.1, format=fmt, random_state=0)
    S = {
        "count": CountSketch(40, 16, random_state=0),
        "tensorsketch": TensorSketch(40, 3, 16, random_state=0),
        "srht": SRHT(40, 16, random_state=0),
        "poly": PolySketch(40, 3, 16, random_state=0),
    }[cls]
    for a, b in zip(_apply(S, X), _apply(S, X.toarray())):
        assert isinstance(a, np.ndarray)
        assert_allclose_reordered(a, b)


def test_sparse_float32_dtype():
    X = sp.random(5, 40, density=0.2, format="csr", random_state=0, dtype=np.float32)
    assert CountSketch(40, 8, random_state=0)(X).dtype == np.float32
    assert TensorSketch(40, 2, 8, random_state=0)(X).dtype == np.float32


# Input-sparsity time (transform time independent of d at fixed nnz) is a
# timing figure, measured by `python benchmarks/bench_fc.py --parts sparse`,
# not asserted here: wall-clock tests fail on loaded machines.


# ------------------------------------------------------------------ errors
@pytest.mark.parametrize(
    "build, match",
    [
        (lambda: SRHT(0, 4), "n_features"),
        (lambda: SRHT(4, 0), "n_components"),
        (lambda: SRHT(4.5, 2), "n_features must be an integer"),
        (lambda: SRHT(True, 2), "n_features must be an integer"),
        (lambda: TensorSRHT(3, -1, 4), "n_features_2"),
        (lambda: TensorSRHT(3, 3, "4"), "n_components"),
        (lambda: PolySketch(4, 0, 4), "degree"),
        (lambda: PolySketch(4, 2, [4]), "length 1, expected degree=2"),
        (lambda: PolySketch(4, 2, [4, -1]), r"n_components\[1\]"),
        (lambda: PolySketch(4, 2, 0), "n_components"),
        (lambda: PolySketch(4, 2, None), "n_components"),
        (lambda: PolySketch(4, 2, 4, internal_components=0), "internal_components"),
        (lambda: CountSketch(4, 0), "n_components"),
        (lambda: TensorSketch(4, 0, 3), "degree"),
    ],
)
def test_bad_arguments(build, match):
    with pytest.raises(ValueError, match=match):
        build()


def test_wrong_input_width():
    X = np.ones((3, 5))
    for S in _all_sketches(d=4).values():
        with pytest.raises(ValueError, match="features"):
            _apply(S, X)
    with pytest.raises(ValueError, match="features"):
        CountSketch(4, 2, random_state=0)(sp.csr_array(X))
    with pytest.raises(ValueError, match="2-D"):
        SRHT(5, 2, random_state=0)(np.ones(5))
    with pytest.raises(ValueError, match="rows"):
        TensorSRHT(5, 5, 2, random_state=0)(X, X[:2])


def test_empty_input():
    P = PolySketch(4, 2, 3, random_state=0)
    assert [s.shape for s in P(np.ones((0, 4)))] == [(0, 3), (0, 3)]
    assert SRHT(4, 3, random_state=0)(np.ones((0, 4))).shape == (0, 3)


def test_tensor_srht_shared_linear_part_is_unbiased():
    """The SRHT read from the TensorSRHT's spread is unbiased, like the tensor."""
    rng = np.random.RandomState(0)
    u, v = rng.randn(2, 40)
    a, b = rng.randn(2, 7)
    lin, ten = [], []
    for seed in range(400):
        T = TensorSRHT(40, 7, 32, seed, n_linear=24)
        (lu, tu), (lv, tv) = (
            T.linear_and_tensor(u[None], a[None]),
            T.linear_and_tensor(v[None], b[None]),
        )
        lin.append(float((lu @ lv.T)[0, 0]))
        ten.append(float((tu @ tv.T)[0, 0]))
        assert_allclose_reordered(tu, T(u[None], a[None]))
    for samples, target in ((lin, u @ v), (ten, (u @ v) * (a @ b))):
        se = np.std(samples) / np.sqrt(len(samples))
        assert abs(np.mean(samples) - target) < 5 * se


@pytest.fixture
def fft_workers(monkeypatch):
    """Record the worker count each scipy.fft call of the sketches runs with."""
    import scipy.fft

    seen = []

    def recording(fn):
        def wrapped(*args, workers=None, **kwargs):
            # The count scipy uses: the explicit argument, else the context's.
            seen.append(scipy.fft.get_workers() if workers is None else workers)
            return fn(*args, workers=workers, **kwargs)

        return wrapped

    monkeypatch.setattr(scipy.fft, "rfft", recording(scipy.fft.rfft))
    monkeypatch.setattr(scipy.fft, "irfft", recording(scipy.fft.irfft))
    return seen


def test_fft_workers_follow_the_caller(fft_workers):
    """One FFT thread by default, scipy.fft.set_workers where the caller sets it:
    never all cores implicitly (GridSearchCV(n_jobs=-1) would oversubscribe)."""
    import scipy.fft

    from sklearn_ntk import CNTKSketch, NTKSketch

    X = np.random.RandomState(0).randn(6, 9)
    S = sp.random(6, 40, density=0.2, format="csr", random_state=0)
    cases = [
        lambda: SRHT(9, 16, random_state=0)(X),
        lambda: TensorSketch(40, degree=2, n_components=16, random_state=0)(S),
        lambda: NTKSketch(n_components=32, random_state=0).fit_transform(X),
        lambda: CNTKSketch(n_components=32, n_channels=8, random_state=0).fit_transform(
            X
        ),
    ]
    for run in cases:
        fft_workers.clear()
        run()
        assert fft_workers and set(fft_workers) == {1}
        fft_workers.clear()
        with scipy.fft.set_workers(2):
            run()
        assert fft_workers and set(fft_workers) == {2}


def test_main_threads_sets_fft_workers(fft_workers):
    """The command line's --threads reaches the sketches' FFTs."""
    import scipy.fft

    from sklearn_ntk.__main__ import _threads

    with _threads(3):
        assert scipy.fft.get_workers() == 3
        SRHT(9, 16, random_state=0)(np.ones((2, 9)))
    assert set(fft_workers) == {3}
    assert scipy.fft.get_workers() == 1
