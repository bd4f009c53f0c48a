"""Have a library that builds Keras' layers by name (keras-hub's ResNet) build the zoo's drop-in
versions instead: the same layers in config, variables and weight paths, with the faster kernel
gradient on small maps (`anomzoo.layers.small_map`) and TensorFlow's one fused BatchNorm kernel
(`anomzoo.layers.fast`; Keras' BatchNormalization is a dozen small ops, and under bfloat16 it
casts its input to float32 and back)."""

import contextlib

import keras

from anomzoo.layers import fast, small_map

ZOO_VERSIONS = {"Conv2D": small_map.Conv2D, "Conv2DTranspose": small_map.Conv2DTranspose,
                "BatchNormalization": fast.BatchNormalization}


@contextlib.contextmanager
def building_zoo_layers_for_keras_names():
    """While open, `keras.layers.Conv2D`, `Conv2DTranspose` and `BatchNormalization` are the zoo's
    drop-in layers; Keras' own are put back on exit, whatever happens inside."""
    saved = {name: getattr(keras.layers, name) for name in ZOO_VERSIONS}
    for name, layer in ZOO_VERSIONS.items():
        setattr(keras.layers, name, layer)
    try:
        yield
    finally:
        for name, layer in saved.items():
            setattr(keras.layers, name, layer)
