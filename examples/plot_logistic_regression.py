"""
=========================================================
Classification with NNGP features and logistic regression
=========================================================

Random features turn any linear classifier into an (approximate) kernel
classifier.  Here :class:`~sklearn_ntk.NNGPSketch` features feed
:class:`~sklearn.linear_model.LogisticRegression`, which gives calibrated
class probabilities, something kernel ridge does not give.

We first draw the decision function on two 2-D toy problems, where a linear
model on the raw inputs fails, for a few activations; then we classify the
digits.
"""

# %%
# Two-dimensional problems
# ------------------------
# The activation shapes the kernel: ``relu`` gives a kernel that grows with
# the norm of the inputs (it is positively homogeneous), ``erf`` saturates,
# and ``sin`` gives an oscillating, stationary-like kernel.  A bias
# (``b_std > 0``) lets the kernel depend on more than the angle between
# the inputs.
import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits, make_circles, make_moons
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sklearn_ntk import NNGPSketch

datasets = {
    "moons": make_moons(n_samples=400, noise=0.2, random_state=0),
    "circles": make_circles(n_samples=400, noise=0.1, factor=0.5, random_state=0),
}
models = {
    "linear (raw inputs)": lambda: make_pipeline(
        StandardScaler(), LogisticRegression()
    ),
    **{
        f"NNGPSketch({act!r})": (
            lambda act=act: make_pipeline(
                StandardScaler(),
                NNGPSketch(
                    act=act, depth=2, b_std=1.0, n_components=512, random_state=0
                ),
                LogisticRegression(C=100.0, max_iter=2000),
            )
        )
        for act in ("relu", "erf", "sin")
    },
}

fig, axes = plt.subplots(
    len(datasets),
    len(models),
    figsize=(3.2 * len(models), 6.4),
    sharex="row",
    sharey="row",
)
for row, (data_name, (X, y)) in enumerate(datasets.items()):
    X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)
    x0, x1 = np.meshgrid(
        np.linspace(X[:, 0].min() - 0.5, X[:, 0].max() + 0.5, 100),
        np.linspace(X[:, 1].min() - 0.5, X[:, 1].max() + 0.5, 100),
    )
    grid = np.c_[x0.ravel(), x1.ravel()]
    for col, (model_name, make) in enumerate(models.items()):
        model = make().fit(X_train, y_train)
        proba = model.predict_proba(grid)[:, 1].reshape(x0.shape)
        ax = axes[row, col]
        ax.contourf(
            x0, x1, proba, levels=np.linspace(0, 1, 11), cmap="RdBu_r", alpha=0.5
        )
        ax.contour(x0, x1, proba, levels=[0.5], colors="k", linewidths=1)
        ax.scatter(
            X_test[:, 0], X_test[:, 1], c=y_test, cmap="RdBu_r", edgecolors="k", s=18
        )
        ax.set_title(
            f"{model_name}\ntest accuracy {model.score(X_test, y_test):.2f}",
            fontsize=10,
        )
        ax.set_xticks([])
        ax.set_yticks([])
    axes[row, 0].set_ylabel(data_name)
fig.suptitle("P(class 1) from logistic regression; black line: P = 0.5")
fig.tight_layout()
plt.show()

# %%
# Digits
# ------
# Ten classes, 64 pixels.  Logistic regression on NNGP features beats
# logistic regression on the pixels, and its probabilities are calibrated
# enough to rank its own mistakes.
X, y = load_digits(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(
    X, y, test_size=0.3, stratify=y, random_state=0
)
linear = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
nngp = make_pipeline(
    StandardScaler(),
    NNGPSketch(act="gelu", depth=1, b_std=0.1, n_components=1024, random_state=0),
    LogisticRegression(C=100.0, max_iter=3000),
)
for name, model in [("pixels", linear), ("NNGPSketch('gelu')", nngp)]:
    model.fit(X_train, y_train)
    print(
        f"logistic regression on {name:<20} test accuracy "
        f"{model.score(X_test, y_test):.4f}"
    )

proba = nngp.predict_proba(X_test)
confidence = proba.max(axis=1)
correct = nngp.predict(X_test) == y_test

fig, ax = plt.subplots(figsize=(6, 3.5))
bins = np.linspace(0, 1, 21)
ax.hist(confidence[correct], bins=bins, alpha=0.7, label="correct")
ax.hist(confidence[~correct], bins=bins, alpha=0.9, label="wrong", color="C3")
ax.set_yscale("log")
ax.set_xlabel("predicted probability of the chosen class")
ax.set_ylabel("test digits")
ax.set_title("Confidence of NNGPSketch + LogisticRegression")
ax.legend(loc="upper left")
fig.tight_layout()
plt.show()
