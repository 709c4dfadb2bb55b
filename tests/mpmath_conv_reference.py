"""High-precision reference for convolutional kernels, pixel pair by pixel pair.

The exact CNNGP/CNTK recursion of ``conv_stack`` networks (``[Conv(k x k,
stride 1, SAME zero padding), act] * depth``, a readout, ``Dense``; the
conventions of neural-tangents) written as explicit loops over pixel pairs
in ``mpmath`` at 50 significant digits, from the exact values of the float
inputs.  The duals are those of :mod:`mpmath_reference` (textbook formulas);
no code of the package is used.
"""

from __future__ import annotations

import mpmath as mp
from mpmath_reference import DPS, DUALS


def _offsets(k):
    lo = (k - 1) // 2  # XLA's SAME padding: (k - 1) // 2 before, k // 2 after
    return range(-lo, k - lo)


def conv_stack_kernels(
    X, Y, act, depth, *, readout, W_std=1.0, b_std=0.0, filter_size=3, pairs=None
):
    """``(K, T)``: exact NNGP and NTK matrices (nested lists of ``mpf``).

    ``X``, ``Y`` are ``(n, H, W, C)`` float arrays; ``pairs`` (a list of
    ``(i, j)``) restricts the work to those entries (others are ``None``).
    """
    with mp.workdps(DPS):
        dual = DUALS[act]()
        w2, b2 = mp.mpf(float(W_std)) ** 2, mp.mpf(float(b_std)) ** 2
        H, W, C = X.shape[1:]
        pix = [(a, b) for a in range(H) for b in range(W)]
        offs = [(p, q) for p in _offsets(filter_size) for q in _offsets(filter_size)]
        scale = w2 / filter_size**2

        def image(x):
            return {
                (a, b): [mp.mpf(float(v)) for v in x[a, b]]
                for a in range(H)
                for b in range(W)
            }

        def conv(K):
            out = {}
            for i in pix:
                for j in pix:
                    s = mp.mpf(0)
                    for p, q in offs:
                        u, v = (i[0] + p, i[1] + q), (j[0] + p, j[1] + q)
                        if u in K_keys and v in K_keys:
                            s += K[u, v]
                    out[i, j] = scale * s + b2
            return out

        K_keys = set(pix)

        def network(x, y, vx, vy):
            """Per-layer pixel-pair states of (x, y); ``vx``/``vy``: the pixel
            variances of x and y before each activation (None: self pair)."""
            K = {
                (i, j): mp.fsum(a * b for a, b in zip(x[i], y[j])) / C
                for i in pix
                for j in pix
            }
            K = conv(K)
            T = dict(K)
            var = []
            for layer in range(depth):
                dx = vx[layer] if vx else {i: K[i, i] for i in pix}
                dy = vy[layer] if vy else dx
                var.append(dx)
                new_K, new_T = {}, {}
                for i in pix:
                    for j in pix:
                        S, Sd = dual(dx[i], K[i, j], dy[j])
                        new_K[i, j], new_T[i, j] = S, Sd * T[i, j]
                if layer + 1 < depth:
                    K = conv(new_K)
                    T_sum = conv(new_T)
                    T = {ij: T_sum[ij] - b2 + K[ij] for ij in K}
                else:
                    K, T = new_K, new_T
            if readout == "flatten":
                k = mp.fsum(K[i, i] for i in pix) / len(pix)
                t = mp.fsum(T[i, i] for i in pix) / len(pix)
            else:
                k = mp.fsum(K.values()) / len(pix) ** 2
                t = mp.fsum(T.values()) / len(pix) ** 2
            k = w2 * k + b2
            return k, w2 * t + k, var

        xs = [image(x) for x in X]
        ys = [image(y) for y in Y]
        if pairs is None:
            pairs = [(i, j) for i in range(len(xs)) for j in range(len(ys))]
        var_x = {i: network(xs[i], xs[i], None, None)[2] for i in {i for i, _ in pairs}}
        var_y = {j: network(ys[j], ys[j], None, None)[2] for j in {j for _, j in pairs}}
        K = [[None] * len(ys) for _ in xs]
        T = [[None] * len(ys) for _ in xs]
        for i, j in pairs:
            K[i][j], T[i][j], _ = network(xs[i], ys[j], var_x[i], var_y[j])
        return K, T
