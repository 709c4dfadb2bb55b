"""Networks as lists of layers, and their drawn feature maps.

A :class:`Network` is an input rule (:class:`DenseInput` for rows,
:class:`~sklearn_ntk.layers.conv.ImageInput` for images) followed by layers
(see :mod:`sklearn_ntk.layers`): one composition for fully connected and
convolutional networks.  The same object gives the exact states
(:meth:`Network.self_states`, :meth:`Network.cross_state`, driven over tiles
by :func:`sklearn_ntk._exact.exact_matrix`) and, once drawn, the sketched
feature map (:meth:`Network.sketch`), whose budgets take their scales from
the exact rules on a reference state: exact and approximate paths share the
layers' rules.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp
from sklearn.utils import check_random_state

from ._backend import asxp, get_namespace, get_namespace_and_device, to_numpy
from ._min_width import min_unbiased_width
from .activations import Activation, _gap_of
from .layers.activation_features import FAR_SCALE, exact_norms
from .layers.base import Dims, Features, KernelState, Layout, Widths, scatter
from .layers.dense import Dense, Elementwise
from .layers.sparse_input import SparseToDense
from .sketches import SRHT

_NO_PAIRS = (np.zeros(0, dtype=int), np.zeros(0, dtype=int))

__all__ = [
    "DenseInput",
    "Network",
    "NetworkSketch",
    "fully_connected",
    "identical_pairs",
    "split_ntk_budget",
]

#: Pairs with ``|rho| > 1 - _NEAR`` at the input get their gap ``1 - |rho|``
#: recomputed (:func:`_near_parallel_gaps`): from the Gram matrix it has an
#: absolute error ~eps, so the angle ~ sqrt(2 gap) one ~eps / angle, below
#: ~2e-15 (float64) and ~1.5e-7 (float32) outside these cones.
_NEAR = {np.dtype(np.float64): 1e-3, np.dtype(np.float32): 0.1}
#: Rows whose largest ``|x_k|`` lies outside ``[2**-_SAFE_EXP, 2**_SAFE_EXP]``
#: are rescaled by an exact power of two before any product is formed.
_SAFE_EXP = 400


@dataclass(frozen=True)
class DenseInput:
    """Input rule of a fully connected network: ``K = <x, y> / d``, ``Theta = 0``.

    Scale-safe: rows with entries beyond ``2**+-400`` are rescaled by exact
    powers of two, so that ``<x, y>`` neither under- nor overflows, and the
    scales are put back on the (representable) kernel values.  Carries the
    gap ``1 - |rho|`` (:class:`~sklearn_ntk.layers.base.KernelState`).
    """

    carries_gap: ClassVar[bool] = True

    def spatial_layout(self, needs_full: bool) -> str:
        return "none"

    def fuses(self, layers: tuple) -> int:
        return 0

    def describe(self, X: Any, i: int) -> str:
        scale = float(np.asarray(to_numpy(_scaled_rows(_take_rows_any(X, i))[1]))[0])
        return f"row {i} of the input, whose ||x||^2 / d = {scale:.3g}"

    def self_state(self, X: Any, ntk: bool, spatial: str, fused: tuple) -> KernelState:
        """State of the pairs ``(x, x)``: every array is ``(n,)``."""
        kxx = _scaled_rows(X)[1]
        return KernelState(nngp=kxx, ntk=0.0 if ntk else None, layout=Layout(True))

    def cross_state(
        self,
        X: Any,
        Y: Any,
        ntk: bool,
        spatial: str,
        fused: tuple,
        pairs: tuple[np.ndarray, np.ndarray] = _NO_PAIRS,
        gap: bool = False,
    ) -> KernelState:
        """Cross state; ``pairs`` are the pairs of identical rows (their gap is
        0), ``gap`` whether to compute the gap ``1 - |rho|``."""
        d = X.shape[1]
        Xs, _, ex, nx = _scaled_rows(X, norms=True)
        Ys, _, ey, ny = _scaled_rows(Y, norms=True)
        if sp.issparse(Xs) or sp.issparse(Ys):
            gram = Xs @ Ys.T
            gram = gram.toarray() if sp.issparse(gram) else np.asarray(gram)
            xp, dev = np, None
        else:
            xp, _, dev = get_namespace_and_device(Xs, Ys)
            gram = Xs @ Ys.T
        nngp = gram / d
        if ex is not None or ey is not None:  # put the exact scales back
            nngp *= _pow2(xp, ex, X.shape[0], dev)[:, None]
            nngp *= _pow2(xp, ey, Y.shape[0], dev)[None, :]
        g = None
        if gap:
            g = gram * asxp(nx, xp, device=dev, dtype=gram.dtype)[:, None]
            g *= asxp(ny, xp, device=dev, dtype=gram.dtype)[None, :]
            # Not clipped: rounding may put it a hair below 0, but then the
            # pair is nearly parallel, and its gap is recomputed.
            g = _near_parallel_gaps(Xs, Ys, _gap_of(xp, g), pairs)
        return KernelState(nngp=nngp, ntk=0.0 if ntk else None, gap=g)

    def reference_state(self, ntk: bool) -> KernelState:
        """Standardized data, ``||x||^2 / d = 1``."""
        one = np.ones(1)
        return KernelState(nngp=one, ntk=0.0 if ntk else None, layout=Layout(True))

    def dims(self, n_features: int, ntk: bool, sparse: bool = False) -> Dims:
        return Dims(phi=n_features, psi=0 if ntk else None, scale2=1.0, sparse=sparse)

    def features(self, X: Any) -> Features:
        return Features(X * (1.0 / math.sqrt(X.shape[1])))


def _take_rows_any(X: Any, i: int) -> Any:
    if sp.issparse(X):
        return sp.csr_matrix(X)[i : i + 1]
    return X[i : i + 1, ...]


def _row_max(X: Any) -> np.ndarray:
    if sp.issparse(X):
        return np.asarray(abs(X).max(axis=1).todense()).ravel()
    xp, _ = get_namespace(X)
    if X.shape[1] == 0:
        return np.zeros(X.shape[0])
    return np.asarray(to_numpy(xp.max(xp.abs(X), axis=1)), dtype=np.float64)


def _row_sq(X: Any) -> Any:
    """``||x||^2`` per row, summed in one fixed order whatever the layout.

    (A self-pair's kernel is copied from this: ``K(X)``, ``K(X, X)`` and the
    kernel objects' ``diag`` must see the same bits.)
    """
    if sp.issparse(X):
        X = sp.csr_matrix(X)
        return np.asarray(X.multiply(X).sum(axis=1)).ravel()
    if isinstance(X, np.ndarray):
        X = np.ascontiguousarray(X)
        return np.einsum("ij,ij->i", X, X)
    xp, _ = get_namespace(X)
    return xp.sum(X * X, axis=1)


def _scaled_rows(X: Any, norms: bool = False) -> tuple:
    """``(X', ||x||^2 / d, e, 1 / ||x'||)`` with ``X' = X 2**-e`` row by row.

    ``e`` is ``None`` when every row is in the safe range (then ``X' = X``);
    otherwise ``e`` is the binary exponent of each out-of-range row's largest
    entry (0 for the others), so that ``X'`` has entries below 1 and neither
    ``||x'||^2`` nor ``<x', y'>`` under- or overflows.  ``||x||^2 / d`` is put
    together exactly on the host (``ldexp``); it must be representable:
    rows whose squared norm over- or underflows float64 raise
    ``OverflowError``.  ``1 / ||x'||`` (0 for zero rows) is returned on the
    host, and only when ``norms``.
    """
    d = X.shape[1]
    big = _row_max(X)
    _, e = np.frexp(big)
    out = (big > 0) & ((e > _SAFE_EXP) | (e < -_SAFE_EXP))
    ex = None
    Xs = X
    if out.any():
        ex = np.where(out, e, 0)
        scale = np.ldexp(1.0, -ex)
        if sp.issparse(X):
            Xs = sp.diags(scale.astype(X.dtype)) @ X
        else:
            xp, _, dev = get_namespace_and_device(X)
            Xs = X * asxp(scale, xp, device=dev, dtype=X.dtype)[:, None]
    sq = _row_sq(Xs)
    if ex is None:
        kxx = sq / d
    else:
        host = np.asarray(to_numpy(sq), dtype=np.float64)
        with np.errstate(over="ignore", under="ignore"):
            kxx = np.ldexp(host / d, 2 * ex)
        if not sp.issparse(X):
            xp, _, dev = get_namespace_and_device(X)
            kxx = asxp(kxx, xp, device=dev, dtype=sq.dtype)
    _check_input_scale(kxx, big, d)
    inv = None
    if norms:
        host = np.asarray(to_numpy(sq), dtype=np.float64)
        inv = np.where(host > 0, 1.0 / np.sqrt(np.where(host > 0, host, 1.0)), 0.0)
    return Xs, kxx, ex, inv


def _check_input_scale(kxx: Any, big: np.ndarray, d: int) -> None:
    host = np.asarray(to_numpy(kxx), dtype=np.float64)
    bad = ~np.isfinite(host)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise OverflowError(
            f"||x||^2 / d overflows float64 for row {i} of the input (largest "
            f"|x_k| = {big[i]:.3g}, d = {d}): the exact kernel is not representable."
        )
    bad = (host == 0) & (big > 0)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise OverflowError(
            f"||x||^2 / d underflows float64 for row {i} of the input (largest "
            f"|x_k| = {big[i]:.3g}, d = {d}): rescale the data (the kernel of "
            "such a row is below the float64 range)."
        )


def _pow2(xp: Any, e: np.ndarray | None, n: int, dev: Any) -> Any:
    """``2**e`` as an array of ``xp`` (exact; ones where ``e`` is None)."""
    v = np.ones(n) if e is None else np.ldexp(1.0, e)
    return asxp(v, xp, device=dev)


def _near_parallel_gaps(Xs: Any, Ys: Any, gap: Any, pairs: tuple) -> Any:
    """Recompute the gap of nearly (anti)parallel pairs to full accuracy.

    ``1 - |rho| = (a b - c^2) / (sqrt(a b) (sqrt(a b) + |c|))`` with ``a =
    ||x||^2``, ``b = ||y||^2``, ``c = <x, y>``: the Gram determinant ``a b -
    c^2`` is formed in double-double arithmetic (:func:`_dot2`), so the gap
    keeps its relative accuracy (~1e-16 + 1e-32 / gap) where the Gram matrix
    loses it all.  Only the pairs with ``gap < _NEAR`` are touched (few, save
    for duplicated inputs); the pairs of identical rows get 0.
    """
    xp, _ = get_namespace(gap)
    m = gap.shape[1]
    rows_id, cols_id = pairs
    gap = scatter(gap, rows_id, cols_id, np.zeros(len(rows_id)))
    mask = gap < _NEAR.get(np.dtype(str(gap.dtype).split(".")[-1]), 0.1)
    if len(rows_id):
        mask = scatter(mask, rows_id, cols_id, np.zeros(len(rows_id), dtype=bool))
    if not bool(xp.any(mask)):
        return gap
    flat = np.flatnonzero(mask if isinstance(mask, np.ndarray) else to_numpy(mask))
    rows, cols = np.divmod(flat, m)
    values = np.empty(len(rows))
    chunk = max(1, 2**20 // max(Xs.shape[1], 1))
    for s in range(0, len(rows), chunk):
        r, c = rows[s : s + chunk], cols[s : s + chunk]
        xr, yc = _take_rows(Xs, r), _take_rows(Ys, c)
        values[s : s + chunk] = _gram_gap(
            *_dot2(xr, xr), *_dot2(yc, yc), *_dot2(xr, yc)
        )
    return scatter(gap, rows, cols, values)


# Error-free transformations (Dekker, Knuth), vectorized.  The rows are
# prescaled (entries below 1), so the splitting cannot overflow.
_SPLITTER = 134217729.0  # 2**27 + 1


def _split(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    c = _SPLITTER * a
    hi = c - (c - a)
    return hi, a - hi


def _two_prod(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``a * b = p + e`` exactly."""
    p = a * b
    ah, al = _split(a)
    bh, bl = _split(b)
    return p, ((ah * bh - p) + ah * bl + al * bh) + al * bl


def _two_sum(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``a + b = s + e`` exactly."""
    s = a + b
    bb = s - a
    return s, (a - (s - bb)) + (b - bb)


def _dot2(A: np.ndarray, B: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row-wise dot products as double-doubles ``hi + lo`` (Ogita, Rump &
    Oishi's Dot2, summed as a tree): error ~1e-32 of ``sum |a_k b_k|``."""
    p, err = _two_prod(A, B)
    err = err.sum(axis=1)
    while p.shape[1] > 1:
        if p.shape[1] % 2:
            p = np.concatenate([p, np.zeros((p.shape[0], 1))], axis=1)
        p, e = _two_sum(p[:, ::2], p[:, 1::2])
        err += e.sum(axis=1)
    if p.shape[1] == 0:
        return np.zeros(p.shape[0]), np.zeros(p.shape[0])
    return _two_sum(p[:, 0], err)


def _gram_gap(a, a_lo, b, b_lo, c, c_lo) -> np.ndarray:
    """``1 - |c| / sqrt(a b)`` from double-double ``a``, ``b``, ``c``.

    ``a b - c^2`` = ``(p1 - p2) + (e1 - e2) + (a b_lo + a_lo b - 2 c c_lo)``
    with ``a b = p1 + e1``, ``c^2 = p2 + e2`` exactly; ``p1 - p2`` is exact
    (Sterbenz: ``c^2`` is within a factor 2 of ``a b`` here).
    """
    p1, e1 = _two_prod(a, b)
    p2, e2 = _two_prod(c, c)
    det = (p1 - p2) + ((e1 - e2) + (a * b_lo + a_lo * b - 2.0 * c * c_lo))
    root = np.sqrt(a * b)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.maximum(det, 0.0) / (root * (root + np.abs(c)))
    return np.clip(np.where(root > 0, out, 1.0), 0.0, 1.0)


def _take_rows(X: Any, rows: np.ndarray) -> np.ndarray:
    """Rows of ``X`` as a dense float64 NumPy array."""
    if sp.issparse(X):
        return np.asarray(sp.csr_matrix(X)[rows].toarray(), dtype=np.float64)
    if isinstance(X, np.ndarray):
        return np.asarray(X[rows], dtype=np.float64)
    xp, _, dev = get_namespace_and_device(X)
    taken = xp.take(X, asxp(rows, xp, device=dev), axis=0)
    return np.asarray(to_numpy(taken), dtype=np.float64)


def identical_pairs(X: Any, Y: Any = None) -> tuple[np.ndarray, np.ndarray]:
    """``(rows, cols)`` of the pairs of equal rows of ``X`` and ``Y`` (``X`` if None).

    Rows are compared by value (``-0.0 == 0.0``), by hashing: linear in the
    size of the inputs.  Sorted by row.  Their kernel is copied from the
    diagonal states, so that it is exactly ``K(x, x)`` (``rho = 1``).
    """
    if Y is not None and sp.issparse(X) != sp.issparse(Y):
        # One key type for both: the sparse keys (a dense row as CSR).
        X, Y = sp.csr_matrix(to_numpy(X)), sp.csr_matrix(to_numpy(Y))
    kx = _row_keys(X)
    ky = kx if Y is None or Y is X else _row_keys(Y)
    _, inv = np.unique(np.concatenate([kx, ky]), return_inverse=True)
    gx, gy = inv[: len(kx)], inv[len(kx) :]
    order = np.argsort(gy, kind="stable")
    sorted_gy = gy[order]
    lo = np.searchsorted(sorted_gy, gx, side="left")
    hi = np.searchsorted(sorted_gy, gx, side="right")
    counts = hi - lo
    rows = np.repeat(np.arange(len(gx)), counts)
    starts = np.repeat(lo - np.concatenate([[0], np.cumsum(counts)[:-1]]), counts)
    cols = order[np.arange(len(rows)) + starts]
    return rows, cols


def _row_keys(X: Any) -> np.ndarray:
    """One hashable key per row (equal rows, equal keys)."""
    if sp.issparse(X):
        X = sp.csr_matrix(X, copy=True)
        X.sum_duplicates()
        X.eliminate_zeros()
        X.sort_indices()
        # The final b"|" keeps NumPy's bytes type from dropping trailing NULs.
        keys = [
            X.indices[a:b].tobytes() + (X.data[a:b] + 0.0).tobytes() + b"|"
            for a, b in zip(X.indptr[:-1], X.indptr[1:])
        ]
        return np.array(keys, dtype=object).astype(bytes)
    host = np.array(to_numpy(X), dtype=np.float64, order="C", copy=True)
    host += 0.0  # -0.0 -> 0.0
    if host.shape[1] == 0:
        return np.zeros(host.shape[0], dtype="V1")
    return host.view(np.dtype((np.void, host.shape[1] * 8))).ravel()


# ----------------------------------------------------------------------------
# Pinning the pairs of identical inputs
# ----------------------------------------------------------------------------


def _take_last(v: Any, rows: np.ndarray) -> Any:
    """``v[..., rows]`` for an array of any namespace."""
    if isinstance(v, np.ndarray):
        return v[..., rows]
    xp, _, dev = get_namespace_and_device(v)
    return xp.take(v, asxp(rows, xp, device=dev), axis=v.ndim - 1)


def _pin_array(a: Any, v: Any, pairs: tuple, spatial: str) -> Any:
    """``a`` with the pixel self-pairs of the identical inputs set to ``v``.

    ``a`` is a cross array of layout ``spatial``, ``v`` the per-pixel values
    of the self state (``(n,)`` or ``(H, W, n)``): ``a[i, i, r, c] = v[i, r]``
    for every pixel ``i`` and pair ``(r, c)`` of ``pairs``.
    """
    rows, cols = pairs
    if len(rows) == 0:
        return a
    if spatial != "full":
        return scatter(a, rows, cols, _take_last(v, rows))
    H, W = v.shape[:2]
    hh = np.arange(H)[:, None, None]
    ww = np.arange(W)[None, :, None]
    r, c = rows[None, None, :], cols[None, None, :]
    if isinstance(a, np.ndarray):
        a[hh, ww, hh, ww, r, c] = v[hh, ww, r]
        return a
    xp, _, dev = get_namespace_and_device(a)
    if type(a).__module__.startswith("torch"):
        import torch

        idx = [torch.as_tensor(i, device=a.device) for i in (hh, ww, r, c)]
        a[idx[0], idx[1], idx[0], idx[1], idx[2], idx[3]] = v[idx[0], idx[1], idx[2]]
        return a
    host = np.array(to_numpy(a), copy=True)
    hv = np.asarray(to_numpy(v))
    host[hh, ww, hh, ww, r, c] = hv[hh, ww, r]
    return asxp(host, xp, device=dev)


def _is_array(a: Any) -> bool:
    return a is not None and not isinstance(a, float)


def _largest(a: Any) -> float:
    host = np.asarray(to_numpy(a), dtype=np.float64)
    return float(host.max()) if host.size else 0.0


# ----------------------------------------------------------------------------
# The network
# ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Network:
    """An input rule and a list of layers, each with an exact and a feature rule.

    One composition for fully connected and convolutional networks: the input
    rule (:class:`DenseInput`, :class:`~sklearn_ntk.layers.conv.ImageInput`)
    says how inputs become a kernel state and features; every layer has the
    protocol of :class:`~sklearn_ntk.layers.base.Layer`.  The network reads
    what the layers declare (the pixel-pair layout they need, whether they
    read the gap, whether their width is the feature budget) and never
    their type.

    The exact rules run on three kinds of states: self states (the pairs
    ``(x, x)`` of one batch, :meth:`self_states`), cross states between two
    batches (:meth:`cross_state`, whose variances and identical pairs come
    from the self states), and the reference state (one standardized input,
    :meth:`reference_states`) whose scales set the feature budgets of
    :meth:`sketch`.  The exact driver is :func:`sklearn_ntk._exact.exact_matrix`.
    """

    input: Any
    layers: tuple

    # -- structure -------------------------------------------------------------

    @property
    def spatial(self) -> str:
        """Spatial layout of the exact states (``"none"`` for rows)."""
        needs_full = any(la.needs_full_pixel_pairs for la in self.layers)
        return self.input.spatial_layout(needs_full)

    @property
    def diagonal(self) -> bool:
        """Whether the diagonal pixel pairs suffice (no pooling, flatten readout)."""
        return self.spatial == "diagonal"

    def _split(self) -> tuple[tuple, tuple]:
        """``(layers the input rule applies itself, the others)``."""
        n = self.input.fuses(self.layers)
        return self.layers[:n], self.layers[n:]

    def entries_per_pair(self) -> int:
        """Kernel entries per pair of inputs in the exact states."""
        shape = getattr(self.input, "image_shape", None)
        if shape is None:
            return 1
        P = shape[0] * shape[1]
        return P * P if self.spatial == "full" else P

    # -- exact rule ----------------------------------------------------------

    def self_states(self, X: Any, ntk: bool = False) -> list[KernelState]:
        """The self states ``K(x, x)`` (``Theta(x, x)``) after the input rule
        and after each layer it does not apply itself, reduced to their pixel
        diagonals (``(n,)`` or ``(H, W, n)`` arrays): what the cross states
        read as variances and pin on the pairs of identical inputs.

        Raises ``OverflowError``, naming the layer, the activation and the
        input, where a variance exceeds the float64 range (``exp`` at depth
        4, a huge polynomial...): the cross kernels are bounded by them.
        """
        fused, layers = self._split()
        with np.errstate(over="ignore", invalid="ignore"):  # checked below
            k = self.input.self_state(X, ntk, self.spatial, fused)
        self._check_finite(k, 0, fused[0] if fused else self.input, X)
        states = [_summary(k)]
        for i, layer in enumerate(layers, start=1):
            try:
                with np.errstate(over="ignore", invalid="ignore"):
                    k = layer.kernel(k)
            except OverflowError as exc:
                raise OverflowError(
                    f"{exc} (after layer {i} of {len(layers)}, {layer!r}; input "
                    f"{self._input_scale(states[0])})"
                ) from exc
            self._check_finite(k, i, layer, X)
            states.append(_summary(k))
        return states

    def _input_scale(self, s0: KernelState) -> str:
        what = "mean squared pixel" if self.spatial != "none" else "||x||^2 / d"
        return f"{what} up to {_largest(s0.nngp):.3g}"

    def _check_finite(self, k: KernelState, i: int, layer: Any, X: Any) -> None:
        """Raise ``OverflowError`` where a self state left the float64 range."""
        n_layers = len(self._split()[1])
        for name, a in (("kernel K", k.nngp), ("NTK Theta", k.ntk)):
            if not _is_array(a):
                continue
            host = np.asarray(to_numpy(a), dtype=np.float64)
            bad = ~np.isfinite(host).reshape(-1, host.shape[-1]).all(axis=0)
            if bad.any():
                r = int(np.flatnonzero(bad)[0])
                raise OverflowError(
                    f"The {name}(x, x) overflows float64 after layer {i} of "
                    f"{n_layers} ({layer!r}) for {self.input.describe(X, r)}: "
                    "the exact kernel is not representable (the activation "
                    "grows too fast for this scale and depth)."
                )

    def _gap_until(self, ntk: bool, sx: list, sy: list) -> int:
        """Index of the last layer that reads the gap (-1: none, also when
        a layer that reads it is beyond one that cannot carry it)."""
        layers = self._split()[1]
        last, blocked = -1, not getattr(self.input, "carries_gap", False)
        for i, la in enumerate(layers):
            scale = max(_largest(sx[i].nngp), _largest(sy[i].nngp))
            if la.needs_gap(ntk, scale):
                if blocked:
                    # Carried only where every layer that reads it gets it
                    # (pooling does not carry it: then none, as its cost
                    # would buy only part of the accuracy).
                    return -1
                last = i
            blocked = blocked or not la.carries_gap
        return last

    def cross_state(
        self,
        X: Any,
        Y: Any,
        ntk: bool,
        sx: list[KernelState],
        sy: list[KernelState],
        pairs: tuple = _NO_PAIRS,
    ) -> KernelState:
        """Exact state between the inputs of ``X`` (n) and ``Y`` (m).

        ``sx``, ``sy`` are :meth:`self_states` of ``X`` and ``Y``, ``pairs``
        the ``(rows, cols)`` of identical inputs (:func:`identical_pairs`).
        After the input rule and every layer the variances ``kxx``, ``kyy``
        are set from the self states, and the pixel self-pairs of identical
        inputs pinned to them: an input paired with itself gets exactly
        ``K(x, x)``, and the duals see ``rho = 1`` exactly there.  Where a
        layer needs it, the gap ``1 - |rho|`` is carried along.
        """
        fused, layers = self._split()
        gap_until = self._gap_until(ntk, sx, sy)
        k = self.input.cross_state(
            X, Y, ntk, self.spatial, fused, pairs=pairs, gap=gap_until >= 0
        )
        k = _settle(k, sx[0], sy[0], pairs)
        for i, layer in enumerate(layers):
            k = layer.kernel(k.replace(gap_out=i < gap_until))
            if i >= gap_until:
                k = k.replace(gap=None)
            k = _settle(k, sx[i + 1], sy[i + 1], pairs)
        return k

    def kernel(
        self,
        X: Any,
        Y: Any,
        ntk: bool = False,
        diag_x: list | None = None,
        diag_y: list | None = None,
        pairs: tuple | None = None,
    ) -> KernelState:
        """Exact state between ``X`` and ``Y`` in one piece (no tiles)."""
        if diag_x is None:
            diag_x = self.self_states(X, ntk)
        if diag_y is None:
            diag_y = diag_x if Y is X else self.self_states(Y, ntk)
        if pairs is None:
            pairs = identical_pairs(_flat(X), _flat(Y))
        return self.cross_state(X, Y, ntk, diag_x, diag_y, pairs)

    def kernel_diag(self, X: Any, ntk: bool = False) -> KernelState:
        """Exact ``K(x, x)`` (and ``Theta(x, x)``) of each input, ``(n,)`` arrays."""
        return self.self_states(X, ntk)[-1]

    # -- reference state -----------------------------------------------------

    def reference_states(self, ntk: bool) -> list[KernelState]:
        """The reference input's state after the input and after each layer.

        One standardized input (spatially constant for images) walked once
        through the exact rules: the scales that set the feature budgets
        come from the same rules as the exact kernels.
        """
        k = self.input.reference_state(ntk)
        states = [k]
        for layer in self.layers:
            k = layer.kernel(k)
            states.append(k)
        return states

    def reference_scales(self, ntk: bool) -> tuple[float, float]:
        """``K(x, x)`` and ``Theta(x, x)`` at the output for the reference input."""
        return _scales(self.reference_states(ntk)[-1], ntk)

    # -- feature rule --------------------------------------------------------

    def sketch(
        self,
        n_components: int,
        *,
        ntk: bool,
        n_features: int | None = None,
        random_state: Any = None,
        sparse: bool = False,
        n_channels: int = 192,
        reduce: float | None = 2.0,
        output_norms: bool = False,
        input_scales: Any = None,
    ) -> NetworkSketch:
        """Draw a feature map with exactly ``n_components`` output features.

        ``n_features``: width of the input rows (fully connected networks).
        ``sparse``: the rows will be SciPy sparse matrices.  Images: hidden
        activations output ``n_channels`` features per pixel (for both
        ``phi`` and, with ``ntk``, ``psi``); the last activation gets the
        output budget (``n_components`` in all for ``global_avg``, at least
        ``n_components / n_pixels`` per pixel for ``flatten``, stacked and
        reduced to ``n_components`` by an SRHT); a ``Conv`` whose
        concatenated neighbourhoods are wider than ``reduce * n_channels``
        maps them to that width by an SRHT (``None``: never).  Without
        spatial axes every activation gets the output budget.
        ``output_norms``: each output row is rescaled to the exact
        ``K(x, x)`` (``Theta(x, x)``) of its input, computed by the exact
        rules (see :class:`NetworkSketch`).

        Each layer's feature rule receives the widths of its input (its
        ``Dims``) with the scales of the reference state before it.
        ``input_scales``: ``K(x, x)`` at the input of typical training rows
        (fully connected networks; quantiles of ``||x||^2 / d``), walked
        through the exact rules too, so that each rule serves the scales the
        data has (``Dims.scales2``) besides the standardized one.
        """
        rng = check_random_state(random_state)
        # CSR input is made dense once (in input-sparsity time), unless a
        # layer asks for the sparse feature rule (layers/sparse_input.py).
        densify = None
        if sparse and not any(
            getattr(la, "method", None) == "sparse" for la in self.layers
        ):
            densify = SparseToDense(n_features, n_components, rng)
            n_features, sparse = densify.width, False
        dims = self.input.dims(n_features, ntk, sparse)
        refs = self.reference_states(ntk)
        data, split = self._data_scales(input_scales, ntk, dims.spatial is None)
        # Drawn at least at the width where every part of every feature rule
        # gets a feature (unbiased), then brought down by the final SRHT.
        drawn = max(n_components, min_unbiased_width(self.layers))
        final = self._final_widths(drawn, ntk, n_channels, dims.spatial, split)
        budget_layers = [i for i, la in enumerate(self.layers) if la.takes_budget]
        last = budget_layers[-1] if budget_layers else -1
        if dims.spatial is None:
            hidden = final
        else:
            hidden = Widths(int(n_channels), int(n_channels) if ntk else 0)
        r = None if reduce is None else max(1, round(reduce * n_channels))
        sketches = []
        for i, layer in enumerate(self.layers):
            dims = replace_scales(dims, refs[i], ntk)
            if data is not None:
                dims = replace(dims, scales2=data[i])
            widths = final if i == last else hidden
            s = layer.features(dims, Widths(widths.phi, widths.psi, r), rng)
            sketches.append(s)
            dims = s.dims_out
        width = dims.psi if ntk and dims.psi is not None else dims.phi
        resize = SRHT(width, n_components, rng) if width > n_components else None
        return NetworkSketch(
            self.input,
            sketches,
            ntk,
            n_components,
            resize,
            densify,
            norms=self if output_norms else None,
        )

    def _data_scales(
        self, input_scales: Any, ntk: bool, rows: bool
    ) -> tuple[list[tuple[float, ...]] | None, tuple[float, float] | None]:
        """``K(x, x)`` before each layer for the inputs of ``input_scales``
        (finite, positive values only; ``None`` without any, or for images),
        and the output's ``(K, Theta)`` that sets the NTK budget split
        (``None``: the reference state's)."""
        if input_scales is None or not rows:
            return None, None
        v = np.asarray(to_numpy(input_scales), dtype=np.float64).ravel()
        v = np.unique(v[np.isfinite(v) & (v > 0)])
        if v.size == 0:
            return None, None
        k = KernelState(nngp=v, ntk=0.0 if ntk else None, layout=Layout(True))
        out = []
        with np.errstate(all="ignore"):
            for layer in self.layers:
                s = np.asarray(to_numpy(k.nngp), dtype=np.float64).ravel()
                out.append(tuple(float(x) for x in s[np.isfinite(s) & (s > 0)]))
                k = layer.kernel(k)
        split = None
        ref = float(np.asarray(self.input.reference_state(ntk).nngp).ravel()[0])
        far = (v < ref / FAR_SCALE) | (v > ref * FAR_SCALE)
        if ntk and far.any() and _is_array(k.ntk):
            # The NTK budget split at the data scale of largest Theta (whose
            # rows dominate the Frobenius norm), when the data is far from
            # standardized.
            nngp = np.asarray(to_numpy(k.nngp), dtype=np.float64).ravel()
            theta = np.asarray(to_numpy(k.ntk), dtype=np.float64).ravel()
            ok = np.isfinite(nngp) & np.isfinite(theta) & (theta > 0)
            if ok.any():
                i = int(np.argmax(np.where(ok, theta, -np.inf)))
                split = (float(nngp[i]), float(theta[i]))
        return out, split

    def _widths(self, n_components: int, ntk: bool) -> tuple[int, int]:
        """``(phi, psi)`` widths of a fully connected network's activations."""
        w = self._final_widths(n_components, ntk, 0, None)
        return w.phi, w.psi

    def _final_widths(
        self,
        n_components: int,
        ntk: bool,
        n_channels: int,
        spatial: tuple[int, int] | None,
        split: tuple[float, float] | None = None,
    ) -> Widths:
        """``(phi, psi)`` widths of the last activation's output.

        The layers after it may widen the features (``Dense`` appends a bias
        column, ``Flatten`` stacks the pixels): the widths are chosen so that
        the output has ``n_components`` columns, or, for stacked pixels, at
        least ``n_channels`` per pixel (an SRHT then trims the output).  The
        NTK budget is split between the NNGP part and the tensor-sketched
        part in proportion to their share of ``Theta`` at the reference
        scale (:func:`split_ntk_budget`), or at ``split`` (the output's ``(K,
        Theta)`` for training data far from standardized).
        """
        budget_layers = [i for i, la in enumerate(self.layers) if la.takes_budget]
        last = budget_layers[-1] if budget_layers else -1
        for la in self.layers[: last + 1]:
            spatial = la.out_spatial(spatial)
        after = self.layers[last + 1 :]

        def widened(width: int) -> int:
            # Output width of the layers after the last activation.
            shape = spatial
            for la in after:
                width, shape = la.feature_width(width, shape), la.out_spatial(shape)
            return width

        # feature_width is affine in the width: extra columns, stacked pixels.
        extra = widened(0)
        factor = widened(1) - extra
        if spatial is None:
            budget = max(n_components - extra, 2)
        else:
            # Tiny budgets get a few features more; the output SRHT trims them.
            budget = max(n_components - extra, 8)
            if factor > 1:
                budget = max(int(n_channels), -(-budget // factor), 8)
        if not ntk:
            return Widths(budget, 0)
        scales = split or self.reference_scales(ntk=True)
        return Widths(*split_ntk_budget(budget, *scales))


def replace_scales(dims: Dims, ref: KernelState, ntk: bool) -> Dims:
    """``dims`` with the scales of the reference state ``ref``."""
    s2, s2_ntk = _scales(ref, ntk)
    return replace(dims, scale2=s2, scale2_ntk=s2_ntk)


def _scales(k: KernelState, ntk: bool) -> tuple[float, float]:
    nngp = float(np.asarray(k.nngp).reshape(-1)[0])
    if not ntk or k.ntk is None:
        return nngp, 0.0
    return nngp, float(np.asarray(k.ntk).reshape(-1)[0])


def _summary(k: KernelState) -> KernelState:
    """A self state reduced to its pixel diagonal (a ``diagonal`` self state)."""
    layout = k.layout
    if layout.spatial != "full":
        return k
    ntk = k.ntk
    if _is_array(ntk):
        ntk = layout.pixel_variances(ntk)
    return KernelState(
        nngp=layout.pixel_variances(k.nngp),
        ntk=ntk,
        layout=layout.with_spatial("diagonal"),
    )


def _settle(k: KernelState, sx: KernelState, sy: KernelState, pairs: tuple):
    """Variances from the self states; identical pairs pinned to them."""
    spatial = k.layout.spatial
    kxx, kyy = k.layout.outer(sx.nngp, sy.nngp)
    nngp = _pin_array(k.nngp, sx.nngp, pairs, spatial)
    ntk = k.ntk
    if _is_array(ntk) and _is_array(sx.ntk):
        ntk = _pin_array(ntk, sx.ntk, pairs, spatial)
    gap = k.gap
    if gap is not None and len(pairs[0]):
        gap = _pin_array(gap, sx.nngp * 0.0, pairs, spatial)
    return k.replace(nngp=nngp, ntk=ntk, gap=gap, kxx=kxx, kyy=kyy)


def _flat(X: Any) -> Any:
    """Rows of ``X`` (images flattened), for :func:`identical_pairs`."""
    if sp.issparse(X) or len(X.shape) == 2:
        return X
    xp, _ = get_namespace(X)
    return xp.reshape(X, (X.shape[0], -1))


def split_ntk_budget(budget: int, k_out: float, theta_out: float) -> tuple[int, int]:
    """Split an NTK feature budget into ``(phi, tensor part)`` widths.

    In proportion to ``K / Theta`` at the reference scale, the tensor-sketched
    part counting about twice the variance per feature; each part keeps at
    least a fifth of the budget.
    """
    frac = k_out / theta_out if theta_out > 0 else 0.5
    share = frac / (frac + (1 - frac) * math.sqrt(2.0))
    n_phi = round(budget * min(max(share, 0.2), 0.8))
    return n_phi, budget - n_phi


class NetworkSketch:
    """A drawn feature map: ``__call__(X)`` returns ``(n, n_components)`` features.

    ``norms``: a :class:`Network` whose exact ``K(x, x)`` (``Theta(x, x)``)
    each output row is rescaled to, or ``None``.  Why: the sketch errors of
    the hidden layers of a convolutional network are shared by all images
    (their deep features are nearly collinear), so they reach the output
    mostly as one common scale of every kernel entry; exact output norms
    remove it (measured, ``benchmarks/results/cntk_n_components.md``: the
    Myrtle-5 error on digits falls 5 to 20 times).  A row's factor depends
    on its own input only: the map stays data-oblivious.
    """

    def __init__(
        self,
        input_rule,
        sketches,
        ntk,
        n_components,
        resize,
        densify=None,
        norms: Network | None = None,
    ):
        self.input = input_rule
        self.sketches = sketches
        self.ntk = ntk
        self.n_components = n_components
        self.resize = resize
        self.densify = densify
        self.norms = norms

    def __call__(self, X: Any) -> Any:
        f = self.input.features(X)
        if self.densify is not None:  # CSR rows, made dense once
            f = Features(self.densify(f.phi))
        for s in self.sketches:
            f = s(f)
        Z = f.psi if self.ntk else f.phi
        if self.ntk and Z is None:  # depth 0: Theta = K
            Z = f.phi
        if sp.issparse(Z):
            Z = Z.toarray()
        xp, _ = get_namespace(Z)
        if self.resize is not None:
            Z = self.resize(Z)
        elif Z.shape[1] < self.n_components:
            from ._backend import device

            pad = xp.zeros(
                (Z.shape[0], self.n_components - Z.shape[1]),
                dtype=Z.dtype,
                device=device(Z),
            )
            Z = xp.concat([Z, pad], axis=1)
        if self.norms is not None:
            Z = self._exact_output_norms(X, Z)
        return Z

    def _exact_output_norms(self, X: Any, Z: Any) -> Any:
        """``Z`` with each row rescaled to the exact ``K(x, x)`` (``Theta``)."""
        as_images = getattr(self.input, "as_images", None)
        state = self.norms.kernel_diag(
            X if as_images is None else as_images(X), ntk=self.ntk
        )
        target = state.ntk if self.ntk else state.nngp
        target = np.asarray(to_numpy(target), dtype=np.float64).reshape(-1)
        xp, _ = get_namespace(Z)
        if isinstance(Z, np.ndarray) and not Z.flags.writeable:
            Z = Z.copy()
        return exact_norms(xp, Z, 0, target)


def fully_connected(
    act: Activation,
    depth: int,
    W_std: float,
    b_std: float,
    degree: int = 8,
    method: str = "auto",
) -> Network:
    """``[Dense, act] * depth + [Dense]``, the network of kernels.md."""
    layers: list[Any] = [Dense(W_std, b_std)]
    for _ in range(depth):
        layers += [Elementwise(act, degree, method), Dense(W_std, b_std)]
    return Network(DenseInput(), tuple(layers))
