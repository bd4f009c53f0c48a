"""`anomzoo.layers.nn`: the namespace networks build from; the zoo's CPU versions by default, Keras'
own layers inside `keras_layers()`, and Keras' names building them only while asked."""

import keras
import pytest

from anomzoo.layers import nn
from anomzoo.layers.cpu_kernels import FusedBatchNormalization, MultiplierMajorDepthwiseConv2D, PermutedPointwiseConv2D
from anomzoo.layers.patch_gradient import PatchGradientConv2D, PatchGradientConv2DTranspose

KERAS_OWN = (keras.layers.Conv2D, keras.layers.Conv2DTranspose, keras.layers.BatchNormalization)


def test_the_namespace_builds_the_cpu_versions_or_keras_own_layers():
    built = [nn.Conv2D(4, 3), nn.Conv2DTranspose(4, 3), nn.BatchNormalization(), nn.DepthwiseConv2D(3),
             nn.PointwiseConv2D(4)]
    cpu = (PatchGradientConv2D, PatchGradientConv2DTranspose, FusedBatchNormalization,
           MultiplierMajorDepthwiseConv2D, PermutedPointwiseConv2D)
    assert all(isinstance(layer, kind) for layer, kind in zip(built, cpu))
    assert nn.ReLU is keras.layers.ReLU and nn.Layer is keras.layers.Layer  # every other name is Keras'
    with nn.keras_layers():
        plain = [nn.Conv2D(4, 3), nn.BatchNormalization(), nn.PointwiseConv2D(4)]
        assert not any(isinstance(layer, cpu) for layer in plain)
        assert plain[2].kernel_size == (1, 1)
    assert isinstance(nn.BatchNormalization(), FusedBatchNormalization)


def test_keras_names_build_the_namespaces_layers_inside_and_keras_own_after():
    with nn.keras_names_build_these():
        assert isinstance(keras.layers.Conv2D(4, 3), PatchGradientConv2D)
        assert isinstance(keras.layers.Conv2DTranspose(4, 3), PatchGradientConv2DTranspose)
        assert isinstance(keras.layers.BatchNormalization(), FusedBatchNormalization)
    assert (keras.layers.Conv2D, keras.layers.Conv2DTranspose, keras.layers.BatchNormalization) == KERAS_OWN
    with nn.keras_layers(), nn.keras_names_build_these():
        assert not isinstance(keras.layers.BatchNormalization(), FusedBatchNormalization)


def test_keras_own_layers_come_back_when_building_fails():
    with pytest.raises(RuntimeError, match="while building"):
        with nn.keras_names_build_these():
            raise RuntimeError("while building")
    assert (keras.layers.Conv2D, keras.layers.Conv2DTranspose, keras.layers.BatchNormalization) == KERAS_OWN
