"""Self-pairs, nearly parallel inputs and extreme scales (issue 10).

References are independent of the code under test: ``mpmath_reference`` (the
kernel recursion in 50-digit mpmath, textbook duals), exact rational
arithmetic (``fractions``) for the convolutional self-pairs, and the
homogeneity of the relu/sign kernels.  Errors are measured relative to the
natural scale of an entry, ``sqrt(K(x, x) K(y, y))`` (the Cauchy-Schwarz
bound; floored at the smallest normal number, below which no float has
relative accuracy).
"""

import math
import warnings
from fractions import Fraction

import mpmath as mp
import numpy as np
import pytest
import scipy.sparse as sp
import sklearn
from mpmath_reference import CLOSED, DUALS, gelu_quad, kernels

from sklearn_ntk import (
    NNGPKernel,
    NTKKernel,
    cnngp_kernel,
    cntk_kernel,
    nngp_kernel,
    ntk_kernel,
)
from sklearn_ntk.activations import get

#: Every activation with a closed-form dual, with non-default parameters
#: where they matter.

#: Duals that are not Lipschitz at rho = +-1 (asin/acos of rho), for some
#: variances: the ones the gap 1 - |rho| is for.
KINKED = [
    ("relu", {}),
    ("leaky_relu", {"alpha": 0.2}),
    ("abs", {}),
    ("step", {}),
    ("sign", {}),
    ("rectified_monomial", {"degree": 1}),
    ("erf", {}),
    ("gelu", {}),
]


def _id(case):
    name, params = case
    return name + "".join(f"-{v}" for v in params.values())


def _as_float(M):
    return np.array([[np.nan if v is None else float(v) for v in row] for row in M])


def _errors(M, R, pairs, tiny):
    """``|M - R| / max(sqrt(R_ii R_jj), tiny)`` over ``pairs`` (mpmath)."""
    out = []
    with mp.workdps(30):
        for i, j in pairs:
            scale = max(mp.sqrt(abs(R[i][i] * R[j][j])), mp.mpf(float(tiny)))
            out.append(float(abs(mp.mpf(float(M[i, j])) - R[i][j]) / scale))
    return max(out)


# ---------------------------------------------------------------------------
# Self-pairs: exact however they are passed
# ---------------------------------------------------------------------------


def _with_duplicates(seed=0):
    X = np.random.RandomState(seed).randn(7, 4) * 0.6
    X[5] = X[1]  # off-diagonal duplicates within X
    X[6] = X[3]
    return X


@pytest.mark.parametrize("case", CLOSED, ids=_id)
@pytest.mark.parametrize("ntk", [False, True], ids=["nngp", "ntk"])
def test_self_pairs_identical_across_call_forms(case, ntk):
    name, params = case
    act = get(name, **params)
    depth = 2 if name == "exp" else 3
    X = _with_duplicates()
    fn = ntk_kernel if ntk else nngp_kernel
    Kern = NTKKernel if ntk else NNGPKernel
    kw = dict(act=act, depth=depth, b_std=0.3)
    K = fn(X, **kw)
    with sklearn.config_context(working_memory=1e-4):  # several row blocks
        blocks = fn(X, X, **kw)
    forms = [
        K,
        blocks,
        fn(X, X.copy(), **kw),
        fn(X.copy(order="F"), X[::-1].copy()[::-1], **kw),
        Kern(act=act, depth=depth, b_std=0.3)(X),
        Kern(act=act, depth=depth, b_std=0.3)(X, X),
    ]
    diag = Kern(act=act, depth=depth, b_std=0.3).diag(X)
    # Bitwise: every self-pair (and pair of equal rows) is copied from the
    # diagonal states of the network, computed by one function of the rows
    # (the same one NNGPKernel.diag calls): equal by construction.
    for M in forms:
        np.testing.assert_array_equal(np.diag(M), diag)
        assert M[1, 5] == M[5, 1] == diag[1] == diag[5]
        assert M[3, 6] == M[6, 3] == diag[3]
    # ... and that value is the rho = 1 value of the recursion.
    R = kernels(X[[1]], X[[1]], name, depth, b_std=0.3, params=params)[int(ntk)]
    assert abs(diag[1] - float(R[0][0])) <= 1e-14 * abs(float(R[0][0]))


def test_self_pairs_sparse_and_float32():
    X = _with_duplicates(1)
    for act in ("sign", "relu"):
        K = ntk_kernel(sp.csr_matrix(X), act=act, depth=3)
        d = NTKKernel(act=act, depth=3).diag(sp.csr_matrix(X))
        np.testing.assert_array_equal(np.diag(K), d)  # by construction, as above
        assert K[1, 5] == d[1]
        np.testing.assert_allclose(K, ntk_kernel(X, act=act, depth=3), rtol=1e-14)
        K32 = ntk_kernel(X.astype(np.float32), act=act, depth=3)
        assert K32.dtype == np.float32
        np.testing.assert_array_equal(
            np.diag(K32),
            np.diag(
                ntk_kernel(X.astype(np.float32), X.astype(np.float32), act=act, depth=3)
            ),
        )
        assert K32[1, 5] == K32[1, 1]


# ---------------------------------------------------------------------------
# Nearly parallel rows against mpmath
# ---------------------------------------------------------------------------

ANGLES = [1e-8, 1e-6, 1e-4, 1e-2]


def _near_pairs(angle, scale=1.0, seed=0, d=6):
    """Three pairs at ``angle``: equal norms, norms 1 : 1.7, antiparallel."""
    rng = np.random.RandomState(seed)
    rows = []
    for ratio, sign in ((1.0, 1.0), (1.7, 1.0), (0.9, -1.0)):
        x = rng.randn(d)
        u = rng.randn(d)
        u -= x * (u @ x) / (x @ x)
        u /= np.linalg.norm(u)
        n = np.linalg.norm(x)
        y = (math.cos(angle) * x / n + math.sin(angle) * u) * n * ratio
        rows += [x, sign * y]
    return np.array(rows) * math.sqrt(scale)


@pytest.mark.parametrize("case", KINKED, ids=_id)
@pytest.mark.parametrize("b_std", [0.0, 0.5])
def test_near_parallel_vs_mpmath(case, b_std):
    """Pairs at angles 1e-8..1e-2 (and antiparallel), depths 1-3, NNGP and NTK.

    Without the gap (``acos`` of the Gram-based rho) sign at depth 3 and
    angle 1e-8 was off by 8e-3, the relu NTK by 1e-8.
    """
    name, params = case
    act = get(name, **params)
    pairs = [(0, 1), (2, 3), (4, 5)] + [(i, i) for i in range(6)]
    for angle in ANGLES:
        X = _near_pairs(angle)
        ref = kernels(X, X, name, (1, 2, 3), b_std=b_std, params=params, pairs=pairs)
        for depth in (1, 2, 3):
            for fn, R in zip((nngp_kernel, ntk_kernel), ref[depth]):
                M = fn(X, act=act, depth=depth, b_std=b_std)
                err = _errors(M, R, pairs, 1e-300)
                assert err <= 1e-13, (angle, depth, fn.__name__, err)


@pytest.mark.parametrize(
    "case", [("erf", {}), ("gelu", {}), ("gaussian", {}), ("gabor", {})], ids=_id
)
def test_near_parallel_large_variance_vs_mpmath(case):
    """At ||x||^2/d = 1e8, erf/gelu/Gaussian/Gabor duals are nearly as kinked
    at rho = 1 as sign/relu (their asin argument, sqrt(det), near 1)."""
    name, params = case
    act = get(name, **params)
    pairs = [(0, 1), (2, 3), (4, 5)] + [(i, i) for i in range(6)]
    for angle in (1e-8, 1e-5):
        X = _near_pairs(angle, scale=1e8)
        ref = kernels(X, X, name, (1, 2), params=params, pairs=pairs)
        for depth in (1, 2):
            for fn, R in zip((nngp_kernel, ntk_kernel), ref[depth]):
                err = _errors(fn(X, act=act, depth=depth), R, pairs, 1e-300)
                assert err <= 1e-12, (angle, depth, fn.__name__, err)


def test_reference_gelu_closed_form_matches_quadrature():
    """The reference's gelu closed form against an independent 1-D quadrature."""
    with mp.workdps(30):
        args = [mp.mpf(v) for v in (1.3, -0.7, 0.8)]
        for a, b in zip(DUALS["gelu"]()(*args), gelu_quad(*args)):
            assert abs(a - b) <= mp.mpf(1e-25) * abs(b)


# ---------------------------------------------------------------------------
# Extreme scales against mpmath
# ---------------------------------------------------------------------------

SCALES = {
    np.float64: [1e-300, 1e-150, 1e150, 1e300],
    np.float32: [1e-36, 1e-18, 1.0, 1e18, 1e36],
}
#: Normwise tolerance: closed forms 1e-12 in float64; float32 inputs are
#: computed in float32 inside 2**+-40 (a few roundings per layer: 32 eps) and
#: in float64 beyond it (then the error is one float32 rounding).
TOL = {np.float64: 1e-12, np.float32: 32 * np.finfo(np.float32).eps}


@pytest.mark.parametrize("case", CLOSED, ids=_id)
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
def test_extreme_scales_vs_mpmath(case, dtype):
    """Rows with ||x||^2/d across the float range, depths 1-3, NNGP and NTK.

    Finite and right to ``TOL`` where the true kernel is representable, and
    ``OverflowError`` (never inf/NaN) where it is not.
    """
    name, params = case
    act = get(name, **params)
    base = np.random.RandomState(0).randn(3, 5)
    base /= np.sqrt((base**2).mean(axis=1, keepdims=True))  # ||x||^2/d = 1
    pairs = [(i, j) for i in range(3) for j in range(i, 3)]
    info = np.finfo(dtype)
    for scale in SCALES[dtype]:
        X = (base * math.sqrt(scale)).astype(dtype)
        X64 = X.astype(np.float64)
        try:
            ref = kernels(X64, X64, name, (1, 2, 3), params=params, pairs=pairs)
        except (OverflowError, MemoryError):  # beyond what mpmath represents
            ref = None
        for depth in (1, 2, 3):
            for k, fn in enumerate((nngp_kernel, ntk_kernel)):
                R = None if ref is None else ref[depth][k]
                big = R is None or max(abs(R[i][i]) for i in range(3)) > info.max
                if big:
                    with pytest.raises(OverflowError):
                        fn(X, act=act, depth=depth)
                    continue
                M = fn(X, act=act, depth=depth)
                assert M.dtype == dtype and np.all(np.isfinite(M))
                err = _errors(M, R, pairs, info.tiny)
                assert err <= TOL[dtype], (scale, depth, fn.__name__, err)


def test_extreme_scales_mixed_rows():
    """Rows of very different scales in one matrix: each pair as if alone."""
    rng = np.random.RandomState(3)
    X = rng.randn(4, 5) * np.array([[1e-150], [1.0], [1e150], [1e-100]])
    pairs = [(i, j) for i in range(4) for j in range(i, 4)]
    for name in ("relu", "sign", "erf"):
        R = kernels(X, X, name, 2, pairs=pairs)
        for fn, ref in zip((nngp_kernel, ntk_kernel), R):
            err = _errors(fn(X, act=name, depth=2), ref, pairs, 2.3e-308)
            assert err <= 1e-12, (name, fn.__name__, err)


# ---------------------------------------------------------------------------
# Overflow: a clear error naming the cause, never inf/NaN
# ---------------------------------------------------------------------------


def test_overflow_names_layer_activation_and_scale():
    X = np.random.RandomState(0).randn(3, 4)
    with pytest.raises(OverflowError, match=r"layer \d+ of \d+.*Exp.*\|\|x\|\|\^2 / d"):
        nngp_kernel(X, act="exp", depth=4)
    with pytest.raises(OverflowError, match=r"Exp"):
        NTKKernel(act="exp", depth=4).diag(X)
    with pytest.raises(OverflowError, match="overflows float64 for row 1"):
        nngp_kernel(np.array([[1.0, 2.0], [1e200, 1e200]]))
    X32 = np.full((2, 3), 1e18, dtype=np.float32)
    with pytest.raises(OverflowError, match="float32"):
        nngp_kernel(X32, act=get("monomial", degree=2))


def test_conv_overflow_names_layer():
    X = np.random.RandomState(0).randn(2, 4, 4, 1) * 30.0
    with pytest.raises(OverflowError, match=r"Exp.*after layer \d+ of \d+"):
        cnngp_kernel(X, act="exp", architecture="conv_stack", depth=3)


def test_overflow_raises_without_warnings():
    X = np.random.RandomState(0).randn(3, 4) * 1e75
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(OverflowError, match="RectifiedMonomial"):
            ntk_kernel(X, act=get("rectified_monomial", degree=3), depth=2)


# ---------------------------------------------------------------------------
# Convolutional kernels
# ---------------------------------------------------------------------------


def _exact_cntk_self(x, W_std, b_std):
    """Theta(x, x) of conv_stack depth 2, relu, flatten, in exact rationals.

    At a pixel self-pair rho = 1: Sigma = K/2 and Sigma_dot = 1/2 exactly.
    """
    H, Wd, C = x.shape
    w2, b2 = Fraction(W_std) ** 2, Fraction(b_std) ** 2

    def box(A):  # 3x3 SAME box sum of a pixel map (the diagonal pixel pairs)
        return {
            (i, j): sum(
                A[(i + a, j + b)]
                for a in (-1, 0, 1)
                for b in (-1, 0, 1)
                if 0 <= i + a < H and 0 <= j + b < Wd
            )
            for i in range(H)
            for j in range(Wd)
        }

    K = {
        (i, j): sum(Fraction(float(v)) ** 2 for v in x[i, j]) / C
        for i in range(H)
        for j in range(Wd)
    }
    K = {p: w2 / 9 * v + b2 for p, v in box(K).items()}
    T = dict(K)
    for last in (False, True):
        S = {p: v / 2 for p, v in K.items()}
        Td = {p: v / 2 for p, v in T.items()}
        if last:
            k = w2 * sum(S.values()) / len(S) + b2
            return w2 * sum(Td.values()) / len(Td) + k
        bs, bt = box(S), box(Td)
        K = {p: w2 / 9 * v + b2 for p, v in bs.items()}
        T = {p: w2 / 9 * bt[p] + K[p] for p in bs}


def test_conv_self_pairs_exact_and_identical():
    """Pixel self-pairs get rho = 1 exactly (the CNTK diagonal was 2e-9 off).

    neural-tangents itself is 8e-10 off on these entries (its pixel
    self-pairs have rho a hair below 1): hence an exact rational reference.
    """
    X = np.random.RandomState(5).randn(3, 5, 5, 2)
    X = np.concatenate([X, X[:1]])  # image 3 = image 0
    kw = dict(
        architecture="conv_stack", depth=2, readout="flatten", W_std=1.3, b_std=0.2
    )
    K = cntk_kernel(X, **kw)
    for a in range(3):
        exact = float(_exact_cntk_self(X[a], 1.3, 0.2))
        assert abs(K[a, a] - exact) <= 4e-16 * exact
    # Bitwise: identical images are pinned to the self states' output, the
    # same numbers whatever the call form.
    for M in (cntk_kernel(X, X, **kw), cntk_kernel(X, X.copy(), **kw)):
        np.testing.assert_array_equal(np.diag(M), np.diag(K))
    assert K[0, 3] == K[3, 0] == K[0, 0] == K[3, 3]


@pytest.mark.parametrize("act", ["relu", "sign", "abs"])
@pytest.mark.parametrize("readout", ["flatten", "global_avg"])
def test_conv_extreme_scales_homogeneous(act, readout):
    """relu/abs kernels are 2-homogeneous in the images, sign 0-homogeneous:
    K(s X) = s^k K(X), at scales where s^2 ||x||^2 / C is near 1e+-300."""
    X = np.random.RandomState(2).randn(3, 4, 4, 2)
    kw = dict(act=act, architecture="conv_stack", depth=2, readout=readout)
    k = 0 if act == "sign" else 2
    for fn in (cnngp_kernel, cntk_kernel):
        K = fn(X, **kw)
        for s in (2.0**-498, 2.0**498):
            Ks = fn(X * s, **kw)
            assert np.all(np.isfinite(Ks))
            np.testing.assert_allclose(Ks / s**k, K, rtol=1e-13, atol=0)


# ---------------------------------------------------------------------------
# Array API: the same numbers
# ---------------------------------------------------------------------------


@pytest.fixture
def dispatch(monkeypatch):
    monkeypatch.setenv("SCIPY_ARRAY_API", "1")
    with sklearn.config_context(array_api_dispatch=True):
        yield


@pytest.mark.parametrize("ns", ["array_api_strict", "torch"])
@pytest.mark.parametrize("act", ["sign", "relu", "gelu"])
def test_array_api_self_pairs_and_near_parallel(ns, act, dispatch):
    X = _near_pairs(1e-7)
    X = np.concatenate([X, X[:1]])  # a duplicate of row 0
    if ns == "torch":
        torch = pytest.importorskip("torch")
        Xa, back = torch.asarray(X), lambda a: a.numpy()
    else:
        xps = pytest.importorskip("array_api_strict")
        Xa, back = xps.asarray(X), np.asarray
    for fn in (nngp_kernel, ntk_kernel):
        ref = fn(X, act=act, depth=3, b_std=0.2)
        with sklearn.config_context(working_memory=1e-4):
            K = back(fn(Xa, act=act, depth=3, b_std=0.2))
        np.testing.assert_allclose(K, ref, rtol=1e-12, atol=1e-14)
        assert K[-1, 0] == K[0, 0]
