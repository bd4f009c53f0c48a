"""Faster drop-in layers for the CPU, with the same variables as the Keras layers they replace.

Profiling SAGAN's step (issue "Runs a user can trust, and training fast enough") found that
oneDNN runs a depthwise convolution with a depth multiplier of 2 as a generic grouped
convolution, while a multiplier of 1 gets its dedicated kernel, and that Keras 3's
BatchNormalization is a dozen small ops where TensorFlow has one fused kernel. These layers
compute the same function faster. Their variables (names, shapes, order) are those of the
layers they replace, so checkpoints written with the plain layers load into them and Table 1's
parameter counts do not change. Outside TensorFlow (or in a shape they do not handle) they fall
back to the parent layer's code.

The classes keep Keras' own class names on purpose: Keras 3 stores a layer's weights in a `.keras`
file under its class name in snake case (`batch_normalization_3/vars/0`), so the same names keep
files written with the plain layers loading. They are registered, and used, under the names
that say what they do: FusedBatchNormalization, MultiplierMajorDepthwiseConv2D,
PermutedPointwiseConv2D.
"""

import keras
from keras import layers, ops

from anomzoo import distribute


def _tensorflow():
    return keras.backend.backend() == "tensorflow"


def _multiplier_major(channels, multiplier):
    """For each position m*C + c of the multiplier-major order, the parent's index c*M + m."""
    return [c * multiplier + m for m in range(multiplier) for c in range(channels)]


@keras.saving.register_keras_serializable(package="anomzoo", name="MultiplierMajorDepthwiseConv2D")
class DepthwiseConv2D(layers.DepthwiseConv2D):
    """`DepthwiseConv2D` whose output channels come multiplier-major: channel m*C + c is the m-th
    filter of input channel c (the parent orders them c*M + m).

    With depth multiplier M > 1 it convolves M copies of the input side by side with multiplier 1
    (oneDNN's fast depthwise kernel) instead of running a grouped convolution. Only the channel
    order differs from the parent layer, so it must be followed by a layer that expects it:
    `PermutedPointwiseConv2D`.
    """

    def call(self, inputs):
        multiplier = self.depth_multiplier
        if multiplier == 1 or not _tensorflow():
            return super().call(inputs) if multiplier == 1 else self._reordered(super().call(inputs))
        import tensorflow as tf

        channels = inputs.shape[-1]
        kh, kw = self.kernel_size
        # kernel (kh, kw, C, M) -> (kh, kw, M*C, 1): entry m*C + c is filter m of channel c.
        kernel = tf.reshape(tf.transpose(self.kernel, (0, 1, 3, 2)), (kh, kw, multiplier * channels, 1))
        outputs = tf.nn.depthwise_conv2d(tf.concat([inputs] * multiplier, axis=-1), kernel,
                                         strides=(1, *self.strides, 1), padding=self.padding.upper(),
                                         dilations=self.dilation_rate)
        if self.use_bias:
            bias = tf.reshape(tf.transpose(tf.reshape(self.bias, (channels, multiplier))), (-1,))
            outputs = tf.nn.bias_add(outputs, bias)
        if self.activation is not None:
            outputs = self.activation(outputs)
        return outputs

    def _reordered(self, outputs):
        """c*M + m order (the parent's) -> m*C + c, for backends without the fast path."""
        index = _multiplier_major(outputs.shape[-1] // self.depth_multiplier, self.depth_multiplier)
        return ops.take(outputs, index, axis=-1)


@keras.saving.register_keras_serializable(package="anomzoo", name="PermutedPointwiseConv2D")
class Conv2D(layers.Conv2D):
    """A 1x1 `Conv2D` over the output of `MultiplierMajorDepthwiseConv2D`: its kernel keeps the
    parent's row order (input channel c*M + m), and the rows are permuted to the multiplier-major
    order at each call (a small gather over the kernel, not over the images)."""

    def __init__(self, filters, depth_multiplier=2, **kwargs):
        super().__init__(filters, 1, **kwargs)
        self.depth_multiplier = int(depth_multiplier)

    def call(self, inputs):
        index = _multiplier_major(inputs.shape[-1] // self.depth_multiplier, self.depth_multiplier)
        outputs = self.convolution_op(inputs, ops.take(self.kernel, index, axis=2))
        if self.use_bias:
            outputs = ops.add(outputs, self.bias)
        if self.activation is not None:
            outputs = self.activation(outputs)
        return outputs

    def get_config(self):
        config = super().get_config()
        config.pop("kernel_size", None)
        return {**config, "depth_multiplier": self.depth_multiplier}


@keras.saving.register_keras_serializable(package="anomzoo", name="FusedBatchNormalization")
class BatchNormalization(layers.BatchNormalization):
    """`BatchNormalization` over the last axis of 4-D float32 or bfloat16 tensors (statistics in
    float32 either way) by TensorFlow's one fused kernel (FusedBatchNormV3), with the same variables and the same moving-average update
    (momentum, biased batch variance) as the parent layer. Synchronised (`synchronized=True`) on
    several replicas, it is the parent: the fused kernel cannot all-reduce the batch statistics."""

    def call(self, inputs, training=None, mask=None):
        supported = (_tensorflow() and mask is None and not self.renorm and self.scale and self.center
                     and len(inputs.shape) == 4 and self.axis in (-1, 3) and inputs.dtype in ("float32", "bfloat16")
                     and not (self.synchronized and training and distribute.replicas_in_step() > 1))
        if not supported:
            return super().call(inputs, training=training, mask=mask)
        import tensorflow as tf

        if training and self.trainable:
            outputs, mean, variance = tf.compat.v1.nn.fused_batch_norm(
                inputs, self.gamma, self.beta, epsilon=self.epsilon, is_training=True)
            # The kernel returns the Bessel-corrected variance; the parent averages the biased one.
            count = tf.cast(tf.reduce_prod(tf.shape(inputs)[:3]), variance.dtype)
            variance = variance * (count - 1.0) / tf.maximum(count, 1.0)
            self.moving_mean.assign(self.moving_mean * self.momentum + mean * (1.0 - self.momentum))
            self.moving_variance.assign(self.moving_variance * self.momentum + variance * (1.0 - self.momentum))
            return outputs
        outputs, _, _ = tf.compat.v1.nn.fused_batch_norm(
            inputs, self.gamma, self.beta, mean=self.moving_mean, variance=self.moving_variance,
            epsilon=self.epsilon, is_training=False)
        return outputs


MultiplierMajorDepthwiseConv2D = DepthwiseConv2D
PermutedPointwiseConv2D = Conv2D
FusedBatchNormalization = BatchNormalization
