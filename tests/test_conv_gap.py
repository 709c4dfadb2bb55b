"""Nearly parallel images: the convolutional kernels carry the gap ``1 - |rho|``.

Sign, step (their NNGP duals) and relu (its NTK's derivative dual) are not
Lipschitz at ``rho = 1``: a correlation computed from the pixel-pair Gram
loses half its digits for nearly parallel images, and so would the kernel.
Checked against an independent mpmath recursion over pixel pairs
(``mpmath_conv_reference``) for images at angles 1e-8..1e-2.
"""

import math

import mpmath as mp
import numpy as np
import pytest
from mpmath_conv_reference import conv_stack_kernels

from sklearn_ntk.convolutional import cnngp_kernel, cntk_kernel

ANGLES = [1e-8, 1e-6, 1e-4, 1e-2]
#: (activation, kernel whose dual is not Lipschitz at rho = 1)
KINKED = [("sign", "nngp"), ("step", "nngp"), ("relu", "ntk")]


def _near_images(angle, shape, seed=0):
    """Two pairs of images at ``angle`` (as vectors): equal norms, and norms
    1 : 1.7."""
    rng = np.random.RandomState(seed)
    d = math.prod(shape)
    out = []
    for ratio in (1.0, 1.7):
        x = rng.randn(d)
        u = rng.randn(d)
        u -= x * (u @ x) / (x @ x)
        u /= np.linalg.norm(u)
        n = np.linalg.norm(x)
        y = (math.cos(angle) * x / n + math.sin(angle) * u) * n * ratio
        out += [x, y]
    return np.array(out).reshape(-1, *shape)


def _errors(M, R, pairs):
    """``|M - R| / sqrt(R_ii R_jj)`` over ``pairs``."""
    with mp.workdps(30):
        return max(
            float(
                abs(mp.mpf(float(M[i, j])) - R[i][j]) / mp.sqrt(abs(R[i][i] * R[j][j]))
            )
            for i, j in pairs
        )


@pytest.mark.parametrize("act, kind", KINKED)
@pytest.mark.parametrize("readout", ["flatten", "global_avg"])
@pytest.mark.parametrize(
    "shape, depth, b_std",
    [((3, 3, 1), 2, 0.0), ((4, 1, 1), 1, 0.5), ((3, 3, 1), 1, 0.3)],
)
def test_near_parallel_images_vs_mpmath(act, kind, readout, shape, depth, b_std):
    fn = cnngp_kernel if kind == "nngp" else cntk_kernel
    pairs = [(0, 1), (2, 3)] + [(i, i) for i in range(4)]
    kw = dict(architecture="conv_stack", depth=depth, readout=readout, b_std=b_std)
    for angle in ANGLES:
        X = _near_images(angle, shape)
        K, T = conv_stack_kernels(
            X,
            X,
            act,
            depth,
            readout=readout,
            W_std=math.sqrt(2.0),
            b_std=b_std,
            pairs=pairs,
        )
        M = fn(X, act=act, **kw)
        err = _errors(M, K if kind == "nngp" else T, pairs)
        assert err <= 1e-12, (angle, err)
