"""`benchmarks/speed.py`: every registered model has a case; its `plain` contender builds every
network with Keras' own layers (`anomzoo.layers.nn.keras_layers`), so that its speed-ups are measured
against the same baseline for every model, and outside it the CPU versions are back; its FLOP count
is of the ops that run."""

import sys

import keras
import pytest

from conftest import REPO
from anomzoo.layers.cpu_kernels import FusedBatchNormalization, MultiplierMajorDepthwiseConv2D, PermutedPointwiseConv2D
from anomzoo.layers.patch_gradient import PatchGradientConv2D, PatchGradientConv2DTranspose
from anomzoo.layers import nn
from anomzoo.models import MODELS, build_model, canonical_name

sys.path.insert(0, str(REPO / "benchmarks"))
speed = pytest.importorskip("speed")

ZOO_LAYERS = (FusedBatchNormalization, MultiplierMajorDepthwiseConv2D, PermutedPointwiseConv2D, PatchGradientConv2D,
              PatchGradientConv2DTranspose)
CASES = [(name, {}) for name in MODELS] + [
    ("cavga", {"encoder": "resnet18_hub", "encoder_stride": 32, "image_shape": (64, 64, 3),
               "decoder_filters": (8, 8, 8, 8)})]


def _zoo_layers(model):
    return [layer.name for layer in model._flatten_layers() if isinstance(layer, ZOO_LAYERS)]


def test_every_registered_model_has_a_speed_case():
    assert {canonical_name(case[0]) for case in speed.CASES.values()} == set(MODELS)


@pytest.mark.parametrize("name, options", CASES, ids=[*MODELS, "cavga-hub"])
def test_plain_builds_every_network_with_keras_own_layers(name, options):
    if options.get("encoder") == "resnet18_hub":
        pytest.importorskip("keras_hub")
    with nn.keras_layers():
        plain = build_model(name, "tiny", **options)
    assert _zoo_layers(plain) == []
    assert any(isinstance(layer, keras.layers.BatchNormalization) for layer in plain._flatten_layers())
    assert _zoo_layers(build_model(name, "tiny", **options)) != []


def test_flop_count_leaves_out_gradients_tensorflow_never_runs():
    """The zoo's step shape: one persistent tape watching two layers' weights, the gradient taken
    for the second's only. The tape also builds gradient ops back through the first layer; nothing
    uses them and TensorFlow prunes them, so the count is the two forward convolutions and the
    second's kernel gradient (plus a few element-wise FLOPs: the square, the sum, the update)."""
    import tensorflow as tf

    first, second = tf.Variable(tf.ones((3, 3, 4, 8))), tf.Variable(tf.ones((3, 3, 8, 8)))

    @tf.function
    def step(x):
        with tf.GradientTape(persistent=True) as tape:
            hidden = tf.nn.conv2d(x, first, 1, "SAME")
            loss = tf.reduce_sum(tf.square(tf.nn.conv2d(hidden, second, 1, "SAME")))
        second.assign_sub(tape.gradient(loss, second))

    graph = step.get_concrete_function(tf.zeros((2, 8, 8, 4))).graph
    convolution = lambda c_in, c_out: 2 * 2 * 8 * 8 * 3 * 3 * c_in * c_out  # noqa: E731  (batch 2, 8x8 map)
    expected = convolution(4, 8) + 2 * convolution(8, 8)
    assert speed.executed_flops(graph) == pytest.approx(expected, rel=0.01)


def _stage_row(variant, stage, share, rate, measured="2026-12-05 04:00 UTC"):
    return {"model": "attention_adgan", "preset": "cifar10", "variant": variant, "cpu_flags": ["avx512f"],
            "commit": "abc", "measured": measured, "command": "python benchmarks/speed.py",
            "stages": ["first", "second"], "stage": stage, "stage_share": share, "step_images_per_second": rate}


def test_whole_run_weights_each_stage_by_its_share_of_the_epochs_within_one_run():
    rows = [_stage_row("plain", "first", 0.75, 10.0), _stage_row("plain", "second", 0.25, 40.0),
            _stage_row("bf16", "first", 0.75, 20.0),  # its second stage was measured in another run only
            _stage_row("bf16", "second", 0.25, 80.0, measured="2026-12-05 05:00 UTC")]
    wholes = speed.whole_runs(rows)
    # 0.75 of the epochs at 10 img/s and 0.25 at 40: 0.075 + 0.00625 s per image.
    assert [(w["variant"], w["images_per_second"]) for w in wholes] == [("plain", round(1 / 0.08125, 2))]
