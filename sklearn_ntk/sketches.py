"""Randomized sketches of vectors and tensor powers, generic over Array API namespaces.

These are the building blocks of the NNGP/NTK feature maps (Han et al., NeurIPS
2022): ``S_p`` with ``E<S_p(u), S_p(v)> = <u, v>^p`` for the Hermite/Taylor terms
of a dual activation (:class:`PolySketch`, after Ahle et al., SODA 2020), a
degree-2 sketch of ``a (x) b`` for the NTK recursion (:class:`TensorSRHT`), and
input-sparsity-time sketches for ``scipy.sparse`` data (:class:`CountSketch`,
:class:`TensorSketch`, after Pham & Pagh, KDD 2013).

Every sketch is exactly unbiased for any draw of its random signs: the
expectation is over the sampled coordinates only.  Random parameters are drawn
once at construction with :func:`sklearn.utils.check_random_state`, stored as
NumPy arrays (picklable, reproducible) and moved once per (namespace, device,
dtype) to the input's namespace; outputs have the input's namespace, device and
real floating dtype (integer input is computed in float64).

Real Fourier transform used by the SRHT-type sketches
-----------------------------------------------------
For a zero-padded length ``w`` (a 5-smooth length, fast for every FFT backend),
``F = rfft(D x)`` gives the orthonormal real DFT
``[Re F_0, sqrt2 Re F_1, sqrt2 Im F_1, ..., (Re F_{w/2} if w even)] / sqrt(w)``.
The interleaved float view of ``F`` holds real coordinate ``j`` at position
``j + 1`` (``j = 0`` at position 0), so a sketch is a single ``take`` from that
view followed by a per-coordinate scale.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import Any

import numpy as np
import scipy.fft
import scipy.sparse as sp
from sklearn.utils import check_random_state

from sklearn_ntk._backend import asxp, get_namespace, is_numpy, zeros
from sklearn_ntk._backend import device as _device

__all__ = ["SRHT", "CountSketch", "PolySketch", "TensorSRHT", "TensorSketch"]

# scipy.fft worker threads for the NumPy path: None follows the caller's
# ``scipy.fft.set_workers`` context (1 by default), never all cores
# implicitly, so that joblib / GridSearchCV(n_jobs=-1) do not oversubscribe.
_FFT_WORKERS = None
# Row chunks bound the size of the temporaries (elements per chunk x width).
_CHUNK_ELEMS_NUMPY = 1 << 22
_CHUNK_ELEMS_OTHER = 1 << 25


# ---------------------------------------------------------------- validation
def _check_int(value: Any, name: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be an integer, got {value!r}.")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value!r}.")
    return int(value)


def _fast_len(n: int) -> int:
    return int(scipy.fft.next_fast_len(int(n), real=True))


def _prepare(X: Any, n_features: int, name: str) -> tuple[Any, Any, Any]:
    """Namespace, real floating 2-D array and device of ``X``; checks its width."""
    xp, _ = get_namespace(X)
    if not hasattr(X, "shape") or not hasattr(X, "dtype"):
        X = xp.asarray(X)
    if X.ndim != 2:
        raise ValueError(f"{name}: expected a 2-D array, got shape {tuple(X.shape)}.")
    if X.shape[1] != n_features:
        raise ValueError(
            f"{name}: X has {X.shape[1]} features, but the sketch was built for "
            f"n_features={n_features}."
        )
    if xp.isdtype(X.dtype, "complex floating"):
        raise ValueError(f"{name}: complex input is not supported.")
    dev = _device(X)
    if not xp.isdtype(X.dtype, "real floating"):
        X = xp.asarray(X, dtype=xp.float64, device=dev)
    return xp, X, dev


def _check_sparse(X: Any, n_features: int, name: str) -> sp.csr_array:
    if X.ndim != 2 or X.shape[1] != n_features:
        raise ValueError(
            f"{name}: X has shape {X.shape}, but the sketch was built for "
            f"n_features={n_features}."
        )
    X = sp.csr_array(X)
    if X.dtype.kind not in "f":
        X = X.astype(np.float64)
    return X


def _chunks(n: int, width: int, xp: Any) -> list[tuple[int, int]]:
    budget = _CHUNK_ELEMS_NUMPY if is_numpy(xp) else _CHUNK_ELEMS_OTHER
    step = max(1, budget // max(1, width))
    return [(i, min(n, i + step)) for i in range(0, max(n, 1), step)] if n else []


def _empty(xp: Any, n: int, m: int, dtype: Any, dev: Any) -> Any:
    return zeros(xp, (n, m), dtype, dev)


def _concat_rows(parts: list, xp: Any) -> Any:
    return parts[0] if len(parts) == 1 else xp.concat(parts, axis=0)


# ------------------------------------------------------------ real FFT core
def _real_layout(w: int) -> tuple[np.ndarray, np.ndarray]:
    """Position of each real-DFT coordinate in the interleaved rfft view, and
    its sqrt(2) factor (1 for the DC and, if ``w`` is even, Nyquist terms)."""
    j = np.arange(w, dtype=np.int64)
    pos = j + 1
    pos[0] = 0
    fac = np.full(w, math.sqrt(2.0))
    fac[0] = 1.0
    if w % 2 == 0:
        fac[-1] = 1.0
    return pos, fac


def _spread(X: Any, signs: Any, w: int, xp: Any) -> Any:
    """Unnormalized real DFT of ``signs * X`` zero-padded to ``w``, as the
    interleaved (Re, Im) float view.

    ``X``: (n, d); ``signs``: (d,) or (B, d) for B independent blocks, which are
    laid out side by side, block ``b`` at offset ``b * 2 * (w // 2 + 1)``.
    """
    n = X.shape[0]
    if signs.ndim == 2:
        Y = X[:, None, :] * signs[None, :, :]
    else:
        Y = X * signs
    if is_numpy(xp):
        F = scipy.fft.rfft(Y, n=w, axis=-1, workers=_FFT_WORKERS)
        return F.view(F.real.dtype).reshape(n, -1)
    F = xp.fft.rfft(Y, n=w, axis=-1)
    W = xp.stack([xp.real(F), xp.imag(F)], axis=-1)
    return xp.reshape(W, (n, -1))


def _strata(rng: np.random.RandomState, w: int, m: int) -> np.ndarray:
    """``m`` indices in [0, w): concatenated random permutations, so each index
    is marginally uniform and indices repeat only once ``m > w``."""
    reps = -(-m // w)
    return np.concatenate([rng.permutation(w) for _ in range(reps)])[:m]


def _signs(rng: np.random.RandomState, shape: Any) -> np.ndarray:
    return rng.randint(0, 2, size=shape).astype(np.float64) * 2.0 - 1.0


class _Base:
    """Caching of parameters moved to a (namespace, device, dtype) + pickling."""

    def _host_params(self) -> dict[str, Any]:  # pragma: no cover - abstract
        raise NotImplementedError

    def _params(self, xp: Any, dev: Any, dtype: Any) -> dict[str, Any]:
        cache = self.__dict__.setdefault("_cache", {})
        key = (getattr(xp, "__name__", str(xp)), str(dev), str(dtype))
        if key not in cache:
            cache[key] = _move(self._host_params(), xp, dev, dtype)
        return cache[key]

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state.pop("_cache", None)
        return state


def _move(obj: Any, xp: Any, dev: Any, dtype: Any) -> Any:
    """Recursively move NumPy arrays: floats to ``dtype``, ints to int64."""
    if isinstance(obj, np.ndarray):
        if obj.dtype.kind == "f":
            if is_numpy(xp):
                return np.ascontiguousarray(obj, dtype=dtype)
            return asxp(obj, xp, device=dev, dtype=dtype)
        return asxp(obj.astype(np.int64), xp, device=dev)
    if isinstance(obj, dict):
        return {k: _move(v, xp, dev, dtype) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return type(obj)(_move(v, xp, dev, dtype) for v in obj)
    return obj


def _dense_rows(X: Any, start: int, stop: int) -> Any:
    if sp.issparse(X):
        return X[start:stop].toarray()
    return X[start:stop, ...]


def _prepare_any(X: Any, n_features: int, name: str) -> tuple[Any, Any, Any]:
    """Like :func:`_prepare`, but scipy.sparse input is kept (densified per chunk)."""
    if sp.issparse(X):
        return np, _check_sparse(X, n_features, name), None
    return _prepare(X, n_features, name)


# --------------------------------------------------------------------- SRHT
class SRHT(_Base):
    """Subsampled randomized real Fourier transform ``R^d -> R^m``.

    ``S u = sqrt(w / m) P H D u`` with ``D`` random signs, ``H`` the orthonormal
    real DFT of the zero-padded length ``w >= d`` and ``P`` a sampling of
    coordinates without replacement.  For ``m > w`` independent blocks (fresh
    signs) are stacked; a full block is an exact isometry.  For every draw of
    the signs ``E<S u, S v> = <u, v>``.

    Parameters
    ----------
    n_features : int
        Input dimension ``d``.
    n_components : int
        Output dimension ``m``.
    random_state : int, RandomState instance or None
        Seed of the signs and sampled coordinates.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_ntk.sketches import SRHT
    >>> S = SRHT(5, 3, random_state=0)
    >>> S(np.ones((2, 5))).shape
    (2, 3)
    """

    def __init__(self, n_features: int, n_components: int, random_state: Any = None):
        self.n_features = _check_int(n_features, "n_features")
        self.n_components = _check_int(n_components, "n_components")
        rng = check_random_state(random_state)
        w = self.padded_features_ = _fast_len(self.n_features)
        m = self.n_components
        n_blocks = -(-m // w)
        self.signs_ = _signs(rng, (n_blocks, self.n_features))
        pos, fac = _real_layout(w)
        stride = 2 * (w // 2 + 1)
        idx, scale = [], []
        for b in range(n_blocks):
            j = rng.permutation(w)[: min(w, m - b * w)]
            idx.append(pos[j] + b * stride)
            scale.append(fac[j])
        self.index_ = np.concatenate(idx)
        self.scale_ = np.concatenate(scale) / math.sqrt(m)

    def _host_params(self) -> dict[str, Any]:
        return {"signs": self.signs_, "index": self.index_, "scale": self.scale_}

    def __call__(self, X: Any) -> Any:
        """Sketch the rows of ``X`` (n, n_features) -> (n, n_components)."""
        xp, X, dev = _prepare_any(X, self.n_features, "SRHT")
        dtype = X.dtype
        p = self._params(xp, dev, dtype)
        signs = p["signs"][0, ...] if p["signs"].shape[0] == 1 else p["signs"]
        parts = []
        width = self.signs_.shape[0] * (self.padded_features_ + 2)
        for a, b in _chunks(X.shape[0], width, xp):
            W = _spread(_dense_rows(X, a, b), signs, self.padded_features_, xp)
            parts.append(xp.take(W, p["index"], axis=1) * p["scale"])
        if not parts:
            return _empty(xp, 0, self.n_components, dtype, dev)
        return _concat_rows(parts, xp)


# --------------------------------------------------------------- TensorSRHT
class TensorSRHT(_Base):
    """Degree-2 tensor sketch ``R^{d1} x R^{d2} -> R^m`` of ``u (x) v``.

    ``T(u (x) v)_t = (H D1 u)_{i_t} (H D2 v)_{k_t} sqrt(w1 w2 / m)``, with the
    orthonormal real DFTs of the padded lengths ``w1, w2`` and index pairs whose
    marginals are uniform on the grid (each side a concatenation of random
    permutations).  For every draw of the signs
    ``E<T(u (x) v), T(u' (x) v')> = <u, u'><v, v'>``.

    Parameters
    ----------
    n_features_1, n_features_2 : int
        Dimensions ``d1`` and ``d2`` of the two factors.
    n_components : int
        Output dimension ``m``.
    random_state : int, RandomState instance or None
        Seed of the signs and sampled index pairs.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_ntk.sketches import TensorSRHT
    >>> T = TensorSRHT(4, 3, 8, random_state=0)
    >>> T(np.ones((2, 4)), np.ones((2, 3))).shape
    (2, 8)
    """

    def __init__(
        self,
        n_features_1: int,
        n_features_2: int,
        n_components: int,
        random_state: Any = None,
        *,
        n_linear: int = 0,
    ):
        self.n_features_1 = _check_int(n_features_1, "n_features_1")
        self.n_features_2 = _check_int(n_features_2, "n_features_2")
        self.n_components = _check_int(n_components, "n_components")
        rng = check_random_state(random_state)
        m = self.n_components
        self.padded_features_ = (
            _fast_len(self.n_features_1),
            _fast_len(self.n_features_2),
        )
        self.signs_1_ = _signs(rng, self.n_features_1)
        self.signs_2_ = _signs(rng, self.n_features_2)
        (pos1, fac1), (pos2, fac2) = map(_real_layout, self.padded_features_)
        i = _strata(rng, self.padded_features_[0], m)
        k = _strata(rng, self.padded_features_[1], m)
        self.index_1_, self.index_2_ = pos1[i], pos2[k]
        self.scale_ = fac1[i] * fac2[k] / math.sqrt(m)
        # Optional SRHT of X1 read from the same spread (see linear_and_tensor).
        self.n_linear = _check_int(n_linear, "n_linear", 0)
        j = (
            _strata(rng, self.padded_features_[0], self.n_linear)
            if self.n_linear
            else np.zeros(0, dtype=np.int64)
        )
        self.linear_index_ = pos1[j]
        self.linear_scale_ = fac1[j] / math.sqrt(max(self.n_linear, 1))

    def _host_params(self) -> dict[str, Any]:
        return {
            "s1": self.signs_1_,
            "s2": self.signs_2_,
            "i1": self.index_1_,
            "i2": self.index_2_,
            "scale": self.scale_,
            "il": self.linear_index_,
            "sl": self.linear_scale_,
        }

    def __call__(self, X1: Any, X2: Any) -> Any:
        """Rowwise ``T(X1[i] (x) X2[i])``: (n, d1), (n, d2) -> (n, n_components)."""
        return self._apply(X1, X2, linear=False)[1]

    def linear_and_tensor(self, X1: Any, X2: Any) -> tuple[Any, Any]:
        """``(S X1, T(X1 (x) X2))`` with ``S`` an SRHT to ``n_linear`` coordinates.

        Both read the same FFT spread of ``X1``, which saves one transform of
        the (often wide) ``X1``; each part stays exactly unbiased.
        """
        return self._apply(X1, X2, linear=True)

    def _apply(self, X1: Any, X2: Any, linear: bool) -> tuple[Any, Any]:
        xp, X1, dev = _prepare(X1, self.n_features_1, "TensorSRHT (X1)")
        _, X2, _ = _prepare(X2, self.n_features_2, "TensorSRHT (X2)")
        if X1.shape[0] != X2.shape[0]:
            raise ValueError(
                f"TensorSRHT: X1 and X2 have different numbers of rows "
                f"({X1.shape[0]} and {X2.shape[0]})."
            )
        dtype = xp.result_type(X1.dtype, X2.dtype)
        X1 = xp.astype(X1, dtype) if X1.dtype != dtype else X1
        X2 = xp.astype(X2, dtype) if X2.dtype != dtype else X2
        p = self._params(xp, dev, dtype)
        w1, w2 = self.padded_features_
        parts, lin_parts = [], []
        for a, b in _chunks(X1.shape[0], w1 + w2 + self.n_components, xp):
            Z1 = _spread(X1[a:b, ...], p["s1"], w1, xp)
            Z2 = _spread(X2[a:b, ...], p["s2"], w2, xp)
            parts.append(
                xp.take(Z1, p["i1"], axis=1) * xp.take(Z2, p["i2"], axis=1) * p["scale"]
            )
            if linear:
                lin_parts.append(xp.take(Z1, p["il"], axis=1) * p["sl"])
        n = X1.shape[0]
        tensor = (
            _concat_rows(parts, xp)
            if parts
            else _empty(xp, 0, self.n_components, dtype, dev)
        )
        if not linear:
            return None, tensor
        lin = (
            _concat_rows(lin_parts, xp)
            if lin_parts
            else _empty(xp, n, self.n_linear, dtype, dev)
        )
        return lin, tensor


# --------------------------------------------------------------- PolySketch
class PolySketch(_Base):
    """Sketches ``S_p`` of ``u^{(x)p}`` for all degrees ``p = 1..degree`` at once.

    Design (a dyadic tree of TensorSRHT nodes over independent leaves):

    * Leaf ``s`` is the input itself, spread once by a real FFT with its own
      random signs (``degree`` leaves, one batched FFT of the padded input).
    * Node ``N(s, c)`` sketches ``u^{(x)c}`` from leaves ``s..s+c-1`` into
      ``internal_components`` coordinates: ``N(s, c) = T(N(s, h), N(s+h, c-h))``
      with ``h`` the largest power of two below ``c``, ``T`` a TensorSRHT
      reading the FFT spreads of its children.  Degree ``p`` thus combines the
      dyadic blocks of the binary expansion of ``p``, built on disjoint leaves
      (so independent), and full dyadic blocks are shared by all degrees.
      Every node is FFT-spread once, whatever the number of its parents.
    * The output for degree ``p >= 2`` is one more TensorSRHT of the two
      children of ``N(0, p)`` straight into ``n_components[p-1]`` coordinates
      (no extra FFT); degree 1 is an SRHT read from leaf 0.

    Each ``S_p`` is exactly unbiased, ``E<S_p(u), S_p(v)> = <u, v>^p``, for any
    draw of the signs.  The cost is ``degree`` FFTs of the padded input plus
    about ``degree`` FFTs of width ``internal_components``; the variance of
    ``<S_p(u), S_p(v)>`` for unit vectors grows roughly linearly in ``p`` at
    fixed widths (see the tests and the module report).

    Parameters
    ----------
    n_features : int
        Input dimension ``d``.
    degree : int
        Highest degree sketched.
    n_components : int or sequence of int
        Output dimension of every degree, or one per degree ``p = 1..degree``
        (``0`` skips that degree: an empty ``(n, 0)`` output).
    random_state : int, RandomState instance or None
        Seed of all signs and sampled coordinates.
    internal_components : int, optional
        Width of the internal nodes (padded up to a fast FFT length).  Defaults
        to the largest requested output size, rounded up to a fast FFT length.
        Larger is more accurate and slower.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_ntk.sketches import PolySketch
    >>> P = PolySketch(6, degree=3, n_components=[4, 8, 0], random_state=0)
    >>> [s.shape for s in P(np.ones((2, 6)))]
    [(2, 4), (2, 8), (2, 0)]
    """

    def __init__(
        self,
        n_features: int,
        degree: int,
        n_components: int | Sequence[int],
        random_state: Any = None,
        *,
        internal_components: int | None = None,
    ):
        self.n_features = _check_int(n_features, "n_features")
        self.degree = _check_int(degree, "degree")
        if isinstance(n_components, numbers.Integral) and not isinstance(
            n_components, bool
        ):
            comps = [_check_int(n_components, "n_components")] * self.degree
        else:
            try:
                comps = list(n_components)
            except TypeError:
                raise ValueError(
                    f"n_components must be an int or a sequence of ints, got "
                    f"{n_components!r}."
                ) from None
            if len(comps) != self.degree:
                raise ValueError(
                    f"n_components has length {len(comps)}, expected degree="
                    f"{self.degree}."
                )
            comps = [
                _check_int(c, f"n_components[{i}]", 0) for i, c in enumerate(comps)
            ]
        self.n_components = comps
        if internal_components is None:
            internal_components = _fast_len(max(max(comps), 1))
        self.internal_components = _check_int(
            internal_components, "internal_components"
        )
        rng = check_random_state(random_state)
        self._build(rng)

    def _build(self, rng: np.random.RandomState) -> None:
        d, q, m_int = self.n_features, self.degree, self.internal_components
        wd, wm = _fast_len(d), _fast_len(m_int)
        self.padded_features_ = wd
        wanted = [p for p in range(1, q + 1) if self.n_components[p - 1] > 0]
        n_leaves = max(wanted, default=0)
        self.leaf_signs_ = _signs(rng, (max(n_leaves, 1), d))
        lay_d, lay_m = _real_layout(wd), _real_layout(wm)
        leaf_stride = 2 * (wd // 2 + 1)

        # ``src[key]`` = (array id, offset, padded width, layout) of a spread.
        src: dict[Any, tuple[Any, int, int, Any]] = {
            (s, 1): ("leaf", s * leaf_stride, wd, lay_d) for s in range(n_leaves)
        }
        nodes: list[dict[str, Any]] = []  # internal nodes, in topological order

        def gather(key: Any, m: int) -> tuple[Any, np.ndarray, np.ndarray]:
            arr, off, w, (pos, fac) = src[key]
            j = _strata(rng, w, m)
            return arr, pos[j] + off, fac[j]

        def product(left: Any, right: Any, m: int) -> dict[str, Any]:
            a1, i1, f1 = gather(left, m)
            a2, i2, f2 = gather(right, m)
            return {
                "a1": a1,
                "i1": i1,
                "a2": a2,
                "i2": i2,
                "scale": f1 * f2 / math.sqrt(m),
            }

        def split(c: int) -> int:
            return 1 << ((c - 1).bit_length() - 1)

        def ensure(s: int, c: int) -> Any:
            key = (s, c)
            if key not in src:
                h = split(c)
                op = product(ensure(s, h), ensure(s + h, c - h), m_int)
                op["out"] = key
                op["signs"] = _signs(rng, m_int)
                nodes.append(op)
                src[key] = (key, 0, wm, lay_m)
            return key

        outputs: list[dict[str, Any] | None] = []
        for p in range(1, q + 1):
            m = self.n_components[p - 1]
            if m == 0:
                outputs.append(None)
            elif p == 1:
                arr, idx, fac = gather((0, 1), m)
                outputs.append({"a1": arr, "i1": idx, "scale": fac / math.sqrt(m)})
            else:
                h = split(p)
                outputs.append(product(ensure(0, h), ensure(h, p - h), m))
        # Last op (node index, or len(nodes) + p for outputs) reading each array,
        # so spreads can be freed as soon as they are no longer needed.
        last: dict[Any, int] = {}
        for t, op in enumerate([*nodes, *[o for o in outputs if o is not None]]):
            for k in ("a1", "a2"):
                if k in op:
                    last[op[k]] = t
        self._nodes, self._outputs, self._last_use = nodes, outputs, last
        self._widths = (wd, wm)

    def _host_params(self) -> dict[str, Any]:
        return {
            "leaf": self.leaf_signs_,
            "nodes": self._nodes,
            "outputs": self._outputs,
        }

    def __call__(self, X: Any) -> list:
        """Return ``[S_1(X), ..., S_degree(X)]``, ``S_p(X)`` of shape
        ``(n, n_components[p-1])``."""
        xp, X, dev = _prepare_any(X, self.n_features, "PolySketch")
        dtype = X.dtype
        n = X.shape[0]
        if all(o is None for o in self._outputs) or n == 0:
            return [_empty(xp, n, m, dtype, dev) for m in self.n_components]
        par = self._params(xp, dev, dtype)
        wd, wm = self._widths
        n_leaves = self.leaf_signs_.shape[0]
        width = n_leaves * (wd + 2) + 3 * (wm + 2)
        parts: list[list] = [[] for _ in range(self.degree)]
        # NumPy: write chunks into preallocated outputs (a final concatenate
        # would double the peak memory and cost as much as the FFTs).
        out = [
            np.empty((n, m), dtype=dtype) if is_numpy(xp) else None
            for m in self.n_components
        ]
        for a, b in _chunks(n, width, xp):
            self._chunk(_dense_rows(X, a, b), par, xp, wd, wm, parts)
            if is_numpy(xp):
                for p, vals in enumerate(parts):
                    if vals:
                        out[p][a:b] = vals.pop()
        for p, m in enumerate(self.n_components):
            if self._outputs[p] is None:
                out[p] = _empty(xp, n, m, dtype, dev)
            elif not is_numpy(xp):
                out[p] = _concat_rows(parts[p], xp)
        return out

    def _chunk(self, X: Any, par: dict, xp: Any, wd: int, wm: int, parts: list) -> None:
        signs = par["leaf"][0, ...] if par["leaf"].shape[0] == 1 else par["leaf"]
        arrays: dict[Any, Any] = {"leaf": _spread(X, signs, wd, xp)}
        last = self._last_use

        def apply(op: dict, t: int) -> Any:
            v = xp.take(arrays[op["a1"]], op["i1"], axis=1)
            if "a2" in op:
                v = v * xp.take(arrays[op["a2"]], op["i2"], axis=1)
            v = v * op["scale"]
            for k in ("a1", "a2"):  # free spreads read for the last time
                if k in op and last.get(op[k]) == t:
                    arrays.pop(op[k], None)
            return v

        t = 0
        for op in par["nodes"]:
            v = apply(op, t)
            arrays[op["out"]] = _spread(v, op["signs"], wm, xp)
            t += 1
        for p, op in enumerate(par["outputs"]):
            if op is not None:
                parts[p].append(apply(op, t))
                t += 1


# -------------------------------------------------------------- CountSketch
def _bucket_grid(h: np.ndarray, s: np.ndarray, m: int) -> tuple[np.ndarray, np.ndarray]:
    """Column indices (m, c) of each bucket, padded with index 0 and sign 0, so
    that a dense CountSketch is one ``take`` and one sum in any namespace."""
    order = np.argsort(h, kind="stable")
    counts = np.bincount(h, minlength=m)
    c = max(int(counts.max(initial=0)), 1)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    rank = np.arange(h.size) - np.repeat(starts, counts)
    idx = np.zeros((m, c), dtype=np.int64)
    sgn = np.zeros((m, c))
    hb = h[order]
    idx[hb, rank] = order
    sgn[hb, rank] = s[order]
    return idx, sgn


class _CountBase(_Base):
    """``k`` stacked CountSketches ``R^d -> R^{k m}`` (hashes ``h_``, signs ``s_``)."""

    def _init_count(self, rng: np.random.RandomState, k: int) -> None:
        d, m = self.n_features, self.n_components
        self.hashes_ = rng.randint(0, m, size=(k, d)).astype(np.int64)
        self.count_signs_ = _signs(rng, (k, d))

    def _sparse_matrix(self, dtype: Any) -> sp.csr_array:
        cache = self.__dict__.setdefault("_cache", {})
        key = ("scipy.sparse", str(np.dtype(dtype)))
        if key not in cache:
            k, d = self.hashes_.shape
            cols = (self.hashes_ + self.n_components * np.arange(k)[:, None]).T.ravel()
            data = self.count_signs_.T.ravel().astype(dtype)
            cache[key] = sp.csr_array(
                (data, cols, np.arange(0, k * d + 1, k)),
                shape=(d, k * self.n_components),
            )
        return cache[key]

    def _host_params(self) -> dict[str, Any]:
        grids = [
            _bucket_grid(h, s, self.n_components)
            for h, s in zip(self.hashes_, self.count_signs_)
        ]
        c = max(g[0].shape[1] for g in grids)
        pad = [(0, 0), (0, 0)]
        idx = np.concatenate(
            [np.pad(g[0], [pad[0], (0, c - g[0].shape[1])]) for g in grids]
        )
        sgn = np.concatenate(
            [np.pad(g[1], [pad[0], (0, c - g[1].shape[1])]) for g in grids]
        )
        return {"idx": idx.ravel(), "sgn": sgn, "c": c}

    def _count(self, X: Any) -> tuple[Any, Any, Any]:
        """The ``k`` CountSketches of ``X`` as an (n, k, m) array."""
        name = type(self).__name__
        k, m = self.hashes_.shape[0], self.n_components
        if sp.issparse(X):
            X = _check_sparse(X, self.n_features, name)
            C = (X @ self._sparse_matrix(X.dtype)).toarray()
            return np, C.reshape(X.shape[0], k, m), None
        xp, X, dev = _prepare(X, self.n_features, name)
        n = X.shape[0]
        if is_numpy(xp):
            X = np.asarray(X)
            C = np.asarray(X @ self._sparse_matrix(X.dtype))
            return xp, C.reshape(n, k, m), dev
        par = self._params(xp, dev, X.dtype)
        c = par["c"]
        parts = []
        for a, b in _chunks(n, k * m * c, xp):
            G = xp.take(X[a:b, ...], par["idx"], axis=1)
            G = xp.reshape(G, (b - a, k * m, c)) * par["sgn"]
            parts.append(xp.reshape(xp.sum(G, axis=2), (b - a, k, m)))
        if not parts:
            return xp, xp.zeros((0, k, m), dtype=X.dtype, device=dev), dev
        return xp, _concat_rows(parts, xp), dev


class CountSketch(_CountBase):
    """CountSketch ``R^d -> R^m``: coordinate ``j`` is added, with a random sign,
    to one random bucket; ``E<C u, C v> = <u, v>``.

    ``scipy.sparse`` input (CSR/CSC/COO) runs in input-sparsity time (a sparse
    product with the ``(d, m)`` sketch matrix) and returns dense NumPy; dense
    input of any namespace returns that namespace.

    Parameters
    ----------
    n_features : int
        Input dimension ``d``.
    n_components : int
        Number of buckets ``m``.
    random_state : int, RandomState instance or None
        Seed of the hashes and signs.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_ntk.sketches import CountSketch
    >>> C = CountSketch(10, 4, random_state=0)
    >>> C(np.eye(10)).shape
    (10, 4)
    """

    def __init__(self, n_features: int, n_components: int, random_state: Any = None):
        self.n_features = _check_int(n_features, "n_features")
        self.n_components = _check_int(n_components, "n_components")
        self._init_count(check_random_state(random_state), 1)

    def __call__(self, X: Any) -> Any:
        """Sketch the rows of ``X`` (n, n_features) -> (n, n_components)."""
        _, C, _ = self._count(X)
        return C[:, 0, :]


class TensorSketch(_CountBase):
    """TensorSketch (Pham & Pagh): ``u^{(x)p}`` sketched as the circular
    convolution of ``p`` independent CountSketches of ``u`` (via real FFTs);
    ``E<T u, T v> = <u, v>^p``.

    ``scipy.sparse`` input runs in input-sparsity time plus
    ``O(n p m log m)`` for the FFTs and returns dense NumPy.

    Parameters
    ----------
    n_features : int
        Input dimension ``d``.
    degree : int
        Tensor power ``p``.
    n_components : int
        Output dimension ``m``.
    random_state : int, RandomState instance or None
        Seed of the hashes and signs.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_ntk.sketches import TensorSketch
    >>> T = TensorSketch(10, degree=2, n_components=16, random_state=0)
    >>> T(np.ones((3, 10))).shape
    (3, 16)
    """

    def __init__(
        self, n_features: int, degree: int, n_components: int, random_state: Any = None
    ):
        self.n_features = _check_int(n_features, "n_features")
        self.degree = _check_int(degree, "degree")
        self.n_components = _check_int(n_components, "n_components")
        self._init_count(check_random_state(random_state), self.degree)

    def __call__(self, X: Any) -> Any:
        """Sketch the rows of ``X`` (n, n_features) -> (n, n_components)."""
        xp, C, _ = self._count(X)
        m = self.n_components
        if self.degree == 1:
            return C[:, 0, :]
        if is_numpy(xp):
            F = scipy.fft.rfft(C, axis=-1, workers=_FFT_WORKERS)
            return scipy.fft.irfft(
                np.prod(F, axis=1), n=m, axis=-1, workers=_FFT_WORKERS
            )
        F = xp.fft.rfft(C, axis=-1)
        P = F[:, 0, :]
        for i in range(1, self.degree):
            P = P * F[:, i, :]
        return xp.fft.irfft(P, n=m, axis=-1)
