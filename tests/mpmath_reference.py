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

import mpmath as mp

DPS = 50


def _theta(kxx, kxy, kyy):
    den = mp.sqrt(kxx * kyy)
    if den == 0:
        return mp.pi / 2, mp.mpf(0)
    rho = max(min(kxy / den, mp.mpf(1)), mp.mpf(-1))
    return mp.acos(rho), rho


def _relu_J(kxx, kxy, kyy):
    """``E[relu(u) relu(v)]`` and ``P(u > 0, v > 0)`` (Cho & Saul)."""
    th, rho = _theta(kxx, kxy, kyy)
    s = mp.sqrt(kxx * kyy)
    return s * (mp.sin(th) + (mp.pi - th) * mp.cos(th)) / (2 * mp.pi), (
        mp.pi - th
    ) / (2 * mp.pi)


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
        Sd = 4 * a**2 * b**2 / mp.pi / mp.sqrt(px * py - 4 * b**4 * kxy**2)
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
    Sd = _conditional(
        kxx, kxy, kyy, inner_Sd, lambda u: mp.ncdf(u) + u * mp.npdf(u)
    )
    return S, Sd


def _sincos(a=1, b=1, c=0, cosine=False):
    a, b, c = mp.mpf(a), mp.mpf(b), mp.mpf(c)
    sgn = 1 if cosine else -1

    def dual(kxx, kxy, kyy):
        Em = mp.exp(-(b**2) * (kxx + kyy - 2 * kxy) / 2)
        Ep = mp.exp(-(b**2) * (kxx + kyy + 2 * kxy) / 2)
        c2 = mp.cos(2 * c)
        return a**2 / 2 * (Em + sgn * c2 * Ep), a**2 * b**2 / 2 * (Em - sgn * c2 * Ep)

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
        det = (1 - 2 * b * kxx) * (1 - 2 * b * kyy) - 4 * b**2 * kxy**2
        return a**2 / mp.sqrt(det), 4 * a**2 * b**2 * kxy / det**1.5

    return dual


def _gabor_S(kxx, kxy, kyy):
    # sin u sin v = Re(e^{i(u-v)} - e^{i(u+v)})/2 and
    # E[exp(-z'z + i t'z)] = det(I + 2L)^(-1/2) exp(-t' C t / 2), C = L (I + 2L)^-1.
    L = mp.matrix([[kxx, kxy], [kxy, kyy]])
    M = mp.eye(2) + 2 * L
    C = L * M**-1
    pre = 1 / mp.sqrt(mp.det(M))

    def E(t):
        t = mp.matrix(t)
        return pre * mp.exp(-(t.T * C * t)[0] / 2)

    return (E([1, -1]) - E([1, 1])) / 2


def _gabor(kxx, kxy, kyy):
    S = _gabor_S(kxx, kxy, kyy)
    Sd = mp.diff(lambda c: _gabor_S(kxx, c, kyy), kxy)
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
        nxt = [mp.mpf(0)] + cur
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


def kernels(X, Y, act, depth, *, W_std=1.0, b_std=0.0, params=None):
    """Exact NNGP and NTK matrices (nested lists of ``mpf``) of the network.

    ``X`` and ``Y`` are float arrays (their values are taken exactly).
    """
    with mp.workdps(DPS):
        dual = DUALS[act](**(params or {}))
        w2, b2 = _exact(W_std) ** 2, _exact(b_std) ** 2
        d = len(X[0])
        xs = [[_exact(v) for v in row] for row in X]
        ys = [[_exact(v) for v in row] for row in Y]

        def dot(u, v):
            return mp.fsum(a * b for a, b in zip(u, v)) / d

        def diag(row):
            k = dot(row, row)
            out = []
            t = mp.mpf(0)
            k = w2 * k + b2
            t = w2 * t + k
            out.append(k)
            for _ in range(depth):
                S, Sd = dual(k, k, k)
                k, t = S, Sd * t
                k = w2 * k + b2
                t = w2 * t + k
                out.append(k)
            return out

        dx = [diag(r) for r in xs]
        dy = [diag(r) for r in ys]
        K = [[None] * len(ys) for _ in xs]
        T = [[None] * len(ys) for _ in xs]
        for i, xi in enumerate(xs):
            for j, yj in enumerate(ys):
                k = w2 * dot(xi, yj) + b2
                t = k
                for layer in range(depth):
                    S, Sd = dual(dx[i][layer], k, dy[j][layer])
                    k, t = S, Sd * t
                    k = w2 * k + b2
                    t = w2 * t + k
                K[i][j], T[i][j] = k, t
        return K, T
