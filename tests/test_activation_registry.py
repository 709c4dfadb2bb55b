"""A new activation is one class in one file.

The class below is defined here, in the test, and nowhere else: registered
with :func:`sklearn_ntk.activations.register`, it must be listed, resolved by
name, and work in the exact kernels, the sketches and on PyTorch tensors,
without any other module knowing about it.
"""

from dataclasses import dataclass

import numpy as np
import pytest

from sklearn_ntk import NTKSketch, activations, nngp_kernel, ntk_kernel

_NAME = "scaled_softsign_test"


def _define():
    @activations.register(_NAME, aliases=("softsign_test_alias",))
    @dataclass(frozen=True)
    class ScaledSoftsign(activations._Quadrature):
        """``scale * x / (1 + |x|)``: dual by the numerical engine."""

        scale: float = 2.0
        n_nodes: int = 120
        _parity = 1  # odd
        _saturating = False  # nears its asymptotes like 1/|x|, not e^-|x|
        _kinks = (0.0,)  # sigma' has a cusp at 0

        def _pointwise(self, xp, x):
            d = xp.abs(x)
            d += 1.0
            return (x * self.scale) / d

        def _pointwise_derivative(self, xp, x):
            d = xp.abs(x)
            d += 1.0
            d *= d
            return self.scale / d

    return ScaledSoftsign


@pytest.fixture
def softsign():
    cls = _define()
    try:
        yield cls
    finally:
        activations._unregister(_NAME)
    assert _NAME not in activations.available()


def _X(n=7, d=5, seed=0):
    return np.random.RandomState(seed).randn(n, d)


def test_listed_and_resolved(softsign):
    names = activations.available()
    assert _NAME in names and "softsign_test_alias" in names
    assert names.index(_NAME) < names.index("swish")  # canonical names first
    assert softsign.name == _NAME
    assert activations.get(_NAME) == softsign()
    assert activations.get("Scaled-Softsign_TEST", scale=3.0) == softsign(scale=3.0)
    assert activations.get("SOFTSIGN_TEST_ALIAS") == softsign()
    with pytest.raises(ValueError, match="Unknown parameter"):
        activations.get(_NAME, alpha=1.0)


def test_register_refuses_taken_or_bad_names(softsign):
    for name, aliases in [(_NAME, ()), ("fresh_name", ("relu",)), ("relu", ())]:
        with pytest.raises(ValueError, match="already registered"):
            activations.register(name, aliases=aliases)
    with pytest.raises(ValueError, match="lower-case"):
        activations.register("Bad-Name")
    with pytest.raises(TypeError, match="Activation subclass"):
        activations.register("not_an_activation")(dict)
    assert "fresh_name" not in activations.available()


def test_pointwise_and_dual(softsign):
    act = activations.get(_NAME)
    x = np.array([-3.0, -0.5, 0.0, 0.5, 3.0])
    np.testing.assert_allclose(act(x), 2.0 * x / (1.0 + np.abs(x)), rtol=1e-15)
    np.testing.assert_allclose(
        act.derivative(x), 2.0 / (1.0 + np.abs(x)) ** 2, rtol=1e-15
    )
    # The numerical dual against Monte Carlo (an independent reference):
    # 4e5 samples of (u, v) per covariance, within 6 standard errors.
    kxx, kxy, kyy = np.array([1.0, 2.0]), np.array([0.5, -1.2]), np.array([1.0, 3.0])
    S, Sd = act.dual(kxx, kxy, kyy)
    rng = np.random.default_rng(0)
    n = 400_000
    for i in range(2):
        z1, z2 = rng.standard_normal(n), rng.standard_normal(n)
        rho = kxy[i] / np.sqrt(kxx[i] * kyy[i])
        u = np.sqrt(kxx[i]) * z1
        v = np.sqrt(kyy[i]) * (rho * z1 + np.sqrt(1.0 - rho * rho) * z2)
        for got, f in ((S[i], act), (Sd[i], act.derivative)):
            prod = f(u) * f(v)
            assert abs(got - prod.mean()) < 6 * prod.std() / np.sqrt(n)
    # The plain 2-D Gauss-Hermite rule agrees on Sigma (smooth enough there).
    Q, _ = act.dual_quadrature(kxx, kxy, kyy, derivative=False, n_nodes=200)
    np.testing.assert_allclose(S, Q, rtol=1e-4)


def test_kernels_and_sketch(softsign):
    X = _X()
    K = nngp_kernel(X, act=_NAME, depth=2)
    Theta = ntk_kernel(X, act=_NAME, depth=2)
    assert K.shape == Theta.shape == (7, 7)
    # Same class, given as an instance: the name resolves to it.
    np.testing.assert_array_equal(K, nngp_kernel(X, act=softsign(), depth=2))
    assert np.all(np.linalg.eigvalsh(Theta) > -1e-10 * np.abs(Theta).max())
    Z = NTKSketch(act=_NAME, depth=2, n_components=4096, random_state=0)
    Z = Z.fit_transform(X)
    assert Z.shape == (7, 4096) and np.all(np.isfinite(Z))
    err = np.linalg.norm(Z @ Z.T - Theta) / np.linalg.norm(Theta)
    assert err < 0.2, err


def test_torch_tensor(softsign):
    torch = pytest.importorskip("torch")
    act = activations.get(_NAME)
    x = np.linspace(-4.0, 4.0, 17)
    for dtype in (torch.float64, torch.float32):
        t = torch.asarray(x, dtype=dtype)
        for f in (act, act.derivative):
            y = f(t)
            assert isinstance(y, torch.Tensor) and y.dtype == dtype
            tol = 1e-15 if dtype == torch.float64 else 1e-6
            np.testing.assert_allclose(y.double().numpy(), f(x), rtol=tol)
