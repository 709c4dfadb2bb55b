"""Tests for sklearn_ntk.activations (duals, Hermite coefficients, API)."""

from __future__ import annotations

import copy
import json
import pickle
from pathlib import Path

import numpy as np
import pytest
from sklearn.base import clone

from sklearn_ntk import activations as A
from sklearn_ntk._hermite import gauss_hermite, hermite_normalized

DATA = Path(__file__).parent / "data"

# One instance per activation (non-default parameters where they matter).
POINTWISE = [
    A.get("relu"),
    A.get("leaky_relu", alpha=0.1),
    A.get("abs"),
    A.get("step"),
    A.get("sign"),
    A.get("erf"),
    A.get("erf", a=1.3, b=0.7, c=0.2),
    A.get("gelu"),
    A.get("sin"),
    A.get("sin", a=0.7, b=1.3, c=0.4),
    A.get("cos", a=0.7, b=1.3, c=0.4),
    A.get("gaussian"),
    A.get("gaussian", a=1.2, b=0.1),
    A.get("exp"),
    A.get("exp", a=0.5, b=-0.8),
    A.get("rbf", gamma=0.7),
    A.get("gabor"),
    A.get("monomial", degree=3),
    A.get("rectified_monomial", degree=2),
    A.get("rectified_monomial", degree=3),
    A.get("polynomial", coef=(0.1, -0.5, 0.3, 0.2)),
    A.get("hermite", degree=4),
    A.get("identity"),
    A.get("tanh"),
    A.get("sigmoid"),
    A.get("softplus"),
    A.get("silu"),
    A.get("elu", alpha=0.7),
    A.get("selu"),
    A.get("mish"),
    A.Numerical(np.arctan),
]
ALL = [*POINTWISE, A.get("exp_normalized", gamma=0.8)]
CLOSED_FORM = [a for a in POINTWISE if not isinstance(a, A._Quadrature)]
# σ (or σ') jumps at 0: Gauss-Hermite converges only algebraically.
KINKED = {"relu", "leaky_relu", "abs", "step", "sign", "rectified_monomial"}
# σ itself discontinuous: b_n from integration by parts is a Dirac term.
ZERO_DERIV = {"step", "sign"}
# σ' jumps at 0 (no closed-form dual): Hermite coefficients decay algebraically.
KINKED_NUMERICAL = {"elu", "selu"}


def _id(act):
    return repr(act)[:40]


# (kxx, kxy, kyy): unequal scales, rho near and at +-1, negative rho.
LAMBDAS = np.array(
    [
        [1.0, 0.5, 1.0],
        [0.3, -0.2, 2.0],
        [1.5, 0.999999 * np.sqrt(1.05), 0.7],
        [1.0, 1.0, 1.0],
        [1.0, -1.0, 1.0],
        [2.0, -1.9, 2.0],
        [0.7, 0.0, 0.4],
    ]
)


def _diag_scale(act, k):
    S, Sd = act.dual(k, k, k)
    return np.abs(S), np.abs(Sd)


# --------------------------------------------------------------------------- #
# Oracle (neural-tangents 0.6.5)
# --------------------------------------------------------------------------- #
def _oracle_cases():
    cases = json.loads((DATA / "oracle.json").read_text())
    return [c for c in cases if c["kind"] == "fc"]


@pytest.fixture(scope="module")
def oracle_arrays():
    with np.load(DATA / "oracle.npz") as z:
        return {k: z[k] for k in z.files}


def _act_from_case(case):
    params = {
        k: v for k, v in case["act"].items() if k not in ("name", "formula", "note")
    }
    return A.get(case["act"]["name"], **params)


@pytest.mark.parametrize("case", _oracle_cases(), ids=lambda c: c["key"])
def test_fc_oracle(case, oracle_arrays):
    """K^L, Θ^L from our dual vs neural-tangents (rel. max error <= 1e-8).

    The diagonal (ρ = 1) is held to the same bound: arcsin/arccos kernels
    are sensitive there like sqrt(eps) ~ 1.5e-8, which is why the correlation
    is computed so that a self-pair gets ρ = 1 exactly.
    """
    act = _act_from_case(case)
    X = oracle_arrays[case["key"] + "_X"]
    w2, b2 = case["W_std"] ** 2, case["b_std"] ** 2
    K = w2 * X @ X.T / X.shape[1] + b2
    T = K.copy()
    for _ in range(case["depth"]):
        d = np.diag(K).copy()
        S, Sd = act.dual(d[:, None], K, d[None, :])
        K = w2 * S + b2
        T = K + w2 * Sd * T
    tol = 1e-8
    off = ~np.eye(len(K), dtype=bool)
    for ours, key in ((K, "_nngp"), (T, "_ntk")):
        ref = oracle_arrays[case["key"] + key]
        err = np.abs(ours - ref) / np.abs(ref).max()
        if case["act"]["name"] == "tanh":
            # neural-tangents integrated tanh with 120-node Gauss-Hermite,
            # wrong by up to 2e-3 at variances ~18; we are held to the
            # high-precision values of the same cases (nested adaptive
            # quadrature, benchmarks/make_dual_reference.py) and differ from
            # the oracle by the oracle's own error only.
            hp = _tanh_oracle_reference()[f"oracle_{case['key']}{key}"]
            scale = np.abs(hp).max()
            assert np.abs(ours - hp).max() <= 1e-9 * scale, (key, "vs high precision")
            assert np.all(np.abs(ours - ref) <= np.abs(ref - hp) + 1e-9 * scale), key
            continue
        assert err[off].max() <= tol, (key, err[off].max())
        assert np.diag(err).max() <= tol, (key, np.diag(err).max())


def _tanh_oracle_reference():
    with np.load(DATA / "numerical_dual_reference.npz") as z:
        return {k: z[k] for k in z.files if k.startswith("oracle_")}


# --------------------------------------------------------------------------- #
# Closed form vs Gauss-Hermite quadrature
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("act", CLOSED_FORM, ids=_id)
def test_closed_form_matches_quadrature(act):
    """Closed-form duals vs dual_quadrature.

    Smooth activations: 120-node Gauss-Hermite is converged to 1e-14..1e-10
    (checked against 400 nodes), so we require 1e-9 relative to
    sqrt(Σ(x,x)Σ(y,y)).  Kinked activations: GH converges like O(1/n)
    (discontinuous σ or σ') or faster; we require the error to shrink from
    100 to 400 nodes and be below 5e-2 (step/sign), 2e-2 (σ' jumps) at 400.
    Rows with a zero variance are left out for kinked Σ̇: there the closed
    form uses the ρ := 0 convention (the kxx -> 0+ limit), not σ'(0).
    """
    kxx, kxy, kyy = LAMBDAS.T
    S, Sd = act.dual(kxx, kxy, kyy)
    sx, sdx = _diag_scale(act, kxx)
    sy, sdy = _diag_scale(act, kyy)
    scale = np.sqrt(sx * sy) + 1e-300
    dscale = np.maximum(np.sqrt(sdx * sdy), 1e-12)
    if act.name not in KINKED:
        Q, Qd = act.dual_quadrature(kxx, kxy, kyy, n_nodes=120)
        np.testing.assert_array_less(np.abs(S - Q) / scale, 1e-9)
        np.testing.assert_array_less(np.abs(Sd - Qd) / dscale, 1e-9)
        return
    errs = []
    for n in (100, 400):
        Q, Qd = act.dual_quadrature(kxx, kxy, kyy, n_nodes=n)
        errs.append((np.max(np.abs(S - Q) / scale), np.max(np.abs(Sd - Qd) / dscale)))
    bound = 5e-2 if act.name in ZERO_DERIV else 2e-2
    assert errs[1][0] < bound and errs[1][1] < bound, errs
    assert errs[1][0] <= errs[0][0] and errs[1][1] <= errs[0][1] + 1e-15, errs


def test_zero_variance_convention():
    # kxx = 0: u = 0. Smooth: exact E[σ(0) σ(v)]; relu Σ̇ uses ρ := 0 (1/4).
    S, Sd = A.get("relu").dual(0.0, 0.0, 2.0)
    assert S == 0.0 and Sd == 0.25
    S, _ = A.get("step").dual(0.0, 0.0, 2.0)
    assert S == 0.0  # step(0) = 0
    S, Sd = A.get("erf", c=0.3).dual(0.0, 0.0, 2.0)
    assert np.isclose(S, 0.09)


# --------------------------------------------------------------------------- #
# Monte Carlo
# --------------------------------------------------------------------------- #
MC_LAMBDAS = np.array([[1.0, 0.6, 1.0], [0.5, -0.3, 1.7], [1.2, 1.2, 1.2]])


@pytest.mark.parametrize("act", POINTWISE, ids=_id)
def test_monte_carlo(act):
    """Σ, Σ̇ within 5 standard errors of a 200k-sample Monte Carlo mean.

    The standard error is estimated from the samples (seed fixed), so the
    test is deterministic; a correct formula fails it with probability
    ~6e-7 per comparison.  Includes rho = 1 (diagonal, where neural-tangents
    returns NaN for rectified monomials).
    """
    rng = np.random.default_rng(0)
    n = 200_000
    z1, z2 = rng.standard_normal((2, n))
    for kxx, kxy, kyy in MC_LAMBDAS:
        rho = kxy / np.sqrt(kxx * kyy)
        u = np.sqrt(kxx) * z1
        v = np.sqrt(kyy) * (rho * z1 + np.sqrt(max(1 - rho**2, 0.0)) * z2)
        S, Sd = act.dual(kxx, kxy, kyy)
        for samples, value in (
            (act(u) * act(v), S),
            (act.derivative(u) * act.derivative(v), Sd),
        ):
            se = samples.std() / np.sqrt(n)
            assert abs(samples.mean() - value) <= 5 * se + 1e-12, (
                kxx,
                kxy,
                kyy,
                samples.mean(),
                value,
                se,
            )


# --------------------------------------------------------------------------- #
# Hermite coefficients
# --------------------------------------------------------------------------- #
def test_hermite_polynomials_orthonormal():
    z, w = gauss_hermite(80)
    H = hermite_normalized(64, z)
    np.testing.assert_allclose((H * w) @ H.T, np.eye(65), atol=1e-11)
    assert np.all(np.isfinite(hermite_normalized(200, np.array([0.0, 30.0]))))


@pytest.mark.parametrize("act", ALL, ids=_id)
def test_hermite_finite_extreme_scales(act):
    """No NaN/inf at r in {0, 1e-8, 1e4}, degree 64; a_n(0) = σ(0) δ_n0."""
    r = np.array([0.0, 1e-8, 1.0, 1e4])
    if act.name == "exp":
        with pytest.raises(OverflowError, match="overflow"):
            act.hermite(r, 64)
        r = r[:3]
    if act.name == "gaussian" and act.b > 0:
        with pytest.raises(ValueError, match="diverges"):
            act.hermite(r, 64)
        r = r[:3]
    if act.name == "polynomial" or act.name == "hermite":
        r = r[:3]  # |σ(1e4 z)| ~ 1e16: finite, but see the next assert
    a, b = act.hermite(r, 64)
    assert a.shape == b.shape == (len(r), 65)
    assert np.all(np.isfinite(a)) and np.all(np.isfinite(b))
    if act.name != "exp_normalized":
        expected = np.zeros(65)
        expected[0] = act(np.zeros(1))[0]
        np.testing.assert_allclose(a[0], expected, atol=1e-14)


def test_hermite_huge_polynomial_scale_overflow():
    with pytest.raises(OverflowError):
        A.get("hermite", degree=100).hermite([1e4], 3)


PARSEVAL_R = [1e-8, 0.3, 1.0, 3.0]


@pytest.mark.parametrize("act", POINTWISE, ids=_id)
def test_hermite_parseval(act):
    """Σ_{n<=q} a_n(r)² increases to E[σ(rz)²] = Σ(r², r², r²).

    Smooth activations at r <= 1: within 1e-8 at q = 64.  At r = 3 smooth
    activations become steep (tanh(3z) ~ sign) or narrow (exp(-9z²)) and
    converge slowly: deficit <= 0.15 at q = 64 (see docs/hermite_truncation).
    Kinked ones converge algebraically (a_n² ~ n^{-3/2} for step/sign,
    n^{-5/2} for relu, elu, selu): q = 400, deficit <= 5e-2 (step/sign), 1e-3.
    """
    r = np.array(PARSEVAL_R)
    kinked = act.name in KINKED | KINKED_NUMERICAL
    q = 400 if kinked else 64
    if act.name == "gaussian" and act.b > 0:
        r = r[:3]  # needs 1 - 2 b r² > 0 for E[σ(rz)²] (3.0 diverges)
    a, _ = act.hermite(r, q)
    target = act.dual(r**2, r**2, r**2)[0]
    partial = np.cumsum(a**2, axis=1)
    assert np.all(np.diff(partial, axis=1) >= -1e-15 * partial[:, -1:])
    rel = np.abs(partial[:, -1] - target) / np.maximum(np.abs(target), 1e-300)
    if act.name in ZERO_DERIV:
        tol = np.full(len(r), 5e-2)
    elif kinked:
        tol = np.full(len(r), 1e-3)
    else:
        tol = np.where(r <= 1.0, 1e-8, 0.15)
    assert np.all(rel <= tol), rel


@pytest.mark.parametrize(
    "act", [a for a in POINTWISE if a.name not in ZERO_DERIV], ids=_id
)
def test_hermite_integration_by_parts(act):
    """r b_n(r) = sqrt(n+1) a_{n+1}(r) (Gaussian integration by parts)."""
    r = np.array([0.3, 1.0, 3.0])
    if act.name == "gaussian" and act.b > 0:
        r = r[:2]
    a, b = act.hermite(r, 33)
    n = np.arange(33)
    lhs = r[:, None] * b[:, :33]
    rhs = np.sqrt(n + 1.0) * a[:, 1:]
    scale = np.sqrt(act.dual(r**2, r**2, r**2)[0])[:, None]
    np.testing.assert_allclose(lhs / scale, rhs / scale, rtol=0, atol=1e-10)


@pytest.mark.parametrize("act", ALL, ids=_id)
def test_hermite_series_equals_dual(act):
    """Σ_n a_n(rx) a_n(ry) ρ^n = Σ and likewise Σ̇ for |ρ| <= 0.6 (geometric)."""
    rx, ry = np.array([0.5, 1.0, 2.0, 1.3]), np.array([1.0, 1.0, 0.7, 1.3])
    rho = np.array([0.6, -0.4, 0.3, -0.6])
    if act.name == "gaussian" and act.b > 0:
        rx, ry = rx * 0.5, ry * 0.5
    q = 120
    ax, bx = act.hermite(rx, q)
    ay, by = act.hermite(ry, q)
    pw = rho[:, None] ** np.arange(q + 1)
    if isinstance(act, A._Quadrature) and act.name not in ("elu", "selu"):
        # 120-node Gauss-Hermite is only ~3e-6 accurate for Σ̇ of tanh at
        # variance 4; the composite-rule series is the more accurate side.
        # (Even 400 nodes leave ~1e-8 for arctan' = 1/(1+x²), poles near the
        # real axis, hence the looser tolerance below.)
        S, Sd = act.dual_quadrature(rx**2, rho * rx * ry, ry**2, n_nodes=400)
        tol = 1e-7
    else:
        S, Sd = act.dual(rx**2, rho * rx * ry, ry**2)
        tol = 1e-9
    scale = np.sqrt(act.dual(rx**2, rx**2, rx**2)[0] * act.dual(ry**2, ry**2, ry**2)[0])
    np.testing.assert_allclose(
        np.sum(ax * ay * pw, axis=1) / scale, S / scale, rtol=0, atol=tol
    )
    Sdx, Sdy = act.dual(rx**2, rx**2, rx**2)[1], act.dual(ry**2, ry**2, ry**2)[1]
    dscale = np.maximum(np.sqrt(np.abs(Sdx * Sdy)), 1e-12)
    np.testing.assert_allclose(
        np.sum(bx * by * pw, axis=1) / dscale, Sd / dscale, rtol=0, atol=tol
    )


HOMOGENEOUS = [a for a in ALL if a.homogeneous_degree is not None]


@pytest.mark.parametrize("act", HOMOGENEOUS, ids=_id)
def test_homogeneous_scaling(act):
    k = act.homogeneous_degree
    r = np.array([0.5, 1.0, 2.0, 7.0])
    a, b = act.hermite(r, 20)
    np.testing.assert_allclose(a, r[:, None] ** k * a[1], rtol=1e-12, atol=1e-300)
    np.testing.assert_allclose(b, r[:, None] ** (k - 1) * b[1], rtol=1e-12)
    if act.name != "exp_normalized":
        x = np.linspace(-3, 3, 13)
        np.testing.assert_allclose(act(2.5 * x), 2.5**k * act(x), rtol=1e-12)


@pytest.mark.parametrize(
    "act", [a for a in HOMOGENEOUS if a.name != "exp_normalized"], ids=_id
)
def test_homogeneous_closed_form_vs_quadrature(act):
    """Closed-form a_n(1), b_n(1) vs the generic composite Gauss-Legendre path."""
    a, b = act.hermite([1.0, 2.0], 64)
    qa, qb = A.Activation._hermite(act, np.array([1.0, 2.0]), 64)
    np.testing.assert_allclose(qa, a, rtol=0, atol=1e-12 * max(1, np.abs(a).max()))
    if act.name not in ZERO_DERIV:
        np.testing.assert_allclose(qb, b, rtol=0, atol=1e-12 * max(1, np.abs(b).max()))


def test_hermite_saturated_tanh_is_sign():
    """tanh(r z) -> sign(z) as r -> inf: quadrature must resolve the step."""
    a_tanh, _ = A.get("tanh").hermite([1e4], 64)
    a_sign, _ = A.get("sign").hermite([1.0], 64)
    # E[|tanh(rz) - sign(z)|] = O(1/r)
    np.testing.assert_allclose(a_tanh, a_sign, atol=1e-4)
    a_erf, _ = A.get("erf").hermite([1e6], 64)
    np.testing.assert_allclose(a_erf, a_sign, atol=1e-6)


def test_hermite_known_values():
    a, b = A.get("relu").hermite([1.0], 3)
    np.testing.assert_allclose(
        a[0], [1 / np.sqrt(2 * np.pi), 0.5, 1 / np.sqrt(4 * np.pi), 0.0], atol=1e-15
    )
    gamma = 0.8
    a, b = A.get("exp_normalized", gamma=gamma).hermite([2.0], 5)
    n = np.arange(6)
    fact = np.cumprod(np.r_[1, np.arange(1, 6)])
    np.testing.assert_allclose(a[0] ** 2, 4 * np.exp(-gamma) * gamma**n / fact)
    np.testing.assert_allclose(b[0] ** 2, gamma * np.exp(-gamma) * gamma**n / fact)
    a, _ = A.get("hermite", degree=5).hermite([1.0], 7)
    np.testing.assert_allclose(a[0], np.eye(8)[5], atol=1e-14)


# --------------------------------------------------------------------------- #
# Robustness of the dual
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("act", ALL, ids=_id)
def test_dual_extreme_inputs_finite(act):
    """Zero rows, 1e-16 and 1e8 variances, |ρ| = 1 exactly and slightly above."""
    v = np.array([0.0, 1e-16, 1.0, 1e8])
    kxx, kyy = v[:, None], v[None, :]
    kxy = np.sqrt(kxx * kyy) * 0.3
    cases = [kxy, np.sqrt(kxx * kyy) * (1 + 1e-15), -np.sqrt(kxx * kyy) * (1 + 1e-15)]
    if act.name == "exp":
        with pytest.raises(OverflowError):
            act.dual(kxx, cases[0], kyy)
        kxx, kyy = kxx[:3], kyy[:, :3]
        cases = [c[:3, :3] for c in cases]
    if act.name == "gaussian" and act.b > 0:
        with pytest.raises(ValueError, match="diverges"):
            act.dual(kxx, cases[0], kyy)
        kxx, kyy = kxx[:3], kyy[:, :3]
        cases = [c[:3, :3] for c in cases]
    for kxy in cases:
        S, Sd = act.dual(kxx, kxy, kyy)
        assert S.shape == Sd.shape == kxy.shape
        assert np.all(np.isfinite(S)) and np.all(np.isfinite(Sd)), (S, Sd)
    S, Sd = act.dual(kxx, cases[0], kyy, derivative=False)
    assert Sd is None


def test_dual_shapes_and_scalars():
    act = A.get("erf")
    S, Sd = act.dual(np.ones((3, 1)), np.zeros((3, 4)), np.ones((1, 4)))
    assert S.shape == Sd.shape == (3, 4)
    S, Sd = act.dual(np.ones(5), np.zeros(5), np.ones(5))
    assert S.shape == (5,)
    S, _ = A.get("identity").dual(np.ones((3, 1)), 0.5, np.ones((1, 4)))
    assert S.shape == (3, 4) and np.all(S == 0.5)


def test_dual_array_api_strict(monkeypatch):
    xps = pytest.importorskip("array_api_strict")
    import sklearn

    monkeypatch.setenv("SCIPY_ARRAY_API", "1")
    kxx = np.array([[1.0], [2.0], [0.0]])
    kyy = np.array([[1.0, 0.5]])
    kxy = np.array([[0.3, 0.1], [0.2, -0.5], [0.0, 0.0]])
    with sklearn.config_context(array_api_dispatch=True):
        for act in [*CLOSED_FORM, A.get("exp_normalized"), A.get("tanh", n_nodes=20)]:
            S, Sd = act.dual(xps.asarray(kxx), xps.asarray(kxy), xps.asarray(kyy))
            assert type(S).__module__.startswith("array_api_strict")
            S0, Sd0 = act.dual(kxx, kxy, kyy)
            for got, ref in ((S, S0), (Sd, Sd0)):
                # Same formulas, another namespace's functions: a few ulps.
                np.testing.assert_allclose(
                    np.asarray(got),
                    ref,
                    rtol=1e-14,
                    atol=64 * np.finfo(float).eps * np.abs(ref).max(),
                )


# --------------------------------------------------------------------------- #
# Pointwise functions and derivatives
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize(
    "act", [a for a in POINTWISE if a.name not in ZERO_DERIV], ids=_id
)
def test_derivative_matches_finite_differences(act):
    x = np.linspace(-2.3, 2.1, 9)  # avoids the kink at 0
    h = 1e-6
    fd = (act(x + h) - act(x - h)) / (2 * h)
    np.testing.assert_allclose(act.derivative(x), fd, rtol=1e-6, atol=1e-7)


def test_numerical_wraps_callable():
    act = A.get(np.tanh)
    assert isinstance(act, A.Numerical) and act.name == "numerical"
    x = np.linspace(-4, 4, 41)
    np.testing.assert_allclose(act.derivative(x), 1 / np.cosh(x) ** 2, atol=1e-8)
    S, Sd = act.dual(1.3, 0.4, 0.8)
    T, Td = A.get("tanh").dual(1.3, 0.4, 0.8)
    assert abs(S - T) < 1e-12 and abs(Sd - Td) < 1e-8
    assert A.Numerical(np.tanh) == A.Numerical(np.tanh)
    assert A.Numerical(np.tanh) != A.Numerical(lambda x: np.tanh(x))
    assert hash(A.Numerical(np.tanh)) == hash(A.Numerical(np.tanh))
    deriv = A.get(np.sin, derivative=np.cos)
    assert deriv.derivative_fn is np.cos
    assert copy.deepcopy(act) == act
    assert pickle.loads(pickle.dumps(act)) == act


def test_exp_normalized_is_kernel_only():
    act = A.get("exp_normalized")
    with pytest.raises(TypeError, match="dual kernel only"):
        act(np.zeros(3))
    with pytest.raises(TypeError, match="dual kernel only"):
        act.dual_quadrature(1.0, 0.5, 1.0)
    S, Sd = A.get("exp_normalized", gamma=2.0, shift=-0.5).dual(4.0, 1.0, 1.0)
    # rho = 1/2: exp(γ (ρ + shift)) = 1
    assert np.isclose(S, 2.0) and np.isclose(Sd, 2.0)


# --------------------------------------------------------------------------- #
# API: get / available / value semantics / errors
# --------------------------------------------------------------------------- #
def test_available_and_get_every_name():
    names = A.available()
    assert names[:3] == ["relu", "leaky_relu", "abs"]
    assert "swish" in names and len(set(names)) == len(names)
    defaults = {"polynomial": {"coef": (1.0, 2.0)}}
    for name in names:
        act = A.get(name, **defaults.get(name, {}))
        assert isinstance(act, A.Activation)
    assert A.get("swish") == A.get("silu") == A.get("SiLU")
    assert A.get("Leaky-ReLU", alpha=0.2).alpha == 0.2


@pytest.mark.smoke
@pytest.mark.parametrize("act", ALL, ids=_id)
def test_value_semantics(act):
    assert copy.deepcopy(act) == act
    assert clone(act, safe=False) == act
    assert hash(act) == hash(copy.deepcopy(act))
    if not isinstance(act, A.Numerical):
        assert pickle.loads(pickle.dumps(act)) == act
        assert eval(repr(act), vars(A)) == act  # readable, round-trips
    with pytest.raises(AttributeError):
        act.name = "x"  # type: ignore[misc]
    assert A.get(act) is act


def test_repr_and_equality():
    assert repr(A.get("erf")) == "Erf(a=1.0, b=1.0, c=0.0)"
    assert repr(A.get("polynomial", coef=[1, 2])) == "Polynomial(coef=(1.0, 2.0))"
    assert A.get("erf", a=2) == A.get("erf", a=2.0)
    assert A.get("erf") != A.get("erf", b=2.0)
    assert A.get("sin") != A.get("cos")
    assert len({A.get("relu"), A.get("relu"), A.get("abs")}) == 2


@pytest.mark.parametrize(
    "args, kwargs, exc, match",
    [
        (("nope",), {}, ValueError, "Unknown activation.*relu"),
        (("relu",), {"alpha": 0.1}, ValueError, "Unknown parameter.*relu"),
        (("leaky_relu",), {"slope": 0.1}, ValueError, "alpha"),
        ((A.get("relu"),), {"alpha": 1}, ValueError, "instance"),
        ((3,), {}, ValueError, "name, an Activation or a callable"),
        (("monomial",), {"degree": -1}, ValueError, "degree must be >= 0"),
        (("monomial",), {"degree": 1.5}, TypeError, "degree must be an integer"),
        (("hermite",), {"degree": True}, TypeError, "integer"),
        (("erf",), {"a": "x"}, TypeError, "a must be a real"),
        (("erf",), {"b": float("nan")}, ValueError, "finite"),
        (("rbf",), {"gamma": -1.0}, ValueError, "gamma must be > 0"),
        (("polynomial",), {"coef": ()}, ValueError, "at least one"),
        (("polynomial",), {"coef": 3.0}, TypeError, "sequence"),
        (("tanh",), {"n_nodes": 0}, ValueError, "n_nodes"),
        ((np.tanh,), {"deriv": np.cos}, ValueError, "derivative"),
    ],
)
def test_bad_arguments(args, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        A.get(*args, **kwargs)


def test_bad_hermite_arguments():
    relu = A.get("relu")
    with pytest.raises(ValueError, match="nonnegative"):
        relu.hermite([-1.0], 3)
    with pytest.raises(ValueError, match="1-D"):
        relu.hermite(np.ones((2, 2)), 3)
    with pytest.raises(ValueError, match="degree"):
        relu.hermite([1.0], -1)


# The speed of the duals is a timing figure (benchmarks/bench_exact.py), not
# asserted here: wall-clock tests fail on loaded machines.
