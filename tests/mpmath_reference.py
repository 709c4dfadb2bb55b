"""High-precision reference kernels, written independently of ``sklearn_ntk``.

The exact NNGP/NTK recursion of a fully connected network (conventions of
neural-tangents, ``[Dense, act] * depth + [Dense]``) evaluated pair by pair in
``mpmath`` at 50 significant digits, from the exact values of the float
inputs.  The closed-form duals are textbook formulas written directly, with no
scale-safe rewriting (mpmath has an unbounded exponent range and enough digits
that ``1 - rho`` near parallel inputs is exact to ~30 digits); where a formula
is long (gelu, gabor, rectified monomials of degree >= 2) it is replaced by a
one-dimensional ``mpmath.quad`` or a ``mpmath.diff`` of the NNGP dual (Price's
theorem: ``d Sigma / d kxy = E[sigma'(u) sigma'(v)]``), so no formula of the
package is reused.

Used by ``tests/test_scale_and_self_pairs.py`` and
``benchmarks/extreme_scales.py``.
"""

from __future__ import annotations

import math

import mpmath as mp
import numpy as np

#: Every closed-form activation (with parameters) that the reference covers.
CLOSED = [
    ("relu", {}),
    ("leaky_relu", {"alpha": 0.2}),
    ("abs", {}),
    ("step", {}),
    ("sign", {}),
    ("rectified_monomial", {"degree": 2}),
    ("erf", {}),
    ("gelu", {}),
    ("sin", {}),
    ("cos", {"c": 0.3}),
    ("rbf", {}),
    ("exp", {}),
    ("gaussian", {}),
    ("gabor", {}),
    ("exp_normalized", {}),
    ("monomial", {"degree": 2}),
    ("polynomial", {"coef": (0.5, 1.0, -0.3)}),
    ("hermite", {"degree": 2}),
    ("identity", {}),
]

DPS = 50


def _theta(kxx, kxy, kyy):
    den = mp.sqrt(kxx * kyy)
    if den == 0:
        return mp.pi / 2, mp.mpf(0)
    rho = max(min(kxy / den, mp.mpf(1)), mp.mpf(-1))
    return mp.acos(rho), rho


def _relu_J(kxx, kxy, kyy):
    """``E[relu(u) relu(v)]`` and ``P(u > 0, v > 0)`` (Cho & Saul)."""
    th, _ = _theta(kxx, kxy, kyy)
    s = mp.sqrt(kxx * kyy)
    return s * (mp.sin(th) + (mp.pi - th) * mp.cos(th)) / (2 * mp.pi), (mp.pi - th) / (
        2 * mp.pi
    )


def _leaky(alpha):
    alpha = mp.mpf(alpha)

    def dual(kxx, kxy, kyy):
        # sigma(x) = relu(x) - alpha relu(-x); E[relu(u) relu(-v)] is the
        # relu dual at -kxy.
        same, p_same = _relu_J(kxx, kxy, kyy)
        cross, p_cross = _relu_J(kxx, -kxy, kyy)
        S = (1 + alpha**2) * same - 2 * alpha * cross
        Sd = (1 + alpha**2) * p_same + 2 * alpha * p_cross
        return S, Sd

    return dual


def _step(kxx, kxy, kyy):
    if kxx == 0 or kyy == 0:
        return mp.mpf(0), mp.mpf(0)
    th, _ = _theta(kxx, kxy, kyy)
    return (mp.pi - th) / (2 * mp.pi), mp.mpf(0)


def _sign(kxx, kxy, kyy):
    th, _ = _theta(kxx, kxy, kyy)
    return 1 - 2 * th / mp.pi, mp.mpf(0)


def _arccos_J(n, th):
    """Cho & Saul's ``J_n(theta)`` for n = 0..3."""
    s, c = mp.sin(th), mp.cos(th)
    if n == 0:
        return mp.pi - th
    if n == 1:
        return s + (mp.pi - th) * c
    if n == 2:
        return 3 * s * c + (mp.pi - th) * (1 + 2 * c**2)
    if n == 3:
        return 15 * s - 11 * s**3 + (mp.pi - th) * (9 * c + 6 * c**3)
    raise ValueError(n)


def _rect(k):
    def dual(kxx, kxy, kyy):
        if k == 0:
            return _step(kxx, kxy, kyy)
        th, _ = _theta(kxx, kxy, kyy)
        s = mp.sqrt(kxx * kyy)
        S = s**k * _arccos_J(k, th) / (2 * mp.pi)
        Sd = k**2 * s ** (k - 1) * _arccos_J(k - 1, th) / (2 * mp.pi)
        return S, Sd

    return dual


def _erf(a=1, b=1, c=0):
    a, b, c = mp.mpf(a), mp.mpf(b), mp.mpf(c)

    def dual(kxx, kxy, kyy):
        px, py = 1 + 2 * b**2 * kxx, 1 + 2 * b**2 * kyy
        S = 2 * a**2 / mp.pi * mp.asin(2 * b**2 * kxy / mp.sqrt(px * py)) + c**2
        # det(I + 2b^2 L), expanded: (1 + 2b^2 kxx)(1 + 2b^2 kyy) - 4b^4 kxy^2
        # would cancel to the working precision at huge variances.
        det = 1 + 2 * b**2 * (kxx + kyy) + 4 * b**4 * (kxx * kyy - kxy**2)
        Sd = 4 * a**2 * b**2 / mp.pi / mp.sqrt(det)
        return S, Sd

    return dual


def _conditional(kxx, kxy, kyy, inner, outer):
    """``E[outer(u) inner(a, b)]`` over ``u ~ N(0, kxx)``, where ``v = a + b z``
    given ``u`` (``a = kxy u / kxx``, ``b^2 = kyy - kxy^2 / kxx``), by quad."""
    if kxx == 0:
        return outer(mp.mpf(0)) * inner(mp.mpf(0), mp.sqrt(kyy))
    sx = mp.sqrt(kxx)
    b = mp.sqrt(max(kyy - kxy**2 / kxx, mp.mpf(0)))

    def f(z):
        u = sx * z
        return mp.npdf(z) * outer(u) * inner(kxy * u / kxx, b)

    return mp.quad(f, [-mp.inf, -8, 0, 8, mp.inf])


def _gelu(kxx, kxy, kyy):
    """GELU dual in closed form (Stein's lemma on ``x Phi(x) = x/2 + x
    erf(x/sqrt(2))/2``), ``Delta`` expanded so that it does not cancel at huge
    variances; checked against :func:`gelu_quad` by the tests."""
    a, d, c = kxx, kyy, kxy
    D = a * d - c**2
    Delta = 1 + a + d + D
    G = 2 / mp.pi / mp.sqrt(Delta)
    arg = min(max(c / mp.sqrt((1 + a) * (1 + d)), mp.mpf(-1)), mp.mpf(1))
    E = 2 / mp.pi * mp.asin(arg)
    S = c / 4 + (G * (D + c**2 / (1 + a) + c**2 / (1 + d)) + c * E) / 4
    Sd = (1 + E + c * G / (1 + a) + c * G / (1 + d) + c * G / Delta) / 4
    return S, Sd


def gelu_quad(kxx, kxy, kyy):
    """GELU dual by one-dimensional quadrature (slow; moderate variances)."""

    # E[(a + bz) Phi(a + bz)] = a Phi(a/s) + b^2 phi(a/s)/s and
    # E[Phi(a + bz) + (a + bz) phi(a + bz)] = Phi(a/s) + a phi(a/s)/s^3,
    # s = sqrt(1 + b^2) (Gaussian integrals).
    def inner_S(a, b):
        s = mp.sqrt(1 + b**2)
        return a * mp.ncdf(a / s) + b**2 * mp.npdf(a / s) / s

    def inner_Sd(a, b):
        s = mp.sqrt(1 + b**2)
        return mp.ncdf(a / s) + a * mp.npdf(a / s) / s**3

    S = _conditional(kxx, kxy, kyy, inner_S, lambda u: u * mp.ncdf(u))
    Sd = _conditional(kxx, kxy, kyy, inner_Sd, lambda u: mp.ncdf(u) + u * mp.npdf(u))
    return S, Sd


def _sincos(a=1, b=1, c=0, cosine=False):
    a, b, c = mp.mpf(a), mp.mpf(b), mp.mpf(c)
    sgn = 1 if cosine else -1

    def dual(kxx, kxy, kyy):
        # E[cos(b(u - v))] +- cos(2c) E[cos(b(u + v))], the second factored
        # out of the first: Em (1 +- cos(2c) exp(-2 b^2 kxy)), with expm1 so
        # that tiny variances do not cancel to the working precision.
        Em = mp.exp(-(b**2) * (kxx + kyy - 2 * kxy) / 2)
        c2 = mp.cos(2 * c)
        t = mp.expm1(-2 * b**2 * kxy)

        def comb(sign):
            return Em * ((1 + sign * c2) + sign * c2 * t)

        return a**2 / 2 * comb(sgn), a**2 * b**2 / 2 * comb(-sgn)

    return dual


def _rbf(gamma=1):
    gamma = mp.mpf(gamma)

    def dual(kxx, kxy, kyy):
        S = mp.exp(-gamma * (kxx + kyy - 2 * kxy))
        return S, 2 * gamma * S

    return dual


def _exp(a=1, b=1):
    a, b = mp.mpf(a), mp.mpf(b)

    def dual(kxx, kxy, kyy):
        S = a**2 * mp.exp(b**2 * (kxx + kyy + 2 * kxy) / 2)
        return S, b**2 * S

    return dual


def _gaussian(a=1, b=-1):
    a, b = mp.mpf(a), mp.mpf(b)

    def dual(kxx, kxy, kyy):
        # det(I - 2bL), expanded (see _erf)
        det = 1 - 2 * b * (kxx + kyy) + 4 * b**2 * (kxx * kyy - kxy**2)
        return a**2 / mp.sqrt(det), 4 * a**2 * b**2 * kxy / det**1.5

    return dual


def _gabor_S(kxx, kxy, kyy):
    # sin u sin v = Re(e^{i(u-v)} - e^{i(u+v)})/2 and
    # E[exp(-z'z + i t'z)] = det(I + 2L)^(-1/2) exp(-t' C t / 2), C = L (I + 2L)^-1.
    # C = L (I + 2L)^-1 and det(I + 2L), written out so that nothing cancels
    # at huge variances: det = 1 + 2 (kxx + kyy) + 4 D, D = det(L).
    D = kxx * kyy - kxy**2
    det = 1 + 2 * (kxx + kyy) + 4 * D
    C = mp.matrix([[kxx + 2 * D, kxy], [kxy, kyy + 2 * D]]) / det
    pre = 1 / mp.sqrt(det)

    # (E_- - E_+) / 2 with E_+- = pre exp(-(C11 + C22 +- 2 C12) / 2): the
    # second factored out of the first (expm1), as the two cancel to the
    # working precision at tiny variances.
    Em = pre * mp.exp(-(C[0, 0] + C[1, 1] - 2 * C[0, 1]) / 2)
    return -Em * mp.expm1(-2 * C[0, 1]) / 2


def _gabor(kxx, kxy, kyy):
    S = _gabor_S(kxx, kxy, kyy)
    # Step relative to the scale of kxy (the default one is absolute), and
    # one sided near |kxy| = sqrt(kxx kyy), beyond which det(I + 2L) may
    # vanish: at large variances the dual bends sharply there (``kernels``
    # raises the precision for gabor accordingly).
    s = mp.sqrt(kxx * kyy)
    h = s * mp.mpf(10) ** (-(mp.mp.dps // 2))
    direction = 0 if abs(kxy) < s / 2 else (-1 if kxy > 0 else 1)
    Sd = mp.diff(lambda c: _gabor_S(kxx, c, kyy), kxy, h=h, direction=direction)
    return S, Sd


def _exp_normalized(gamma=1, shift=-1):
    gamma, shift = mp.mpf(gamma), mp.mpf(shift)

    def dual(kxx, kxy, kyy):
        _, rho = _theta(kxx, kxy, kyy)
        e = mp.exp(gamma * (rho + shift))
        return mp.sqrt(kxx * kyy) * e, gamma * e

    return dual


def _moment(i, j, kxx, kxy, kyy):
    """``E[u^i v^j]`` (Isserlis: ``l`` pairs across, the rest within)."""
    total = mp.mpf(0)
    for l in range(min(i, j) + 1):
        if (i - l) % 2 or (j - l) % 2:
            continue
        total += (
            mp.binomial(i, l)
            * mp.binomial(j, l)
            * mp.factorial(l)
            * kxy**l
            * mp.fac2(i - l - 1)
            * kxx ** ((i - l) // 2)
            * mp.fac2(j - l - 1)
            * kyy ** ((j - l) // 2)
        )
    return total


def _poly(coef):
    coef = [mp.mpf(c) for c in coef]
    dcoef = [i * c for i, c in enumerate(coef)][1:] or [mp.mpf(0)]

    def form(cs, kxx, kxy, kyy):
        return mp.fsum(
            ci * cj * _moment(i, j, kxx, kxy, kyy)
            for i, ci in enumerate(cs)
            for j, cj in enumerate(cs)
            if ci and cj
        )

    def dual(kxx, kxy, kyy):
        return form(coef, kxx, kxy, kyy), form(dcoef, kxx, kxy, kyy)

    return dual


def _hermite_coef(k):
    """Coefficients of ``He_k / sqrt(k!)`` (``He_{n+1} = x He_n - n He_{n-1}``)."""
    prev, cur = [mp.mpf(1)], [mp.mpf(0), mp.mpf(1)]
    if k == 0:
        return prev
    for n in range(1, k):
        nxt = [mp.mpf(0), *cur]
        for i, c in enumerate(prev):
            nxt[i] -= n * c
        prev, cur = cur, nxt
    return [c / mp.sqrt(mp.factorial(k)) for c in cur]


#: name -> (params -> dual(kxx, kxy, kyy) -> (Sigma, Sigma_dot)) for the
#: closed-form activations of ``sklearn_ntk.activations``.
DUALS = {
    "relu": lambda: _leaky(0),
    "leaky_relu": lambda alpha=0.01: _leaky(alpha),
    "abs": lambda: _leaky(-1),
    "step": lambda: _step,
    "sign": lambda: _sign,
    "rectified_monomial": lambda degree=1: _rect(degree),
    "erf": _erf,
    "gelu": lambda: _gelu,
    "sin": lambda a=1, b=1, c=0: _sincos(a, b, c, cosine=False),
    "cos": lambda a=1, b=1, c=0: _sincos(a, b, c, cosine=True),
    "rbf": _rbf,
    "exp": _exp,
    "gaussian": _gaussian,
    "gabor": lambda: _gabor,
    "exp_normalized": _exp_normalized,
    "monomial": lambda degree=1: _poly([0] * degree + [1]),
    "polynomial": lambda coef=(0.0, 1.0): _poly(coef),
    "hermite": lambda degree=1: _poly(_hermite_coef(degree)),
    "identity": lambda: _poly([0, 1]),
}


def _exact(v):
    return mp.mpf(float(v))


def kernels(X, Y, act, depth, *, W_std=1.0, b_std=0.0, params=None, pairs=None):
    """Exact NNGP and NTK matrices (nested lists of ``mpf``) of the network.

    ``X`` and ``Y`` are float arrays (their values are taken exactly).  Returns
    ``(K, T)`` at ``depth``, or with ``depth`` a sequence, ``{depth: (K, T)}``
    for each.  ``pairs`` (a list of ``(i, j)``) restricts the work to those
    entries (the others are ``None``).  Raises ``OverflowError`` where mpmath
    cannot represent a value (far beyond any float).
    """
    depths = [depth] if isinstance(depth, int) else list(depth)
    top = max(depths)
    dps = DPS
    if act == "gabor":  # mpmath.diff of a dual that bends on a scale ~ 1/k
        big = max(float(np.max(np.abs(X))), float(np.max(np.abs(Y))), 1.0)
        dps += int(4 * math.log10(big)) + 10
    with mp.workdps(dps):
        dual = DUALS[act](**(params or {}))
        w2, b2 = _exact(W_std) ** 2, _exact(b_std) ** 2
        d = len(X[0])
        xs = [[_exact(v) for v in row] for row in X]
        ys = [[_exact(v) for v in row] for row in Y]
        if pairs is None:
            pairs = [(i, j) for i in range(len(xs)) for j in range(len(ys))]

        def dot(u, v):
            return mp.fsum(a * b for a, b in zip(u, v)) / d

        def diag(row):
            k = w2 * dot(row, row) + b2
            out = [k]
            for _ in range(top):
                S, _ = dual(k, k, k)
                k = w2 * S + b2
                out.append(k)
            return out

        dx = {i: diag(xs[i]) for i in {i for i, _ in pairs}}
        dy = {j: diag(ys[j]) for j in {j for _, j in pairs}}
        out = {
            L: ([[None] * len(ys) for _ in xs], [[None] * len(ys) for _ in xs])
            for L in depths
        }
        for i, j in pairs:
            k = w2 * dot(xs[i], ys[j]) + b2
            t = k
            for layer in range(top):
                S, Sd = dual(dx[i][layer], k, dy[j][layer])
                k, t = S, Sd * t
                k = w2 * k + b2
                t = w2 * t + k
                if layer + 1 in out:
                    out[layer + 1][0][i][j] = k
                    out[layer + 1][1][i][j] = t
        return out[depth] if isinstance(depth, int) else out
