"""
=============================================
Grid search over depth and number of features
=============================================

The parameters of :class:`~sklearn_ntk.NTKSketch` are ordinary scikit-learn
hyper-parameters, so :class:`~sklearn.model_selection.GridSearchCV` can tune
them.  Two matter most:

* ``depth``, the number of hidden layers of the infinitely wide network: it
  changes the *kernel* (deeper networks give flatter, more global kernels);
* ``n_components``, the number of random features: it changes how well the
  kernel is *approximated*, and the cost.

We search both, with the ridge penalty, on a subset of the digits.
"""

# %%
# The search
# ----------
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from sklearn.datasets import load_digits
from sklearn.linear_model import RidgeClassifier
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from sklearn_ntk import NTKSketch

X, y = load_digits(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(
    X, y, train_size=900, stratify=y, random_state=0
)

pipe = Pipeline(
    [
        ("scale", StandardScaler()),
        ("ntk", NTKSketch(act="relu", b_std=0.1, random_state=0)),
        ("ridge", RidgeClassifier(fit_intercept=False)),
    ]
)
param_grid = {
    "ntk__depth": [1, 2, 3],
    "ntk__n_components": [128, 512, 2048],
    "ridge__alpha": [1e-2, 1.0],
}
search = GridSearchCV(pipe, param_grid, cv=3, n_jobs=1)
search.fit(X_train, y_train)
print("best parameters:", search.best_params_)
print(f"cross-validated accuracy: {search.best_score_:.4f}")
print(f"test accuracy of the refitted best model: {search.score(X_test, y_test):.4f}")

# %%
# The results
# -----------
# For each depth and number of features, the best ridge penalty.
res = pd.DataFrame(search.cv_results_)
res = res.loc[
    res.groupby(["param_ntk__depth", "param_ntk__n_components"])[
        "mean_test_score"
    ].idxmax()
]
table = res.pivot(
    index="param_ntk__depth",
    columns="param_ntk__n_components",
    values="mean_test_score",
)
print(table.round(4))

# %%
# Accuracy grows with the number of features (the kernel is approximated
# better) and saturates, while the cost grows about linearly with it.  Deeper
# networks need more features for the same accuracy: every layer adds its
# own sketching noise.  Once the kernel is approximated well, depth 1 to 3
# give similar accuracies on this data set.
fig, (ax0, ax) = plt.subplots(1, 2, figsize=(11, 4), width_ratios=(1.2, 1))
for depth, row in table.iterrows():
    ax0.plot(row.index, row.values, "o-", label=f"depth {depth}")
ax0.set_xscale("log", base=2)
ax0.set_xticks(table.columns, labels=table.columns)
ax0.set_xlabel("n_components")
ax0.set_ylabel("mean cross-validated accuracy")
ax0.set_title("accuracy (3-fold CV, 900 digits)")
ax0.grid(True, which="both", alpha=0.3)
ax0.legend()

# The same numbers as a heat map.
im = ax.imshow(table.values, cmap="viridis", aspect="auto")
ax.set_xticks(np.arange(table.shape[1]), labels=table.columns)
ax.set_yticks(np.arange(table.shape[0]), labels=table.index)
ax.set_xlabel("n_components")
ax.set_ylabel("depth")
for i in range(table.shape[0]):
    for j in range(table.shape[1]):
        v = table.values[i, j]
        ax.text(
            j,
            i,
            f"{v:.3f}",
            ha="center",
            va="center",
            color="white" if v < table.values.mean() else "black",
        )
fig.colorbar(im, ax=ax, label="accuracy")
ax.set_title("CV accuracy (best alpha per cell)")
fig.tight_layout()
plt.show()
