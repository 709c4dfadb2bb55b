"""The homogeneous-dual sketch: one feature map of the whole network.

References independent of the code under test: the layer-by-layer exact
kernels (``nngp_kernel`` / ``ntk_kernel``), mpmath Taylor coefficients of the
closed-form arc-cosine duals, and Monte-Carlo averages over sketch seeds.
"""

import math

import numpy as np
import pytest
import scipy.sparse as sp
from conftest import assert_allclose_reordered
from sklearn.utils.estimator_checks import parametrize_with_checks

from sklearn_ntk import NNGPSketch, NTKSketch, activations, nngp_kernel, ntk_kernel
from sklearn_ntk.homogeneous import (
    HomogeneousSketch,
    allocate_features,
    choose_n_components,
    homogeneous_series,
    statistical_dimension_of_kernel,
)

ACTS = [
    "relu",
    "abs",
    activations.get("leaky_relu", alpha=0.2),
    activations.get("rectified_monomial", degree=2),
    "step",
    "sign",
    activations.get("monomial", degree=3),
    "exp_normalized",
]


def _pair_kernel(act, depth, ntk, rho, scale_x=1.7, scale_y=0.6, W_std=1.3):
    """Exact kernel of x = s_x e_1 and y = s_y (rho, sqrt(1 - rho^2)), one pair
    per rho, from the package's layer-by-layer kernels."""
    kernel = ntk_kernel if ntk else nngp_kernel
    Y = scale_y * np.stack([rho, np.sqrt(1 - rho * rho)], axis=1)
    X = np.array([[scale_x, 0.0]])
    return kernel(X, Y, act=act, depth=depth, W_std=W_std)[0]


@pytest.mark.parametrize("act", ACTS, ids=str)
@pytest.mark.parametrize("depth", [0, 1, 2, 3])
@pytest.mark.parametrize("ntk", [False, True])
def test_series_matches_exact_kernel(act, depth, ntk):
    # Sum of the composed series times the scales R(x) R(y) against the
    # closed-form kernel of the package, |rho| <= 0.8 where 256 terms converge
    # (0.8^256 ~ 1e-25; coefficient sums are bounded by the total).
    act = activations.get(act)
    W = 1.3
    s = homogeneous_series(act, depth, ntk=ntk, W_std=W)
    rho = np.linspace(-0.8, 0.8, 17)
    sx, sy = 1.7, 0.6
    k = act.homogeneous_degree
    r0x, r0y = W * sx / math.sqrt(2), W * sy / math.sqrt(2)
    R = math.exp(2 * s.log_scale) * (r0x * r0y) ** (k**depth)
    got = R * s(rho)
    want = _pair_kernel(act, depth, ntk, rho, sx, sy, W)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12 * R * s.total_plus)


@pytest.mark.parametrize("act", ACTS, ids=str)
@pytest.mark.parametrize("ntk", [False, True])
def test_folded_series_exact_at_ends_and_bounded(act, ntk):
    act = activations.get(act)
    s = homogeneous_series(act, 3, ntk=ntk)
    assert (s.coef >= 0).all()
    for q in (1, 2, 5, 8, 17):
        c = s.folded(q)
        assert (c >= 0).all() and c.size == q + 1
        ends = np.polynomial.polynomial.polyval(np.array([1.0, -1.0]), c)
        np.testing.assert_allclose(ends, [s.total_plus, s.total_minus], atol=1e-13)
        # The folded polynomial differs from the full series by at most the
        # tail mass (both are sums of nonnegative coefficients times |rho^n| <= 1).
        rho = np.linspace(-0.8, 0.8, 9)
        assert np.all(np.abs(s(rho, q) - s(rho)) <= 2 * s.tail_mass(q) + 1e-13)


@pytest.mark.parametrize("name", ["relu", "abs"])
def test_coefficients_match_mpmath(name):
    mp = pytest.importorskip("mpmath")
    mp.mp.dps = 40
    pi = mp.pi
    if name == "relu":  # arc-cosine kernel of degree 1, normalized: F(1) = 1

        def F(r):
            return (mp.sqrt(1 - r * r) + (pi - mp.acos(r)) * r) / pi

        def G(r):
            return (pi - mp.acos(r)) / pi
    else:

        def F(r):
            return 2 / pi * (mp.sqrt(1 - r * r) + r * mp.asin(r))

        def G(r):
            return 2 / pi * mp.asin(r)

    def nngp(r):
        return F(F(r))

    def ntk(r):
        return F(F(r)) + G(F(r)) * (F(r) + G(r) * r)

    for fun, is_ntk in ((nngp, False), (ntk, True)):
        want = np.array([float(c) for c in mp.taylor(fun, 0, 8)])
        got = homogeneous_series(name, 2, ntk=is_ntk).coef[:9]
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize(
    "act", ["relu", activations.get("rectified_monomial", degree=2)]
)
@pytest.mark.parametrize("b_std", [0.0, 0.7])
@pytest.mark.parametrize("depth", [0, 1, 2])
@pytest.mark.parametrize("ntk", [False, True])
def test_exact_kernel_matches_package(act, b_std, depth, ntk):
    if b_std and depth >= 2:
        pytest.skip("refused, see test_refusals")
    X = np.random.RandomState(0).randn(9, 4) * np.array([[0.1], [3.0]] * 4 + [[1]])
    X[3] = 0.0  # zero row: R = 0 for degree >= 1
    S = HomogeneousSketch(act, depth, 4, 64, ntk=ntk, W_std=1.2, b_std=b_std)
    kernel = ntk_kernel if ntk else nngp_kernel
    K = kernel(X, act=act, depth=depth, W_std=1.2, b_std=b_std)
    assert_allclose_reordered(S.exact_kernel(X), K, ulps=64)
    assert_allclose_reordered(S.exact_kernel(sp.csr_matrix(X)), K, ulps=64)


def test_allocation_sums_to_budget_and_prefers_exact():
    c = np.array([0.3, 0.5, 0.15, 0.0, 0.04, 0.0, 0.01])
    m, exact = allocate_features(c, 1000, {1: 10, 2: 55})
    assert m.sum() == 1000 and m[0] == 0 and m[3] == m[5] == 0
    assert exact == {1, 2} and m[1] == 10 and m[2] == 55
    m, exact = allocate_features(c, 100, {1: 5000})
    assert m.sum() == 100 and exact == set() and (m[[1, 2, 4, 6]] > 0).all()


@pytest.mark.parametrize("sparse", [False, True])
def test_features_unbiased(sparse):
    # Mean of <Z(x), Z(y)> over 300 independent draws (64 features each: the
    # degrees >= 3 are sketched, and degree 1 and 2 too for d=40) against the
    # folded-series kernel, within 5 standard errors of that mean.
    rng = np.random.RandomState(1)
    X = rng.randn(3, 40)
    X[1] = 0.6 * X[0] + 0.8 * X[1]
    Xin = sp.csr_matrix(X) if sparse else X
    draws = []
    for seed in range(300):
        S = HomogeneousSketch(
            "relu", 2, 40, 64, ntk=True, max_degree=6, sparse=sparse, random_state=seed
        )
        Z = S(Xin)
        draws.append((Z @ Z.T)[np.triu_indices(3)])
    draws = np.array(draws)
    # The kernel the features target: the series folded at the chosen degree.
    G = X @ X.T / 40
    nrm = np.sqrt(np.diag(G))
    rho = G / np.outer(nrm, nrm)
    R = np.exp(S.series_.log_scale) * nrm
    target = (np.outer(R, R) * S.series_(rho, S.degree_))[np.triu_indices(3)]
    se = draws.std(axis=0, ddof=1) / math.sqrt(len(draws))
    assert np.all(np.abs(draws.mean(axis=0) - target) <= 5 * se + 1e-12)


def test_exact_degrees_zero_variance_for_monomial():
    # monomial(2) at depth 1: kappa = (1 + 2 rho^2) / 3, degrees 0 and 2 only;
    # with d=5 both are exact features, so Z Z^T is the exact kernel.
    act = activations.get("monomial", degree=2)
    X = np.random.RandomState(0).randn(6, 5)
    S = HomogeneousSketch(act, 1, 5, 100, random_state=0)
    assert S.exact_degrees_ == {2} and S.n_components == 1 + 15
    Z = S(X)
    assert_allclose_reordered(Z @ Z.T, nngp_kernel(X, act=act, depth=1), ulps=64)


def test_refusals():
    X = np.random.RandomState(0).randn(5, 3)
    with pytest.raises(ValueError, match="b_std"):
        HomogeneousSketch("relu", 2, 3, 64, b_std=0.1)
    with pytest.raises(ValueError, match="homogeneous activation"):
        HomogeneousSketch("erf", 1, 3, 64)
    with pytest.raises(ValueError, match="n_components"):
        HomogeneousSketch("relu", 1, 3, 0)
    X[2] = 0
    with pytest.raises(ValueError, match="zero row"):
        HomogeneousSketch("step", 1, 3, 64)(X)
    with pytest.raises(ValueError, match="b_std"):
        NTKSketch(method="homogeneous", depth=2, b_std=0.1).fit(X)
    with pytest.raises(ValueError, match="method"):
        NTKSketch(n_components="auto").fit(X)


def test_choose_n_components_uses_exact_statistical_dimension():
    X = np.random.RandomState(0).randn(150, 6)
    K = ntk_kernel(X, act="relu", depth=2)
    w = np.linalg.eigvalsh(K)
    lam = 1e-2 * w[-1]
    m, s = choose_n_components(X, act="relu", depth=2, ntk=True, alpha=lam)
    np.testing.assert_allclose(s, np.sum(w / (w + lam)), rtol=1e-9)
    np.testing.assert_allclose(s, statistical_dimension_of_kernel(K, lam), rtol=1e-9)
    assert m == max(64, math.ceil(6 * s / 0.25))


@pytest.mark.parametrize("Est", [NNGPSketch, NTKSketch])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_estimator_dense_and_sparse(Est, dtype):
    X = np.random.RandomState(0).randn(60, 8).astype(dtype)
    kernel = ntk_kernel if Est is NTKSketch else nngp_kernel
    K = kernel(X.astype(np.float64), act="abs", depth=2)
    for Xin in (X, sp.csr_matrix(X)):
        est = Est(act="abs", depth=2, method="homogeneous", n_components=512)
        Z = est.set_params(random_state=0).fit_transform(Xin)
        assert Z.dtype == dtype and Z.shape == (60, est.sketch_.n_components)
        # 512 features on 60 points: a loose bound, about 5x the measured error.
        assert np.linalg.norm(Z @ Z.T - K) / np.linalg.norm(K) < 0.15


def test_estimator_auto_n_components():
    X = np.random.RandomState(0).randn(80, 5)
    est = NTKSketch(
        depth=2, method="homogeneous", n_components="auto", alpha=1.0, random_state=0
    ).fit(X)
    m, s = choose_n_components(X, depth=2, ntk=True, alpha=1.0, random_state=0)
    assert est.n_components_ == m and est.statistical_dimension_ == s
    assert est.transform(X).shape[1] == est.sketch_.n_components


def test_degree_changes_homogeneous_features():
    X = np.random.RandomState(0).randn(10, 4)
    Z = [
        NTKSketch(depth=2, method="homogeneous", degree=q, n_components=1024)
        .set_params(random_state=0)
        .fit_transform(X)
        for q in (3, 8)
    ]
    assert not np.allclose(Z[0], Z[1])


@pytest.mark.parametrize("ns", ["array_api_strict", "torch"])
def test_namespaces_same_features(ns, dispatch):
    X = np.random.RandomState(0).randn(12, 7)
    S = HomogeneousSketch("relu", 2, 7, 300, ntk=True, random_state=0)
    ref = S(X)
    if ns == "torch":
        torch = pytest.importorskip("torch")
        Z = S(torch.asarray(X)).numpy()
    else:
        xps = pytest.importorskip("array_api_strict")
        Z = np.asarray(S(xps.asarray(X)))
    np.testing.assert_allclose(Z, ref, rtol=1e-10, atol=1e-10 * np.abs(ref).max())


@parametrize_with_checks(
    [
        NNGPSketch(method="homogeneous", n_components=64, random_state=0),
        NTKSketch(method="homogeneous", n_components=64, random_state=0),
    ]
)
def test_sklearn_compatible_homogeneous(estimator, check):
    from conftest import run_estimator_check

    run_estimator_check(estimator, check)


def test_single_feature_unbiased():
    # n_components=1: the two drawn features are combined with random signs.
    # Mean over 400 draws within 5 standard errors of the folded kernel.
    rng = np.random.RandomState(2)
    X = rng.randn(2, 6)
    vals = []
    for seed in range(400):
        S = HomogeneousSketch("relu", 1, 6, 1, random_state=seed)
        Z = S(X)
        assert Z.shape == (2, 1)
        vals.append(float(Z[0, 0] * Z[1, 0]))
    G = X @ X.T / 6
    nrm = np.sqrt(np.diag(G))
    R = np.exp(S.series_.log_scale) * nrm
    target = R[0] * R[1] * S.series_(G[0, 1] / nrm[0] / nrm[1], S.degree_)
    se = np.std(vals, ddof=1) / math.sqrt(len(vals))
    assert abs(np.mean(vals) - target) <= 5 * se


@pytest.mark.parametrize("sparse", [False, True])
def test_row_chunks_same_features(sparse, monkeypatch):
    import sklearn_ntk.homogeneous as hom

    X = np.random.RandomState(0).randn(50, 7)
    Xin = sp.csr_matrix(X) if sparse else X
    S = HomogeneousSketch("relu", 2, 7, 300, ntk=True, sparse=sparse, random_state=0)
    ref = S(Xin)
    monkeypatch.setattr(hom, "_CHUNK_FLOATS", S._row_floats() * 7)  # 8 chunks
    # Rows are independent; chunks may change the FFT batch, so to reordering.
    assert_allclose_reordered(S(Xin), ref)
