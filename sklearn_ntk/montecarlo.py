"""Monte-Carlo random features of a finite-width network: the baseline.

A network of finite width ``m`` with Gaussian weights is the natural random
feature map for its own infinite-width kernels.  With ``G_l`` of i.i.d.
``N(0, 1)`` entries::

    phi^0 = [W_std x / sqrt(d) ; b_std]
    phi^l = [W_std act(phi^{l-1} G_l) / sqrt(m) ; b_std]
    psi^l = [phi^l ; W_std T(psi^{l-1} (x) act'(phi^{l-1} G_l) / sqrt(m))]

where ``T`` is a degree-2 tensor sketch (TensorSRHT).  ``E <phi^L(x),
phi^L(y)> -> K^L`` and ``<psi^L(x), psi^L(y)> -> Theta^L`` as ``m`` grows.
The sketches of :mod:`sklearn_ntk.estimators` are measured against it.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from sklearn.utils import check_random_state

from .activations import get
from .networks import fully_connected
from .sketches import TensorSRHT

__all__ = ["monte_carlo_features"]


def monte_carlo_features(
    X: Any,
    *,
    act: Any = "relu",
    depth: int = 1,
    n_components: int = 1024,
    W_std: float = 1.0,
    b_std: float = 0.0,
    ntk: bool = False,
    random_state: Any = None,
) -> np.ndarray:
    """Features of a random finite network with ``n_components`` outputs.

    The hidden widths and the split of the NTK features between the NNGP part
    and the tensor-sketched part are those of :class:`~sklearn_ntk.NTKSketch`
    with the same ``n_components``, so the two are compared feature for
    feature.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        Inputs.
    act : str, Activation or callable, default="relu"
        Activation with a pointwise function (not ``exp_normalized``).
    depth : int, default=1
        Number of hidden layers.
    n_components : int, default=1024
        Number of output features.
    W_std, b_std : float, default=1.0, 0.0
        Weight and bias standard deviations.
    ntk : bool, default=False
        NTK features instead of NNGP features.
    random_state : int, RandomState instance or None, default=None
        Seeds the weights.

    Returns
    -------
    Z : ndarray of shape (n_samples, n_components)

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_ntk import nngp_kernel
    >>> from sklearn_ntk.montecarlo import monte_carlo_features
    >>> X = np.random.RandomState(0).randn(50, 4)
    >>> Z = monte_carlo_features(X, act="relu", n_components=4096, random_state=0)
    >>> K = nngp_kernel(X, act="relu")
    >>> bool(np.linalg.norm(Z @ Z.T - K) / np.linalg.norm(K) < 0.1)
    True
    """
    rng = check_random_state(random_state)
    activation = get(act)
    X = np.asarray(X, dtype=np.float64)
    n, d = X.shape
    bias = int(b_std != 0)
    net = fully_connected(activation, depth, W_std, b_std)
    m_phi, m_psi = net._widths(n_components, ntk)
    ones = np.full((n, bias), b_std)
    phi = np.hstack([W_std * X / math.sqrt(d), ones])
    psi = phi
    for _ in range(depth):
        G = rng.standard_normal((phi.shape[1], m_phi))
        pre = phi @ G
        new_phi = np.hstack([W_std * activation(pre) / math.sqrt(m_phi), ones])
        if ntk:
            t = TensorSRHT(psi.shape[1], m_phi, m_psi, rng)
            deriv = activation.derivative(pre) / math.sqrt(m_phi)
            psi = np.hstack([new_phi, W_std * t(psi, deriv)])
        phi = new_phi
    Z = psi if ntk else phi
    if Z.shape[1] < n_components:  # depth 0: the exact linear features
        Z = np.hstack([Z, np.zeros((n, n_components - Z.shape[1]))])
    return Z
