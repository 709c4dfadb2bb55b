"""Networks as lists of layers, and their drawn feature maps.

A :class:`Network` is an input rule followed by layers (see
:mod:`sklearn_ntk.layers`).  The same object gives the exact kernels
(:meth:`Network.kernel`) and, once drawn, the sketched feature map
(:meth:`Network.sketch`), so exact and approximate paths cannot drift apart.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.utils import check_random_state

from ._backend import asxp, get_namespace, get_namespace_and_device, to_numpy
from ._min_width import min_unbiased_width
from .activations import Activation, _gap_of
from .layers.base import Dims, Features, KernelState, scatter
from .layers.dense import Dense, Elementwise
from .layers.sparse_input import SparseToDense
from .sketches import SRHT

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
    scales are put back on the (representable) kernel values.
    """

    def kernel_diag(self, X: Any, ntk: bool) -> KernelState:
        """State of the pairs ``(x, x)``: every array is ``(n,)``."""
        kxx = _scaled_rows(X)[1]
        return KernelState(nngp=kxx, kxx=kxx, kyy=kxx, ntk=0.0 if ntk else None)

    def kernel(
        self,
        X: Any,
        Y: Any,
        ntk: bool,
        kxx: Any,
        kyy: Any,
        pairs: tuple[np.ndarray, np.ndarray],
        gap: bool,
    ) -> KernelState:
        """Cross state; ``kxx``, ``kyy`` are the ``(n,)``, ``(m,)`` variances
        of :meth:`kernel_diag`, ``pairs`` the pairs of identical rows."""
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
        k = KernelState(
            nngp=nngp,
            kxx=kxx[:, None],
            kyy=kyy[None, :],
            ntk=0.0 if ntk else None,
            gap=g,
        )
        return _pin(k, pairs, kxx, None)

    def dims(self, n_features: int, ntk: bool) -> Dims:
        # Reference input: ||x||^2 / d = 1 (standardized data).
        return Dims(phi=n_features, psi=0 if ntk else None, scale2=1.0)

    def features(self, X: Any) -> Features:
        return Features(X * (1.0 / math.sqrt(X.shape[1])))


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


def _pin(k: KernelState, pairs: tuple, kxx: Any, txx: Any) -> KernelState:
    """Copy the diagonal states onto the pairs of identical inputs.

    ``nngp`` (and ``ntk``) there become bitwise ``K(x, x)`` (``Theta(x, x)``)
    of the diagonal state, and the gap 0: what ``K(X)``, ``K(X, X)``,
    ``K(X, X.copy())`` and the kernel objects' ``diag`` return for an input
    with itself is then the same number by construction, and the duals see
    ``rho = 1`` exactly there.
    """
    rows, cols = pairs
    if len(rows) == 0:
        return k
    take = (lambda a: a[rows]) if isinstance(kxx, np.ndarray) else _taker(kxx, rows)
    nngp = scatter(k.nngp, rows, cols, take(kxx))
    ntk = k.ntk
    if not isinstance(ntk, float | type(None)) and not isinstance(
        txx, float | type(None)
    ):
        ntk = scatter(ntk, rows, cols, take(txx))
    gap = k.gap
    if gap is not None:
        gap = scatter(gap, rows, cols, np.zeros(len(rows)))
    return k.replace(nngp=nngp, ntk=ntk, gap=gap)


def _taker(like: Any, rows: np.ndarray):
    xp, _, dev = get_namespace_and_device(like)
    idx = asxp(rows, xp, device=dev)
    return lambda a: xp.take(a, idx)


def _largest(a: Any) -> float:
    host = np.asarray(to_numpy(a), dtype=np.float64)
    return float(host.max()) if host.size else 0.0


def _check_finite(k: KernelState, i: int, layer: Any, n_layers: int, kxx0: Any) -> None:
    """Raise ``OverflowError`` where a diagonal state left the float64 range."""
    for name, a in (("NNGP kernel K", k.nngp), ("NTK Theta", k.ntk)):
        if a is None or isinstance(a, float):
            continue
        host = np.asarray(to_numpy(a), dtype=np.float64)
        bad = ~np.isfinite(host)
        if bad.any():
            r = int(np.flatnonzero(bad)[0])
            scale = float(np.asarray(to_numpy(kxx0), dtype=np.float64)[r])
            raise OverflowError(
                f"The {name}(x, x) overflows float64 after layer {i + 1} of "
                f"{n_layers} ({layer!r}) for row {r} of the input, whose "
                f"||x||^2 / d = {scale:.3g}: the exact kernel is not "
                "representable (the activation grows too fast for this scale "
                "and depth)."
            )


@dataclass(frozen=True)
class Network:
    """An input rule and a list of layers, each with an exact and a feature rule."""

    input: Any
    layers: tuple

    def diag_states(self, X: Any, ntk: bool = False) -> list[KernelState]:
        """The diagonal states ``K(x, x)`` (``Theta(x, x)``) after the input and
        after each layer, ``(n,)`` arrays.

        Raises ``OverflowError``, naming the layer, the activation and the
        input scale, where a variance exceeds the float64 range (``exp`` at
        depth 4, a huge polynomial...): the cross kernels are bounded by them.
        """
        k = self.input.kernel_diag(X, ntk)
        states = [k]
        for i, layer in enumerate(self.layers):
            try:
                # Overflow is checked below, and reported with its cause.
                with np.errstate(over="ignore", invalid="ignore"):
                    k = layer.kernel(k)
            except OverflowError as exc:
                raise OverflowError(
                    f"{exc} (layer {i + 1} of {len(self.layers)}, {layer!r}; "
                    f"input ||x||^2 / d up to {_largest(states[0].nngp):.3g})"
                ) from exc
            _check_finite(k, i, layer, len(self.layers), states[0].nngp)
            states.append(k)
        return states

    def kernel(
        self,
        X: Any,
        Y: Any,
        ntk: bool = False,
        diag_x: list | None = None,
        diag_y: list | None = None,
        pairs: tuple | None = None,
    ) -> KernelState:
        """Exact kernels between the rows of ``X`` and ``Y``.

        ``diag_x``, ``diag_y`` are :meth:`diag_states` of ``X`` and ``Y``, and
        ``pairs`` the :func:`identical_pairs` (computed here when not given).
        The variances that the activations read are taken from the diagonal
        states, and the pairs of identical inputs are pinned to them after
        every layer: an input paired with itself gets exactly ``K(x, x)``.
        Where an activation needs it, the gap ``1 - |rho|`` is carried along
        (see :class:`~sklearn_ntk.layers.base.KernelState`).
        """
        if diag_x is None:
            diag_x = self.diag_states(X, ntk)
        if diag_y is None:
            diag_y = diag_x if Y is X else self.diag_states(Y, ntk)
        if pairs is None:
            pairs = identical_pairs(X, Y)
        gap_until = max(
            (
                i
                for i, la in enumerate(self.layers)
                if isinstance(la, Elementwise)
                and la.act._needs_gap(
                    ntk, max(_largest(diag_x[i].nngp), _largest(diag_y[i].nngp))
                )
            ),
            default=-1,
        )
        k = self.input.kernel(
            X, Y, ntk, diag_x[0].nngp, diag_y[0].nngp, pairs, gap_until >= 0
        )
        for i, layer in enumerate(self.layers):
            if isinstance(layer, Elementwise):
                k = layer.kernel(k, keep_gap=i < gap_until)
            else:
                k = layer.kernel(k)
            if i >= gap_until:
                k = k.replace(gap=None)
            dx, dy = diag_x[i + 1], diag_y[i + 1]
            k = k.replace(kxx=dx.nngp[:, None], kyy=dy.nngp[None, :])
            k = _pin(k, pairs, dx.nngp, dx.ntk)
        return k

    def kernel_diag(self, X: Any, ntk: bool = False) -> KernelState:
        """Exact ``K(x, x)`` (and ``Theta(x, x)``) for each row of ``X``."""
        return self.diag_states(X, ntk)[-1]

    def reference_scales(self, ntk: bool) -> tuple[float, float]:
        """``K(x, x)`` and ``Theta(x, x)`` at the output for a reference input."""
        one = np.ones(1)
        k = KernelState(nngp=one, kxx=one, kyy=one, ntk=0.0 if ntk else None)
        for layer in self.layers:
            k = layer.kernel(k)
        return float(k.nngp[0]), float(np.asarray(k.ntk).reshape(-1)[0]) if ntk else 0.0

    def sketch(
        self,
        n_features: int,
        n_components: int,
        *,
        ntk: bool,
        random_state: Any = None,
        sparse: bool = False,
    ) -> NetworkSketch:
        """Draw a feature map with exactly ``n_components`` output features."""
        rng = check_random_state(random_state)
        dims = self.input.dims(n_features, ntk)
        # Issue 12: sparse input is made dense once (layers/sparse_input.py).
        densify = SparseToDense(n_features, n_components, rng) if sparse else None
        phi = densify.width if sparse else dims.phi
        dims = Dims(phi, dims.psi, dims.scale2, dims.scale2_ntk, sparse=False)
        # Issue 12: drawn at least at the unbiased width, then resized below.
        widths = self._widths(max(n_components, min_unbiased_width(self.layers)), ntk)
        sketches = []
        for layer in self.layers:
            s = layer.sketch(dims, widths, rng)
            sketches.append(s)
            dims = s.dims_out
        width = dims.psi if ntk else dims.phi
        resize = None
        if width > n_components:
            resize = SRHT(width, n_components, rng)
        out = NetworkSketch(self.input, sketches, ntk, n_components, resize)
        out.densify = densify
        return out

    def _widths(self, n_components: int, ntk: bool) -> tuple[int, int]:
        """Widths ``(phi, psi)`` of every activation layer's output.

        The final ``Dense`` appends a bias column (when ``b_std != 0``) and,
        for the NTK, stacks ``[W psi ; phi]``: the widths are chosen so that
        the output has exactly ``n_components`` columns.  The NTK budget is
        split between the NNGP part and the tensor-sketched part in proportion
        to their share of ``Theta`` at the reference scale.
        """
        last_dense = next(
            (la for la in reversed(self.layers) if isinstance(la, Dense)), None
        )
        bias = int(last_dense is not None and last_dense.b_std != 0)
        budget = max(n_components - bias, 2)
        return (
            split_ntk_budget(budget, *self.reference_scales(ntk=True))
            if ntk
            else (budget, 0)
        )


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
    """A drawn feature map: ``__call__(X)`` returns ``(n, n_components)`` features."""

    def __init__(self, input_rule, sketches, ntk, n_components, resize):
        self.input = input_rule
        self.sketches = sketches
        self.ntk = ntk
        self.n_components = n_components
        self.resize = resize

    def __call__(self, X: Any) -> Any:
        f = self.input.features(X)
        if getattr(self, "densify", None) is not None:
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
        return Z


def fully_connected(
    act: Activation, depth: int, W_std: float, b_std: float, degree: int = 8
) -> Network:
    """``[Dense, act] * depth + [Dense]``, the network of kernels.md."""
    layers: list[Any] = [Dense(W_std, b_std)]
    for _ in range(depth):
        layers += [Elementwise(act, degree), Dense(W_std, b_std)]
    return Network(DenseInput(), tuple(layers))
