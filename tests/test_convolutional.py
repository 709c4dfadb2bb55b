"""Exact CNNGP/CNTK kernels: oracle, brute-force rules, shapes, blocking."""

import math

import numpy as np
import pytest
from conftest import assert_allclose_reordered, kernel_kwargs_from_case

from sklearn_ntk import activations
from sklearn_ntk.convolutional import (
    as_images,
    build_network,
    cnngp_kernel,
    cntk_kernel,
    exact_conv_kernel,
    infer_image_shape,
)
from sklearn_ntk.layers.conv import _conv_sum, same_offsets


def _rel_max(a, b):
    return np.max(np.abs(a - b)) / np.max(np.abs(b))


@pytest.mark.smoke
def test_conv_oracle(oracle):
    """Every conv_stack and myrtle oracle case, NNGP and NTK, to 1e-8."""
    n_checked = 0
    for case, arr in oracle:
        if case["kind"] not in ("conv_stack", "myrtle"):
            continue
        kw = kernel_kwargs_from_case(case)
        for name, fn in (("nngp", cnngp_kernel), ("ntk", cntk_kernel)):
            err = _rel_max(fn(arr["X"], **kw), arr[name])
            assert err <= 1e-8, (case["key"], name, err)
            n_checked += 1
    assert n_checked >= 2 * 21


def _naive_conv_sum(K, k):
    """sum_delta K[i + delta, j + delta] by explicit loops over (H, W, H, W)."""
    H, W = K.shape[:2]
    out = np.zeros_like(K)
    offs = list(same_offsets(k))
    for a in range(H):
        for b in range(W):
            for c in range(H):
                for d in range(W):
                    for da in offs:
                        for db in offs:
                            i, j, p, q = a + da, b + db, c + da, d + db
                            if 0 <= i < H and 0 <= j < W and 0 <= p < H and 0 <= q < W:
                                out[a, b, c, d] += K[i, j, p, q]
    return out


@pytest.mark.parametrize("k", [1, 2, 3, 4])
def test_conv_sum_against_loops(k):
    rng = np.random.RandomState(k)
    K = rng.randn(3, 4, 3, 4, 2)
    assert_allclose_reordered(_conv_sum(K, k, "full"), _naive_conv_sum(K, k))
    diag = np.einsum("ijij...->ij...", K)
    assert_allclose_reordered(
        _conv_sum(np.ascontiguousarray(diag), k, "diagonal"),
        np.einsum("ijij...->ij...", _naive_conv_sum(K, k)),
    )


def _relu_dual(kxx, kxy, kyy):
    r = np.sqrt(kxx * kyy)
    rho = np.clip(kxy / r, -1, 1)
    t = np.arccos(rho)
    return r * (np.sin(t) + (np.pi - t) * rho) / (2 * np.pi), (np.pi - t) / (2 * np.pi)


def _mean_diag(M):
    return np.diag(M).mean()


def _brute_force(X, Y, W_std, b_std, readout):
    """One Conv(3x3) + relu + readout + Dense, pixel pair by pixel pair."""
    n, H, Wd, C = X.shape
    P = H * Wd
    pix = [(a, b) for a in range(H) for b in range(Wd)]

    def conv_gram(A, B):
        G = np.zeros((P, P))
        for i, (a, b) in enumerate(pix):
            for j, (c, d) in enumerate(pix):
                s = 0.0
                for da in (-1, 0, 1):
                    for db in (-1, 0, 1):
                        if (
                            0 <= a + da < H
                            and 0 <= b + db < Wd
                            and 0 <= c + da < H
                            and 0 <= d + db < Wd
                        ):
                            s += A[a + da, b + db] @ B[c + da, d + db] / C
                G[i, j] = W_std**2 / 9 * s + b_std**2
        return G

    out_k, out_t = np.zeros((n, len(Y))), np.zeros((n, len(Y)))
    for p, x in enumerate(X):
        for q, y in enumerate(Y):
            K1 = conv_gram(x, y)
            kx, ky = np.diag(conv_gram(x, x)), np.diag(conv_gram(y, y))
            S, Sd = _relu_dual(kx[:, None], K1, ky[None, :])
            K2 = W_std**2 * S + b_std**2
            T2 = W_std**2 * Sd * K1  # Theta of the activation, through Dense
            red = _mean_diag if readout == "flatten" else np.mean
            out_k[p, q] = K2_r = red(K2 - b_std**2) + b_std**2
            out_t[p, q] = red(T2) + K2_r
    return out_k, out_t


@pytest.mark.parametrize("readout", ["flatten", "global_avg"])
def test_one_layer_brute_force(readout):
    rng = np.random.RandomState(0)
    X, Y = rng.randn(2, 3, 4, 2), rng.randn(3, 3, 4, 2)
    kw = dict(
        act="relu",
        architecture="conv_stack",
        depth=1,
        readout=readout,
        W_std=1.3,
        b_std=0.2,
    )
    ref_k, ref_t = _brute_force(X, Y, 1.3, 0.2, readout)
    for got, ref in (
        (cnngp_kernel(X, Y, **kw), ref_k),
        (cntk_kernel(X, Y, **kw), ref_t),
    ):
        np.testing.assert_allclose(got, ref, rtol=1e-10, atol=1e-12 * np.abs(ref).max())


def test_depth_zero_is_linear():
    rng = np.random.RandomState(1)
    X = rng.randn(4, 3, 3, 2)
    xm = X.mean(axis=(1, 2))
    K = cnngp_kernel(X, architecture="conv_stack", depth=0, W_std=2.0, b_std=0.5)
    assert_allclose_reordered(K, 4.0 * xm @ xm.T / 2 + 0.25)
    Kf = cntk_kernel(
        X, architecture="conv_stack", depth=0, readout="flatten", W_std=1.0
    )
    assert_allclose_reordered(Kf, np.einsum("nhwc,mhwc->nm", X, X) / 18)


def test_image_inputs_and_shapes():
    rng = np.random.RandomState(2)
    X4 = rng.randn(3, 4, 4, 2)
    ref = cnngp_kernel(X4, architecture="conv_stack", depth=2)
    flat = X4.reshape(3, -1)
    assert_allclose_reordered(
        cnngp_kernel(flat, architecture="conv_stack", depth=2, image_shape=(4, 4, 2)),
        ref,
    )
    # 3-D input is single-channel; flat perfect squares read as s x s x 1.
    X3 = rng.randn(3, 5, 5)
    assert_allclose_reordered(
        cnngp_kernel(X3, architecture="conv_stack", depth=1),
        cnngp_kernel(X3.reshape(3, 25), architecture="conv_stack", depth=1),
    )
    assert infer_image_shape(64) == (8, 8, 1)
    # Any other width is ambiguous: refused, asking for image_shape.
    with pytest.raises(ValueError, match=r"10 features .* pass image_shape"):
        infer_image_shape(10)
    with pytest.raises(ValueError, match=r"image_shape=\(32, 32, 3\)"):
        cnngp_kernel(np.ones((1, 3072)))
    assert as_images(np.ones((2, 10)), (1, -1, 1)).shape == (2, 1, 10, 1)
    assert as_images(np.ones((2, 6)), (2, 3)).shape == (2, 2, 3, 1)
    with pytest.raises(ValueError, match="image_shape"):
        cnngp_kernel(flat, image_shape=(5, 4, 2))
    with pytest.raises(ValueError, match="image_shape"):
        cnngp_kernel(flat, image_shape=(4, -4, 2))
    with pytest.raises(ValueError, match="does not match"):
        cnngp_kernel(X4, image_shape=(4, 4, 1))
    with pytest.raises(ValueError, match="shape"):
        cnngp_kernel(X4, rng.randn(2, 4, 4, 1))
    with pytest.raises(ValueError, match="Myrtle depth"):
        cnngp_kernel(X4, architecture="myrtle", depth=4)
    with pytest.raises(ValueError, match="NaN"):
        cnngp_kernel(np.full((2, 4, 4, 1), np.nan))


def test_small_and_1d_images_myrtle():
    """Pooling leaves axes shorter than the window alone: 1 x d signals work."""
    rng = np.random.RandomState(3)
    X = rng.randn(5, 7)  # read as 1 x 7 x 1 images
    for fn in (cnngp_kernel, cntk_kernel):
        K = fn(X, architecture="myrtle", depth=7, image_shape=(1, -1, 1))
        assert np.all(np.isfinite(K))
        np.testing.assert_array_equal(K, K.T)  # symmetrized by design
        assert np.linalg.eigvalsh(K).min() > -1e-10 * np.abs(K).max()


@pytest.mark.parametrize("readout", ["global_avg", "flatten"])
def test_tiles_threads_cross_and_diag(readout):
    rng = np.random.RandomState(4)
    X, Y = rng.randn(9, 6, 6, 2), rng.randn(4, 6, 6, 2)
    net = build_network(
        activations.get("relu"), "myrtle", 5, (6, 6, 2), readout=readout
    )
    ref = exact_conv_kernel(net, X, ntk=True)
    # Tiles change the rounding of the matrix products; relu's derivative dual
    # has an infinite slope at rho = 1 (the pairs (x, x)), which turns it into
    # ~sqrt(eps) differences there, and 1e-12 elsewhere.
    off = ~np.eye(9, dtype=bool)
    for tile, n_jobs in ((1, 1), (2, 2), (4, -1)):
        K = exact_conv_kernel(net, X, ntk=True, tile=tile, n_jobs=n_jobs)
        np.testing.assert_allclose(K[off], ref[off], rtol=1e-12)
        np.testing.assert_allclose(K, ref, rtol=1e-8)
    both = np.concatenate([X, Y])
    full = exact_conv_kernel(net, both, ntk=True, tile=3)
    np.testing.assert_allclose(
        exact_conv_kernel(net, X, Y, ntk=True, tile=2), full[:9, 9:], rtol=1e-12
    )
    # relu's derivative dual has an infinite slope at rho = 1: rounding of
    # the correlation on the diagonal moves it by ~sqrt(eps).
    np.testing.assert_allclose(
        net.kernel_diag(X, ntk=True).ntk, np.diag(ref), rtol=1e-8
    )
    np.testing.assert_array_equal(ref, ref.T)  # symmetrized by design


def test_symmetric_psd_general_activation():
    rng = np.random.RandomState(5)
    X = rng.randn(6, 5, 5, 1)
    for act in ("erf", "gelu", "exp_normalized"):
        K = cntk_kernel(X, act=act, architecture="conv_stack", depth=3, b_std=0.1)
        assert np.linalg.eigvalsh(K).min() > -1e-10 * np.abs(K).max()
    # Homogeneous relu network with b = 0: scaling an image scales its kernel row.
    K1 = cnngp_kernel(X[:2])
    K2 = cnngp_kernel(X[:2] * np.array([2.0, 1.0])[:, None, None, None])
    np.testing.assert_allclose(K2[0, 1], 2 * K1[0, 1], rtol=1e-12)
    assert math.isclose(K2[0, 0], 4 * K1[0, 0], rel_tol=1e-12)
