"""`anomzoo.layers.patch_gradient`: Keras' convolutions, with the kernel gradient as one matrix product on
small maps in training: the same outputs, first- and second-order gradients (CAVGA's Grad-CAM loss
differentiates a gradient), and the parent's code everywhere else."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from anomzoo.layers import patch_gradient
from anomzoo.layers.patch_gradient import PatchGradientConv2D, PatchGradientConv2DTranspose

# (patch-gradient layer, Keras layer, arguments, input shape): output maps of 1 to 16 positions, and
# strided 1x1 kernels on larger maps (oneDNN's own kernel gradient of those can corrupt the heap).
SMALL = [
    (PatchGradientConv2D, keras.layers.Conv2D, dict(filters=8, kernel_size=4, strides=2, padding="same"), (3, 8, 8, 5)),
    (PatchGradientConv2D, keras.layers.Conv2D, dict(filters=8, kernel_size=3, padding="same", use_bias=False),
     (3, 4, 4, 5)),
    (PatchGradientConv2D, keras.layers.Conv2D, dict(filters=7, kernel_size=4, activation="relu"), (3, 4, 4, 5)),
    (PatchGradientConv2D, keras.layers.Conv2D, dict(filters=7, kernel_size=1), (3, 2, 3, 5)),
    (PatchGradientConv2D, keras.layers.Conv2D, dict(filters=7, kernel_size=1, strides=2, padding="same",
                                                    use_bias=False), (3, 13, 12, 5)),
    (PatchGradientConv2D, keras.layers.Conv2D, dict(filters=7, kernel_size=1, strides=(3, 2)), (3, 11, 10, 5)),
    (PatchGradientConv2DTranspose, keras.layers.Conv2DTranspose, dict(filters=6, kernel_size=4, strides=2,
                                                                      padding="same"), (3, 2, 2, 5)),
    (PatchGradientConv2DTranspose, keras.layers.Conv2DTranspose, dict(filters=6, kernel_size=4, strides=2,
                                                                      padding="same", use_bias=False), (3, 4, 4, 5)),
    (PatchGradientConv2DTranspose, keras.layers.Conv2DTranspose, dict(filters=6, kernel_size=3, padding="same",
                                                                      activation="relu"), (3, 3, 3, 5)),
]


def _pair(fast_class, keras_class, arguments, shape, dtype="float32"):
    fast, plain = fast_class(**arguments, dtype=dtype), keras_class(**arguments, dtype=dtype)
    fast.build(shape)
    plain.build(shape)
    rng = np.random.default_rng(0)
    weights = [rng.normal(size=w.shape).astype("float32") * 0.3 for w in plain.get_weights()]
    plain.set_weights(weights)
    fast.set_weights(weights)
    return fast, plain


def _outputs_and_gradients(layer, x):
    """Output, gradients of sum(y^2) for (x, weights), and the gradient of |d/dx|^2 for the weights."""
    with tf.GradientTape() as outer:
        outer.watch(x)
        with tf.GradientTape() as inner:
            inner.watch(x)
            y = layer(x, training=True)
            loss = tf.reduce_sum(tf.cast(y, "float32") ** 2)
        first = inner.gradient(loss, [x, *layer.trainable_weights])
        input_gradient_norm = tf.reduce_sum(tf.cast(first[0], "float32") ** 2)
    second = outer.gradient(input_gradient_norm, layer.trainable_weights)
    return [tf.cast(t, "float32") for t in (y, *first, *second)]


class _Spy:
    def __init__(self, monkeypatch):
        self.calls = 0
        for name in ("conv2d", "conv2d_transpose"):
            original = getattr(patch_gradient, name)
            monkeypatch.setattr(patch_gradient, name, self._counting(original))

    def _counting(self, function):
        def counted(*args):
            self.calls += 1
            return function(*args)
        return counted


@pytest.mark.parametrize("dtype", ["float32", "mixed_bfloat16"])
@pytest.mark.parametrize("fast_class, keras_class, arguments, shape", SMALL)
def test_small_maps_give_keras_outputs_and_gradients(monkeypatch, fast_class, keras_class, arguments, shape, dtype):
    spy = _Spy(monkeypatch)
    fast, plain = _pair(fast_class, keras_class, arguments, shape, dtype)
    x = tf.constant(np.random.default_rng(1).normal(size=shape).astype("float32"))
    got, expected = _outputs_and_gradients(fast, x), _outputs_and_gradients(plain, x)
    assert spy.calls == 1
    assert fast(x, training=True).dtype == plain.compute_dtype
    # float32: the same sums in another order; bfloat16: both round to 8 bits of mantissa.
    tolerance = 1e-5 if dtype == "float32" else 2e-2
    for a, b in zip(got, expected):
        np.testing.assert_allclose(a, b, atol=tolerance * max(1.0, float(tf.reduce_max(tf.abs(b)))))


def test_a_traced_train_step_takes_the_patch_gradient(monkeypatch):
    spy = _Spy(monkeypatch)
    fast, plain = _pair(*SMALL[6])
    x = tf.constant(np.random.default_rng(2).normal(size=SMALL[6][3]).astype("float32"))
    step = tf.function(_outputs_and_gradients, reduce_retracing=True)
    for a, b in zip(step(fast, x), _outputs_and_gradients(plain, x)):
        np.testing.assert_allclose(a, b, atol=1e-4)
    assert spy.calls == 1


@pytest.mark.parametrize("fast_class, keras_class, arguments, shape", [
    (PatchGradientConv2D, keras.layers.Conv2D, dict(filters=4, kernel_size=3, padding="same"), (2, 8, 8, 3)),
    (PatchGradientConv2DTranspose, keras.layers.Conv2DTranspose, dict(filters=4, kernel_size=4, strides=2,
                                                                      padding="same"), (2, 8, 8, 3)),
    (PatchGradientConv2DTranspose, keras.layers.Conv2DTranspose, dict(filters=4, kernel_size=4, strides=2,
                                                                      padding="valid"), (2, 2, 2, 3)),
    (PatchGradientConv2D, keras.layers.Conv2D, dict(filters=4, kernel_size=3, dilation_rate=2), (2, 6, 6, 3)),
])
def test_large_maps_and_other_settings_run_the_parent_code(monkeypatch, fast_class, keras_class, arguments, shape):
    spy = _Spy(monkeypatch)
    fast, plain = _pair(fast_class, keras_class, arguments, shape)
    x = np.random.default_rng(3).normal(size=shape).astype("float32")
    np.testing.assert_allclose(fast(x, training=True), plain(x), atol=1e-6)
    assert spy.calls == 0


def test_inference_runs_the_parent_code(monkeypatch):
    spy = _Spy(monkeypatch)
    fast, plain = _pair(*SMALL[0])
    x = np.random.default_rng(4).normal(size=SMALL[0][3]).astype("float32")
    np.testing.assert_allclose(fast(x), plain(x), atol=1e-6)
    np.testing.assert_allclose(fast(x, training=False), plain(x), atol=1e-6)
    assert spy.calls == 0


def test_weights_load_across_the_keras_and_patch_gradient_layers(tmp_path):
    """Keras stores a layer's weights under its class name: both keep "Conv2D", so files written with
    Keras' layers (every model saved before this module) load into the zoo's, and back."""
    def network(conv, transpose):
        inputs = keras.Input((8, 8, 3))
        x = conv(4, 4, strides=2, padding="same")(inputs)
        x = transpose(5, 4, strides=2, padding="same")(x)
        return keras.Model(inputs, conv(2, 1)(x))

    written = network(keras.layers.Conv2D, keras.layers.Conv2DTranspose)
    for w in written.weights:
        w.assign(np.random.default_rng(5).normal(size=w.shape).astype("float32"))
    written.save_weights(tmp_path / "plain.weights.h5")
    loaded = network(PatchGradientConv2D, PatchGradientConv2DTranspose)
    loaded.load_weights(tmp_path / "plain.weights.h5")
    x = np.random.default_rng(6).normal(size=(2, 8, 8, 3)).astype("float32")
    np.testing.assert_allclose(loaded(x), written(x), atol=1e-6)


@pytest.mark.parametrize("shape, strides", [((3, 13, 12, 5), (2, 2)), ((3, 11, 10, 5), (3, 2)), ((1, 7, 9, 2), (4, 3))])
def test_every_stride_th_pixel_is_the_strided_slice(shape, strides):
    images = np.random.default_rng(7).random(shape, dtype=np.float32)
    np.testing.assert_array_equal(patch_gradient.every_stride_th_pixel(tf.constant(images), strides),
                                  images[:, ::strides[0], ::strides[1], :])
