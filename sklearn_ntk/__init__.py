"""sklearn-ntk: infinitely wide neural networks as scikit-learn feature maps.

Exact NNGP/NTK kernels for any activation (:func:`nngp_kernel`,
:func:`ntk_kernel`) and fast random feature maps that approximate them
(:class:`NNGPSketch`, :class:`NTKSketch`), and their convolutional
counterparts (:func:`cnngp_kernel`, :func:`cntk_kernel`, :class:`CNNGPSketch`,
:class:`CNTKSketch`), following Han et al., "Fast Neural Kernel Embeddings for
General Activations" (NeurIPS 2022).
"""

from . import activations
from .conv_estimators import CNNGPSketch, CNTKSketch
from .convolutional import cnngp_kernel, cntk_kernel
from .estimators import NNGPSketch, NTKSketch
from .kernels import NNGPKernel, NTKKernel, nngp_kernel, ntk_kernel

__version__ = "0.1.0"

__all__ = [
    "CNNGPSketch",
    "CNTKSketch",
    "NNGPKernel",
    "NNGPSketch",
    "NTKKernel",
    "NTKSketch",
    "activations",
    "cnngp_kernel",
    "cntk_kernel",
    "nngp_kernel",
    "ntk_kernel",
]
