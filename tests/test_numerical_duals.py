"""Duals of the numerically integrated activations against independent references.

* ``tests/data/numerical_dual_reference.npz`` (generator:
  ``benchmarks/make_dual_reference.py``): nested adaptive QUADPACK integrals
  in other coordinates than the library's, with re-implemented activations,
  over variances ``1e-8 .. 1e8`` and correlations at and near ``±1``; the
  generator checks itself against the closed forms of erf, relu and sign.
* Monte Carlo with stated sample sizes and standard errors.
* Closed-form 1-D integrals (scipy) for the issue's examples.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from scipy import integrate

from sklearn_ntk import activations as A
from sklearn_ntk import ntk_kernel
from sklearn_ntk._quadrature import pair_quadrature

DATA = Path(__file__).parent / "data"

#: Accuracy promised for Σ and Σ̇, relative to sqrt(Σ(x,x) Σ(y,y)) (resp. Σ̇).
TOL = 1e-9


def _user_kinked(x):
    return np.where(x > 0.5, x - 0.5, 0.1 * (x - 0.5)) + 0.2 * np.tanh(x)


def _user_kinked_deriv(x):
    return np.where(x > 0.5, 1.0, 0.1) + 0.2 / np.cosh(np.clip(x, -300, 300)) ** 2


def _arctan_deriv(x):
    return 1.0 / (1.0 + x * x)


# The activations of the reference file (names as in make_dual_reference.ACTS).
ACTS = {
    "tanh": A.get("tanh"),
    "sigmoid": A.get("sigmoid"),
    "softplus": A.get("softplus"),
    "silu": A.get("silu"),
    "mish": A.get("mish"),
    "elu": A.get("elu"),
    "elu_0.7": A.get("elu", alpha=0.7),
    "selu": A.get("selu"),
    "user_arctan": A.Numerical(np.arctan, derivative=_arctan_deriv),
    "user_kinked": A.Numerical(
        _user_kinked, derivative=_user_kinked_deriv, kinks=(0.5,)
    ),
}


@pytest.fixture(scope="module")
def ref():
    with np.load(DATA / "numerical_dual_reference.npz") as z:
        return {k: z[k] for k in z.files}


def test_reference_checks_itself(ref):
    """The reference integrator reproduces closed forms over the same grid."""
    for name in ("erf", "relu", "sign"):
        assert ref[f"check_{name}"] <= 1e-13, name


# The default suite checks one activation of each engine path (series and
# tabulated pairs: tanh; kinked with the polar rule: selu; a user callable
# with a declared kink); the others, at ~8 s of table builds each, run with
# ``-m slow`` and in benchmarks/bench_numerical_duals.py (the same grid).
_DEFAULT_ACTS = ("tanh", "selu", "user_kinked")


def _acts_marked(names):
    return [
        n if n in _DEFAULT_ACTS else pytest.param(n, marks=pytest.mark.slow)
        for n in names
    ]


@pytest.mark.parametrize("name", _acts_marked(ACTS))
def test_dual_matches_reference(name, ref):
    """Σ and Σ̇ within 1e-9 of the reference at every grid point (540 points:
    9 variances from 1e-8 to 1e8 pairwise, ρ at ±1, ±(1 - 1e-6), 1 - 1e-8,
    ±0.99, ...), and the diagonal moments E[σ(√k z)²] within 1e-12."""
    act = ACTS[name]
    kxx, kxy, kyy = ref["kxx"], ref["kxy"], ref["kyy"]
    S, Sd = act.dual(kxx, kxy, kyy)
    for kind, ours in (("s", S), ("d", Sd)):
        dxx, dyy = ref[f"{name}_{kind}_dxx"], ref[f"{name}_{kind}_dyy"]
        scale = np.sqrt(dxx * dyy)
        err = np.abs(ours - ref[f"{name}_{kind}"]) / scale
        assert err.max() <= TOL, (kind, err.max(), np.argmax(err))
        diag = act.dual(kxx, kxx, kxx)[kind == "d"]
        np.testing.assert_allclose(diag, dxx, rtol=1e-12, atol=0)


@pytest.mark.parametrize(
    "name", _acts_marked(["tanh", "softplus", "elu", "user_kinked"])
)
def test_pair_rule_matches_reference(name, ref):
    """The 2-D rule alone (the tier for pairs the series cannot settle) meets
    the same bound everywhere, not only where the engine uses it."""
    act = ACTS[name]
    sel = slice(None, None, 5)
    kxx, kxy, kyy = ref["kxx"][sel], ref["kxy"][sel], ref["kyy"][sel]
    S, Sd = pair_quadrature(
        act._fn, act._deriv, kxx, kxy, kyy, act._kinks, act._saturating
    )
    for kind, ours in (("s", S), ("d", Sd)):
        scale = np.sqrt(ref[f"{name}_{kind}_dxx"][sel] * ref[f"{name}_{kind}_dyy"][sel])
        err = np.abs(ours - ref[f"{name}_{kind}"][sel]) / scale
        assert err.max() <= TOL, (kind, err.max())


# --------------------------------------------------------------------------- #
# Monte Carlo
# --------------------------------------------------------------------------- #
MC_CASES = [
    ("tanh", 100.0, 0.9, 0.25),
    ("tanh", 1e4, 0.9999, 1e4),
    ("softplus", 4.0, -0.7, 9.0),
    ("mish", 1.0, 0.95, 1.0),
    ("elu", 0.5, 0.3, 2.0),
    ("selu", 9.0, 0.999, 9.0),
    ("user_kinked", 30.0, 0.99, 3.0),
]


@pytest.mark.parametrize("case", MC_CASES, ids=lambda c: f"{c[0]}-{c[1]}-{c[2]}")
def test_dual_monte_carlo(case):
    """Σ, Σ̇ within 5 standard errors of a 2^20-sample Monte Carlo mean (fixed
    seed; a false alarm has probability ~6e-7 per quantity)."""
    name, kxx, rho, kyy = case
    act = ACTS[name]
    n = 1 << 20
    rng = np.random.default_rng(0)
    z1, z2 = rng.standard_normal((2, n))
    u = math.sqrt(kxx) * z1
    v = math.sqrt(kyy) * (rho * z1 + math.sqrt(1 - rho * rho) * z2)
    kxy = rho * math.sqrt(kxx * kyy)
    S, Sd = act.dual(np.array([kxx]), np.array([kxy]), np.array([kyy]))
    for ours, samples in (
        (S[0], act(u) * act(v)),
        (Sd[0], act.derivative(u) * act.derivative(v)),
    ):
        se = samples.std() / math.sqrt(n)
        assert abs(ours - samples.mean()) <= 5 * se, (ours, samples.mean(), se)


# --------------------------------------------------------------------------- #
# The issue's examples, exact symmetry, special pairs
# --------------------------------------------------------------------------- #
def _moment(f, k):
    s = math.sqrt(k)
    pts = sorted(
        {c / s for c in (-32, -8, -2, -0.5, 0, 0.5, 2, 8, 32) if abs(c / s) < 12}
    )
    return integrate.quad(
        lambda z: f(s * z) * math.exp(-0.5 * z * z) / math.sqrt(2 * math.pi),
        -12,
        12,
        points=pts,
        epsabs=0,
        epsrel=1e-13,
        limit=500,
    )[0]


@pytest.mark.parametrize("k", [100.0, 1e6])
def test_issue_large_variance_tanh(k):
    """ntk_kernel([[√k]]) at depth 1 is E[tanh(u)²] + k E[sech⁴(u)], u ~ N(0, k):
    6.2312 for k = 100 (the old 120-node rule gave 1.90) and 532.92 for 1e6."""
    exact = _moment(lambda x: math.tanh(x) ** 2, k) + k * _moment(
        lambda x: (1 - math.tanh(x) ** 2) ** 2, k
    )
    K = ntk_kernel(np.array([[math.sqrt(k)]]), act="tanh")
    assert abs(K[0, 0] - exact) <= 1e-10 * exact
    assert K[0, 0] == pytest.approx({100.0: 6.2312156, 1e6: 532.92216}[k], rel=1e-7)


@pytest.mark.parametrize("name", ["tanh", "softplus", "elu", "user_arctan"])
def test_dual_exactly_symmetric(name):
    """Σ(x, y) == Σ(y, x) bitwise: the engine's operations are symmetric in
    the two scales (products of the two scales' coefficients, thresholds that
    are products, and the 2-D rule on the ordered pair), so this is
    guaranteed, not approximate."""
    act = ACTS[name]
    rng = np.random.RandomState(0)
    kx = np.exp(rng.uniform(-12, 12, (12, 1)))
    ky = np.exp(rng.uniform(-12, 12, (1, 15)))
    rho = rng.uniform(-1, 1, (12, 15))
    rho[::3] = 1 - 10.0 ** rng.uniform(-14, -1, (4, 15))
    kxy = rho * np.sqrt(kx * ky)
    S, Sd = act.dual(kx, kxy, ky)
    T, Td = act.dual(ky.T, kxy.T, kx.T)
    assert np.array_equal(S, T.T) and np.array_equal(Sd, Td.T)


def test_kernel_symmetric_at_mixed_scales():
    """The issue's asymmetry (1.4e-3 of the scale for tanh rows scaled 0.3 to
    3) is gone: every dual is symmetric, so K is as symmetric as the first
    layer's X X^T (here to the last bit, checked loosely so as not to depend
    on the BLAS)."""
    rng = np.random.RandomState(0)
    X = rng.randn(60, 10) * np.exp(rng.uniform(np.log(0.3), np.log(3), (60, 1)))
    for act in ("tanh", "softplus", "elu"):
        K = ntk_kernel(X, act=act, depth=3)
        assert np.abs(K - K.T).max() <= 4 * np.finfo(float).eps * np.abs(K).max()


@pytest.mark.parametrize("name", ["tanh", "sigmoid", "selu", "user_arctan"])
def test_self_pairs_equal_diagonal_call(name):
    """Pairs with kxx == kyy == ±kxy bitwise get the 1-D moments, the same
    numbers as a diagonal call (one cached table serves both)."""
    act = ACTS[name]
    k = np.array([1e-8, 0.3, 1.0, 7.0, 1e4, 1e8])
    D, Dd = act.dual(k, k, k)
    kxy = np.diag(k).copy()
    kxy[0, 1] = kxy[1, 0] = 0.2 * math.sqrt(k[0] * k[1])
    S, Sd = act.dual(k[:, None], kxy, k[None, :])
    assert np.array_equal(np.diag(S), D) and np.array_equal(np.diag(Sd), Dd)
    # ρ = -1 exactly: E[σ(√k z) σ(-√k z)]
    Sm, _ = act.dual(k, -k, k)
    want = [
        _moment(lambda x, f=act: float(f(np.array([x]))[0] * f(np.array([-x]))[0]), kk)
        for kk in k
    ]
    np.testing.assert_allclose(Sm, want, rtol=1e-10, atol=1e-14)


def test_zero_variance():
    """kxx = 0: u = 0, so Σ = σ(0) E[σ(v)] and Σ̇ = σ'(0) E[σ'(v)]."""
    act = A.get("softplus")
    S, Sd = act.dual(np.array([0.0]), np.array([0.0]), np.array([2.0]))
    m = _moment(lambda x: math.log1p(math.exp(-abs(x))) + max(x, 0.0), 2.0)
    md = _moment(lambda x: 1 / (1 + math.exp(-x)), 2.0)
    assert S[0] == pytest.approx(math.log(2) * m, rel=1e-12)
    assert Sd[0] == pytest.approx(0.5 * md, rel=1e-12)


def test_broadcast_layouts_agree():
    """(n, 1) x (1, m), conv-like interleaved axes and flat pairs give the same
    numbers (each pair's value depends on the pair alone)."""
    act = A.get("mish")
    rng = np.random.RandomState(1)
    kx = np.exp(rng.randn(2, 2, 1, 1, 3, 1))
    ky = np.exp(rng.randn(1, 1, 2, 2, 1, 4))
    rho = rng.uniform(-1, 1, (2, 2, 2, 2, 3, 4))
    kxy = rho * np.sqrt(kx * ky)
    S, Sd = act.dual(kx, kxy, ky)
    full = [np.broadcast_to(a, kxy.shape).ravel() for a in (kx, kxy, ky)]
    F, Fd = act.dual(*full)
    assert np.array_equal(S.ravel(), F) and np.array_equal(Sd.ravel(), Fd)


def test_symmetric_batch_equals_direct_computation(monkeypatch):
    """A batch of the pairs of one set with itself (a diagonal tile) is
    computed on its upper triangle and mirrored: every entry must be the
    number a direct computation of that pair gives (here: the same pairs in
    a batch that is not symmetric, one column shorter).  Nearly parallel
    rows (some repeated) reach the gathered series; small row blocks make
    the 120 x 120 pairs span several of them."""
    from sklearn_ntk import _quadrature as Q

    monkeypatch.setattr(Q, "_CHUNK", 4096)  # rows of 34 pairs: 4 row blocks
    act = A.get("tanh")
    rng = np.random.RandomState(3)
    n = 120
    base = rng.randn(12, 6)
    Z = base[rng.randint(0, 12, n)]
    Z += 10.0 ** rng.uniform(-4, -1, (n, 1)) * rng.randn(n, 6)
    Z[::17] = Z[1]  # repeated rows: repeated pairs
    Z *= np.exp(rng.uniform(-1.5, -0.5, (n, 1)))
    G = Z @ Z.T
    K = 0.5 * (G + G.T)  # exactly symmetric
    k = np.diag(K).copy()
    Q.stats["gathered"] = 0
    S, Sd = act.dual(k[:, None], K, k[None, :])
    assert Q.stats["gathered"] > 0
    T, Td = act.dual(k[:, None], K[:, :-1], k[None, :-1])
    assert np.array_equal(S[:, :-1], T) and np.array_equal(Sd[:, :-1], Td)
    assert np.array_equal(S, S.T) and np.array_equal(Sd, Sd.T)


def test_hermite_high_degree_and_large_scale():
    """hermite() at degree 400 and r up to 1e4 stays finite (no overflow in
    h_n) and its Parseval sums stay below E[σ(rz)²]."""
    act = A.get("tanh")
    r = np.array([0.1, 1.0, 10.0, 1e4])
    a, b = act.hermite(r, 400)
    assert np.all(np.isfinite(a)) and np.all(np.isfinite(b))
    D = act.dual(r**2, r**2, r**2)[0]
    assert np.all(np.sum(a**2, axis=1) <= D * (1 + 1e-12))
    # at r = 0.1 the series has converged: Parseval to rounding
    assert abs(np.sum(a[0] ** 2) - D[0]) <= 1e-14 * D[0]


def test_non_finite_input_raises():
    act = A.get("tanh")
    with pytest.raises(ValueError, match="kxy"):
        act.dual(np.ones(2), np.array([0.5, np.nan]), np.ones(2))


def test_numerical_kinks_parameter():
    act = A.get(np.abs, kinks=(1.0, -2.0))
    assert act.kinks == (-2.0, 1.0)
    with pytest.raises(ValueError, match="kinks"):
        A.Numerical(np.abs, kinks=(np.inf,))


def test_tabulated_inner_integral_matches_direct_rule(monkeypatch):
    """The hard pairs of smooth saturating activations read the inner integral
    E_w[σ(m + τ w)] from a per-activation table (checked at build); on pairs
    at large scale with |ρ| near 1 (τ = sy c in [0.5, 4], the convolutional
    case) it agrees with the untabulated 2-D rule to 1e-12 of the scale, and
    the table's own check meets its tolerance."""
    from sklearn_ntk import _quadrature as Q

    act = ACTS["tanh"]
    assert Q._inner_table(act._fn, 0).check(act._fn) <= Q._G_TOL
    rng = np.random.default_rng(0)
    n = 24
    kxx = 10 ** rng.uniform(1, 3, n)
    kyy = kxx * 10 ** rng.uniform(0, 0.5, n)
    tau = rng.uniform(0.5, 4.0, n)
    c = tau / np.sqrt(np.maximum(kxx, kyy))
    kxy = rng.choice([-1.0, 1.0], n) * np.sqrt(1 - c * c) * np.sqrt(kxx * kyy)
    args = (act._fn, act._deriv, kxx, kxy, kyy, (), True)
    S, Sd = pair_quadrature(*args)
    monkeypatch.setattr(Q, "_G_OCT_MIN", -1000)  # no octave is tabulated
    monkeypatch.setattr(Q, "_G_OCT_MAX", -1000)
    T, Td = pair_quadrature(*args)
    for ours, direct, k in ((S, T, 0), (Sd, Td, 1)):
        scale = np.sqrt(act.dual(kxx, kxx, kxx)[k] * act.dual(kyy, kyy, kyy)[k])
        assert np.max(np.abs(ours - direct) / scale) <= 1e-12
