"""CBAM: Convolutional Block Attention Module (Woo et al., ECCV 2018).

Channel attention, then spatial attention, each a sigmoid gate multiplied onto the features.
Used by SAGAN in every encoder level of its U-Net generator.
"""

import keras
from keras import ops

from anomzoo.layers import BN_MOMENTUM
from anomzoo.layers import nn as layers


@keras.saving.register_keras_serializable(package="anomzoo")
class CBAM(layers.Layer):
    """Channel-then-spatial attention.

    Args:
        reduction: the channel MLP's reduction ratio (CBAM uses 16).
        kernel_size: the spatial attention convolution's size (CBAM uses 7).
        mlp_bias: whether the MLP layers have biases (the CBAM code's Linear layers do).
    The spatial convolution has no bias and is followed by BatchNorm, as in the CBAM code.
    """

    def __init__(self, reduction=16, kernel_size=7, mlp_bias=True, **kwargs):
        super().__init__(**kwargs)
        if reduction < 1 or kernel_size < 1:
            raise ValueError(f"CBAM needs reduction >= 1 and kernel_size >= 1, got {reduction}, {kernel_size}")
        self.reduction = reduction
        self.kernel_size = kernel_size
        self.mlp_bias = mlp_bias

    def build(self, input_shape):
        channels = input_shape[-1]
        hidden = max(channels // self.reduction, 1)
        # One MLP shared by the average- and max-pooled descriptors, as in the paper.
        self.mlp_hidden = layers.Dense(hidden, activation="relu", use_bias=self.mlp_bias, name="mlp_hidden")
        self.mlp_out = layers.Dense(channels, use_bias=self.mlp_bias, name="mlp_out")
        self.mlp_hidden.build((None, channels))
        self.mlp_out.build((None, hidden))
        self.spatial_conv = keras.layers.Conv2D(1, self.kernel_size, padding="same", use_bias=False, name="spatial_conv")
        self.spatial_conv.build((None, None, None, 2))
        self.spatial_norm = layers.BatchNormalization(momentum=BN_MOMENTUM, name="spatial_norm")
        self.spatial_norm.build((None, None, None, 1))

    def call(self, x, training=None):
        avg = ops.mean(x, axis=(1, 2))
        mx = ops.max(x, axis=(1, 2))
        channel_gate = ops.sigmoid(self.mlp_out(self.mlp_hidden(avg)) + self.mlp_out(self.mlp_hidden(mx)))
        x = x * channel_gate[:, None, None, :]
        pooled = ops.concatenate([ops.mean(x, axis=-1, keepdims=True), ops.max(x, axis=-1, keepdims=True)], axis=-1)
        spatial_gate = ops.sigmoid(self.spatial_norm(self.spatial_conv(pooled), training=training))
        return x * spatial_gate

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {
            **super().get_config(),
            "reduction": self.reduction,
            "kernel_size": self.kernel_size,
            "mlp_bias": self.mlp_bias,
        }
