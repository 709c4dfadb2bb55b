"""One sketch of the whole network for positively homogeneous activations.

For an activation with ``σ(r z) = r^k σ(z)`` (relu, leaky_relu, abs, step,
sign, monomials, rectified monomials, exp_normalized) and ``b_std = 0``, the
kernel conventions of the package (``K⁰ = W² <x, y> / d``, then the dual layer
by layer, see ``shared/reference/kernels.md``) give, for every depth ``L``::

    K^L(x, y) = R_L(x) R_L(y) κ_L(ρ)        Θ^L(x, y) = R_L(x) R_L(y) τ_L(ρ)

with ``ρ = <x, y> / (||x|| ||y||)`` the input correlation and
``R_L(x) = sqrt(K^L(x, x))``.  Why: with ``f(ρ) = Σ_n a_n(1)² ρⁿ`` and
``F = f / f(1)``, each layer maps the correlation by ``F`` and the scale by
``R_l = W sqrt(f(1)) R_{l-1}^k`` (``R_0 = W ||x|| / sqrt(d)``), so
``κ_L = F ∘ ... ∘ F``.  The derivative dual is ``Σ̇ = (R R)^{k-1} g(ρ)`` with
``g(ρ) = Σ_n b_n(1)² ρⁿ``; writing ``G = g / f(1)`` the NTK recursion
``Θ^l = K^l + W² Σ̇^l Θ^{l-1}`` becomes ``τ_l = κ_l + G(κ_{l-1}) τ_{l-1}``,
``τ_0 = ρ``.

The Taylor coefficients of ``κ_L`` and ``τ_L`` are computed by power-series
composition (float64, truncated at ``n_terms``).  All coefficients are
nonnegative, and the totals at ``ρ = ±1`` are known exactly from the closed-form
duals, so the mass the truncation misses is known exactly: it is folded into
the highest kept even and odd degrees, which keeps ``κ(±1)`` exact (exact
feature norms, like ``layers.dense.folded_hermite``).

Features: ``Z(x) = R_L(x) ⊕_n sqrt(c_n) S_n(x / ||x||)`` with one tree of
degree-2 tensor sketches (:class:`~sklearn_ntk.sketches.TensorSRHT`) that
gives unbiased sketches of ``u^{⊗n}`` for every kept degree at once (the
structure of :class:`~sklearn_ntk.sketches.PolySketch`, written here because
its leaves must be independent CountSketches of sparse rows: a CSR input costs
``O(nnz(X) q)`` plus FFTs of the sketch width, independent of ``d``).  The
features of each degree are allocated to minimize the variance, degree 0 is
exact, and degree 1 is exact for narrow dense input.

A bias (``b_std != 0``) is carried as an extra input coordinate
``[W x / sqrt(d); b]`` and a final constant feature ``b``: exact for
``depth <= 1``.  Past the first hidden layer the additive ``b²`` makes the
correlation of the next layer depend on the norms, not on ``ρ`` alone, so
``depth >= 2`` with a bias is refused.

This is the subspace embedding of Han et al. (NeurIPS 2022) for homogeneous
duals (the ReLU NTK Sketch of Zandieh et al. 2021 is its relu case).
"""

from __future__ import annotations

import functools
import math
import numbers
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.fft
import scipy.sparse as sp
from sklearn.utils import check_random_state

from ._backend import device as _device
from ._backend import get_namespace
from .activations import Activation, get
from .sketches import SRHT, CountSketch, TensorSRHT

__all__ = [
    "HomogeneousSeries",
    "HomogeneousSketch",
    "choose_n_components",
    "homogeneous_series",
    "statistical_dimension_of_kernel",
]

# Internal degree of the composed series (the kept degree q is far below it):
# composition of truncated series loses low-order mass only through powers of
# κ_{l-1}(0) < 1 raised to more than this, which the exact totals account for.
_N_TERMS = 256
# Relative tail mass below which the truncation degree stops growing.
_TAIL_TOL = 1e-4
# Fewest features a kept degree may get (else its mass is folded lower).
_MIN_FEATURES = 32
# A degree gets its exact features once its share of the budget reaches this
# fraction of their width (exact features have no variance at all).
_EXACT_SHARE = 0.5
# Temporaries of one row chunk, in floats (128 MiB in float64).
_CHUNK_FLOATS = 1 << 24
# Constant of the auto dimension: m = ceil(_AUTO_FACTOR s_lambda / eps^2).
_AUTO_FACTOR = 6.0


# ------------------------------------------------------------ validation
#: Activations for which ``method="auto"`` prefers this sketch (measured:
#: ``benchmarks/results/homogeneous.md``, and at depth >= 2 half the error of
#: the layer-by-layer rules at 4096 features, in less time; at depth 1 the
#: two are equally accurate and the layer-wise rules faster).
AUTO_ACTIVATIONS = frozenset({"relu", "leaky_relu", "abs", "rectified_monomial"})


def preferred(act: Activation, depth: int, b_std: float) -> bool:
    """Whether ``method="auto"`` picks the homogeneous sketch."""
    return (
        getattr(act, "name", None) in AUTO_ACTIVATIONS
        and (act.homogeneous_degree or 0) >= 1
        and b_std == 0
        and depth >= 2
    )


def check_homogeneous(act: Activation, depth: int, b_std: float, ntk: bool) -> int:
    """Degree ``k`` of ``act``, or a ValueError saying why the method does not apply."""
    k = act.homogeneous_degree
    if k is None:
        raise ValueError(
            f'method="homogeneous" needs a positively homogeneous activation '
            f"(relu, leaky_relu, abs, step, sign, monomial, rectified_monomial, "
            f"exp_normalized); act={act!r} is not. Use another method."
        )
    if b_std != 0 and depth >= 2:
        raise ValueError(
            f'method="homogeneous" with b_std={b_std!r} and depth={depth}: a bias '
            "breaks homogeneity past the first hidden layer (the next layer's "
            "correlation then depends on the input norms, not on rho alone). Use "
            "b_std=0, depth <= 1, or another method."
        )
    if ntk and depth >= 1:
        _, gdot = act.dual(np.ones(1), np.ones(1), np.ones(1), derivative=True)
        if not np.isfinite(gdot).all():
            raise ValueError(
                f'method="homogeneous": the NTK of act={act!r} is infinite on the '
                "diagonal (its derivative dual diverges at rho=1)."
            )
    return int(k)


# ------------------------------------------------------------ the series
def _mul(a: np.ndarray, b: np.ndarray, n: int) -> np.ndarray:
    return np.convolve(a, b)[: n + 1]


def _compose(outer: np.ndarray, inner: np.ndarray, n: int) -> np.ndarray:
    """Coefficients of ``outer(inner(ρ))`` up to degree ``n`` (Horner)."""
    out = np.zeros(n + 1)
    for c in outer[::-1]:
        out = _mul(out, inner, n)
        out[0] += c
    return out


def _unit_duals(act: Activation, n: int) -> tuple[np.ndarray, np.ndarray, float]:
    """``F_n = a_n(1)² / f(1)``, ``G_n = b_n(1)² / f(1)`` and ``f(1)``."""
    a, b = act.hermite(np.ones(1), n)
    one = np.ones(1)
    f1 = float(act.dual(one, one, one, derivative=False)[0][0])
    if not f1 > 0:
        raise ValueError(f"act={act!r} has a zero dual at rho=1: no kernel to sketch.")
    return a[0] ** 2 / f1, b[0] ** 2 / f1, f1


def exact_series_value(act: Activation, depth: int, ntk: bool, rho: Any) -> np.ndarray:
    """``κ_L(ρ)`` (or ``τ_L(ρ)``) from the closed-form duals, layer by layer."""
    rho = np.asarray(rho, dtype=np.float64)
    one = np.ones_like(rho)
    f1 = float(act.dual(np.ones(1), np.ones(1), np.ones(1), derivative=False)[0][0])
    kappa, tau = rho, rho
    for _ in range(depth):
        s, sd = act.dual(one, np.clip(kappa, -1.0, 1.0), one, derivative=ntk)
        if ntk:
            tau = s / f1 + sd / f1 * tau
        kappa = s / f1
    return tau if ntk else kappa


@dataclass(frozen=True)
class HomogeneousSeries:
    """Power series of a homogeneous network's kernel in the input correlation.

    Attributes
    ----------
    coef : ndarray of shape (n_terms + 1,)
        Computed Taylor coefficients ``c_n >= 0`` (truncated composition).
    total_plus, total_minus : float
        Exact values of the series at ``ρ = 1`` and ``ρ = -1``.
    degree : int
        Homogeneous degree ``k`` of the activation.
    log_scale : float
        ``log`` of the constant ``C`` in ``R_L(x) = C ||x̃||^{k^L}``.
    exponent : int
        ``k^L``.
    """

    coef: np.ndarray
    total_plus: float
    total_minus: float
    degree: int
    log_scale: float
    exponent: int

    @property
    def missing_mass(self) -> float:
        """Mass at ``ρ = 1`` that the computed coefficients lack (>= 0)."""
        return max(self.total_plus - float(self.coef.sum()), 0.0)

    def tail_mass(self, q: int) -> float:
        """Exact mass of all degrees above ``q`` at ``ρ = 1``."""
        return max(self.total_plus - float(self.coef[: q + 1].sum()), 0.0)

    def folded(self, q: int) -> np.ndarray:
        """Coefficients ``0..q`` with the even/odd tail added to the top
        even/odd kept degree: exact at ``ρ = ±1``."""
        c = np.array(self.coef[: q + 1], dtype=np.float64, copy=True)
        even = 0.5 * (self.total_plus + self.total_minus)
        odd = 0.5 * (self.total_plus - self.total_minus)
        for parity, total in ((0, even), (1, odd)):
            top = q if q % 2 == parity else q - 1
            if top < 0:
                continue
            # Rounding can leave a tiny negative tail: only add mass.
            c[top] += max(total - float(c[parity::2].sum()), 0.0)
        return c

    def __call__(self, rho: Any, q: int | None = None) -> np.ndarray:
        """Sum of the (folded, if ``q``) series at ``rho``."""
        c = self.coef if q is None else self.folded(q)
        return np.polynomial.polynomial.polyval(np.asarray(rho, dtype=float), c)


def homogeneous_series(
    act: Any,
    depth: int,
    *,
    ntk: bool = False,
    W_std: float = 1.0,
    b_std: float = 0.0,
    n_terms: int = _N_TERMS,
) -> HomogeneousSeries:
    """Taylor coefficients of the depth-``L`` NNGP or NTK in the input correlation.

    Parameters
    ----------
    act : str or Activation
        A positively homogeneous activation.
    depth : int
        Number of hidden layers ``L >= 0``.
    ntk : bool, default=False
        ``τ_L`` (NTK) instead of ``κ_L`` (NNGP).
    W_std, b_std : float
        Weight and bias standard deviations (``b_std != 0`` only for
        ``depth <= 1``).
    n_terms : int, default=256
        Highest degree computed.

    Returns
    -------
    HomogeneousSeries

    Examples
    --------
    >>> from sklearn_ntk.homogeneous import homogeneous_series
    >>> s = homogeneous_series("relu", 1)
    >>> print(s.coef[:3].round(4))   # 1/pi, 1/2, 1/(2 pi)
    [0.3183 0.5    0.1592]
    >>> print(round(s.total_plus, 12))
    1.0
    """
    act = get(act)
    depth = int(depth)
    if depth < 0:
        raise ValueError(f"depth must be >= 0, got {depth}.")
    check_homogeneous(act, depth, b_std, ntk)
    if not W_std > 0:
        raise ValueError(
            f'method="homogeneous" needs W_std > 0, got {W_std!r} (W_std=0 makes '
            "the kernel constant); use another method."
        )
    try:
        hash(act)
    except TypeError:  # unhashable parameters: no cache
        return _series(act, depth, bool(ntk), float(W_std), int(n_terms))
    return _cached_series(act, depth, bool(ntk), float(W_std), int(n_terms))


def _series(
    act: Activation, depth: int, ntk: bool, W_std: float, n: int
) -> HomogeneousSeries:
    k = int(act.homogeneous_degree)
    identity = np.zeros(n + 1)
    identity[1] = 1.0
    kappa, tau = identity, identity
    log_scale, exponent = 0.0, 1
    if depth:
        F, G, f1 = _unit_duals(act, n)
        for _ in range(depth):
            new_kappa = _compose(F, kappa, n)
            if ntk:
                tau = new_kappa + _mul(_compose(G, kappa, n), tau, n)
            kappa = new_kappa
            log_scale = math.log(W_std) + 0.5 * math.log(f1) + k * log_scale
            exponent *= k
    ends = exact_series_value(act, depth, ntk, np.array([1.0, -1.0]))
    coef = np.maximum(tau if ntk else kappa, 0.0)
    coef.setflags(write=False)
    return HomogeneousSeries(
        coef=coef,
        total_plus=float(ends[0]),
        total_minus=float(ends[1]),
        degree=k,
        log_scale=log_scale,
        exponent=exponent,
    )


# Sketches drawn again and again (seeds, grid searches) share their series;
# the result is frozen and its array is never written.
_cached_series = functools.lru_cache(maxsize=64)(_series)


# ------------------------------------------------------------ allocation
def _variance_factor(n: np.ndarray) -> np.ndarray:
    # Variance of the degree-n tensor-sketch tree relative to its squared
    # weight grows about linearly with n (see sketches.PolySketch).
    return np.maximum(n, 1).astype(float)


def allocate_features(
    c: np.ndarray, budget: int, exact: dict[int, int] | None = None
) -> tuple[np.ndarray, set[int]]:
    """Features per degree ``1..q`` minimizing ``Σ c_n² v_n / m_n``.

    ``m_n ~ c_n sqrt(v_n)`` (Lagrange), at least ``_MIN_FEATURES`` for every
    degree with ``c_n > 0`` (when the budget allows).  ``exact`` maps a degree
    to the width of its exact (zero-variance) features; a degree whose share
    reaches half that width gets it exactly, and the rest is shared again.
    Returns ``m`` of length ``len(c)`` with ``m[0] = 0`` (degree 0 is one
    exact feature, outside the budget) and the set of exact degrees;
    ``m.sum() == budget`` unless every degree is exact.
    """
    q = c.size - 1
    m = np.zeros(q + 1, dtype=int)
    free = [int(p) for p in np.flatnonzero(c[1:] > 0) + 1]
    done: set[int] = set()
    left = int(budget)
    exact = dict(exact or {})
    while free and left > 0:
        idx = np.array(free)
        score = c[idx] * np.sqrt(_variance_factor(idx))
        share = left * score / score.sum()
        # An exact degree must fit in what is left, leaving the other kept
        # degrees their minimum (output never wider than asked, none dropped).
        room = left - _MIN_FEATURES * (len(free) - 1)
        fits = [
            p
            for p, s in zip(free, share)
            if p in exact and s >= _EXACT_SHARE * exact[p] and exact[p] <= room
        ]
        if not fits:
            break
        for p in fits[:1]:  # exact features are cheaper than their share
            m[p] = exact[p]
            left -= exact[p]
            free.remove(p)
            done.add(p)
    if free and left > 0:
        idx = np.array(free)
        score = c[idx] * np.sqrt(_variance_factor(idx))
        floor = min(_MIN_FEATURES, left // idx.size)
        rest = left - floor * idx.size
        share = rest * score / score.sum()
        base = np.floor(share).astype(int)
        extra = rest - int(base.sum())
        base[np.argsort(-(share - base))[:extra]] += 1
        m[idx] = base + floor
    return m, done


def choose_degree(
    series: HomogeneousSeries, budget: int, max_degree: int, tol: float = _TAIL_TOL
) -> int:
    """Truncation degree: the smallest ``q`` whose tail mass is below
    ``tol`` times the total, capped by ``max_degree`` and by the budget
    (every kept degree must get ``_MIN_FEATURES`` features)."""
    total = series.total_plus
    cap = max(1, min(int(max_degree), series.coef.size - 1))
    q = cap
    for n in range(1, cap + 1):
        if series.tail_mass(n) <= tol * total:
            q = n
            break
    while q > 1:
        nonzero = int(np.count_nonzero(series.folded(q)[1:] > 0))
        if nonzero * _MIN_FEATURES <= budget:
            break
        q -= 1
    return q


# ------------------------------------------------------------ the feature map
def _split(c: int) -> int:
    return 1 << ((c - 1).bit_length() - 1)


class _TensorTree:
    """Unbiased sketches of ``u^{⊗p}`` for all ``p`` with ``widths[p] > 0``.

    Node ``N(s, c)`` sketches the product of leaves ``s..s+c-1`` into
    ``internal`` coordinates, ``N(s, c) = T(N(s, h), N(s+h, c-h))`` with ``h``
    the largest power of two below ``c``; each degree's output is one more
    :class:`TensorSRHT` of the two children of ``N(0, p)``.  Within a degree
    the two children use disjoint leaves and independent sketches, so each
    output is unbiased given independent (or identical, for dense input:
    each TensorSRHT draws its own signs) leaves.
    """

    def __init__(self, leaf_width: int, widths: dict[int, int], internal: int, rng):
        self.leaf_width, self.internal = leaf_width, internal
        self.nodes: dict[tuple[int, int], TensorSRHT] = {}
        self.outputs: dict[int, Any] = {}
        for p, m in sorted(widths.items()):
            if m <= 0:
                continue
            if p == 1:
                self.outputs[p] = SRHT(leaf_width, m, rng)
            else:
                h = _split(p)
                w1 = self._ensure(0, h, rng)
                w2 = self._ensure(h, p - h, rng)
                self.outputs[p] = TensorSRHT(w1, w2, m, rng)
        self.n_leaves = max(self.outputs, default=1)

    def _ensure(self, s: int, c: int, rng) -> int:
        if c == 1:
            return self.leaf_width
        if (s, c) not in self.nodes:
            h = _split(c)
            w1 = self._ensure(s, h, rng)
            w2 = self._ensure(s + h, c - h, rng)
            self.nodes[(s, c)] = TensorSRHT(w1, w2, self.internal, rng)
        return self.internal

    def __call__(self, leaf) -> dict[int, Any]:
        cache: dict[tuple[int, int], Any] = {}

        def node(s: int, c: int) -> Any:
            if c == 1:
                return leaf(s)
            if (s, c) not in cache:
                h = _split(c)
                cache[(s, c)] = self.nodes[(s, c)](node(s, h), node(s + h, c - h))
            return cache[(s, c)]

        out = {}
        for p, sketch in self.outputs.items():
            if p == 1:
                out[p] = sketch(leaf(0))
            else:
                h = _split(p)
                out[p] = sketch(node(0, h), node(h, p - h))
        return out


def _symmetric_square(U: Any, xp: Any) -> Any:
    """Exact features of ``u ⊗ u``: ``[u_i², sqrt(2) u_i u_j (i < j)]``,
    whose inner products are ``<u, v>²``."""
    i, j = np.triu_indices(U.shape[1])
    w = np.where(i == j, 1.0, math.sqrt(2.0))
    dev = _device(U)
    take_i = xp.asarray(i, device=dev)
    take_j = xp.asarray(j, device=dev)
    scale = xp.asarray(w, dtype=U.dtype, device=dev)
    return xp.take(U, take_i, axis=1) * xp.take(U, take_j, axis=1) * scale


class HomogeneousSketch:
    """Feature map of the whole network for a homogeneous activation.

    ``Z(x) = [R sqrt(c_0), R sqrt(c_1) S_1(u), ..., R sqrt(c_q) S_q(u), b]``
    with ``x̃ = [W x / sqrt(d); b]``, ``u = x̃ / ||x̃||``, ``R = R_L(x)`` the
    exact kernel scale, ``c_n`` the folded coefficients of the series and
    ``S_n`` unbiased sketches of ``u^{⊗n}``, so that
    ``E[Z(x) · Z(y)] = K(x, y)`` up to the folded tail, exactly on the
    diagonal.

    Parameters
    ----------
    act : str or Activation
        Positively homogeneous activation.
    depth : int
        Number of hidden layers.
    n_features : int
        Input dimension ``d``.
    n_components : int
        Number of output features (>= 2).
    ntk : bool, default=False
        NTK instead of NNGP features.
    W_std, b_std : float, default=1.0, 0.0
        Weight and bias standard deviations.
    max_degree : int, default=8
        Highest degree of the series that gets features (the truncation
        degree ``degree_`` is chosen from the coefficient tail, up to this).
    sparse : bool, default=False
        Draw CountSketch leaves for scipy.sparse input (input-sparsity time).
    random_state : int, RandomState instance or None
        Seed of every sketch.

    Attributes
    ----------
    series_ : HomogeneousSeries
    degree_ : int
        Truncation degree.
    coef_ : ndarray of shape (degree_ + 1,)
        Folded coefficients.
    widths_ : ndarray of shape (degree_ + 1,)
        Features per degree (degree 0: one exact feature).
    tail_mass_ : float
        Relative mass of the degrees above ``degree_`` (folded).

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_ntk import ntk_kernel
    >>> from sklearn_ntk.homogeneous import HomogeneousSketch
    >>> X = np.random.RandomState(0).randn(50, 8)
    >>> S = HomogeneousSketch("relu", 2, 8, 2048, ntk=True, random_state=0)
    >>> Z = S(X)
    >>> K = ntk_kernel(X, act="relu", depth=2)
    >>> bool(np.linalg.norm(Z @ Z.T - K) / np.linalg.norm(K) < 0.1)
    True
    """

    def __init__(
        self,
        act: Any,
        depth: int,
        n_features: int,
        n_components: int,
        *,
        ntk: bool = False,
        W_std: float = 1.0,
        b_std: float = 0.0,
        max_degree: int = 8,
        sparse: bool = False,
        random_state: Any = None,
    ):
        self.act = get(act)
        self.depth = int(depth)
        self.n_features = int(n_features)
        self.ntk = bool(ntk)
        self.W_std, self.b_std = float(W_std), float(b_std)
        self.sparse = bool(sparse)
        n_components = int(n_components)
        self.has_bias_ = self.b_std != 0.0
        # The constant bias feature of the readout (depth >= 1).
        self._readout_bias = self.has_bias_ and self.depth >= 1
        if n_components < 1:
            raise ValueError(f"n_components must be >= 1, got {n_components}.")
        rng = check_random_state(random_state)
        # Below one exact constant plus one sketched feature (plus the bias),
        # the features are drawn at that width and CountSketched down to
        # n_components (random signs: still unbiased).
        n_min = 2 + int(self._readout_bias)
        self._compress = None
        if n_components < n_min:
            C = np.zeros((n_min, n_components))
            C[np.arange(n_min), rng.randint(0, n_components, n_min)] = (
                rng.randint(0, 2, n_min) * 2.0 - 1.0
            )
            self._compress = C
        budget = max(n_components, n_min) - 1 - int(self._readout_bias)
        self.series_ = homogeneous_series(
            self.act,
            self.depth,
            ntk=self.ntk,
            W_std=self.W_std,
            b_std=self.b_std,
            n_terms=max(_N_TERMS, 2 * int(max_degree)),
        )
        self.input_width_ = self.n_features + int(self.has_bias_)
        q = self.degree_ = choose_degree(self.series_, budget, max_degree)
        self.coef_ = self.series_.folded(q)
        self.tail_mass_ = self.series_.tail_mass(q) / self.series_.total_plus
        d_in = self.input_width_
        # Exact degrees 1 and 2 (zero variance) when their share of the budget
        # covers their width (sparse rows are densified for them only).
        exact = {1: d_in, 2: d_in * (d_in + 1) // 2}
        widths, self.exact_degrees_ = allocate_features(self.coef_, budget, exact)
        widths[0] = 1
        self.widths_ = widths
        self.n_components = (
            n_components
            if self._compress is not None
            else int(widths.sum()) + int(self._readout_bias)
        )
        tree_widths = {p: int(m) for p, m in enumerate(widths) if p >= 1 and m > 0}
        for p in self.exact_degrees_:
            tree_widths.pop(p)
        internal = int(scipy.fft.next_fast_len(int(max(widths.max(), 256)), real=True))
        if self.sparse:
            # Leaves: independent CountSketches of u, wide enough that their
            # own variance stays below the tree's.
            self.leaf_width_ = internal
            n_leaves = max(tree_widths, default=1)
            self._leaves = [
                CountSketch(self.input_width_, self.leaf_width_, rng)
                for _ in range(n_leaves)
            ]
            if 1 in tree_widths:
                # Degree 1 straight from a CountSketch of u (no leaf detour).
                self._first = CountSketch(self.input_width_, tree_widths.pop(1), rng)
            else:
                self._first = None
        else:
            self.leaf_width_ = self.input_width_
            self._leaves, self._first = None, None
        self._tree = _TensorTree(self.leaf_width_, tree_widths, internal, rng)

    # ---- scales
    def _augment(self, X: Any) -> Any:
        """``[W x / sqrt(d); b]`` (CSR stays CSR)."""
        w = self.W_std / math.sqrt(self.n_features)
        if sp.issparse(X):
            X = sp.csr_array(X) * w
            if self.has_bias_:
                col = sp.csr_array(np.full((X.shape[0], 1), self.b_std, X.dtype))
                X = sp.hstack([X, col], format="csr")
            return X
        xp, _ = get_namespace(X)
        X = X * w
        if self.has_bias_:
            col = xp.full((X.shape[0], 1), self.b_std, dtype=X.dtype, device=_device(X))
            X = xp.concat([X, col], axis=1)
        return X

    def _row_floats(self) -> int:
        """Floats of the temporaries of one row (leaves, tree spreads, output)."""
        n_leaves = len(self._leaves) if self._leaves else 1
        nodes = len(self._tree.nodes) + len(self._tree.outputs)
        return int(
            n_leaves * self.leaf_width_
            + 4 * nodes * (self._tree.internal + 2)
            + 2 * self.n_components
            # Dense rows (and sparse ones densified for exact degrees) are
            # part of the chunk; CSR rows otherwise cost their nonzeros only.
            + (2 * self.input_width_ if not self.sparse or self.exact_degrees_ else 0)
        )

    def __call__(self, X: Any) -> Any:
        """Features of the rows of ``X`` (dense of any namespace, or CSR)."""
        if X.shape[1] != self.n_features:
            raise ValueError(
                f"X has {X.shape[1]} features, but the sketch was drawn for "
                f"n_features={self.n_features}."
            )
        # Row chunks keep the temporaries near 2**24 floats (linear time in
        # n, bounded memory whatever the caller's batch).
        step = max(1, _CHUNK_FLOATS // self._row_floats())
        n = X.shape[0]
        if n <= step:
            return self._features(X)
        parts = [
            self._features(
                X[a : min(n, a + step)] if sp.issparse(X) else X[a : a + step, ...]
            )
            for a in range(0, n, step)
        ]
        if sp.issparse(X):
            return np.concatenate(parts, axis=0)
        return get_namespace(parts[0])[0].concat(parts, axis=0)

    def _features(self, X: Any) -> Any:
        sparse = sp.issparse(X)
        if sparse and not self.sparse:
            X = X.toarray()
            sparse = False
        Xa = self._augment(X)
        if sparse:
            # The Array API view of NumPy (NumPy < 2 has no ``np.astype``).
            xp = get_namespace(np.empty(0))[0]
            Xa = sp.csr_array(Xa)
            if Xa.dtype.kind != "f":
                Xa = Xa.astype(np.float64)
            dtype = Xa.dtype
            sq = np.asarray(Xa.multiply(Xa).sum(axis=1)).ravel().astype(np.float64)
        else:
            xp, _ = get_namespace(Xa)
            if not xp.isdtype(Xa.dtype, "real floating"):
                Xa = xp.astype(Xa, xp.float64)
            dtype = Xa.dtype
            sq = xp.sum(xp.astype(Xa, xp.float64) ** 2, axis=1)
        norm = sq**0.5
        self._check_zero_rows(norm, xp)
        safe = xp.where(norm > 0, norm, xp.ones_like(norm))
        if sparse:
            U = sp.csr_array(sp.diags(1.0 / safe) @ Xa).astype(dtype)
            leaves = [L(U) for L in self._leaves]
            outs = self._tree(lambda s: leaves[s])
            if self._first is not None:
                outs[1] = self._first(U)
            if self.exact_degrees_:
                Ud = U.toarray()
                if 1 in self.exact_degrees_:
                    outs[1] = Ud
                if 2 in self.exact_degrees_:
                    outs[2] = _symmetric_square(Ud, np)
        else:
            U = Xa / xp.astype(safe, dtype)[:, None]
            outs = self._tree(lambda s: U)
            if 1 in self.exact_degrees_:
                outs[1] = U
            if 2 in self.exact_degrees_:
                outs[2] = _symmetric_square(U, xp)
        # R_L(x) = C ||x̃||^{k^L}, in float64 logs (huge exponents stay finite
        # as long as the result is representable).
        k_pow = self.series_.exponent
        if k_pow == 0:
            R = xp.where(norm > 0, math.exp(self.series_.log_scale), 0.0 * norm)
        else:
            R = xp.where(
                norm > 0,
                xp.exp(self.series_.log_scale + k_pow * xp.log(safe)),
                0.0 * norm,
            )
        R = xp.astype(R, dtype)[:, None]
        blocks = [R * float(math.sqrt(self.coef_[0]))]
        for p in range(1, self.degree_ + 1):
            if self.widths_[p] == 0:
                continue
            blocks.append(outs[p] * (R * float(math.sqrt(self.coef_[p]))))
        if self._readout_bias:
            blocks.append(xp.full_like(R, self.b_std))
        Z = xp.concat(blocks, axis=1)
        if self._compress is not None:
            C = xp.asarray(self._compress, dtype=dtype, device=_device(Z))
            Z = Z @ C
        return Z

    def exact_kernel(self, X: Any) -> np.ndarray:
        """The exact kernel ``R(x) R(y) κ_L(ρ) (+ b²)`` of the rows of ``X``
        (NumPy float64), from the closed-form duals layer by layer."""
        Xa = self._augment(X.astype(np.float64))
        G = Xa @ Xa.T
        G = G.toarray() if sp.issparse(G) else np.asarray(G)
        norm = np.sqrt(np.maximum(np.diag(G), 0.0))
        self._check_zero_rows(norm, np)
        safe = np.where(norm > 0, norm, 1.0)
        rho = np.clip(G / safe[:, None] / safe[None, :], -1.0, 1.0)
        np.fill_diagonal(rho, np.where(norm > 0, 1.0, 0.0))
        k_pow = self.series_.exponent
        R = np.where(
            norm > 0, np.exp(self.series_.log_scale + k_pow * np.log(safe)), 0.0
        )
        K = (
            R[:, None]
            * R[None, :]
            * exact_series_value(self.act, self.depth, self.ntk, rho)
        )
        return K + self.b_std**2 if self._readout_bias else K

    def _check_zero_rows(self, norm: Any, xp: Any) -> None:
        if self.series_.exponent == 0 and self.depth >= 1:
            if bool(xp.any(norm == 0)):
                raise ValueError(
                    f'method="homogeneous" with act={self.act!r} (degree 0): a zero '
                    "row is not of the product form R(x) R(y) kappa(rho) (its "
                    "pre-activations are all 0). Remove zero rows or use another "
                    "method."
                )


# ------------------------------------------------------------ auto dimension
def statistical_dimension_of_kernel(
    K: np.ndarray, alpha: float, n_total: int | None = None
) -> float:
    """``tr(K (K + alpha I)^-1)``; with ``n_total`` > ``len(K)`` (``K``: the
    kernel of a uniform subsample of rows) the eigenvalues are scaled by
    ``n_total / len(K)``, the Nystrom estimate of the full spectrum."""
    ev = np.maximum(np.linalg.eigvalsh(np.asarray(K, dtype=np.float64)), 0.0)
    if n_total is not None and n_total > len(K):
        ev = ev * (n_total / len(K))
    return float(np.sum(ev / (ev + alpha)))


def choose_n_components(
    X: Any,
    *,
    act: Any = "relu",
    depth: int = 1,
    ntk: bool = False,
    W_std: float = 1.0,
    b_std: float = 0.0,
    alpha: float = 1.0,
    eps: float = 0.5,
    max_rows: int = 2000,
    max_components: int = 1 << 16,
    random_state: Any = None,
) -> tuple[int, float]:
    """Number of features for a ``(1 ± eps)`` embedding of ``K + alpha I``.

    The statistical dimension ``s = tr(K (K + alpha I)^-1)`` is computed
    from the exact kernel (cheap for homogeneous duals: one Gram matrix and
    the closed-form dual per entry) of at most ``max_rows`` uniformly sampled
    rows: exact when ``n_samples <= max_rows``, else the Nystrom estimate
    (eigenvalues scaled by ``n_samples / max_rows``, which undercounts a
    spectrum with a long flat tail).  Then
    ``m = ceil(6 s / eps²)`` (the constant measured in
    ``benchmarks/bench_homogeneous.py``), clipped to
    ``[64, max_components]``.

    Parameters
    ----------
    X : {array-like, sparse matrix} of shape (n_samples, n_features)
    act, depth, ntk, W_std, b_std
        The network, as in :class:`HomogeneousSketch`.
    alpha : float, default=1.0
        Ridge of the downstream model (``lambda`` of ``K + lambda I``).
    eps : float, default=0.5
        Target spectral accuracy.
    max_rows, max_components : int
        Rows of the pilot kernel, and largest answer.
    random_state : int, RandomState instance or None

    Returns
    -------
    n_components : int
    s_lambda : float
        The estimated statistical dimension.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_ntk.homogeneous import choose_n_components
    >>> X = np.random.RandomState(0).randn(200, 10)
    >>> m, s = choose_n_components(X, act="relu", depth=2, alpha=1.0, random_state=0)
    >>> bool(0 < s < 200) and m >= 64
    True
    """
    if not (isinstance(alpha, numbers.Real) and alpha > 0):
        raise ValueError(f"alpha must be a positive number, got {alpha!r}.")
    if not (isinstance(eps, numbers.Real) and 0 < eps < 1):
        raise ValueError(f"eps must be in (0, 1), got {eps!r}.")
    rng = check_random_state(random_state)
    n = X.shape[0]
    rows = np.sort(rng.choice(n, size=min(n, max_rows), replace=False))
    sketch = HomogeneousSketch(
        act,
        depth,
        X.shape[1],
        2,
        ntk=ntk,
        W_std=W_std,
        b_std=b_std,
        max_degree=1,
    )
    K = sketch.exact_kernel(X[rows])
    s = statistical_dimension_of_kernel(K, float(alpha), n_total=n)
    m = math.ceil(_AUTO_FACTOR * s / eps**2)
    return int(min(max(m, 64), max_components)), s


# ------------------------------------------------------------ estimator glue
def resolve_n_components(est: Any, X: Any, method: str) -> int:
    """``est.n_components``, or the ``"auto"`` choice (homogeneous method only)."""
    if est.n_components != "auto":
        return int(est.n_components)
    if method != "homogeneous":
        raise ValueError(
            f'n_components="auto" needs method="homogeneous" ({type(est).__name__} '
            f"has method={method!r}); give an integer n_components."
        )
    m, s = choose_n_components(
        X,
        act=est.activation_,
        depth=est.depth,
        ntk=est._ntk,
        W_std=est.W_std,
        b_std=est.b_std,
        alpha=est.alpha,
        random_state=est.random_state,
    )
    est.statistical_dimension_ = s
    return m


def estimator_sketch(est: Any, X: Any) -> HomogeneousSketch:
    """The :class:`HomogeneousSketch` an estimator's parameters describe."""
    try:
        return HomogeneousSketch(
            est.activation_,
            est.depth,
            est.n_features_in_,
            est.n_components_,
            ntk=est._ntk,
            W_std=est.W_std,
            b_std=est.b_std,
            max_degree=est.degree,
            sparse=sp.issparse(X),
            random_state=est.random_state,
        )
    except ValueError as exc:
        raise ValueError(f"{type(est).__name__}: {exc}") from exc
