"""Feature rules of an activation layer, as named strategies.

An :class:`~sklearn_ntk.layers.dense.Elementwise` layer maps features ``phi``
(``<phi(x), phi(y)> ~ K(x, y)``) to features of ``Sigma(K)``, and for the NTK
``psi`` to features of ``Sigma_dot(K) * Theta``.  Every rule here writes the
dual as its scale-dependent Hermite expansion::

    Sigma(x, y) = sum_n a_n(r_x) a_n(r_y) rho^n,   r = ||phi||, u = phi / r,

and differs in how it draws the features of ``rho^n = <u_x, u_y>^n``:

========== ================================================================
``method`` Feature rule
========== ================================================================
hermite    The paper's truncated expansion up to ``degree``: degrees 1 and 2
           exact when the input is narrow, the others PolySketched; the
           mass past ``degree`` folded into the top even/odd degree (exact
           norms at ``rho = +-1``, a bias of order ``a_{q+1}^2`` between).
hybrid     Exact low degrees (``min(degree, 2)``, fewer when the input is
           wide) plus unbiased Monte-Carlo features of the whole remainder
           ``sigma(r z) - sum_{n <= q} a_n(r) h_n(z)``, ``z = u G``.  Needs a
           pointwise activation (or a pointwise form on the sphere, see
           below) and dense input.
sparse     CountSketch (degree 1) and TensorSketch (degrees 2..``degree``)
           of ``u``: input-sparsity time on CSR input, folded tail.
auto       ``sparse`` on sparse input, ``hermite`` for activations known by
           their dual alone or whose tail past degree 2 is negligible, and
           ``hybrid`` otherwise (see :func:`choose_method` for the measure).
========== ================================================================

All rules share the NTK part (:class:`NTKPart`: the degree-0 block of
``psi (x) Phi_sigma'`` exact or SRHT-projected, the rest TensorSRHT-ed) and
the final norm correction (:func:`exact_norms`): each row's randomly drawn
features are rescaled so that ``||phi'||^2 = Sigma(x, x)`` and ``||psi'||^2
= ||psi||^2 Sigma_dot(x, x)`` exactly, for dense and convolutional layers
alike (a convolutional activation is the same rule run on every pixel).

An activation known by its dual alone may offer a pointwise form on the
sphere (``Activation.sphere_form``: ``exp_normalized``'s ``exp(gamma (rho -
1))`` is the dual of a sine on unit rows): then every rule draws features of
the unit rows ``u`` for that form, and scales them by ``sqrt(c) r`` per row.
Its Hermite mass sits near degree ``gamma``, past any truncation for large
``gamma`` (all-zero features at ``gamma = 1000`` before), while the sine's
Monte-Carlo features are bounded at every ``gamma``.

A rule's budget split and ``auto``'s choice come from reference scales: a
standardized input walked through the exact rules, and, where the training
data's ``||x||^2 / d`` lies beyond a factor ``FAR_SCALE`` of it, those
scales too (``Dims.scales2``, from quantiles taken at ``fit``).  At large
scales ``sigma'`` (and ``gaussian``, ``gabor``) are spikes of width ``1 /
r``: their Monte-Carlo tail features are rare hits, so ``auto`` folds the
tail instead, at degree ``_FOLD_DEGREE``; folding rules give the folded mass
its features.

Each rule states its variance (:meth:`FeatureRule.relative_variance`), so a
network can split its budget across layers and estimate its own error.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.utils import check_random_state

from .._backend import asxp, get_namespace, is_numpy, to_numpy
from ..activations import Activation
from ..sketches import SRHT, CountSketch, PolySketch, TensorSketch, TensorSRHT
from .base import Dims, Features, LayerSketch

__all__ = [
    "FAR_SCALE",
    "METHODS",
    "ElementwiseSketch",
    "FeatureRule",
    "HermiteRule",
    "HybridRule",
    "NTKPart",
    "SparseRule",
    "choose_method",
    "exact_norms",
    "folded_hermite",
    "split_degrees",
]

#: The accepted values of ``method`` (``"homogeneous"`` is a whole-network
#: sketch, chosen by the network before its layers are drawn).
METHODS = ("auto", "hermite", "hybrid", "sparse")

# Relative tail mass above which the tail gets Monte-Carlo features.
_TAIL_THRESHOLD = 1e-3
# Variance factor of one Monte-Carlo tail feature, in the units of
# ``split_degrees`` (a degree-n PolySketch feature costs ``n``).
_TAIL_COST = 2.0


# ----------------------------------------------------------------------------
# Hermite coefficients, folding, budget split
# ----------------------------------------------------------------------------


def _dual_pm(act: Activation, r: np.ndarray, derivative: bool) -> tuple:
    """``Sigma`` (and ``Sigma_dot``) at ``rho = +1`` and ``rho = -1`` for the
    scales ``r``, in one evaluation of the dual."""
    r2 = np.asarray(r, dtype=np.float64) ** 2
    both = np.concatenate([r2, r2])
    sig, dot = act.dual(both, np.concatenate([r2, -r2]), both, derivative=derivative)
    k = r2.size
    sig = np.asarray(sig, dtype=np.float64)
    dot = None if dot is None else np.asarray(dot, dtype=np.float64)
    return (
        sig[:k],
        sig[k:],
        None if dot is None else dot[:k],
        None if dot is None else dot[k:],
    )


def folded_hermite(
    act: Activation,
    r: np.ndarray,
    degree: int,
    derivative: bool,
    totals: tuple | None = None,
):
    """Hermite coefficients up to ``degree`` with the truncated tail folded in.

    The mass ``sum_{n > q} a_n(r)^2`` of the even (odd) degrees past ``q`` is
    added to the square of the highest even (odd) kept degree, so that the
    truncated dual is exact at ``rho = +-1``: features keep the exact norm
    ``||Phi_sigma(x)||^2 = Sigma(x, x)``, and deeper layers see exact scales.
    ``totals``: the duals at ``rho = +-1`` from :func:`_dual_pm` when already
    known.  Returns ``(a, b)`` of shape ``(len(r), degree + 1)`` (``b`` is
    ``None`` unless ``derivative``).
    """
    r = np.asarray(r, dtype=np.float64)
    a, b = act.hermite(r, degree)
    sig_p, sig_m, dot_p, dot_m = (
        _dual_pm(act, r, derivative) if totals is None else totals
    )
    a = _fold(a, sig_p, sig_m)
    b = _fold(b, dot_p, dot_m) if derivative else None
    return a, b


def _fold(c: np.ndarray, total_p: np.ndarray, total_m: np.ndarray) -> np.ndarray:
    c = np.array(c, dtype=np.float64, copy=True)
    q = c.shape[1] - 1
    sq = c * c
    for parity, total in (
        (0, 0.5 * (total_p + total_m)),
        (1, 0.5 * (total_p - total_m)),
    ):
        n_top = q if q % 2 == parity else q - 1
        if n_top < 0:
            continue
        tail = total - sq[:, parity::2].sum(axis=1)
        # Only add mass: rounding can make the tail slightly negative.
        tail = np.where(np.isfinite(tail), np.maximum(tail, 0.0), 0.0)
        top = c[:, n_top]
        sign = np.where(top < 0, -1.0, 1.0)
        c[:, n_top] = sign * np.sqrt(top * top + tail)
    return c


def split_degrees(
    weights: np.ndarray, budget: int, cost: np.ndarray | None = None, minimum: int = 4
) -> np.ndarray:
    """Split ``budget`` features across the parts of a feature map.

    Part ``k`` carries the share ``w_k`` of the kernel and, with ``m_k``
    features, a variance ``~ w_k^2 c_k / m_k``.  Minimizing the sum under
    ``sum m_k = budget`` gives ``m_k ~ w_k sqrt(c_k)``.  For the degree-``n``
    PolySketch ``c_n ~ n`` (the default ``cost``: its variance relative to
    ``rho^n`` grows with ``n``).  Every part with non-negligible weight gets
    at least ``minimum`` features.
    """
    w = np.asarray(weights, dtype=np.float64)
    c = np.arange(1, w.size + 1, dtype=np.float64) if cost is None else np.asarray(cost)
    active = w > 1e-10 * max(w.max(initial=0.0), 1e-300)
    if budget <= 0 or not active.any():
        return np.zeros(w.size, dtype=int)
    score = np.where(active, w * np.sqrt(c), 0.0)
    n_active = int(active.sum())
    floor = min(minimum, budget // n_active)
    rest = budget - floor * n_active
    share = rest * score / score.sum()
    m = np.floor(share).astype(int)
    # Largest remainders get the leftover features, so the total is exact.
    left = rest - m.sum()
    order = np.argsort(-(share - m))
    m[order[:left]] += 1
    return np.where(active, m + floor, 0)


def _has_pointwise(act: Activation) -> bool:
    try:
        act(np.zeros(1))
    except TypeError:  # defined by its dual alone (exp_normalized)
        return False
    return True


def _scaled(xp: Any, values: Any, dtype: Any, scale: float) -> Any:
    """``values * scale`` in ``dtype``, in place when NumPy allows it."""
    values = xp.astype(values, dtype, copy=False)
    if is_numpy(xp):
        values *= scale
        return values
    return values * scale


def _device(a: Any) -> Any:
    from .._backend import device

    return device(a)


def _sphere_form(act: Activation) -> tuple[Activation, float] | None:
    """``(act', c)`` when the activation's dual is ``c r_x r_y Sigma'(u_x,
    u_y)`` for a pointwise ``act'`` on unit rows (``exp_normalized``)."""
    form = getattr(act, "sphere_form", None)
    return None if form is None else form()


#: A training row's ``K(x, x)`` counts as far from the reference scale (and
#: the feature rules serve it too) beyond this factor either way.  Data
#: within it (``benchmarks/bench_fc.py`` spreads ``||x||^2 / d`` over 0.09 to
#: 9) gets the rules of the reference scale: there they were measured best;
#: serving 0.09 and 9 as well switched erf to Hermite features at 512
#: components (error 0.52 -> 0.91).
FAR_SCALE = 100.0


class _Reference:
    """The exact duals a rule needs at its reference scales, from one dual
    evaluation: ``r = sqrt(dims.scale2) * (1/2, 1, 2)`` (typical rows; only
    ``1`` with ``unit``, for rows known to be unit vectors) and
    ``sqrt(dims.scale2)`` itself (for the output's reference state)."""

    def __init__(self, act: Activation, dims: Dims, ntk: bool, unit: bool = False):
        s = math.sqrt(max(dims.scale2, 0.0))
        spread = [1.0] if unit else [0.5, 1.0, 2.0]
        r = max(s, 1e-6) * np.array(spread)
        self.n_typical = r.size
        if dims.scales2 and not unit:
            # The training data's scales far from the reference one.
            data = np.sqrt(np.asarray(dims.scales2, dtype=np.float64))
            lo = max(s, 1e-6) / math.sqrt(FAR_SCALE)
            hi = max(s, 1e-6) * math.sqrt(FAR_SCALE)
            far = (data > 0) & ((data < lo) | (data > hi))
            r = np.concatenate([r, np.unique(data[far])])
        self.r = r
        k = r.size
        pm = _dual_pm(act, np.append(self.r, s), ntk)
        self.totals = tuple(None if v is None else v[:k] for v in pm)
        self.scale2 = float(pm[0][k])
        self.scale2_dot = float(pm[2][k]) if ntk else 0.0


def _weights(
    act: Activation, degree: int, ref: _Reference, ntk: bool, fold: bool = False
):
    """Share of the dual carried by each degree 1..q, and by the tail.

    Maximum over the reference scales, and over ``sigma`` and ``sigma'`` for
    the NTK, of the unfolded ``a_n(r)^2 / E[sigma(r z)^2]``; with ``fold``,
    of the folded ones (:func:`folded_hermite`): a rule that folds its tail
    sketches it in the top degrees, which must get the features for it (at
    large scales the tail is most of the dual).
    """
    if fold:
        a, b = folded_hermite(act, ref.r, degree, ntk, ref.totals)
    else:
        a, b = act.hermite(ref.r, degree)
    sig_p, _, dot_p, _ = ref.totals
    pairs = [(a, sig_p)] + ([(b, dot_p)] if ntk else [])
    w = np.zeros(degree)
    tail = 0.0
    for c, tot in pairs:
        tot = np.maximum(np.asarray(tot, dtype=np.float64), 1e-300)
        share = (c * c) / tot[:, None]
        w = np.maximum(w, share[:, 1:].max(axis=0))
        tail = max(tail, float(np.clip(1.0 - share.sum(axis=1), 0.0, None).max()))
    return w, tail


def _moment_rule(r: float | None) -> tuple[np.ndarray, np.ndarray]:
    """Nodes and weights (summing to 1) for ``E[f(z)]``, ``z ~ N(0, 1)``:
    Gauss-Hermite of degree 200, or for ``f`` with features of width ``1 /
    r`` the trapezoid rule on ``+-geomspace(1e-3 / r, 10)`` (and 0)."""
    if r is None:
        z, w = np.polynomial.hermite_e.hermegauss(200)
        return z, w / w.sum()
    g = np.geomspace(min(1e-3 / max(r, 1e-300), 1e-3), 10.0, 2000)
    z = np.concatenate([-g[::-1], [0.0], g])
    dz = np.diff(z)
    w = np.zeros(z.size)
    w[:-1] += 0.5 * dz
    w[1:] += 0.5 * dz
    w *= np.exp(-0.5 * z * z)
    return z, w / w.sum()


def _hermite_basis(z: np.ndarray, degree: int) -> np.ndarray:
    """Normalized Hermite polynomials ``h_0..h_degree`` at ``z``, by recurrence."""
    h = np.ones((degree + 1, z.size))
    if degree >= 1:
        h[1] = z
    for n in range(2, degree + 1):
        h[n] = (z * h[n - 1] - math.sqrt(n - 1) * h[n - 2]) / math.sqrt(n)
    return h


def _tail_cost(
    act: Activation, degree: int, ref: _Reference, ntk: bool, far_only: bool = False
) -> float:
    """Variance factor of one Monte-Carlo tail feature at the reference scales.

    A tail feature ``t(z) = sigma(r z) - sum_{n <= q} a_n(r) h_n(z)`` has, at
    ``rho = 1``, the relative variance ``E[t^4] / E[t^2]^2 - 1`` (2 for a
    Gaussian ``t``, the value of ``_TAIL_COST``); heavy-tailed activations
    (``exp``, high monomials, large scales) have far more.  Gauss-Hermite
    quadrature of degree 200 (exact for polynomial tails up to degree 399)
    at the typical scales; at the training data's scales far from them
    (:class:`_Reference`), where ``sigma(r z)`` may have features of width
    ``1 / r`` (steps, spikes of ``erf'``, ``gaussian``) that no Gauss-Hermite
    node sees, a trapezoid rule on a geometric grid from ``1e-3 / r`` to 10.
    The largest value over the scales and over ``sigma``, ``sigma'``; ``inf``
    where the moments overflow.  ``far_only``: at the training data's far
    scales only (0 without any), each value times the tail's share ``E[t^2]
    / E[sigma^2]`` of the dual (a heavy tail matters only as far as it
    carries the kernel: at tiny scales it carries ~r^4 of it).
    """
    first = ref.n_typical if far_only else 0
    rs = ref.r[first:]
    if rs.size == 0:
        return 0.0
    a, b = act.hermite(rs, degree)
    worst = 0.0
    with np.errstate(all="ignore"):
        for i, r in enumerate(rs):
            z, w = _moment_rule(float(r) if first + i >= ref.n_typical else None)
            h = _hermite_basis(z, degree)
            fns = [(act(r * z), a[i])]
            if ntk:
                fns.append((act.derivative(r * z), b[i]))
            for values, c in fns:
                t = np.asarray(values, dtype=np.float64) - c @ h
                m2 = float(w @ (t * t))
                m4 = float(w @ (t * t) ** 2)
                if not (np.isfinite(m2) and np.isfinite(m4)):
                    return math.inf
                total = max(float(w @ np.asarray(values) ** 2), 1e-300)
                if m2 > 1e-12 * total:
                    share = min(m2 / total, 1.0) if far_only else 1.0
                    worst = max(worst, share * (m4 / (m2 * m2) - 1.0))
    return worst


# ----------------------------------------------------------------------------
# Strategies
# ----------------------------------------------------------------------------


class FeatureRule:
    """One activation's drawn feature rule (a truncated Hermite expansion).

    ``Phi_sigma(phi) = [a_0(r), a_1(r) S_1(u), ..., a_q(r) S_q(u), t, 0]``
    where ``S_n`` draws features of ``u^{(x)n}``, ``t`` are optional
    Monte-Carlo tail features and the zeros pad the unused budget.  The
    subclasses choose the degree ``q``, which degrees are exact, how the
    others are sketched and what covers the tail, in :meth:`_plan`.

    Parameters
    ----------
    act : Activation
        The activation.
    degree : int
        The truncation degree (see each subclass for how it is used).
    dims : Dims
        Widths and reference scales of the input features.
    width : int
        Number of output features ``phi'``.
    ntk : bool
        Whether the derivative features (for the NTK) are drawn too.
    rng : numpy.random.RandomState
        Source of the random sketches.
    ref : _Reference, optional
        The exact duals at the reference scales (computed when absent).
    """

    name = ""

    def __init__(
        self,
        act: Activation,
        degree: int,
        dims: Dims,
        width: int,
        ntk: bool,
        rng: np.random.RandomState,
        ref: _Reference | None = None,
    ):
        self.act, self.ntk = act, bool(ntk)
        ref = _Reference(act, dims, ntk) if ref is None else ref
        d = dims.phi
        budget = width - 1  # degree 0 is the exact constant feature a_0(r)
        narrow1 = (not dims.sparse) and d <= budget // 4
        narrow2 = narrow1 and d * (d + 1) // 2 <= budget // 4
        self.degree, self.exact1, self.exact2, self.mc_tail = self._plan(
            int(degree), narrow1, narrow2, dims
        )
        q = self.degree
        weights, tail = _weights(act, q, ref, self.ntk)
        self._tail_share = tail
        if not self.mc_tail:  # the folded tail sits in the top degrees
            weights = _weights(act, q, ref, self.ntk, fold=True)[0]
        if self.exact1:
            budget -= d
        if self.exact2:
            budget -= d * (d + 1) // 2
            self._iu = np.triu_indices(d)
            self._iu_w = np.where(self._iu[0] == self._iu[1], 1.0, math.sqrt(2.0))

        first = 1 + self.exact1 + self.exact2
        parts = np.append(weights[first - 1 :], tail if self.mc_tail else 0.0)
        cost = np.append(self._costs(first, q), _TAIL_COST)
        alloc = (
            split_degrees(parts, budget, cost)
            if first <= q or self.mc_tail
            else parts * 0
        )
        m = np.zeros(q, dtype=int)
        m[first - 1 :] = alloc[:-1]
        self.m, self.m_tail = m, int(alloc[-1])
        self._parts = (parts, cost, alloc)
        self.pad = budget - int(m.sum()) - self.m_tail  # nothing to sketch: zeros
        self.kept = np.ones(q + 1, dtype=bool)
        self.kept[1:] = m > 0
        self.kept[1] |= self.exact1
        if q >= 2:
            self.kept[2] |= self.exact2
        # Columns of phi' that are exact (degree 0 and the exact degrees).
        self.n_exact = 1 + (d if self.exact1 else 0)
        self.n_exact += d * (d + 1) // 2 if self.exact2 else 0
        self._draw(d, dims.sparse, rng)
        self.width = width

    # -- what the subclasses decide --------------------------------------

    def _plan(self, degree: int, narrow1: bool, narrow2: bool, dims: Dims):
        """``(q, exact1, exact2, mc_tail)`` for this rule."""
        raise NotImplementedError  # pragma: no cover (abstract)

    def _costs(self, first: int, q: int) -> np.ndarray:
        """Variance factor of one feature of each sketched degree ``first..q``."""
        return np.arange(first, q + 1, dtype=np.float64)

    def _draw(self, d: int, sparse: bool, rng: np.random.RandomState) -> None:
        m, q = self.m, self.degree
        self.poly = self.sparse_sketches = self.G = None
        if m.sum() > 0:
            top = int(np.nonzero(m)[0].max()) + 1
            self.poly = PolySketch(d, top, [int(v) for v in m[:top]], rng)
        if self.m_tail > 0:
            self.G = rng.standard_normal((d, self.m_tail))
        del q

    # -- the rule's statements --------------------------------------------

    def relative_variance(self, rho: float = 1.0) -> float:
        """Variance statement: expected squared error of ``<Phi(x), Phi(y)>``
        relative to ``Sigma(x, x) Sigma(y, y)``, at the reference scale and
        correlation ``rho``, before the norm correction (:func:`exact_norms`).

        Part ``k`` (sketched degree ``n_k``, or the Monte-Carlo tail, counted
        as degree ``q + 1``) carries the share ``w_k`` of the dual; with
        ``m_k`` features and variance factor ``c_k`` per feature (the costs
        :func:`split_degrees` balances) it contributes ``w_k^2 c_k (1 +
        rho^(2 n_k)) / (2 m_k)``, the Gaussian-sketch form ``(<x,y>^2n +
        ||x||^2n ||y||^2n) / m`` scaled by ``c_k``.  Exact parts contribute 0.
        The factors ``c_k`` are worst-case growth rates, so this is an upper
        estimate: measured at ``rho = 0.5`` the mean squared error is 3% to
        60% of it (``tests/test_activation_features.py``).  The bias of
        folding is separate (:meth:`fold_bias`).
        """
        parts, cost, alloc = self._parts
        first = 1 + self.exact1 + self.exact2
        n = np.append(np.arange(first, self.degree + 1), self.degree + 1)
        live = alloc > 0
        spread = 0.5 * (1.0 + float(rho) ** (2.0 * n[live]))
        return float(np.sum(parts[live] ** 2 * cost[live] * spread / alloc[live]))

    def fold_bias(self) -> float:
        """Largest share of the dual folded into the kept degrees (0 for the
        Monte-Carlo tail, which is unbiased): the bias at ``|rho| < 1`` is at
        most this fraction of ``Sigma(x, x)``."""
        if self.mc_tail:
            return 0.0
        return float(self._tail_share)

    # -- features ---------------------------------------------------------

    def coefficients(self, r: np.ndarray, totals: tuple | None = None):
        """``(a, b)``: the coefficients of ``sigma`` (and ``sigma'``) used at
        the scales ``r`` (folded unless the tail is Monte-Carlo)."""
        if self.mc_tail:
            a, b = self.act.hermite(r, self.degree)
            return a, (b if self.ntk else None)
        return folded_hermite(self.act, r, self.degree, self.ntk, totals)

    def _basis(self, xp: Any, u: Any) -> list[Any]:
        """Sketches ``S_n(u)`` for n = 1..q (``None`` where a degree is dropped)."""
        q = self.degree
        out: list[Any] = [None] * q
        if self.exact1:
            out[0] = u
        if self.exact2:
            i, j = (asxp(v, xp, device=_device(u)) for v in self._iu)
            w = asxp(self._iu_w, xp, device=_device(u), dtype=u.dtype)
            out[1] = xp.take(u, i, axis=1) * xp.take(u, j, axis=1) * w
        if self.poly is not None:
            for n, s in enumerate(self.poly(u), start=1):
                if self.m[n - 1] > 0:
                    out[n - 1] = s
        if self.sparse_sketches is not None:
            for n, s in enumerate(self.sparse_sketches, start=1):
                if s is not None:
                    out[n - 1] = asxp(s(u), xp)
        return out

    def _tails(self, xp: Any, u: Any, r: Any, a: Any, b: Any) -> tuple[Any, Any]:
        """Monte-Carlo features of ``sigma`` (and ``sigma'``) minus degrees <= q."""
        z = u @ asxp(self.G, xp, device=_device(u), dtype=u.dtype)
        scale = 1.0 / math.sqrt(self.m_tail)
        # The 1/sqrt(m_t) scale rides on the small coefficient arrays.
        a = a * scale
        rz = r[:, None] * z
        t = _scaled(xp, self.act(rz), z.dtype, scale)
        dt = None
        if self.ntk:
            b = b * scale
            dt = _scaled(xp, self.act.derivative(rz), z.dtype, scale)
        del rz
        # Subtract sum_{n<=q} c_n h_n(z), normalized Hermite by recurrence;
        # in place on NumPy, where these passes dominate the layer's cost.
        inplace = is_numpy(xp)
        h_prev, h = None, 1.0  # h_0 = 1
        for n in range(self.degree + 1):
            if n == 1:
                h_prev, h = h, z
            elif n >= 2:
                h_prev, h = h, (z * h - math.sqrt(n - 1) * h_prev) / math.sqrt(n)
            for out, c in ((t, a), (dt, b)):
                if out is None:
                    continue
                term = c[:, n : n + 1] if n == 0 else c[:, n : n + 1] * h
                if inplace:
                    out -= term
                elif out is t:
                    t = t - term
                else:
                    dt = dt - term
        return t, dt

    def __call__(
        self, xp: Any, u: Any, r_host: np.ndarray, dtype: Any, dev: Any, totals=None
    ) -> tuple[Any, Any, Any]:
        """Features of the unit rows ``u`` with norms ``r_host``.

        Returns ``(phi', rest', b_0)``: the features of ``sigma``, those of
        ``sigma'`` past degree 0 (``None`` without the NTK or when there are
        none) and the degree-0
        coefficient of ``sigma'`` per row, as an ``(n, 1)`` array.
        """
        a_full, b_full = self.coefficients(r_host, totals)
        a = asxp(a_full[:, self.kept], xp, device=dev, dtype=dtype)
        kept_basis = [s for s in self._basis(xp, u) if s is not None]
        tail = dtail = None
        if self.m_tail > 0:
            tail, dtail = self._tails(
                xp,
                u,
                asxp(r_host, xp, device=dev, dtype=dtype),
                asxp(a_full, xp, device=dev, dtype=dtype),
                None if b_full is None else asxp(b_full, xp, device=dev, dtype=dtype),
            )
        n_rows = u.shape[0]

        def assemble(coef: Any, tail_part: Any, constant: bool = True) -> Any:
            cols = [coef[:, 0:1]] if constant else []
            cols += [coef[:, k + 1 : k + 2] * s for k, s in enumerate(kept_basis)]
            if tail_part is not None:
                cols.append(tail_part)
            if self.pad and constant:
                cols.append(xp.zeros((n_rows, self.pad), dtype=dtype, device=dev))
            return xp.concat(cols, axis=1) if cols else None

        phi_out = assemble(a, tail)
        if not self.ntk:
            return phi_out, None, None
        b = asxp(b_full[:, self.kept], xp, device=dev, dtype=dtype)
        return phi_out, assemble(b, dtail, constant=False), b[:, 0:1]


class HermiteRule(FeatureRule):
    """The paper's rule: the Hermite expansion truncated at ``degree``.

    Degrees 1 and 2 are exact when the input is narrow enough for them to fit
    a quarter of the budget each; every other degree up to ``degree`` gets a
    PolySketch, with features split by :func:`split_degrees`.  The mass past
    ``degree`` is folded into the top even and odd degrees, so norms are
    exact (``rho = +-1``) and the bias elsewhere is at most
    :meth:`~FeatureRule.fold_bias`.  A larger ``degree`` lowers that bias and
    spreads the budget over more degrees.  Dense input only.
    """

    name = "hermite"

    def _plan(self, degree, narrow1, narrow2, dims):
        if dims.sparse:
            raise ValueError(
                "method='hermite' needs dense input; use method='sparse' (or "
                "'auto') for sparse input."
            )
        return degree, narrow1, narrow2 and degree >= 2, False


class HybridRule(FeatureRule):
    """Exact low degrees plus an unbiased Monte-Carlo tail.

    Degree 0 is exact, degree 1 is exact on narrow input (else a JL-type
    PolySketch), degree 2 exact when its ``d (d + 1) / 2`` symmetric
    coordinates fit a quarter of the budget.  Everything past them is covered
    without bias by ``t_j = [sigma(r z_j) - sum_{n <= q} a_n(r) h_n(z_j)] /
    sqrt(m_t)``, ``z = u G`` Gaussian (Mehler: their expected inner product is
    the remainder of the expansion exactly).  ``degree`` only caps the exact
    low degrees (``q = min(degree, 2)``, 1 on wide input): measured
    (``benchmarks/bench_fc.py``), per feature the Monte-Carlo tail beats a
    PolySketch of any degree >= 2 that is not exact, so higher degrees are not
    sketched.  Needs a pointwise activation and dense input.
    """

    name = "hybrid"

    def _plan(self, degree, narrow1, narrow2, dims):
        if dims.sparse:
            raise ValueError(
                "method='hybrid' needs dense input; use method='sparse' (or "
                "'auto') for sparse input."
            )
        if not _has_pointwise(self.act):
            raise ValueError(
                f"method='hybrid' needs a pointwise activation; {self.act!r} is "
                "defined by its dual alone: use method='hermite' (or 'auto')."
            )
        q = min(degree, 2 if narrow2 else 1)
        return q, narrow1, narrow2 and q >= 2, True


class SparseRule(FeatureRule):
    """CountSketch / TensorSketch of every degree up to ``degree``.

    Runs in input-sparsity time on CSR input (a sparse product with the hash
    matrices, then FFTs of width ``m_n`` per degree), also on dense input.
    No degree is exact; the tail past ``degree`` is folded as in
    :class:`HermiteRule`, and ``degree`` is the truncation degree.
    """

    name = "sparse"

    def _plan(self, degree, narrow1, narrow2, dims):
        return degree, False, False, False

    def _draw(self, d: int, sparse: bool, rng: np.random.RandomState) -> None:
        m, q = self.m, self.degree
        self.poly = self.G = None
        self.sparse_sketches = None
        if m.sum() > 0:
            self.sparse_sketches = [
                None
                if m[n - 1] == 0
                else (
                    CountSketch(d, int(m[n - 1]), rng)
                    if n == 1
                    else TensorSketch(d, n, int(m[n - 1]), rng)
                )
                for n in range(1, q + 1)
            ]


RULES = {"hermite": HermiteRule, "hybrid": HybridRule, "sparse": SparseRule}


#: Tail variance factor (:func:`_tail_cost`) above which ``"auto"`` prefers
#: ``"hermite"`` to ``"hybrid"``.  Measured (``benchmarks/bench_methods.py``
#: and the heavy-tail cases of ``tests/test_activation_features.py``): hybrid
#: is better up to sin's 450 (erf 81, tanh 63, gelu 205, softplus 378), hermite
#: from rectified_monomial(5)'s 2600 on (monomial(5), monomial(6), hermite(6),
#: exp: 1e7).
_HEAVY_TAIL = 1e3

#: Largest degree searched for a finite Hermite expansion (polynomials).
_MAX_FINITE = 16


def _finite_degree(act: Activation, ref: _Reference, ntk: bool) -> int | None:
    """The degree of the activation's Hermite expansion when it is finite
    (polynomials: ``monomial``, ``hermite``; degree <= ``_MAX_FINITE``) at the
    reference scales, else ``None``."""
    a, b = act.hermite(ref.r, _MAX_FINITE)
    tot_a, _, tot_b, _ = ref.totals
    top = 0
    for c, tot in [(a, tot_a)] + ([(b, tot_b)] if ntk else []):
        tot = np.maximum(np.asarray(tot, dtype=np.float64), 1e-300)
        share = (c * c) / tot[:, None]
        if float(np.max(1.0 - share.sum(axis=1))) > 1e-12:
            return None
        live = np.nonzero(share.max(axis=0) > 1e-14)[0]
        top = max(top, int(live.max()) if live.size else 0)
    return top


def choose_method(
    act: Activation, degree: int, dims: Dims, width: int, ref
) -> tuple[str, int]:
    """What ``method="auto"`` picks for one layer, and the degree it uses.

    * sparse input: ``"sparse"`` (the only input-sparsity-time rule);
    * activations known by their dual alone (and without a pointwise form on
      the sphere): ``"hermite"`` (no pointwise function to sample);
    * a finite Hermite expansion (polynomial activations): ``"hermite"`` at
      ``max(degree, its degree)``, which represents it exactly: no tail, no
      fold, only PolySketch variance;
    * a tail past the exact low degrees carrying at most ``_TAIL_THRESHOLD``
      of the dual: ``"hermite"``, which then represents it almost exactly;
    * a heavy-tailed Monte-Carlo tail (variance factor :func:`_tail_cost`
      above ``_HEAVY_TAIL``: ``exp``, high rectified monomials):
      ``"hermite"``, whose error does not depend on the tail's moments;
    * otherwise ``"hybrid"``: measured by ``benchmarks/bench_methods.py``
      (``benchmarks/results/fc_methods.md``: relu, erf, gelu, sin, tanh and
      exp_normalized, depth 1 to 3, NNGP and NTK, 2048 features), ``auto``
      is the best fixed method in 30 of 36 cells and within 9% of it in the
      others (relu and gelu NNGP, where ``hermite`` is 3% to 9% better);
      ``hermite`` at degree 8 is 5% to 20% worse for erf, sin and tanh,
      ``sparse`` 1.2 to 4 times worse on dense input.

    ``degree`` under ``"auto"``: it is the truncation degree wherever
    ``hermite`` or ``sparse`` is picked (raised to ``_FOLD_DEGREE`` where
    more than ``_FOLD_LIMIT`` of the dual would be folded, see
    :func:`_fold_degree`); where ``hybrid`` is picked it only
    caps the exact low degrees (``min(degree, 2)``), since the Monte-Carlo
    tail covers every higher degree without bias and at a lower variance per
    feature than PolySketches of them (measured as above).
    """
    ntk = dims.psi is not None
    if dims.sparse:
        return "sparse", _fold_degree(act, degree, ref, ntk)
    if not _has_pointwise(act):
        return "hermite", _fold_degree(act, degree, ref, ntk)
    finite = _finite_degree(act, ref, ntk)
    if finite is not None:
        return "hermite", max(int(degree), finite)
    budget = width - 1
    d2 = dims.phi * (dims.phi + 1) // 2
    narrow2 = dims.phi <= budget // 4 and d2 <= budget // 4
    q = min(int(degree), 2 if narrow2 else 1)
    _, tail = _weights(act, q, ref, ntk)
    if (
        tail <= _TAIL_THRESHOLD
        or _tail_cost(act, q, ref, ntk) > _HEAVY_TAIL
        or _tail_cost(act, q, ref, ntk, far_only=True) > budget / _FAR_TAIL_FEATURES
    ):
        return "hermite", _fold_degree(act, degree, ref, ntk)
    return "hybrid", degree


#: At the training data's far scales a Monte-Carlo tail needs about this many
#: features per unit of its variance factor: a tail feature of ``erf'(r z)``
#: is a spike that ~1 in ``c`` features hits (``c`` its variance factor, ~r),
#: and with fewer hits than a handful the sum is heavy-tailed, its typical
#: value below the mean (at ``||x||^2 / d = 1e4``, c = 138 and 188 tail
#: features: the aggregate +6 standard errors off over 20 seeds).
_FAR_TAIL_FEATURES = 4.0


#: Truncation degree of the folding rules where more than ``_FOLD_LIMIT`` of
#: the dual lies past ``degree``.  At the training data's far scales the
#: mass lies past any small degree (``erf'`` at ``||x||^2 / d = 1e8`` spreads
#: it up to degree ~1e8): folded into ``rho^8`` it biased the off-diagonal
#: by 4 to 7 standard errors (20 seeds; erf, tanh, gaussian), and ``exp`` at
#: depth 2 (2% to 54% past degree 8 at its reference scales) by 5.  Folded
#: at degree 12 or 16 both are within 2; 12 has the smaller error (exp: 0.89
#: against 0.94 of the ideal bound; degree 16 spreads the budget thinner).
#: (``benchmarks/accuracy_matrix.py``, n = 45 to 60, 20 seeds.)
_FOLD_DEGREE = 12
_FOLD_LIMIT = 1e-2


def _fold_degree(act: Activation, degree: int, ref: _Reference, ntk: bool) -> int:
    """``degree``, raised to ``_FOLD_DEGREE`` when at a reference scale
    (typical, or the training data's) more than ``_FOLD_LIMIT`` of the dual
    (of ``sigma`` or ``sigma'``) lies past it."""
    if degree >= _FOLD_DEGREE:
        return degree
    a, b = act.hermite(ref.r, degree)
    pairs = [(a, ref.totals[0])] + ([(b, ref.totals[2])] if ntk else [])
    for c, tot in pairs:
        tot = np.maximum(np.asarray(tot, dtype=np.float64), 1e-300)
        share = (c * c).sum(axis=1) / tot
        if float(np.max(1.0 - share)) > _FOLD_LIMIT:
            return _FOLD_DEGREE
    return degree


# ----------------------------------------------------------------------------
# The shared NTK part and the norm correction
# ----------------------------------------------------------------------------


class NTKPart:
    """Draws ``psi' = [b_0(r) P psi ; T(psi (x) Phi'_{>=1})]`` for every rule.

    ``psi (x) Phi_sigma'`` splits by degree: its degree-0 block is ``b_0(r)
    psi``, a rescaling that needs no tensor sketch.  It is kept exactly when
    ``psi`` is narrow (``P = I``) or projected by an SRHT (whose variance is
    well below a TensorSRHT's; it reads the TensorSRHT's transform of ``psi``
    when both are drawn); only the degrees ``n >= 1`` (and the tail) go
    through the TensorSRHT.  The budget ``width`` is split in proportion to
    the two parts' weight at the reference scale.
    """

    def __init__(
        self,
        rule: FeatureRule,
        dims: Dims,
        width: int,
        ref: _Reference,
        rng: np.random.RandomState,
    ):
        d_psi = dims.psi
        _, b = rule.coefficients(ref.r, ref.totals)
        tot = ref.totals[2]  # Sigma_dot at rho = 1
        w0 = float((b[:, 0] ** 2).max())
        w_rest = float(np.maximum(np.asarray(tot) - b[:, 0] ** 2, 0.0).max())
        n_rest_in = rule.width - 1 - rule.pad  # width of Phi'_{>=1}
        if w_rest <= 1e-12 * max(w0, 1e-300) or n_rest_in <= 0:
            n0 = width
        elif w0 <= 1e-12 * w_rest:
            n0 = 0
        else:
            n0 = round(width * w0 / (w0 + math.sqrt(2.0) * w_rest))
            n0 = min(max(n0, 1), width - 1)
            if not dims.sparse and d_psi <= n0:
                n0 = d_psi  # exact: the rest goes to the tensor sketch
        self.n0 = n0
        self.shared_spread = self.psi_exact = False
        self.psi_project = self.psi_first_stage = self.tensor = None
        if n0 > 0:
            if not dims.sparse and d_psi == n0:
                self.psi_exact = True
            elif dims.sparse:
                self.psi_project = CountSketch(d_psi, n0, rng)
            elif width - n0 > 0:
                self.shared_spread = True
            else:
                self.psi_project = SRHT(d_psi, n0, rng)
        if width - n0 > 0:
            if dims.sparse:  # psi is the sparse input: count-sketch it first
                self.psi_first_stage = CountSketch(d_psi, min(d_psi, rule.width), rng)
                d_psi = min(d_psi, rule.width)
            self.tensor = TensorSRHT(
                d_psi,
                n_rest_in,
                width - n0,
                rng,
                n_linear=n0 if self.shared_spread else 0,
            )

    def __call__(self, xp: Any, psi: Any, b0: Any, rest: Any, dtype, dev) -> Any:
        parts = []
        if self.n0 > 0 and not self.shared_spread:
            psi0 = psi if self.psi_exact else self.psi_project(psi)
            parts.append(b0 * asxp(psi0, xp, device=dev, dtype=dtype))
        if self.tensor is not None:
            if self.psi_first_stage is not None:
                psi = asxp(self.psi_first_stage(psi), xp, device=dev, dtype=dtype)
            if self.shared_spread:
                psi0, tensor = self.tensor.linear_and_tensor(psi, rest)
                parts += [b0 * psi0, tensor]
            else:
                parts.append(self.tensor(psi, rest))
        return parts[0] if len(parts) == 1 else xp.concat(parts, axis=1)


def _row_sq_norms(z: Any) -> np.ndarray:
    """``||z_i||^2`` per row, on the host in float64 (dense of any namespace,
    or scipy.sparse)."""
    if sp.issparse(z):
        return np.asarray(z.multiply(z).sum(axis=1), dtype=np.float64).ravel()
    if isinstance(z, np.ndarray):  # one pass, no temporary
        return np.einsum("ij,ij->i", z, z, dtype=np.float64)
    xp, _ = get_namespace(z)
    return to_numpy(xp.sum(z * z, axis=1)).astype(np.float64)


def _norm_factors(now: np.ndarray, fixed: np.ndarray, target: np.ndarray):
    """Factor ``f`` with ``fixed + f^2 now = target`` (1 where undefined)."""
    want = np.maximum(target - fixed, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        fac = np.sqrt(want / np.where(now > 0, now, 1.0))
    return np.where((now > 0) & np.isfinite(fac), fac, 1.0)


def exact_norms(xp: Any, z: Any, n_fixed: int, target: np.ndarray) -> Any:
    """Rescale the drawn columns ``z[:, n_fixed:]`` of each row so that its
    squared norm is ``target`` (host float64), leaving the exact columns
    ``z[:, :n_fixed]`` untouched.

    Why: sketched features have the exact norms only in expectation; the
    error of a row's norm scales every kernel entry of that row and compounds
    over layers.  Making norms exact given the layer's input removes that
    heavy tail.  Measured (``benchmarks/bench_fc.py``'s data, m = 1024 and
    4096, 3 seeds): the relative Frobenius error falls by up to 27% (relu
    NNGP depth 3) and is never more than 1% worse; rescaling the exact
    columns too made the most accurate cases (relu NNGP depth 1) 25% worse,
    hence only the drawn columns are scaled.
    """
    dev = _device(z)
    fixed = _row_sq_norms(z[:, :n_fixed]) if n_fixed else 0.0
    fac = _norm_factors(_row_sq_norms(z[:, n_fixed:]), fixed, target)
    fac = asxp(fac, xp, device=dev, dtype=z.dtype)[:, None]
    if isinstance(z, np.ndarray):  # z is the layer's own output: in place
        z[:, n_fixed:] *= fac
        return z
    if n_fixed == 0:
        return z * fac
    return xp.concat([z[:, :n_fixed], z[:, n_fixed:] * fac], axis=1)


# ----------------------------------------------------------------------------
# The layer's drawn feature rule
# ----------------------------------------------------------------------------


class ElementwiseSketch(LayerSketch):
    """Drawn feature rule of an :class:`~sklearn_ntk.layers.dense.Elementwise`
    layer: a :class:`FeatureRule` chosen by ``method``, the shared
    :class:`NTKPart` for the NTK, and :func:`exact_norms`.

    Parameters
    ----------
    act : Activation
        The activation.
    degree : int
        Truncation degree of the Hermite expansion (how each method uses it:
        see :class:`HermiteRule`, :class:`HybridRule`, :class:`SparseRule`).
    dims : Dims
        Widths and reference scales (``scale2``, ``scale2_ntk``) of the input.
    widths : (int, int)
        Output widths of ``phi'`` and ``psi'``.
    random_state : int, RandomState instance or None
        Seed of the sketches.
    method : {"auto", "hermite", "hybrid", "sparse"}
        The feature rule (see :mod:`sklearn_ntk.layers.activation_features`).
    """

    def __init__(
        self,
        act: Activation,
        degree: int,
        dims: Dims,
        widths,
        random_state,
        method: str = "auto",
    ):
        if method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}; got {method!r}.")
        rng = check_random_state(random_state)
        n_phi, n_psi = int(widths[0]), int(widths[1])
        if n_phi < 1:
            raise ValueError(
                f"An activation layer needs at least one output feature (its "
                f"degree-0 term); got widths={tuple(widths)}: increase n_components."
            )
        self.act = act
        self.ntk = dims.psi is not None
        ref = _Reference(act, dims, self.ntk)
        # Duals known on the sphere (exp_normalized): the rule draws features
        # of the unit rows for the pointwise form, scaled back per row.
        form = _sphere_form(act)
        self.sphere = form
        rule_act, rule_dims, rule_ref = act, dims, ref
        if form is not None:
            rule_act = form[0]
            rule_dims = replace(dims, scale2=1.0, scales2=None)
            rule_ref = _Reference(rule_act, rule_dims, self.ntk, unit=True)
            self._unit_totals = _dual_pm(rule_act, np.ones(1), self.ntk)
        if method == "auto":
            method, degree = choose_method(rule_act, degree, rule_dims, n_phi, rule_ref)
        self.method = method
        self.rule = RULES[method](
            rule_act, degree, rule_dims, n_phi, self.ntk, rng, rule_ref
        )
        self.ntk_part = (
            NTKPart(self.rule, rule_dims, n_psi, rule_ref, rng) if self.ntk else None
        )
        # Norms are made exact (exact_norms), so the output's reference
        # state is the exact dual at the input's.
        self.dims_out = Dims(
            phi=n_phi,
            psi=n_psi if self.ntk else None,
            scale2=ref.scale2,
            scale2_ntk=ref.scale2_dot * dims.scale2_ntk,
        )

    def _on_sphere(self, xp: Any, u: Any, r_host: np.ndarray, dtype, dev) -> tuple:
        """The rule on the unit rows for the sphere form ``(act', c)``:
        ``Phi(x) = sqrt(c) r Phi'(u)``, ``Phi_dot(x) = sqrt(c) Phi_dot'(u)``."""
        n = r_host.shape[0]
        ones = np.ones(n)
        totals = tuple(
            None if v is None else np.broadcast_to(v, (n,)) for v in self._unit_totals
        )
        phi, rest, b0 = self.rule(xp, u, ones, dtype, dev, totals)
        root = math.sqrt(self.sphere[1])
        scale = asxp(root * r_host, xp, device=dev, dtype=dtype)[:, None]
        phi = phi * scale
        if rest is not None:
            rest = rest * root
        if b0 is not None:
            b0 = b0 * root
        return phi, rest, b0

    @property
    def degree(self) -> int:
        """The degree ``q`` of the expansion the rule draws."""
        return self.rule.degree

    def relative_variance(self) -> float:
        """See :meth:`FeatureRule.relative_variance`."""
        return self.rule.relative_variance()

    def __call__(self, f: Features) -> Features:
        phi = f.phi
        if sp.issparse(phi):
            phi = phi.tocsr()
            xp = get_namespace(np.empty(0))[0]
            r_host = np.sqrt(_row_sq_norms(phi))
            inv = np.where(r_host > 0, 1.0 / np.where(r_host > 0, r_host, 1.0), 0.0)
            u = sp.diags(inv.astype(phi.dtype)) @ phi
            dtype, dev = phi.dtype, None
        else:
            xp, _ = get_namespace(phi)
            dtype, dev = phi.dtype, _device(phi)
            r = xp.sqrt(xp.sum(phi * phi, axis=1))
            r_host = to_numpy(r).astype(np.float64)
            safe = xp.where(r > 0, r, xp.ones_like(r))
            u = phi / safe[:, None]
        # The exact duals at rho = +-1 of every row: the fold's totals and
        # the norms' targets, in one evaluation.
        totals = _dual_pm(self.act, r_host, self.ntk)
        if self.sphere is None:
            phi_out, rest, b0 = self.rule(xp, u, r_host, dtype, dev, totals)
        else:
            phi_out, rest, b0 = self._on_sphere(xp, u, r_host, dtype, dev)
        phi_out = exact_norms(xp, phi_out, self.rule.n_exact, totals[0])
        if not self.ntk:
            return Features(phi_out)
        part = self.ntk_part
        psi_out = part(xp, f.psi, b0, rest, dtype, dev)
        # The degree-0 block b_0(r) psi is exact when psi is kept as is.
        n_fixed = part.n0 if part.psi_exact else 0
        target = _row_sq_norms(f.psi) * totals[2]
        psi_out = exact_norms(xp, psi_out, n_fixed, target)
        return Features(phi_out, psi_out)
