"""The convolutional path on every Array API namespace.

``cnngp_kernel``, ``cntk_kernel`` and the convolutional feature rules (drawn
by ``network.sketch``) run the same code on NumPy, array-api-strict and
PyTorch (CPU) arrays, return the input's namespace and agree with NumPy to
1e-10 in float64 (only the order of floating-point operations may differ:
PyTorch's matrix products and reductions round differently).
"""

import numpy as np
import pytest

from sklearn_ntk import activations
from sklearn_ntk.convolutional import build_network, cnngp_kernel, cntk_kernel


def _to(name, X):
    """``X`` in namespace ``name``, a converter back to NumPy, and the array type."""
    if name == "torch":
        torch = pytest.importorskip("torch")
        return torch.asarray(X), lambda a: a.numpy(), torch.Tensor
    xps = pytest.importorskip("array_api_strict")
    return xps.asarray(X), np.asarray, type(xps.asarray(1.0))


NAMESPACES = ["array_api_strict", "torch"]
#: A pooled network (every pixel pair) and a flattened one (diagonal pairs).
NETWORKS = [
    dict(architecture="myrtle", depth=5, b_std=0.1),
    dict(architecture="conv_stack", depth=2, readout="flatten", act="erf"),
    dict(architecture="conv_stack", depth=1, act="sign", W_std=1.3),
]


def _images(n, seed):
    rng = np.random.RandomState(seed)
    return rng.randn(n, 4, 4, 2) * rng.uniform(0.3, 3.0, size=(n, 1, 1, 1))


@pytest.mark.parametrize("ns", NAMESPACES)
@pytest.mark.parametrize("fn", [cnngp_kernel, cntk_kernel])
@pytest.mark.parametrize("kw", NETWORKS)
@pytest.mark.parametrize("with_Y", [False, True])
def test_exact_conv_kernel_same_matrix(fn, kw, with_Y, ns, dispatch):
    X, Y = _images(5, 0), _images(3, 1)
    X[3] = X[1]  # identical images: their pinned self-pairs go through scatter
    Y[0] = X[1]
    ref = fn(X, Y if with_Y else None, **kw)
    Xa, back, typ = _to(ns, X)
    Ya = _to(ns, Y)[0] if with_Y else None
    K = fn(Xa, Ya, **kw)
    assert isinstance(K, typ)
    np.testing.assert_allclose(back(K), ref, rtol=1e-10, atol=1e-12 * np.abs(ref).max())
    if with_Y:
        # Identical images (X[1], Y[0]) get K(x, x) of the self state: the
        # same computation as the diagonal of K(X) (bitwise, same namespace).
        assert back(K)[1, 0] == back(fn(Xa, **kw))[1, 1]
    else:
        np.testing.assert_array_equal(back(K), back(K).T)  # mirrored tiles
        assert back(K)[1, 3] == back(K)[1, 1]


@pytest.mark.parametrize("ns", NAMESPACES)
@pytest.mark.parametrize("ntk", [False, True])
@pytest.mark.parametrize(
    "arch, depth, readout", [("myrtle", 5, "global_avg"), ("conv_stack", 2, "flatten")]
)
def test_conv_features_same(arch, depth, readout, ntk, ns, dispatch):
    """The conv feature rules (Conv with its SRHT reduction, pixelwise
    activations, pooling, readouts) called through ``network.sketch``."""
    net = build_network(
        activations.get("relu"), arch, depth, (6, 6, 2), readout=readout, b_std=0.1
    )
    sketch = net.sketch(64, ntk=ntk, n_channels=16, random_state=0)
    X = np.random.RandomState(2).randn(4, 6 * 6 * 2)
    ref = sketch(X)
    Xa, back, typ = _to(ns, X)
    Z = sketch(Xa)
    assert isinstance(Z, typ)
    assert Z.shape == ref.shape == (4, 64)
    np.testing.assert_allclose(back(Z), ref, rtol=1e-10, atol=1e-10 * np.abs(ref).max())
