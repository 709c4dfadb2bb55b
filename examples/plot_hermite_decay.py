r"""
=======================================
Hermite coefficient decay by activation
=======================================

The sketches represent an activation ``σ`` by its Hermite expansion at the
scale ``r`` of its input,

.. math::

    \sigma(r z) = \sum_{n \ge 0} a_n(r)\, h_n(z), \qquad
    a_n(r) = \mathbb{E}_{z \sim N(0, 1)}[\sigma(r z)\, h_n(z)],

and the dual kernel is :math:`\Sigma = \sum_n a_n(r_x) a_n(r_y) \rho^n`.
On the diagonal (:math:`\rho = 1`) degree ``n`` carries the share
:math:`a_n(r)^2 / \mathbb{E}[\sigma(r z)^2]` of the kernel.  How fast these
shares decay decides how many degrees a sketch must represent, and how much
is left to the tail.  They come from
:meth:`sklearn_ntk.activations.Activation.hermite`.
"""

# %%
# Decay at unit scale
# -------------------
# Smooth activations (erf, gelu, sin, tanh) decay geometrically at ``r = 1``;
# kinked ones (relu, abs) decay algebraically, and the step function, which
# is discontinuous, most slowly.  Odd degrees ``n >= 3`` of relu and the
# even degrees of odd functions vanish: those points are missing from the
# log-scale plot.
import matplotlib.pyplot as plt
import numpy as np

from sklearn_ntk import activations

degree = 30
n = np.arange(degree + 1)
names = ["relu", "abs", "step", "erf", "gelu", "tanh", "sin", "exp_normalized"]
markers = "os^vD<>p"


def shares(act, r):
    """``a_n(r)^2 / E[σ(r z)^2]`` for ``n = 0..degree`` at the scales ``r``."""
    r = np.atleast_1d(np.asarray(r, dtype=float))
    a, _ = act.hermite(r, degree)
    total, _ = act.dual(r**2, r**2, r**2, derivative=False)
    return a**2 / np.asarray(total)[:, None]


fig, ax = plt.subplots(figsize=(8, 5))
for i, name in enumerate(names):
    s = shares(activations.get(name), 1.0)[0]
    keep = s > 1e-17
    ax.semilogy(n[keep], s[keep], marker=markers[i], ls="-", ms=4, label=name)
ax.set_xlabel("Hermite degree n")
ax.set_ylabel(r"$a_n(1)^2 \, / \, \mathbb{E}[\sigma(z)^2]$")
ax.set_ylim(1e-16, 1.5)
ax.set_title("Share of the dual kernel carried by each degree (r = 1)")
ax.grid(True, which="both", alpha=0.3)
ax.legend(ncol=2)
fig.tight_layout()
plt.show()

# %%
# Dependence on the input scale
# -----------------------------
# A positively homogeneous activation has ``a_n(r) = r^k a_n(1)``, so its
# shares do not depend on ``r`` (left: relu, all curves coincide).  Other
# activations change with the scale: at large ``r`` erf approaches a step
# function and inherits its slow decay (middle), and ``sin`` oscillates
# faster, pushing its mass to high degrees (right).  This is why inputs of any
# norm need the *scale-dependent* coefficients, and why the degree a sketch
# needs grows with the scale of the data.
scales = [0.5, 1.0, 2.0, 4.0]
fig, axes = plt.subplots(1, 3, figsize=(13, 4), sharey=True)
for ax, name in zip(axes, ["relu", "erf", "sin"]):
    s = shares(activations.get(name), scales)
    for j, r in enumerate(scales):
        keep = s[j] > 1e-17
        # Decreasing widths, so that coinciding curves (relu) stay visible.
        ax.semilogy(
            n[keep],
            s[j, keep],
            "o-",
            ms=7 - 1.5 * j,
            lw=4 - j,
            color=plt.cm.viridis(j / 3),
            label=f"r = {r:g}",
        )
    ax.set_title(name)
    ax.set_xlabel("Hermite degree n")
    ax.grid(True, which="both", alpha=0.3)
axes[0].set_ylabel(r"$a_n(r)^2 \, / \, \mathbb{E}[\sigma(r z)^2]$")
axes[0].set_ylim(1e-16, 1.5)
axes[-1].legend()
fig.tight_layout()
plt.show()

# %%
# Truncation error
# ----------------
# The mass left beyond degree ``q``, ``1 - Σ_{n<=q} a_n(r)^2 / E[σ(r z)^2]``,
# is what a degree-``q`` polynomial sketch would miss on the diagonal.
# ``NNGPSketch`` and ``NTKSketch`` do not drop it: on dense inputs they
# sample it without bias, and otherwise fold it into the top degrees so that
# the norms stay exact (see the user guide).
fig, ax = plt.subplots(figsize=(8, 4.5))
for i, name in enumerate(names):
    s = shares(activations.get(name), 1.0)[0]
    tail = np.clip(1.0 - np.cumsum(s), 0.0, None)
    keep = tail > 1e-16
    ax.semilogy(n[keep], tail[keep], marker=markers[i], ms=4, label=name)
ax.set_xlabel("truncation degree q")
ax.set_ylabel("relative mass beyond degree q")
ax.set_title("Hermite truncation error at r = 1")
ax.set_ylim(1e-16, 1.5)
ax.grid(True, which="both", alpha=0.3)
ax.legend(ncol=2)
fig.tight_layout()
plt.show()
