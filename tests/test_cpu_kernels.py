"""`anomzoo.layers.cpu_kernels`: the same function and variables as Keras' layers, and old files still load."""

import pathlib

import keras
import numpy as np
import pytest
import tensorflow as tf

import anomzoo
from anomzoo.layers.cpu_kernels import FusedBatchNormalization, MultiplierMajorDepthwiseConv2D, PermutedPointwiseConv2D

DATA = pathlib.Path(__file__).parent / "data"


def _images(shape=(4, 16, 16, 6)):
    return np.random.default_rng(0).normal(size=shape).astype("float32")


def _randomise(layer, rng):
    layer.set_weights([w + rng.normal(size=w.shape).astype("float32") * 0.1 for w in layer.get_weights()])


def test_separable_pair_equals_keras_depthwise_then_pointwise():
    x = _images()
    rng = np.random.default_rng(1)
    plain = [keras.layers.DepthwiseConv2D(3, padding="same", depth_multiplier=2), keras.layers.Conv2D(10, 1)]
    fast = [MultiplierMajorDepthwiseConv2D(3, padding="same", depth_multiplier=2),
            PermutedPointwiseConv2D(10, depth_multiplier=2)]
    plain[1](plain[0](x))
    fast[1](fast[0](x))
    for a, b in zip(plain, fast):
        _randomise(a, rng)
        b.set_weights(a.get_weights())
        assert [w.shape for w in a.weights] == [w.shape for w in b.weights]
    x = tf.constant(x)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        expected, got = plain[1](plain[0](x)), fast[1](fast[0](x))
        expected_loss, got_loss = tf.reduce_sum(expected**2), tf.reduce_sum(got**2)
    np.testing.assert_allclose(got, expected, atol=1e-5)
    np.testing.assert_allclose(tape.gradient(got_loss, x), tape.gradient(expected_loss, x), rtol=1e-4, atol=1e-4)
    for a, b in zip(plain[0].weights + plain[1].weights, fast[0].weights + fast[1].weights):
        np.testing.assert_allclose(tape.gradient(got_loss, b), tape.gradient(expected_loss, a), rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("dtype", ["float32", "mixed_bfloat16"])
@pytest.mark.parametrize("epsilon", [1e-3, 1e-5])  # Keras' default, keras-hub's ResNet's
def test_fused_batch_norm_equals_keras_batch_norm(training, dtype, epsilon):
    x = _images()
    plain = keras.layers.BatchNormalization(momentum=0.9, epsilon=epsilon, dtype=dtype)
    fused = FusedBatchNormalization(momentum=0.9, epsilon=epsilon, dtype=dtype)
    plain.build(x.shape)
    fused.build(x.shape)
    weights = [np.random.default_rng(i).normal(size=v.shape).astype("float32") for i, v in enumerate(plain.weights)]
    weights[3] = np.abs(weights[3])  # a variance
    plain.set_weights(weights)
    fused.set_weights(weights)
    # In bfloat16 (8-bit mantissa) both compute the statistics in float32 and round the output.
    (atol, rtol), statistics_atol = ((1e-5, 1e-7), 1e-6) if dtype == "float32" else ((0.05, 0.05), 1e-5)
    outputs = fused(x, training=training)
    assert outputs.dtype == plain.compute_dtype
    np.testing.assert_allclose(np.asarray(outputs, "float32"), np.asarray(plain(x, training=training), "float32"),
                               atol=atol, rtol=rtol)
    for a, b in zip(plain.get_weights(), fused.get_weights()):  # the moving statistics move alike
        np.testing.assert_allclose(b, a, atol=statistics_atol)


def test_a_sagan_file_written_with_keras_layers_loads_with_the_same_outputs():
    """tests/data holds a tiny SAGAN saved (after one epoch on digits) by the code before the fast
    layers, with its outputs on 8 test images."""
    model = anomzoo.load_model(DATA / "sagan_tiny_before_fast_layers.keras")
    assert isinstance(model.generator.get_layer("enc0_a_depthwise"), MultiplierMajorDepthwiseConv2D)
    reference = np.load(DATA / "sagan_tiny_before_fast_layers_outputs.npz")
    outputs = model.predict(reference["images"], verbose=0)
    for name in ("score", "anomaly_map", "reconstruction"):
        np.testing.assert_allclose(outputs[name], reference[name], rtol=1e-5, atol=1e-5)
