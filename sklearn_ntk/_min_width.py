"""Smallest internal width at which the feature rules are unbiased.

Below it the per-layer budgets cannot give every part of an activation's
feature map (each kept Hermite degree, the Monte-Carlo tail, the NTK's two
halves) at least one feature: parts are dropped and their share of the
kernel is lost (relu ``NTKSketch(n_components=2)`` kept 35 to 45% of
``K(x, x)``; erf depth 2 with 2 components crashed on a negative padding).
The network is then drawn at this width and brought down to
``n_components`` by the final SRHT, whose inner products are unbiased for
every draw of its signs (:class:`~sklearn_ntk.sketches.SRHT`): the features
are unbiased for every ``n_components >= 1``, with the variance that so few
features must have.
"""

from __future__ import annotations

from typing import Any

__all__ = ["min_unbiased_width"]

#: Floor of the internal width, whatever the degree.
_FLOOR = 64


def min_unbiased_width(layers: Any) -> int:
    """Internal width below which some layer would drop a part of its map.

    The split of the NTK budget keeps at least a fifth for each half
    (:func:`~sklearn_ntk.networks.split_ntk_budget`), and an activation layer
    splits its half over at most ``degree + 2`` parts (degrees 0..degree and
    the tail): ``6 (degree + 2)`` leaves each part at least one feature.
    Networks without activation layers need no floor (their features are
    exact or a single unbiased projection).
    """
    degrees = [int(la.degree) for la in layers if hasattr(la, "degree")]
    if not degrees:
        return 1
    return max(_FLOOR, 6 * (max(degrees) + 2))
