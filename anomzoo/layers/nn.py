"""The layers the zoo's networks are written with. A network imports this module as `layers`
(`from anomzoo.layers import nn as layers`) and writes `layers.Conv2D`, `layers.BatchNormalization`,
`layers.ReLU`, ... as the papers name them; one switch here decides what five of those names build.

By default they build the zoo's CPU versions, each with the variables and the function of the Keras
layer it stands for, computed faster on this CPU:

| name | builds | faster because |
|---|---|---|
| `Conv2D`, `Conv2DTranspose` | `patch_gradient.PatchGradientConv2D(Transpose)` | the kernel gradient of a small map as one matmul over patches |
| `BatchNormalization` | `cpu_kernels.FusedBatchNormalization` | TensorFlow's one fused kernel instead of a dozen ops |
| `DepthwiseConv2D` | `cpu_kernels.MultiplierMajorDepthwiseConv2D` | oneDNN's dedicated depthwise kernel (multiplier 1) |
| `PointwiseConv2D` | `cpu_kernels.PermutedPointwiseConv2D` | a 1x1 conv reading the multiplier-major order above |

`keras_layers()` makes them Keras' own layers while it is open: the speed benchmark's baseline, and
anyone checking that a result does not depend on the substitutes. Every other name is
`keras.layers`'. A layer written `keras.layers.X` in a network is Keras' own on purpose (the
substitute was not measured there) and is not switched.
"""

import contextlib

import keras

from anomzoo.layers import cpu_kernels, patch_gradient


def _keras_pointwise(filters, depth_multiplier=2, **kwargs):
    """Keras' 1x1 Conv2D in `PointwiseConv2D`'s signature (it reads the depthwise layer's own order)."""
    return keras.layers.Conv2D(filters, 1, **kwargs)


CPU_VERSIONS = {
    "Conv2D": patch_gradient.PatchGradientConv2D,
    "Conv2DTranspose": patch_gradient.PatchGradientConv2DTranspose,
    "BatchNormalization": cpu_kernels.FusedBatchNormalization,
    "DepthwiseConv2D": cpu_kernels.MultiplierMajorDepthwiseConv2D,
    "PointwiseConv2D": cpu_kernels.PermutedPointwiseConv2D,
}
KERAS_VERSIONS = {
    "Conv2D": keras.layers.Conv2D,
    "Conv2DTranspose": keras.layers.Conv2DTranspose,
    "BatchNormalization": keras.layers.BatchNormalization,
    "DepthwiseConv2D": keras.layers.DepthwiseConv2D,
    "PointwiseConv2D": _keras_pointwise,
}
_chosen = CPU_VERSIONS


def __getattr__(name):
    return _chosen[name] if name in _chosen else getattr(keras.layers, name)


@contextlib.contextmanager
def keras_layers():
    """While open, networks built from this namespace use Keras' own layers."""
    global _chosen
    saved, _chosen = _chosen, KERAS_VERSIONS
    try:
        yield
    finally:
        _chosen = saved


@contextlib.contextmanager
def keras_names_build_these():
    """While open, `keras.layers.Conv2D`, `Conv2DTranspose` and `BatchNormalization` are this
    namespace's: for a library that builds layers by Keras' names (keras-hub's ResNet-18). Keras'
    own are put back on exit, whatever happens inside."""
    names = ("Conv2D", "Conv2DTranspose", "BatchNormalization")
    saved = {name: getattr(keras.layers, name) for name in names}
    chosen = {name: _chosen[name] for name in names}
    for name, layer in chosen.items():
        setattr(keras.layers, name, layer)
    try:
        yield
    finally:
        for name, layer in saved.items():
            setattr(keras.layers, name, layer)
