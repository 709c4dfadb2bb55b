"""Array namespace, device and dtype helpers shared by every numerical module.

All numerics take arrays of one namespace ``xp`` (NumPy, CuPy, PyTorch,
array-api-strict, ...) and return arrays of that namespace, so that the CPU
and GPU paths are one code path.  Parameters drawn at ``fit`` time (signs,
indices, Hermite coefficients) live in NumPy and are moved to the input's
namespace and device once per call with :func:`asxp`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.utils._array_api import get_namespace, get_namespace_and_device

__all__ = ["asxp", "get_namespace", "get_namespace_and_device", "is_numpy", "to_numpy"]


def is_numpy(xp: Any) -> bool:
    """Whether ``xp`` is NumPy (or scikit-learn's NumPy compatibility wrapper)."""
    return getattr(xp, "__name__", "") in {
        "numpy",
        "array_api_compat.numpy",
        "sklearn.externals.array_api_compat.numpy",
    }


def asxp(a: Any, xp: Any, device: Any = None, dtype: Any = None) -> Any:
    """Move a NumPy array (or scalar) to namespace ``xp`` on ``device``."""
    if is_numpy(xp):
        return np.asarray(a, dtype=dtype)
    if dtype is None and isinstance(a, np.ndarray):
        dtype = getattr(xp, str(a.dtype))
    return xp.asarray(a, dtype=dtype, device=device)


def to_numpy(a: Any) -> np.ndarray:
    """Bring an array of any supported namespace back to host NumPy."""
    if isinstance(a, np.ndarray) or sp.issparse(a):
        return a
    if hasattr(a, "get") and type(a).__module__.startswith("cupy"):
        return a.get()
    if type(a).__module__.startswith("torch"):
        return a.detach().cpu().numpy()
    return np.asarray(a)
