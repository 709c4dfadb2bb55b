"""NNGPSketch / NTKSketch as scikit-learn transformers."""

import pickle

import numpy as np
import pytest
import scipy.sparse as sp
from conftest import assert_allclose_reordered, run_estimator_check
from sklearn.base import clone
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression, Ridge, RidgeClassifier
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from sklearn_ntk import (
    CNNGPSketch,
    CNTKSketch,
    NNGPSketch,
    NTKSketch,
    activations,
    nngp_kernel,
    ntk_kernel,
)
from sklearn_ntk.montecarlo import monte_carlo_features


@parametrize_with_checks(
    [
        NNGPSketch(n_components=64, random_state=0),
        NTKSketch(n_components=64, random_state=0),
    ]
)
@pytest.mark.smoke
def test_sklearn_compatible(estimator, check):
    run_estimator_check(estimator, check)


def _rel_fro(Z, K):
    return np.linalg.norm(Z @ Z.T - K) / np.linalg.norm(K)


def _data(n=120, d=8, seed=0):
    rng = np.random.RandomState(seed)
    X = rng.randn(n, d)
    return (
        X
        * rng.uniform(0.3, 3, size=(n, 1))
        / np.linalg.norm(X, axis=1, keepdims=True)
        * np.sqrt(d)
    )


@pytest.mark.parametrize(
    "Est, kernel", [(NNGPSketch, nngp_kernel), (NTKSketch, ntk_kernel)]
)
@pytest.mark.parametrize(
    "act",
    # tanh's exact kernel integrates numerically at every layer: slow for now.
    ["relu", "erf", "gelu", "sin", pytest.param("tanh", marks=pytest.mark.slow)],
)
@pytest.mark.parametrize("depth", [1, 3])
def test_kernel_approximation_beats_monte_carlo(Est, kernel, act, depth):
    """Relative Frobenius error no worse than a random finite network's features.

    Both are averaged over 3 seeds at the same number of output features; the
    benchmark (benchmarks/bench_fc.py) runs the full-size version.
    """
    X = _data()
    kw = dict(act=act, depth=depth, W_std=1.5, b_std=0.1)
    K = kernel(X, **kw)
    m = 1024
    ours = np.mean(
        [
            _rel_fro(Est(n_components=m, random_state=s, **kw).fit_transform(X), K)
            for s in range(3)
        ]
    )
    mc = np.mean(
        [
            _rel_fro(
                monte_carlo_features(
                    X, n_components=m, ntk=Est is NTKSketch, random_state=s, **kw
                ),
                K,
            )
            for s in range(3)
        ]
    )
    assert ours <= mc, (ours, mc)
    if act != "sin":  # sin's kernel is nearly diagonal: every random map is noisy
        # m = 1024 only; depth-3 NTK compounds three layers of sketch noise.
        assert ours < (0.1 if depth == 1 else 0.25)


def test_error_falls_with_n_components():
    X = _data(d=16)
    K = ntk_kernel(X, act="erf", depth=2)
    errs = [
        np.mean(
            [
                _rel_fro(
                    NTKSketch(
                        act="erf", depth=2, n_components=m, random_state=s
                    ).fit_transform(X),
                    K,
                )
                for s in range(3)
            ]
        )
        for m in (256, 1024, 4096)
    ]
    assert errs[0] > errs[1] > errs[2]
    # Monte-Carlo-like rate: 4x the features halves the error, within slack.
    assert errs[0] / errs[2] > 2.5


def test_zero_and_extreme_rows_are_finite():
    X = _data(n=6)
    X[0] = 0
    X[1] *= 1e-8
    X[2] *= 1e4
    for act in ("relu", "erf", "tanh", "gelu", "sin"):
        for Est in (NNGPSketch, NTKSketch):
            Z = Est(
                act=act, depth=3, n_components=128, b_std=0.1, random_state=0
            ).fit_transform(X)
            assert np.all(np.isfinite(Z))


@pytest.mark.smoke
def test_reproducible_batch_invariant_and_pickle():
    X = _data(n=50)
    est = NTKSketch(act="gelu", depth=2, n_components=256, random_state=42).fit(X)
    Z = est.transform(X)
    # Bit-identical by design: clone + refit, and a pickle round trip at the
    # same batch size; other batch sizes reorder float sums (roundoff only).
    np.testing.assert_array_equal(Z, clone(est).fit(X).transform(X))
    assert_allclose_reordered(est.set_params(batch_size=7).transform(X), Z)
    np.testing.assert_array_equal(
        pickle.loads(pickle.dumps(est)).transform(X), est.transform(X)
    )


@pytest.mark.smoke
def test_float32_and_sparse():
    X = _data(n=40)
    est = NNGPSketch(act="relu", depth=2, n_components=256, random_state=0).fit(X)
    Z32, Z = est.transform(X.astype(np.float32)), est.transform(X)
    assert Z32.dtype == np.float32
    # float32 roundoff through two layers, relative to the features' scale.
    np.testing.assert_allclose(Z32, Z, rtol=2e-3, atol=2e-4 * np.abs(Z).max())
    Xs = sp.random(60, 500, density=0.02, format="csr", random_state=0)
    Zs = NTKSketch(depth=2, n_components=1024, random_state=0).fit_transform(Xs)
    assert Zs.shape == (60, 1024)
    assert _rel_fro(Zs, ntk_kernel(Xs, depth=2)) < 0.25


def test_set_output_and_feature_names():
    pd = pytest.importorskip("pandas")
    X = pd.DataFrame(_data(n=10, d=3), columns=["a", "b", "c"])
    est = NNGPSketch(n_components=5, random_state=0).set_output(transform="pandas")
    out = est.fit_transform(X)
    assert list(out.columns) == [f"nngpsketch{i}" for i in range(5)]
    assert list(est.get_feature_names_out()) == list(out.columns)


def test_pipelines_and_grid_search():
    X, y = load_digits(return_X_y=True)
    X, y = X[:400], y[:400]
    pipe = Pipeline(
        [
            ("scale", StandardScaler()),
            ("ntk", NTKSketch(act="erf", random_state=0)),
            ("ridge", RidgeClassifier()),
        ]
    )
    assert pipe.fit(X[:300], y[:300]).score(X[300:], y[300:]) > 0.85
    logreg = make_pipeline(
        StandardScaler(),
        NNGPSketch(n_components=256, random_state=0),
        LogisticRegression(max_iter=500),
    )
    assert logreg.fit(X[:300], y[:300]).score(X[300:], y[300:]) > 0.8
    grid = GridSearchCV(
        pipe,
        {
            "ntk__depth": [1, 2],
            "ntk__n_components": [128, 256],
            "ntk__act": ["erf", "relu"],
            "ntk__W_std": [1.0, 1.5],
        },
        cv=2,
        n_jobs=2,
    ).fit(X, y)
    assert grid.best_score_ > 0.8
    reg = Pipeline([("ntk", NTKSketch(act="erf")), ("ridge", Ridge())]).fit(
        X, y.astype(float)
    )
    assert reg.score(X, y) > 0.5


def test_activation_objects_and_callables():
    X = _data(n=30)
    leaky = activations.get("leaky_relu", alpha=0.2)
    Z = NNGPSketch(act=leaky, n_components=1024, random_state=0).fit_transform(X)
    assert _rel_fro(Z, nngp_kernel(X, act=leaky)) < 0.05
    Zc = NTKSketch(act=np.tanh, n_components=1024, random_state=0).fit_transform(X)
    assert _rel_fro(Zc, ntk_kernel(X, act=np.tanh)) < 0.05


@pytest.mark.smoke
def test_invalid_parameters():
    X = _data(n=5)
    with pytest.raises(ValueError, match="n_components"):
        NNGPSketch(n_components=0).fit(X)
    with pytest.raises(ValueError, match="act"):
        NNGPSketch(act="nope").fit(X)
    with pytest.raises(ValueError, match="depth"):
        NTKSketch(depth=-1).fit(X)
    est = NNGPSketch(n_components=8).fit(X)
    with pytest.raises(ValueError, match="features"):
        est.transform(np.ones((2, X.shape[1] + 1)))


# ------------------------------------------------ one base, one table, method
def _all_estimators():
    from sklearn_ntk import CNNGPSketch, CNTKSketch

    return [NNGPSketch, NTKSketch, CNNGPSketch, CNTKSketch]


@pytest.mark.smoke
def test_public_estimators_share_one_base_and_one_table():
    import inspect

    from sklearn_ntk.estimators import _PARAMETERS, _BaseNeuralSketch

    classes = _all_estimators()
    for cls in classes:
        assert issubclass(cls, _BaseNeuralSketch)
        # Public estimators never subclass one another.
        assert not any(issubclass(cls, other) for other in classes if other is not cls)
        # Keyword-only __init__ that stores its parameters untouched.
        params = inspect.signature(cls.__init__).parameters
        assert all(
            p.kind is inspect.Parameter.KEYWORD_ONLY
            for name, p in params.items()
            if name != "self"
        )
        with pytest.raises(TypeError):
            cls("relu")
        # The constraints are the entries of the one table, for every parameter.
        est = cls()
        assert set(cls._parameter_constraints) == set(est.get_params())
        for name, constraint in cls._parameter_constraints.items():
            assert constraint is _PARAMETERS[name]
        # One fit: the base's.
        assert "fit" not in cls.__dict__ and "transform" not in cls.__dict__


def _fit_data(cls):
    rng = np.random.RandomState(0)
    return rng.rand(4, 16) if cls.__name__.startswith("C") else rng.randn(4, 5)


@pytest.mark.smoke
@pytest.mark.parametrize("method", ["auto", "hermite", "hybrid", "sparse"])
def test_method_is_validated_stored_and_reaches_the_layers(method):
    from sklearn_ntk.layers.dense import Elementwise

    for cls in _all_estimators():
        est = cls(method=method, n_components=16, random_state=0)
        assert est.get_params()["method"] == method
        est.fit(_fit_data(cls))
        layers = [la for la in est._network().layers if isinstance(la, Elementwise)]
        assert layers and all(la.method == method for la in layers)


@pytest.mark.smoke
@pytest.mark.parametrize("bad", ["Hermite", "exact", "", 3, None])
def test_invalid_method_is_refused_naming_it(bad):
    for cls in _all_estimators():
        with pytest.raises(ValueError, match="'method' parameter"):
            cls(method=bad, n_components=16).fit(_fit_data(cls))


def test_methods_are_registered_in_one_place():
    """A strategy added to estimators.METHODS is accepted by every estimator."""
    from sklearn_ntk import estimators

    for cls in _all_estimators():
        with pytest.raises(ValueError, match="'method' parameter"):
            cls(method="a_new_rule")._validate_params()
    estimators.METHODS.add("a_new_rule")
    try:
        for cls in _all_estimators():
            cls(method="a_new_rule")._validate_params()
    finally:
        estimators.METHODS.discard("a_new_rule")


@pytest.mark.parametrize("cls", [CNNGPSketch, CNTKSketch])
def test_homogeneous_method_is_refused_by_the_conv_sketches(cls):
    with pytest.raises(ValueError, match='method="homogeneous"'):
        cls(method="homogeneous", n_components=16).fit(_fit_data(cls))
