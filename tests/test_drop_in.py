"""`anomzoo.layers.drop_in`: Keras' layer names build the zoo's layers only while it is open."""

import keras
import pytest

from anomzoo.layers.drop_in import building_zoo_layers_for_keras_names
from anomzoo.layers.fast import FusedBatchNormalization
from anomzoo.layers.small_map import PatchGradientConv2D, PatchGradientConv2DTranspose

KERAS_OWN = (keras.layers.Conv2D, keras.layers.Conv2DTranspose, keras.layers.BatchNormalization)


def test_keras_names_build_the_zoos_layers_inside_and_keras_own_after():
    with building_zoo_layers_for_keras_names():
        assert isinstance(keras.layers.Conv2D(4, 3), PatchGradientConv2D)
        assert isinstance(keras.layers.Conv2DTranspose(4, 3), PatchGradientConv2DTranspose)
        assert isinstance(keras.layers.BatchNormalization(), FusedBatchNormalization)
    assert (keras.layers.Conv2D, keras.layers.Conv2DTranspose, keras.layers.BatchNormalization) == KERAS_OWN
    assert not isinstance(keras.layers.BatchNormalization(), FusedBatchNormalization)


def test_keras_own_layers_come_back_when_building_fails():
    with pytest.raises(RuntimeError, match="while building"):
        with building_zoo_layers_for_keras_names():
            raise RuntimeError("while building")
    assert (keras.layers.Conv2D, keras.layers.Conv2DTranspose, keras.layers.BatchNormalization) == KERAS_OWN
