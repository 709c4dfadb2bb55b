"""
========================================================
Convolutional neural tangent kernel features for digits
========================================================

The neural tangent kernel of an infinitely wide convolutional network (CNTK)
is a strong kernel for images, but computing it exactly costs a full pass
over every *pair of pixels* of every *pair of images*: quadratic in the
number of images and in the number of pixels.

:class:`~sklearn_ntk.CNTKSketch` draws random features whose
inner products approximate the same kernel, in time linear in the number of
images.  Here we compare it with the exact Myrtle-5 CNTK
(:func:`~sklearn_ntk.cntk_kernel`) on scikit-learn's 8 x 8
digits: the kernel approximation on a subset, then classification with a
linear ridge model on the features against kernel ridge on the exact kernel.
"""

# %%
# Data and models
# ---------------
# The digits are 8 x 8 single-channel images stored as rows of 64 pixels,
# which ``CNTKSketch`` reads as square images by default (pass
# ``image_shape=(H, W, C)`` for other shapes).  Pixels are scaled to [0, 1].
import time

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.linear_model import RidgeClassifier
from sklearn.model_selection import train_test_split

from sklearn_ntk import CNTKSketch, cntk_kernel

X, y = load_digits(return_X_y=True)
X = X / 16.0
X_train, X_test, y_train, y_test = train_test_split(
    X, y, test_size=0.25, stratify=y, random_state=0
)
alpha = 1e-4  # the same ridge for the features and for the exact kernel

# %%
# Sketched features on all digits
# -------------------------------
# Features are drawn once (``fit`` only looks at the image shape) and are
# then a fixed map, so ``transform`` handles any number of images in batches.
sketch = CNTKSketch(architecture="myrtle", depth=5, n_components=4096, random_state=0)
t0 = time.perf_counter()
Z_train = sketch.fit_transform(X_train)
Z_test = sketch.transform(X_test)
clf = RidgeClassifier(alpha=alpha, fit_intercept=False).fit(Z_train, y_train)
t_sketch = time.perf_counter() - t0
acc_sketch = clf.score(Z_test, y_test)
print(
    f"CNTKSketch + ridge on {len(X)} digits: {t_sketch:.1f} s, "
    f"accuracy {acc_sketch:.4f}"
)

# %%
# Exact CNTK on a subset
# ----------------------
# The exact kernel on ``n`` images costs ``n (n + 1) / 2`` image pairs, each
# a pass over ``64 x 64`` pixel pairs per layer; we keep the example short
# with 300 training and 100 test images.
rng = np.random.RandomState(0)
tr = rng.choice(len(X_train), 300, replace=False)
te = rng.choice(len(X_test), 100, replace=False)
t0 = time.perf_counter()
K_train = cntk_kernel(X_train[tr], n_jobs=-1)
K_test = cntk_kernel(X_test[te], X_train[tr], n_jobs=-1)
targets = np.where(y_train[tr, None] == np.arange(10), 1.0, -1.0)
coef = np.linalg.solve(K_train + alpha * np.eye(len(tr)), targets)
t_exact = time.perf_counter() - t0
acc_exact = np.mean(np.argmax(K_test @ coef, axis=1) == y_test[te])

clf_sub = RidgeClassifier(alpha=alpha, fit_intercept=False).fit(
    Z_train[tr], y_train[tr]
)
acc_sub = clf_sub.score(Z_test[te], y_test[te])
K_sketch = Z_train[tr] @ Z_train[tr].T
err = np.linalg.norm(K_sketch - K_train) / np.linalg.norm(K_train)
print(
    f"exact CNTK + kernel ridge on 300 + 100 digits: {t_exact:.1f} s, "
    f"accuracy {acc_exact:.4f}"
)
print(f"CNTKSketch + ridge on the same subset: accuracy {acc_sub:.4f}")
print(f"relative Frobenius error of the sketched kernel: {err:.3f}")

# %%
# How close is the sketched kernel?
# ---------------------------------
# Every entry of the sketched kernel against the exact one (left), and the
# accuracies (right).
fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(10, 4))
iu = np.triu_indices(len(tr), 1)
ax0.scatter(K_train[iu], K_sketch[iu], s=2, alpha=0.3, label="pairs of images")
ax0.scatter(np.diag(K_train), np.diag(K_sketch), s=6, color="C3", label="diagonal")
lims = [0, max(K_train.max(), K_sketch.max())]
ax0.plot(lims, lims, "k--", lw=1)
ax0.set(
    xlabel="exact CNTK", ylabel="CNTKSketch  Z Z^T", title=f"relative error {err:.3f}"
)
ax0.legend(loc="upper left")
names = ["sketch\n(all digits)", "sketch\n(subset)", "exact\n(subset)"]
accs = [acc_sketch, acc_sub, acc_exact]
ax1.bar(names, accs, color=["C0", "C0", "C1"])
for i, a in enumerate(accs):
    ax1.text(i, a + 0.002, f"{a:.3f}", ha="center")
ax1.set(
    ylim=(0.9, 1.0), ylabel="test accuracy", title="ridge on features vs kernel ridge"
)
fig.tight_layout()
plt.show()
