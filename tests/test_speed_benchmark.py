"""`benchmarks/speed.py`'s `plain` contender: every network built with Keras' own layers (the code
before the zoo's drop-in layers), so that its speed-ups are measured against the same baseline for
every model; outside it the zoo's layers are back."""

import sys

import keras
import pytest

from conftest import REPO
from anomzoo.layers.fast import FusedBatchNormalization, MultiplierMajorDepthwiseConv2D, PermutedPointwiseConv2D
from anomzoo.layers.small_map import PatchGradientConv2D, PatchGradientConv2DTranspose
from anomzoo.models import build_model

sys.path.insert(0, str(REPO / "benchmarks"))
speed = pytest.importorskip("speed")

ZOO_LAYERS = (FusedBatchNormalization, MultiplierMajorDepthwiseConv2D, PermutedPointwiseConv2D, PatchGradientConv2D,
              PatchGradientConv2DTranspose)
MODELS = [("sagan", {}), ("anoseg", {}), ("attention_adgan", {}), ("cavga", {}),
          ("cavga", {"encoder": "resnet18_hub", "encoder_stride": 32, "image_shape": (64, 64, 3),
                     "decoder_filters": (8, 8, 8, 8)})]


def _zoo_layers(model):
    return [layer.name for layer in model._flatten_layers() if isinstance(layer, ZOO_LAYERS)]


@pytest.mark.parametrize("name, options", MODELS, ids=["sagan", "anoseg", "attention_adgan", "cavga", "cavga-hub"])
def test_plain_builds_every_network_with_keras_own_layers(name, options):
    if options.get("encoder") == "resnet18_hub":
        pytest.importorskip("keras_hub")
    with speed.plain_layers():
        plain = build_model(name, "tiny", **options)
    assert _zoo_layers(plain) == []
    assert any(isinstance(layer, keras.layers.BatchNormalization) for layer in plain._flatten_layers())
    assert _zoo_layers(build_model(name, "tiny", **options)) != []
