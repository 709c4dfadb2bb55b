"""Smoke tests: the public API end to end, on the required dependencies only.

Every test marked ``smoke`` (here and in the other files) needs nothing but
NumPy, SciPy and scikit-learn, so that ``python -m pytest -m smoke`` can run
against the declared minimum versions of those (as .ci/run does).
"""

import pickle

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import load_digits
from sklearn.linear_model import RidgeClassifier
from sklearn.pipeline import make_pipeline

from sklearn_ntk import (
    CNNGPSketch,
    CNTKSketch,
    NNGPSketch,
    NTKSketch,
    nngp_kernel,
    ntk_kernel,
)

pytestmark = pytest.mark.smoke

ESTIMATORS = [
    NNGPSketch(n_components=256, random_state=0),
    NTKSketch(act="erf", depth=2, n_components=256, random_state=0),
    CNNGPSketch(
        architecture="conv_stack",
        depth=1,
        readout="flatten",
        n_channels=16,
        n_components=256,
        random_state=0,
    ),
    CNTKSketch(
        architecture="conv_stack",
        depth=2,
        n_channels=16,
        n_components=256,
        random_state=0,
    ),
]


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return X[:300] / 16, y[:300]


@pytest.mark.parametrize("est", ESTIMATORS, ids=lambda e: type(e).__name__)
def test_pipeline_fit_score_pickle(est, digits):
    """Each estimator feeds a classifier; the fitted pipeline pickles.

    Accuracy on 100 held-out digits (200 for training) is 0.93 to 0.96 with
    these seeds; 0.85 leaves room for another machine's roundoff.
    """
    X, y = digits
    model = make_pipeline(clone(est), RidgeClassifier(alpha=1e-2))
    model.fit(X[:200], y[:200])
    assert model.score(X[200:], y[200:]) > 0.85
    dec = model.decision_function(X[200:])
    again = pickle.loads(pickle.dumps(model))
    # A pickle round trip at the same batch size: bit-identical by design.
    np.testing.assert_array_equal(again.decision_function(X[200:]), dec)


@pytest.mark.parametrize("scale", [1e-3, 1.0, 1e3])
def test_exact_relu_kernels_closed_form(scale):
    """Orthogonal rows: the off-diagonal is E[relu(u)] E[relu(v)] = s^2 / (2 pi).

    With ``x = s e1``, ``y = 2 s e2`` and d = 2, ``u ~ N(0, s^2 / 2)`` and
    ``v ~ N(0, 2 s^2)`` are independent, and ``E[relu(N(0, t))] =
    sqrt(t / (2 pi))``; the diagonal is half the input variance (NNGP) and
    the input variance (NTK, depth 1).
    """
    X = scale * np.array([[1.0, 0.0], [0.0, 2.0]])
    off = scale**2 / (2 * np.pi)
    K = nngp_kernel(X, act="relu", depth=1)
    T = ntk_kernel(X, act="relu", depth=1)
    var = scale**2 * np.array([0.5, 2.0])
    np.testing.assert_allclose(K, [[var[0] / 2, off], [off, var[1] / 2]], rtol=1e-14)
    np.testing.assert_allclose(T, [[var[0], off], [off, var[1]]], rtol=1e-14)
