"""Exact fully connected NNGP/NTK kernels: oracle, edge cases, GP/SVM use."""

from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
from conftest import act_from_case, assert_allclose_reordered
from sklearn.gaussian_process import GaussianProcessRegressor
from sklearn.gaussian_process.kernels import WhiteKernel
from sklearn.kernel_ridge import KernelRidge
from sklearn.svm import SVC

from sklearn_ntk import NNGPKernel, NTKKernel, activations, nngp_kernel, ntk_kernel
from sklearn_ntk.montecarlo import monte_carlo_features

DATA = Path(__file__).parent / "data"


def _rel_max(a, b):
    return np.max(np.abs(a - b)) / np.max(np.abs(b))


@pytest.mark.smoke
def test_fc_oracle(oracle):
    """Every fully connected oracle case, NNGP and NTK, to 1e-8 (tanh: to 1e-9
    of high-precision values, see below)."""
    worst = {}
    for case, arr in oracle:
        if case["kind"] != "fc":
            continue
        act = act_from_case(case["act"])
        kw = dict(
            act=act, depth=case["depth"], W_std=case["W_std"], b_std=case["b_std"]
        )
        for name, fn in (("nngp", nngp_kernel), ("ntk", ntk_kernel)):
            K = fn(arr["X"], **kw)
            err = _rel_max(K, arr[name])
            worst[(case["key"], name)] = err
            if case["act"]["name"] == "tanh":
                # the oracle's 120-node Gauss-Hermite tanh is off by up to 2e-3;
                # hold ours to high-precision values of the same cases
                # (tests/data/numerical_dual_reference.npz)
                hp = np.load(DATA / "numerical_dual_reference.npz")[
                    f"oracle_{case['key']}_{name}"
                ]
                assert _rel_max(K, hp) <= 1e-9, (case, name)
                continue
            assert err <= 1e-8, (case, name, err)
    assert len(worst) >= 2 * 80


@pytest.mark.parametrize("name", activations.available())
@pytest.mark.parametrize("depth", [1, 2, 3, 4, 5])
def test_no_nan_extreme_norms(name, depth):
    """Zero rows and rows of norm 1e-8 and 1e4 give finite kernels."""
    rng = np.random.RandomState(0)
    X = rng.randn(4, 3)
    X = X / np.linalg.norm(X, axis=1, keepdims=True)
    X = np.vstack([np.zeros(3), 1e-8 * X[0], 1e4 * X[1], X[2:]])
    act = activations.get(
        name, **({"degree": 2} if "monomial" in name or name == "hermite" else {})
    )
    if name in ("exp", "gaussian"):
        X = X[:2]  # their duals diverge for large inputs by definition
    for b_std in (0.0, 0.1):
        for fn in (nngp_kernel, ntk_kernel):
            try:
                K = fn(X, act=act, depth=depth, b_std=b_std)
            except OverflowError as exc:
                # exp(exp(...)) really overflows with depth: a clear error, no inf.
                assert name == "exp" and depth >= 4 and "overflow" in str(exc).lower()
                continue
            assert np.all(np.isfinite(K)), (name, depth, fn.__name__)


def test_symmetry_psd_and_cross_blocks():
    rng = np.random.RandomState(1)
    X, Y = rng.randn(30, 5), rng.randn(7, 5)
    for fn in (nngp_kernel, ntk_kernel):
        K = fn(X, act="gelu", depth=2, b_std=0.2)
        assert_allclose_reordered(K, K.T)
        assert np.linalg.eigvalsh(K).min() > -1e-10 * np.abs(K).max()
        Kxy = fn(X, Y, act="gelu", depth=2, b_std=0.2)
        Kall = fn(np.vstack([X, Y]), act="gelu", depth=2, b_std=0.2)
        assert_allclose_reordered(Kxy, Kall[:30, 30:])


def test_depth_zero_is_linear():
    X = np.random.RandomState(2).randn(6, 4)
    K = ntk_kernel(X, depth=0, W_std=2.0, b_std=0.5)
    assert_allclose_reordered(K, 4.0 * X @ X.T / 4 + 0.25)


@pytest.mark.smoke
def test_blocks_threads_and_sparse_agree(monkeypatch):
    import sklearn

    rng = np.random.RandomState(3)
    X = rng.randn(50, 6)
    X[X < 0.5] = 0
    ref = ntk_kernel(X, act="erf", depth=2)
    # Row blocks, threads and sparse products reorder float sums: roundoff only.
    with sklearn.config_context(working_memory=0.01):
        assert_allclose_reordered(ntk_kernel(X, act="erf", depth=2, n_jobs=2), ref)
    assert_allclose_reordered(ntk_kernel(sp.csr_matrix(X), act="erf", depth=2), ref)
    K32 = ntk_kernel(X.astype(np.float32), act="erf", depth=2)
    np.testing.assert_allclose(K32, ref, rtol=1e-4, atol=1e-5 * np.abs(ref).max())


@pytest.mark.smoke
def test_bad_inputs_raise_clear_errors():
    X = np.ones((3, 2))
    with pytest.raises(ValueError, match="depth"):
        nngp_kernel(X, depth=-1)
    with pytest.raises(ValueError, match="W_std"):
        nngp_kernel(X, W_std=-1.0)
    with pytest.raises(ValueError, match="features"):
        nngp_kernel(X, np.ones((2, 3)))
    with pytest.raises(ValueError, match=r"NaN|infinity"):
        nngp_kernel(np.array([[np.nan, 1.0]]))
    with pytest.raises(ValueError, match="no_such_act"):
        nngp_kernel(X, act="no_such_act")


@pytest.mark.smoke
def test_gp_kernel_ridge_and_svc():
    rng = np.random.RandomState(0)
    X = rng.randn(40, 3)
    y = np.sin(X[:, 0]) + 0.1 * rng.randn(40)
    gp = GaussianProcessRegressor(
        NNGPKernel(act="erf", depth=2) + WhiteKernel(), random_state=0
    )
    gp.fit(X, y)
    assert gp.score(X, y) > 0.8
    kern = NTKKernel(act="relu", depth=2)
    assert_allclose_reordered(kern(X), ntk_kernel(X, act="relu", depth=2))
    # Diagonals are positive, of the kernel's scale: rtol is scaled to it.
    np.testing.assert_allclose(kern.diag(X), np.diag(kern(X)), rtol=1e-12)
    np.testing.assert_allclose(
        NNGPKernel(depth=3).diag(X), np.diag(NNGPKernel(depth=3)(X)), rtol=1e-12
    )
    krr = KernelRidge(kernel=kern, alpha=0.1).fit(X, y)
    assert krr.score(X, y) > 0.8
    svc = SVC(kernel=NNGPKernel(act="gelu")).fit(X, y > 0)
    assert svc.score(X, y > 0) > 0.8


def test_gp_optimizes_hyperparameters():
    rng = np.random.RandomState(0)
    X = rng.randn(30, 2)
    y = X[:, 0] ** 2
    kern = NNGPKernel(
        act="relu",
        depth=1,
        W_std=1.0,
        b_std=0.5,
        W_std_bounds=(0.1, 10.0),
        b_std_bounds=(0.01, 10.0),
    )
    _, grad = kern(X, eval_gradient=True)
    assert grad.shape == (30, 30, 2)
    # Central differences against a direct evaluation in log space.
    h = 1e-3
    k_plus = NNGPKernel(act="relu", W_std=np.exp(h), b_std=0.5)(X)
    k_minus = NNGPKernel(act="relu", W_std=np.exp(-h), b_std=0.5)(X)
    np.testing.assert_allclose(
        grad[..., 0], (k_plus - k_minus) / (2 * h), rtol=1e-5, atol=1e-8
    )
    gp = GaussianProcessRegressor(kern + WhiteKernel(1e-2), random_state=0).fit(X, y)
    assert gp.kernel_.k1.W_std != 1.0


@pytest.mark.parametrize(
    # exp_normalized has no pointwise form; exp's depth-2 dual overflows here.
    "name",
    [n for n in activations.available() if n not in ("exp_normalized", "exp")],
)
def test_finite_width_networks_converge_to_exact(name):
    """Random finite networks (width 512) average to the exact kernels.

    16 independent networks give, per entry, a mean and a standard error
    estimated from their spread; every entry must lie within 6 standard
    errors (plus 1e-9 of the kernel scale for entries with no variance),
    NNGP and NTK, depth 2 with a bias.
    """
    extra = (
        {"degree": 2} if name in ("monomial", "rectified_monomial", "hermite") else {}
    )
    act = activations.get(name, **extra)
    rng = np.random.RandomState(0)
    X = rng.randn(6, 4) * rng.uniform(0.3, 1.5, size=(6, 1))
    kw = dict(act=act, depth=2, W_std=1.2, b_std=0.1)
    for ntk, fn in ((False, nngp_kernel), (True, ntk_kernel)):
        K = fn(X, **kw)
        samples = np.stack(
            [
                (lambda Z: Z @ Z.T)(
                    monte_carlo_features(
                        X, n_components=512, ntk=ntk, random_state=s, **kw
                    )
                )
                for s in range(16)
            ]
        )
        se = samples.std(axis=0, ddof=1) / np.sqrt(len(samples))
        err = np.abs(samples.mean(axis=0) - K)
        assert np.all(err <= 6 * se + 1e-9 * np.abs(K).max()), (
            name,
            ntk,
            (err / se).max(),
        )


def test_kernel_state_layout_is_explicit():
    """A self state is read as such from its layout, not from array identity:
    copying an array (as any helper may) changes nothing."""
    from sklearn_ntk.layers import Dense, Elementwise, KernelState, Layout

    v = np.array([0.5, 2.0, 7.0])
    act = activations.get("relu")
    for layer in (Elementwise(act), Dense(1.3, 0.2)):
        a = layer.kernel(KernelState(nngp=v, ntk=0.0, layout=Layout(True)))
        b = layer.kernel(KernelState(nngp=v.copy(), ntk=0.0, layout=Layout(True)))
        np.testing.assert_array_equal(a.nngp, b.nngp)  # same operations
        assert a.layout == b.layout == Layout(True)
    # The dual of a self pair is the dual at rho = 1 (bitwise: same inputs).
    sig = Elementwise(act).kernel(KernelState(nngp=v.copy(), layout=Layout(True)))
    np.testing.assert_array_equal(sig.nngp, act.dual(v, v, v, derivative=False)[0])
    # A cross state reads the variances it carries.
    K = np.array([[0.1, 0.2]])
    cross = KernelState(nngp=K, kxx=v[:1, None], kyy=v[None, 1:], layout=Layout())
    out = Elementwise(act).kernel(cross)
    np.testing.assert_array_equal(
        out.nngp, act.dual(v[:1, None], K, v[None, 1:], derivative=False)[0]
    )
