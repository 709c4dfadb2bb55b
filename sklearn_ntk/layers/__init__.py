"""Network layers, each with an exact kernel rule and a feature rule."""

from .base import Dims, Features, KernelState, LayerSketch
from .dense import Dense, Elementwise

__all__ = ["Dense", "Dims", "Elementwise", "Features", "KernelState", "LayerSketch"]
