"""High-precision reference values of the numerically integrated duals.

Writes ``tests/data/numerical_dual_reference.npz``: for every numerically
integrated activation of :mod:`sklearn_ntk.activations` (and two user
callables, one with a declared kink) and every point of a grid of
``(kxx, kyy, rho)`` — variances from 1e-8 to 1e8, correlations at and near
``±1`` — the values

    Sigma = E[f(u) f(v)],  Sigma_dot = E[f'(u) f'(v)],
    (u, v) ~ N(0, [[kxx, kxy], [kxy, kyy]]),

and the diagonal normalizers ``E[f(sqrt(k) z)^2]``.

Independence from the code under test:

* the activations are re-implemented here with scalar ``math`` functions;
* the integrals are nested adaptive Gauss-Kronrod quadratures (QUADPACK, via
  :func:`scipy.integrate.quad`) in the opposite coordinates from the
  library's 2-D rule: the *outer* variable is ``v / sqrt(kyy)`` (the larger
  variance on the grid), the inner one ``u`` given ``v``; breakpoints are
  placed where ``f`` changes behaviour, and QUADPACK refines adaptively to
  ``epsrel = 1e-12`` and an absolute tolerance ``1e-14`` times the scale;
* the correlation and ``sqrt(1 - rho^2)`` are computed in 40-digit arithmetic
  (mpmath) from the float64 ``(kxx, kxy, kyy)`` actually stored, so the
  reference is the value at exactly the stored inputs;
* the same routine is run on activations with closed-form duals (erf,
  relu, sign, softplus-free checks) over the whole grid; their worst relative
  errors are stored in the file and printed (``check_*`` entries);
* a few of the hardest points (tanh at variance 1e4 near rho = 1) are
  recomputed with mpmath's 2-D tanh-sinh quadrature at 30 digits.

Run (about 10-20 minutes on 2 cores)::

    python benchmarks/make_dual_reference.py [--processes 2] [--quick]
"""

from __future__ import annotations

import argparse
import math
import sys
import time
import warnings
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from scipy import integrate

OUT = (
    Path(__file__).resolve().parents[1]
    / "tests"
    / "data"
    / "numerical_dual_reference.npz"
)

L = 12.0  # standard normal mass beyond 12: 2e-33
EPSREL = 1e-12
EPSABS = 1e-14
# Breakpoints at c +- j * width around every place c where the integrand changes
# behaviour; the long geometric ladder also resolves slowly decaying features
# (arctan' = 1 / (1 + x^2) at scale 1e4).
LADDER = (0.0, *(2.0**k for k in range(-3, 13)))

# --------------------------------------------------------------------------- #
# Scalar activations (independent of sklearn_ntk)
# --------------------------------------------------------------------------- #
SELU_A = 1.6732632423543772848170429916717
SELU_L = 1.0507009873554804934193349852946


def _sig(x):
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)


def _sech2(x):
    e = math.exp(-2.0 * abs(x))
    return 4.0 * e / (1.0 + e) ** 2


def _softplus(x):
    return max(x, 0.0) + math.log1p(math.exp(-abs(x)))


def _dsig(x):
    e = math.exp(-abs(x))
    return e / (1.0 + e) ** 2


ACTS = {
    # name: (f, f', kinks)
    "tanh": (math.tanh, _sech2, ()),
    "sigmoid": (_sig, _dsig, ()),
    "softplus": (_softplus, _sig, ()),
    "silu": (lambda x: x * _sig(x), lambda x: _sig(x) + x * _dsig(x), ()),
    "mish": (
        lambda x: x * math.tanh(_softplus(x)),
        lambda x: math.tanh(_softplus(x)) + x * _sech2(_softplus(x)) * _sig(x),
        (),
    ),
    "elu": (
        lambda x: x if x > 0 else math.expm1(x),
        lambda x: 1.0 if x > 0 else math.exp(x),
        (0.0,),
    ),
    "elu_0.7": (
        lambda x: x if x > 0 else 0.7 * math.expm1(x),
        lambda x: 1.0 if x > 0 else 0.7 * math.exp(x),
        (0.0,),
    ),
    "selu": (
        lambda x: SELU_L * (x if x > 0 else SELU_A * math.expm1(x)),
        lambda x: SELU_L * (1.0 if x > 0 else SELU_A * math.exp(x)),
        (0.0,),
    ),
    # user callables (tests build them as Numerical(np.arctan, derivative=...))
    "user_arctan": (math.atan, lambda x: 1.0 / (1.0 + x * x), ()),
    "user_kinked": (
        lambda x: (x - 0.5 if x > 0.5 else 0.1 * (x - 0.5)) + 0.2 * math.tanh(x),
        lambda x: (1.0 if x > 0.5 else 0.1) + 0.2 * _sech2(x),
        (0.5,),
    ),
}


# Closed forms to check the reference routine itself, evaluated in 40-digit
# arithmetic at the stored float inputs (asin and acos are ill-conditioned at
# |rho| = 1: rho rounded to float64 would cost ~sqrt(eps) there).
def _rho_mp(kxx, kxy, kyy):
    import mpmath as mp

    mp.mp.dps = 40
    r = mp.mpf(kxy) / mp.sqrt(mp.mpf(kxx) * mp.mpf(kyy))
    return max(min(r, mp.mpf(1)), mp.mpf(-1))


def _erf_closed(kxx, kxy, kyy):
    import mpmath as mp

    mp.mp.dps = 40
    arg = 2 * mp.mpf(kxy) / mp.sqrt((1 + 2 * mp.mpf(kxx)) * (1 + 2 * mp.mpf(kyy)))
    return float(2 / mp.pi * mp.asin(arg))


def _relu_closed(kxx, kxy, kyy):
    import mpmath as mp

    r = _rho_mp(kxx, kxy, kyy)
    s = mp.sqrt(mp.mpf(kxx) * mp.mpf(kyy))
    return float(s * (mp.sqrt(1 - r * r) + (mp.pi - mp.acos(r)) * r) / (2 * mp.pi))


def _sign_closed(kxx, kxy, kyy):
    import mpmath as mp

    return float(2 / mp.pi * mp.asin(_rho_mp(kxx, kxy, kyy)))


CHECKS = {
    "erf": (math.erf, (), _erf_closed),
    "relu": (lambda x: max(x, 0.0), (0.0,), _relu_closed),
    "sign": (lambda x: (x > 0) - (x < 0), (0.0,), _sign_closed),
}

VARIANCES = [1e-8, 2.0**-14, 2.0**-6, 0.25, 1.0, 4.0, 64.0, 2.0**14, 1e8]
RHOS = [-1.0, -0.999999, -0.99, -0.5, 0.0, 0.2, 0.6, 0.9, 0.99, 0.9999, 0.99999999, 1.0]


def grid():
    pts = []
    for i, a in enumerate(VARIANCES):
        for b in VARIANCES[i:]:
            for r in RHOS:
                kxy = (
                    r * math.sqrt(a * b)
                    if abs(r) < 1
                    else math.copysign(a if a == b else math.sqrt(a * b), r)
                )
                pts.append((a, kxy, b))
    return pts


# --------------------------------------------------------------------------- #
# Nested adaptive quadrature
# --------------------------------------------------------------------------- #
def _phi(t):
    return math.exp(-0.5 * t * t) / math.sqrt(2 * math.pi)


def _points(centers, scale, shift=0.0, widths=(1.0,), lo=-L, hi=L):
    """Breakpoints (c + j * w) / scale - shift for the centers, widths, ladder."""
    out = set()
    if scale == 0 or not math.isfinite(scale):
        return []
    for c in centers:
        for w in widths:
            for j in LADDER:
                for s in (-1, 1):
                    p = (c + s * j * w) / scale - shift
                    if lo < p < hi:
                        out.add(p)
    return sorted(out)


def _quad(fun, pts, epsabs):
    val, err = integrate.quad(
        fun, -L, L, points=pts or None, epsabs=epsabs, epsrel=EPSREL, limit=500
    )
    return val, err


def moment(f, k, kinks):
    """E[f(sqrt(k) z)^2]."""
    s = math.sqrt(k)
    pts = _points((0.0, *kinks), s) if s > 0 else []
    v, e = _quad(lambda z: f(s * z) ** 2 * _phi(z), pts, 1e-300)
    return v, e


def expect(f, kinks, kxx, kxy, kyy, scale):
    """E[f(u) f(v)] for (u, v) ~ N(0, [[kxx, kxy], [kxy, kyy]])."""
    import mpmath as mp

    mp.mp.dps = 40
    sx, sy = math.sqrt(kxx), math.sqrt(kyy)
    centers = (0.0, *kinks)
    if kxx == 0 or kyy == 0:
        rho = 0.0
        c = 1.0
    else:
        rho_m = mp.mpf(kxy) / mp.sqrt(mp.mpf(kxx) * mp.mpf(kyy))
        rho_m = max(min(rho_m, mp.mpf(1)), mp.mpf(-1))
        rho = float(rho_m)
        c = float(mp.sqrt((1 - rho_m) * (1 + rho_m)))
    epsabs = EPSABS * scale
    if kxx == 0 or kyy == 0:  # a constant factor f(0)
        k, f0 = (kyy, f(0.0)) if kxx == 0 else (kxx, f(0.0))
        s = math.sqrt(k)
        pts = _points(centers, s) if s > 0 else []
        v, e = _quad(lambda z: f(s * z) * _phi(z), pts, epsabs)
        return f0 * v, abs(f0) * e
    if c == 0.0:  # |rho| = 1: u = rho sx z, v = sy z
        pts = sorted(set(_points(centers, sx) + _points(centers, sy)))
        return _quad(lambda z: f(rho * sx * z) * f(sy * z) * _phi(z), pts, epsabs)
    s_in = sx * c  # std of u given v
    big = max(1.0, s_in)
    inner_eps = EPSABS * math.sqrt(scale) if scale > 0 else 0.0
    est = [0.0]

    def inner(y):
        m = rho * sx * y  # E[u | v = sy y]
        pts = _points(centers, s_in, shift=m / s_in)
        v, e = _quad(lambda t: f(m + s_in * t) * _phi(t), pts, inner_eps)
        est[0] = max(est[0], e)
        return v

    pts = _points(centers, sy)
    if rho != 0:
        # E[f(u) | v] changes where its mean rho sx y crosses a center, over the
        # conditional std s_in (a kink or jump) or the width of f (smooth f)
        pts = sorted(set(pts + _points(centers, rho * sx, widths=(s_in, big))))
    val, err = _quad(lambda y: f(sy * y) * _phi(y) * inner(y), pts, epsabs)
    return val, err + est[0]


def _job(args):
    warnings.simplefilter("ignore", integrate.IntegrationWarning)
    name, kind, k = args
    if kind == "check":
        f, kinks, _ = CHECKS[name]
    else:
        f0, f1, kinks = ACTS[name]
        f = f1 if kind == "d" else f0
    kxx, kxy, kyy = k
    dx = moment(f, kxx, kinks)[0]
    dy = moment(f, kyy, kinks)[0]
    scale = math.sqrt(dx * dy)
    val, err = expect(f, kinks, kxx, kxy, kyy, scale)
    return val, err, dx, dy


def _pair_job(args):
    """Sigma and Sigma_dot of tanh for one pair (diagonal pairs: 1-D)."""
    warnings.simplefilter("ignore", integrate.IntegrationWarning)
    kxx, kxy, kyy = args
    f, df, _ = ACTS["tanh"]
    if kxx == kyy == kxy:
        return moment(f, kxx, ())[0], moment(df, kxx, ())[0]
    sx = math.sqrt(moment(f, kxx, ())[0] * moment(f, kyy, ())[0])
    sd = math.sqrt(moment(df, kxx, ())[0] * moment(df, kyy, ())[0])
    return expect(f, (), kxx, kxy, kyy, sx)[0], expect(df, (), kxx, kxy, kyy, sd)[0]


def oracle_tanh(pool):
    """The fully connected tanh cases of tests/data/oracle.* recomputed layer by
    layer with the nested quadrature (neural-tangents used 120-node
    Gauss-Hermite)."""
    import json

    data_dir = OUT.parent
    cases = [
        c
        for c in json.loads((data_dir / "oracle.json").read_text())
        if c["kind"] == "fc" and c["act"]["name"] == "tanh"
    ]
    out = {}
    with np.load(data_dir / "oracle.npz") as z:
        for c in cases:
            X = z[c["key"] + "_X"]
            w2, b2 = c["W_std"] ** 2, c["b_std"] ** 2
            K = w2 * (X @ X.T) / X.shape[1] + b2
            K = 0.5 * (K + K.T)
            T = K.copy()
            n = len(K)
            iu = np.triu_indices(n)
            for _ in range(c["depth"]):
                d = np.diag(K).copy()
                res = list(
                    pool.map(_pair_job, [(d[i], K[i, j], d[j]) for i, j in zip(*iu)])
                )
                S = np.zeros((n, n))
                Sd = np.zeros((n, n))
                S[iu] = [r[0] for r in res]
                Sd[iu] = [r[1] for r in res]
                S = S + np.triu(S, 1).T
                Sd = Sd + np.triu(Sd, 1).T
                K = w2 * S + b2
                T = K + w2 * Sd * T
            out[f"oracle_{c['key']}_nngp"] = K
            out[f"oracle_{c['key']}_ntk"] = T
            print(c["key"], "done", flush=True)
    return out


def main(argv=None):
    p = argparse.ArgumentParser()
    p.add_argument("--processes", type=int, default=2)
    p.add_argument("--quick", action="store_true", help="a 3 x 3 x 4 subgrid only")
    p.add_argument(
        "--part",
        choices=("all", "grid", "checks", "oracle"),
        default="all",
        help="recompute only part of the file (the rest is kept)",
    )
    p.add_argument("--out", default=str(OUT))
    args = p.parse_args(argv)
    old = {}
    if args.part != "all" and Path(args.out).exists():
        with np.load(args.out) as z:
            old = {k: z[k] for k in z.files}
    if args.part == "oracle":
        with ProcessPoolExecutor(args.processes) as pool:
            old.update(oracle_tanh(pool))
        np.savez_compressed(args.out, **old)
        return 0
    pts = grid()
    if args.quick:
        pts = [q for q in pts if q[0] in (1e-8, 1.0, 1e8) and q[2] in (1e-8, 1.0, 1e8)][
            ::3
        ]
    t0 = time.time()
    data = {
        "kxx": np.array([q[0] for q in pts]),
        "kxy": np.array([q[1] for q in pts]),
        "kyy": np.array([q[2] for q in pts]),
    }
    jobs = []
    checks = CHECKS if args.part in ("all", "grid", "checks") else {}
    acts = ACTS if args.part in ("all", "grid") else {}
    for name in checks:
        jobs += [(name, "check", q) for q in pts]
    for name in acts:
        jobs += [(name, kind, q) for kind in ("s", "d") for q in pts]
    with ProcessPoolExecutor(args.processes) as pool:
        res = list(pool.map(_job, jobs, chunksize=8))
        if args.part == "all":
            old.update(oracle_tanh(pool))
    it = iter(res)
    report = []
    for name in checks:
        closed = CHECKS[name][2]
        vals = [next(it) for _ in pts]
        worst = 0.0
        for (kxx, kxy, kyy), (v, _, dx, dy) in zip(pts, vals, strict=True):
            exact = closed(kxx, kxy, kyy)
            worst = max(worst, abs(v - exact) / math.sqrt(dx * dy))
        data[f"check_{name}"] = np.array(worst)
        report.append(
            f"closed-form check {name}: worst error / sqrt(Dx Dy) = {worst:.2e}"
        )
    for name in acts:
        for kind in ("s", "d"):
            vals = np.array([next(it) for _ in pts])
            data[f"{name}_{kind}"] = vals[:, 0]
            data[f"{name}_{kind}_err"] = vals[:, 1]
            data[f"{name}_{kind}_dxx"] = vals[:, 2]
            data[f"{name}_{kind}_dyy"] = vals[:, 3]
            rel = vals[:, 1] / np.sqrt(vals[:, 2] * vals[:, 3])
            report.append(
                f"{name} {kind}: max QUADPACK error estimate / scale = {rel.max():.1e}"
            )
    old.update(data)
    np.savez_compressed(args.out, **old)
    report.append(f"{len(jobs)} integrals in {time.time() - t0:.0f} s -> {args.out}")
    print("\n".join(report))


if __name__ == "__main__":
    sys.exit(main())
