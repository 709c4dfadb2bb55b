"""
=============================================
NTK features on a GPU, classifier on the CPU
=============================================

The sketched feature maps are one code path for every array library that
scikit-learn's Array API support covers.  There are two ways to put the
transform on a GPU:

* ``backend="cupy"``: NumPy in, NumPy out.  Each batch of rows is moved to
  the GPU, mapped there and moved back, so the features feed CPU-only
  estimators such as :class:`~sklearn.linear_model.LogisticRegression`.  No
  global configuration is needed.
* ``sklearn.set_config(array_api_dispatch=True)`` with CuPy or PyTorch
  arrays: the estimators compute in the input's namespace, on its device,
  and return the same type, for pipelines that stay on the GPU.

This example runs the first way when CuPy and a CUDA device are available and
falls back to ``backend="numpy"`` otherwise (the features are the same to
float tolerance); it then shows the second way with PyTorch when installed.
"""

# %%
# Data
# ----
import time

import numpy as np
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sklearn_ntk import NTKSketch

X, y = make_classification(
    n_samples=20_000, n_features=40, n_informative=20, random_state=0
)
X = X.astype(np.float32)
X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)

# %%
# GPU features, CPU classifier
# ----------------------------
# ``backend="cupy"`` raises a clear ``ImportError`` without CuPy and a
# ``RuntimeError`` without a CUDA device; here we check first.
try:
    from sklearn_ntk._backend import import_cupy

    import_cupy()
    backend = "cupy"
except (ImportError, RuntimeError) as exc:
    print(f"No GPU here ({exc}); using the NumPy backend.")
    backend = "numpy"

model = make_pipeline(
    StandardScaler(),
    NTKSketch(act="relu", depth=2, n_components=2048, backend=backend, random_state=0),
    LogisticRegression(max_iter=1000),
)
start = time.perf_counter()
model.fit(X_train, y_train)
print(
    f"backend={backend!r}: fit in {time.perf_counter() - start:.1f}s, "
    f"test accuracy {model.score(X_test, y_test):.3f}"
)

# %%
# The same features on any backend
# --------------------------------
# The random sketches are drawn in NumPy at ``fit`` and moved to the
# computing device, so a fixed ``random_state`` gives the same features.
sketch = model[1]
Z = sketch.transform(model[0].transform(X_test[:500]))
Z_cpu = sketch.set_params(backend="numpy").transform(model[0].transform(X_test[:500]))
print("max |Z_backend - Z_numpy| =", float(np.abs(Z - Z_cpu).max()))

# %%
# Staying in one namespace: Array API dispatch
# --------------------------------------------
# With ``array_api_dispatch`` on (which needs ``SCIPY_ARRAY_API=1`` in the
# environment before SciPy is imported), a PyTorch tensor -- on the GPU when
# one is available -- goes in and a tensor of the same device comes out.
import os

try:
    import torch
except ImportError:
    torch = None

if torch is not None and os.environ.get("SCIPY_ARRAY_API") == "1":
    import sklearn

    device = "cuda" if torch.cuda.is_available() else "cpu"
    with sklearn.config_context(array_api_dispatch=True):
        Xt = torch.asarray(X_test[:500], device=device)
        Zt = NTKSketch(act="relu", depth=2, n_components=2048, random_state=0).fit(Xt)
        Zt = Zt.transform(Xt)
    print(type(Zt).__name__, Zt.device, Zt.dtype, tuple(Zt.shape))
else:
    print("Set SCIPY_ARRAY_API=1 and install torch to run the dispatch part.")
