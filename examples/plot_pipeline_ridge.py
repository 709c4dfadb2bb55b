"""
=====================================
NTK features in a pipeline with ridge
=====================================

:class:`~sklearn_ntk.NTKSketch` is a scikit-learn transformer: it maps each
row to ``n_components`` random features whose inner products approximate the
neural tangent kernel (NTK) of an infinitely wide network.  A *linear* model
on these features behaves like kernel ridge regression with the NTK, and its
cost grows linearly with the number of rows instead of quadratically (memory)
and cubically (time); see :ref:`sphx_glr_auto_examples_plot_sketch_vs_exact.py`
for where the two cross.

Here we regress Friedman's function #1 (a nonlinear benchmark with 10 input
features, 5 of them relevant) with three models:

* plain linear ridge on the inputs;
* ``StandardScaler -> NTKSketch -> Ridge`` (the pipeline of this example);
* exact kernel ridge regression with the same NTK
  (:class:`~sklearn.kernel_ridge.KernelRidge` with
  :class:`~sklearn_ntk.NTKKernel`), the model the pipeline approximates.
"""

# %%
# Data
# ----
import time

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import make_friedman1
from sklearn.kernel_ridge import KernelRidge
from sklearn.linear_model import Ridge
from sklearn.metrics import r2_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sklearn_ntk import NTKKernel, NTKSketch

X, y = make_friedman1(n_samples=3000, n_features=10, noise=0.5, random_state=0)
X_train, X_test, y_train, y_test = train_test_split(
    X, y, test_size=1000, random_state=0
)
y_mean = y_train.mean()  # the kernel models below have no intercept

# %%
# The pipeline
# ------------
# ``NTKSketch`` draws its random sketches in ``fit`` (they depend only on the
# number of input features) and ``transform`` is a fixed map, so the pipeline
# works with cross-validation, grid search and pickling like any other.
params = dict(act="relu", depth=2, b_std=0.1)
alpha = 0.05

sketch_model = make_pipeline(
    StandardScaler(),
    NTKSketch(n_components=2048, random_state=0, **params),
    Ridge(alpha=alpha, fit_intercept=False),
)
t0 = time.perf_counter()
sketch_model.fit(X_train, y_train - y_mean)
pred_sketch = sketch_model.predict(X_test) + y_mean
t_sketch = time.perf_counter() - t0
print(sketch_model)

# %%
# The baselines
# -------------
# Exact kernel ridge regression with the same kernel (same network
# parameters, same ``alpha``), and a linear ridge on the standardized inputs.
exact_model = make_pipeline(
    StandardScaler(), KernelRidge(alpha=alpha, kernel=NTKKernel(**params))
)
t0 = time.perf_counter()
exact_model.fit(X_train, y_train - y_mean)
pred_exact = exact_model.predict(X_test) + y_mean
t_exact = time.perf_counter() - t0

linear_model = make_pipeline(StandardScaler(), Ridge(alpha=1.0)).fit(X_train, y_train)
pred_linear = linear_model.predict(X_test)

results = {
    "linear ridge": (pred_linear, None),
    "NTKSketch + ridge": (pred_sketch, t_sketch),
    "exact NTK kernel ridge": (pred_exact, t_exact),
}
for name, (pred, t) in results.items():
    timing = "" if t is None else f"  ({t:.2f} s)"
    print(f"{name:<24} test R^2 = {r2_score(y_test, pred):.3f}{timing}")

# %%
# Predictions against the truth
# -----------------------------
# The sketched pipeline tracks exact kernel ridge closely, and both capture
# the nonlinearity that the linear model misses.
fig, axes = plt.subplots(1, 3, figsize=(12, 4), sharex=True, sharey=True)
lims = [y_test.min() - 1, y_test.max() + 1]
for ax, (name, (pred, _)) in zip(axes, results.items()):
    ax.scatter(y_test, pred, s=6, alpha=0.5)
    ax.plot(lims, lims, "k--", lw=1)
    ax.set_title(f"{name}\nR$^2$ = {r2_score(y_test, pred):.3f}")
    ax.set_xlabel("true y")
axes[0].set_ylabel("predicted y")
axes[0].set_xlim(lims)
axes[0].set_ylim(lims)
fig.tight_layout()
plt.show()

# %%
# The two kernel models agree prediction by prediction, up to the sketching
# noise, which shrinks as ``n_components`` grows.  (With 2 000 training rows
# the exact kernel is still cheap; the sketch pays off on large data.)
gap = np.sqrt(np.mean((pred_sketch - pred_exact) ** 2))
print(f"RMS difference between sketch and exact predictions: {gap:.3f}")
print(f"(standard deviation of y_test: {y_test.std():.3f})")
