"""
==================================================
Beyond one machine: Dask grid search and streaming
==================================================

Two ways to use a Dask cluster with the sketched feature maps:

1. **Grid search on joblib's Dask backend.**  Every candidate of a
   :class:`~sklearn.model_selection.GridSearchCV` is fitted on a worker.
2. **Features too large for memory.**  ``transform`` of a
   ``dask.array.Array`` is a lazy ``dask.array.Array``, computed chunk by
   chunk (the same features as in memory).  A ridge regression needs only
   ``Z^T Z`` (``m x m``) and ``Z^T y`` (``m``), which Dask accumulates over
   the chunks without ever holding ``Z``: the normal equations are then
   solved on the client.

Here the cluster is a small local one (threads, so that the example runs
anywhere); on a real cluster pass the scheduler's address to
:class:`distributed.Client` instead, and read ``X`` with
``dask.array.from_zarr`` or ``dask.dataframe.read_parquet(...).to_dask_array``.
"""

# %%
# A local cluster
# ---------------
import time

import dask
import dask.array as da
import joblib
import numpy as np
from distributed import Client, LocalCluster
from sklearn.datasets import make_regression
from sklearn.linear_model import Ridge
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline

from sklearn_ntk import NTKSketch

cluster = LocalCluster(
    n_workers=2, threads_per_worker=1, processes=False, dashboard_address=":0"
)
client = Client(cluster)

# %%
# 1. Grid search on joblib's Dask backend
# ---------------------------------------
X, y = make_regression(n_samples=2000, n_features=20, noise=5.0, random_state=0)
y = np.sin(y / y.std())  # a nonlinear target
model = make_pipeline(NTKSketch(n_components=512, random_state=0), Ridge())
grid = GridSearchCV(
    model,
    {
        "ntksketch__act": ["relu", "erf"],
        "ntksketch__depth": [1, 2],
        "ridge__alpha": [1e-3, 1e-1],
    },
    cv=3,
    n_jobs=-1,
)
start = time.perf_counter()
with joblib.parallel_backend("dask"):
    grid.fit(X, y)
print(
    f"grid search on Dask: {time.perf_counter() - start:.1f}s, "
    f"best {grid.best_params_}, R^2 {grid.best_score_:.3f}"
)

# %%
# 2. Ridge regression on features that never sit in memory
# --------------------------------------------------------
# ``X`` is a lazy array of 200,000 rows in chunks of 20,000; its
# ``n_components=1024`` float32 features would take 800 MB, but at most a
# few chunks of them exist at any time.
n, d, chunk, m = 200_000, 20, 20_000, 1024
rs = da.random.RandomState(0)
Xd = rs.standard_normal((n, d), chunks=(chunk, d)).astype(np.float32)
w_true = np.random.RandomState(1).standard_normal(d).astype(np.float32)
yd = da.sin(Xd @ w_true / np.sqrt(d)) + 0.1 * rs.standard_normal(n, chunks=chunk)

sketch = NTKSketch(act="relu", depth=2, n_components=m, random_state=0).fit(Xd)
Zd = sketch.transform(Xd)  # lazy: nothing computed yet
print(Zd)

# Hold out the last chunk; accumulate the normal equations over the others.
train, test = slice(0, n - chunk), slice(n - chunk, n)
Z_train = Zd[train].astype(np.float64)
start = time.perf_counter()
G, b = dask.compute(Z_train.T @ Z_train, Z_train.T @ yd[train])
alpha = 1e-2 * np.trace(G) / m
coef = np.linalg.solve(G + alpha * np.eye(m), b)
print(
    f"streamed Z^T Z and Z^T y over {(n - chunk) // chunk} chunks in "
    f"{time.perf_counter() - start:.1f}s"
)

Z_test, y_test = dask.compute(Zd[test], yd[test])
pred = Z_test @ coef
r2 = 1 - np.sum((y_test - pred) ** 2) / np.sum((y_test - y_test.mean()) ** 2)
print(f"held-out R^2 of the streamed ridge regression: {r2:.3f}")

# %%
# The same features as in memory
# ------------------------------
# Dask transforms a whole 20,000-row chunk in its own row batches, so the
# float32 sums run in another order than for these 1,000 rows alone: the
# features agree to roundoff at their own scale, not bit for bit.
first = Xd[:1000].compute()
Z_mem = sketch.transform(first)
Z_dask = Zd[:1000].compute()
scale = np.abs(Z_mem).max()
print(f"largest difference: {np.abs(Z_dask - Z_mem).max() / scale:.1e} of max |Z|")
np.testing.assert_allclose(
    Z_dask, Z_mem, rtol=0, atol=128 * np.finfo(np.float32).eps * scale
)

client.close()
cluster.close()
