"""CNNGPSketch / CNTKSketch: accuracy against the exact kernels, sklearn API."""

import pickle

import numpy as np
import pytest
from conftest import (
    assert_allclose_reordered,
    kernel_kwargs_from_case,
    run_estimator_check,
)
from sklearn.base import clone
from sklearn.datasets import load_digits
from sklearn.linear_model import RidgeClassifier
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.utils.estimator_checks import parametrize_with_checks

from sklearn_ntk.conv_estimators import CNNGPSketch, CNTKSketch
from sklearn_ntk.convolutional import cnngp_kernel, cntk_kernel

SMALL = dict(n_components=64, n_channels=16, degree=4)


def _rel_fro(Z, K):
    return np.linalg.norm(Z @ Z.T - K) / np.linalg.norm(K)


@pytest.mark.parametrize("name", ["relu", "exp_normalized"])
def test_sketch_error_on_oracle(oracle, name):
    """Relative Frobenius error <= 0.1 at n_components=4096, every conv oracle case."""
    n_checked = 0
    for case, arr in oracle:
        if case["kind"] not in ("conv_stack", "myrtle") or case["act"]["name"] != name:
            continue
        X = arr["X"]
        kw = dict(
            **kernel_kwargs_from_case(case),
            image_shape=X.shape[1:],
            n_components=4096,
            random_state=0,
        )
        flat = X.reshape(len(X), -1)
        for kernel, cls in (("nngp", CNNGPSketch), ("ntk", CNTKSketch)):
            err = _rel_fro(cls(**kw).fit_transform(flat), arr[kernel])
            assert err <= 0.1, (case["key"], kernel, err)
            n_checked += 1
    assert n_checked == 14


def _expected_failures(estimator):
    return {}


# scikit-learn's checks pass rows of any width: image_shape=(1, -1, 1) reads
# them as 1 x d x 1 signals (without it, a non-square width is refused).
SIGNALS = dict(image_shape=(1, -1, 1))


@parametrize_with_checks(
    [
        CNNGPSketch(**SMALL, **SIGNALS),
        CNTKSketch(**SMALL, **SIGNALS),
        CNTKSketch(
            architecture="conv_stack", depth=1, readout="flatten", **SMALL, **SIGNALS
        ),
    ],
    expected_failed_checks=_expected_failures,
)
@pytest.mark.smoke
def test_sklearn_compatible(estimator, check):
    run_estimator_check(estimator, check)


def _images(n=12, seed=0):
    return np.random.RandomState(seed).rand(n, 36)  # 6 x 6 x 1


@pytest.mark.smoke
def test_float32_reproducible_batches_pickle():
    X = _images()
    est = CNTKSketch(random_state=3, **SMALL).fit(X)
    Z = est.transform(X)
    assert Z.shape == (12, 64) and Z.dtype == np.float64
    # Bit-identical by design: clone + refit, and a pickle round trip, at the
    # same batch size.
    np.testing.assert_array_equal(Z, clone(est).fit(X).transform(X))
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(est)).transform(X), Z)
    # Other row batches reorder the float sums: equal to roundoff.
    Z5 = est.set_params(batch_size=5).transform(X)
    assert_allclose_reordered(Z5, Z)
    assert_allclose_reordered(est.transform(X[[4, 0]]), Z[[4, 0]])
    # A pickle round trip keeps batch_size=5: bit-identical to Z5 by design.
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(est)).transform(X), Z5)
    Z32 = est.transform(X.astype(np.float32))
    assert Z32.dtype == np.float32
    np.testing.assert_allclose(Z32, Z, rtol=1e-3, atol=1e-4 * np.abs(Z).max())
    assert not np.allclose(CNTKSketch(random_state=4, **SMALL).fit_transform(X), Z)


@pytest.mark.smoke
def test_image_shape_handling_and_errors():
    X = np.random.RandomState(1).rand(5, 24)
    est = CNNGPSketch(image_shape=(2, 4, 3), **SMALL).fit(X)
    assert est.image_shape_ == (2, 4, 3)
    # A width that is not a perfect square has no unambiguous reading.
    with pytest.raises(ValueError, match=r"24 features .* pass image_shape"):
        CNNGPSketch(**SMALL).fit(X)
    assert CNNGPSketch(image_shape=(1, -1, 1), **SMALL).fit(X).image_shape_ == (
        1,
        24,
        1,
    )
    assert CNNGPSketch(image_shape=(2, 4, -1), **SMALL).fit(X).image_shape_ == (2, 4, 3)
    assert CNNGPSketch(**SMALL).fit(X[:, :16]).image_shape_ == (4, 4, 1)
    assert CNNGPSketch(image_shape=(4, 6), **SMALL).fit(X).image_shape_ == (4, 6, 1)
    with pytest.raises(ValueError, match="image_shape"):
        CNNGPSketch(image_shape=(5, 5, 1)).fit(X)
    with pytest.raises(ValueError, match="image_shape"):
        CNNGPSketch(image_shape=(2, 0, 12)).fit(X)
    with pytest.raises(ValueError, match="image_shape"):
        CNNGPSketch(image_shape=(5, -1, 1)).fit(X)  # 24 is not 5 * k
    with pytest.raises(ValueError, match="image_shape"):
        CNNGPSketch(image_shape=(-1, -1, 1)).fit(X)
    with pytest.raises(ValueError, match="Myrtle depth"):
        CNNGPSketch(depth=3).fit(X[:, :16])
    with pytest.raises(ValueError, match="architecture"):
        CNNGPSketch(architecture="resnet").fit(X[:, :16])
    with pytest.raises(ValueError, match="features"):
        est.transform(X[:, :20])


@pytest.mark.parametrize(
    "cls, exact", [(CNNGPSketch, cnngp_kernel), (CNTKSketch, cntk_kernel)]
)
def test_matches_exact_on_digits(cls, exact):
    X = load_digits().data[:40] / 16
    kw = dict(architecture="conv_stack", depth=2, b_std=0.1)
    Z = cls(n_components=2048, n_channels=64, random_state=0, **kw).fit_transform(X)
    assert _rel_fro(Z, exact(X, **kw)) < 0.1


def test_pipeline_and_grid_search():
    X, y = load_digits(return_X_y=True)
    X, y = X[:150] / 16, y[:150]
    pipe = make_pipeline(
        CNTKSketch(architecture="conv_stack", random_state=0, n_channels=16),
        RidgeClassifier(alpha=1e-3),
    )
    grid = GridSearchCV(
        pipe,
        {"cntksketch__depth": [1, 2], "cntksketch__n_components": [128, 256]},
        cv=StratifiedKFold(3),
    )
    grid.fit(X, y)
    assert grid.best_score_ > 0.8
    assert set(grid.best_params_) == {"cntksketch__depth", "cntksketch__n_components"}
    assert grid.predict(X[:5]).shape == (5,)


@pytest.mark.slow
def test_digits_cv_close_to_exact():
    """Myrtle-5 CNTKSketch + ridge within 1 point of exact kernel ridge (5-fold CV)."""
    X, y = load_digits(return_X_y=True)
    X = X / 16
    alpha = 1e-4
    Z = CNTKSketch(n_components=4096, random_state=0).fit_transform(X)
    K = cntk_kernel(X, n_jobs=-1)
    acc_s, acc_e = [], []
    for tr, te in StratifiedKFold(5, shuffle=True, random_state=0).split(X, y):
        clf = RidgeClassifier(alpha=alpha, fit_intercept=False).fit(Z[tr], y[tr])
        acc_s.append(np.mean(clf.predict(Z[te]) == y[te]))
        T = np.where(y[tr, None] == np.arange(10), 1.0, -1.0)
        coef = np.linalg.solve(K[np.ix_(tr, tr)] + alpha * np.eye(len(tr)), T)
        acc_e.append(np.mean(np.argmax(K[np.ix_(te, tr)] @ coef, axis=1) == y[te]))
    assert np.mean(acc_s) >= np.mean(acc_e) - 0.01


@pytest.mark.smoke
@pytest.mark.parametrize("cls", [CNNGPSketch, CNTKSketch])
def test_image_arrays_match_flat_rows(cls):
    """(n, H, W, C) and (n, H, W) arrays give the features of their flat rows."""
    rng = np.random.RandomState(0)
    X4 = rng.rand(6, 5, 4, 3)
    flat = X4.reshape(6, -1)
    est = cls(random_state=0, **SMALL).fit(X4)
    assert est.image_shape_ == (5, 4, 3) and est.n_features_in_ == 60
    ref = cls(image_shape=(5, 4, 3), random_state=0, **SMALL).fit(flat)
    # The same float operations on the same values: bit-identical by design.
    np.testing.assert_array_equal(est.transform(X4), ref.transform(flat))
    np.testing.assert_array_equal(est.transform(flat), ref.transform(flat))
    names = est.get_feature_names_out()
    assert names[0] == f"{cls.__name__.lower()}0" and len(names) == 64
    # image_shape, when given, must match the images.
    assert cls(image_shape=(5, 4, 3), **SMALL).fit(X4).image_shape_ == (5, 4, 3)
    with pytest.raises(ValueError, match="does not match"):
        cls(image_shape=(4, 5, 3), **SMALL).fit(X4)
    # Images of another shape at transform, even with the same width.
    with pytest.raises(ValueError, match=r"images of shape \(4, 5, 3\)"):
        est.transform(X4.reshape(6, 4, 5, 3))
    # Single-channel images, (n, H, W).
    X3 = rng.rand(6, 7, 7)
    est3 = cls(random_state=0, **SMALL).fit(X3)
    assert est3.image_shape_ == (7, 7, 1) and est3.n_features_in_ == 49
    np.testing.assert_array_equal(est3.transform(X3), est3.transform(X3.reshape(6, 49)))
    np.testing.assert_array_equal(est3.transform(X3), est3.transform(X3[..., None]))
    with pytest.raises(ValueError, match=r"dim 5|dimension"):
        est3.transform(X3[:, None, :, :, None])


def test_cifar_size_rows_without_shape_are_refused():
    """Rows of 32 x 32 x 3 values are not read as 1 x 3072 x 1 images."""
    X = np.random.RandomState(0).rand(2, 3072)
    with pytest.raises(ValueError, match=r"image_shape=\(32, 32, 3\)"):
        CNTKSketch(**SMALL).fit(X)
    est = CNTKSketch(image_shape=(32, 32, 3), **SMALL).fit(X)
    assert est.image_shape_ == (32, 32, 3)


@pytest.mark.smoke
def test_n_channels_auto_follows_n_components():
    """n_channels="auto" (the default) derives the hidden width from
    n_components, so that tuning n_components tunes the accuracy; an explicit
    width is kept.  The accuracy itself: benchmarks/bench_cntk_components.py."""
    from sklearn_ntk.conv_estimators import auto_channels

    assert CNTKSketch().n_channels == "auto"
    widths = [auto_channels(m) for m in (1, 512, 1024, 4096, 8192, 1 << 20)]
    assert widths == [32, 32, 64, 256, 512, 1024]
    X = np.random.RandomState(0).rand(3, 16)
    for m in (512, 2048):
        est = CNTKSketch(n_components=m, random_state=0).fit(X)
        assert est.n_channels_ == auto_channels(m)
        assert est._min_bytes_per_row() >= 8 * 16 * 9 * est.n_channels_
    assert CNTKSketch(n_components=2048, n_channels=24).fit(X).n_channels_ == 24
    with pytest.raises(ValueError, match="'n_channels' parameter"):
        CNTKSketch(n_channels="wide").fit(X)
