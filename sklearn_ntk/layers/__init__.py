"""Network layers, each with an exact kernel rule and a feature rule.

Every layer is a frozen dataclass with ``kernel(state) -> state`` (the exact
rule on a :class:`KernelState`, whose :class:`Layout` it reads) and
``features(dims, widths, rng) -> LayerSketch`` (the feature rule), plus the
declarations of :class:`Layer`.  A new layer is one class in one file.
"""

from .base import (
    Dims,
    Features,
    KernelState,
    Layer,
    LayerSketch,
    Layout,
    Widths,
    affine,
    affine_ntk,
)
from .conv import AvgPool, Conv, Flatten, GlobalAvgPool, ImageInput
from .dense import Dense, Elementwise

__all__ = [
    "AvgPool",
    "Conv",
    "Dense",
    "Dims",
    "Elementwise",
    "Features",
    "Flatten",
    "GlobalAvgPool",
    "ImageInput",
    "KernelState",
    "Layer",
    "LayerSketch",
    "Layout",
    "Widths",
    "affine",
    "affine_ntk",
]
