"""The convolutional sketches are unbiased and within 1.5x of the ideal error.

A reduced version of ``benchmarks/conv_accuracy.py`` (which covers five
activations, digits and the oracle's inputs, two widths): six digits on
Myrtle-5, ``n_components=512``, 20 seeds per case.  Statistical statements:

* unbiased: the seed mean of ``sum_ij (Z Z^T - K)_ij`` is within 4 standard
  errors (seed standard deviation / sqrt(20)) of 0; the diagonal is exact
  (the output norms are the exact ``K(x, x)`` on images this small);
* error: the seed mean of ``||Z Z^T - K||_F / ||K||_F`` is at most ``1.5 *
  sqrt((1 + tr(K)^2 / ||K||_F^2) / m)``.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.datasets import load_digits

from sklearn_ntk.conv_estimators import CNNGPSketch, CNTKSketch
from sklearn_ntk.convolutional import cnngp_kernel, cntk_kernel

SEEDS = 20
M = 512


@pytest.fixture(scope="module")
def digits():
    return (load_digits().data[:6] / 16).reshape(6, 8, 8, 1)


@pytest.mark.parametrize(
    "act, est_cls, kernel",
    [
        ("relu", CNNGPSketch, cnngp_kernel),
        ("exp_normalized", CNTKSketch, cntk_kernel),
        # Numerically integrated duals: seconds per case.
        pytest.param("tanh", CNNGPSketch, cnngp_kernel, marks=pytest.mark.slow),
        pytest.param("gelu", CNTKSketch, cntk_kernel, marks=pytest.mark.slow),
        pytest.param("erf", CNTKSketch, cntk_kernel, marks=pytest.mark.slow),
    ],
)
def test_unbiased_and_within_ideal_error(digits, act, est_cls, kernel):
    K = np.asarray(kernel(digits, act=act))
    sums, errs = [], []
    for seed in range(SEEDS):
        Z = est_cls(act=act, n_components=M, random_state=seed).fit_transform(digits)
        D = Z @ Z.T - K
        # Exact output norms: the diagonal is K's up to rounding.
        np.testing.assert_allclose(np.diag(Z @ Z.T), np.diag(K), rtol=1e-10)
        sums.append(D.sum())
        errs.append(np.linalg.norm(D) / np.linalg.norm(K))
    sums = np.array(sums)
    se = sums.std(ddof=1) / math.sqrt(SEEDS)
    assert abs(sums.mean()) <= 4 * se, (sums.mean(), se)
    ideal = math.sqrt((1 + np.trace(K) ** 2 / np.sum(K * K)) / M)
    assert np.mean(errs) <= 1.5 * ideal, (np.mean(errs), ideal)


def test_output_norms_only_where_cheap():
    """Exact output norms where the pixels are at most twice the hidden width;
    elsewhere the features' norms are sketched (and not exact)."""
    from sklearn_ntk.conv_estimators import exact_output_norms

    assert exact_output_norms((8, 8, 1), 32)
    assert not exact_output_norms((32, 32, 3), 256)
    X = np.random.RandomState(0).rand(3, 12, 12, 1)
    K = np.diag(cnngp_kernel(X))
    for channels, exact in ((72, True), (32, False)):
        Z = CNNGPSketch(n_components=256, n_channels=channels, random_state=0).fit(X)
        dev = np.max(np.abs(np.sum(Z.transform(X) ** 2, axis=1) / K - 1))
        assert (dev <= 1e-10) == exact, (channels, dev)


@pytest.mark.parametrize("est_cls", [CNNGPSketch, CNTKSketch])
def test_fit_warns_with_the_expected_error(est_cls):
    """Too few features for the network: ``fit`` warns, naming the estimate
    (measured against the exact kernel on the training images)."""
    X = np.random.RandomState(0).randn(8, 12, 12, 1)
    est = est_cls(
        act="tanh",
        architecture="conv_stack",
        depth=3,
        n_components=8,
        n_channels=2,
        random_state=0,
    )
    with pytest.warns(UserWarning, match="estimated at") as record:
        est.fit(X)
    assert est.error_estimate_ > 0.5
    assert f"{est.error_estimate_:.3g}" in str(record[0].message)
