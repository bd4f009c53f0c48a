"""The attention network's and ADGAN's networks (Song et al., Sec. 3 and 4.1), as pure builders.

The attention network's generator is CAVGA's adversarial VAE: its encoder (ResNet-18 convolutions,
keras-hub or the zoo's own, or DCGAN's) and its 1x1-conv latent heads are CAVGA's builders
(`anomzoo.models.cavga.networks`), called by the model, not copies; the discriminators are the
zoo's DCGAN discriminator (`anomzoo.layers.dcgan`). What this paper changes is the
decoder, built here (Sec. 4.1): "four transposed convolution layers that generate a feature map
with the same size as an input image", then "two paths with three convolution layers" giving the
reconstruction and the attention map (both through a sigmoid: images and A are in [0, 1]).

ADGAN (Sec. 3.3, 4.1): F_Img from two convolution layers; an encoder "the same as the encoder of
the attention network" and a decoder of four transposed convolutions reconstruct F_Nor; the DCGAN
discriminator (`anomzoo.layers.dcgan`, shared by the zoo's GANs) judges F_Nor, and its output is
the image score.
"""

import math

import keras

from anomzoo.layers import BN_MOMENTUM
from anomzoo.layers import nn as layers

#: Sec. 4.1 gives four transposed convolutions; how they share the encoder's stride is not given.
UPSAMPLINGS = 4


def upsampling_strides(stride, count=UPSAMPLINGS):
    """Split an encoder stride (a power of two) over `count` transposed convolutions, the larger
    steps first: 16 -> (2, 2, 2, 2), 32 -> (4, 2, 2, 2), 8 -> (2, 2, 2, 1). Keeping four layers at
    every stride is the paper's count; where the stride is not 16 the paper does not say how its
    four layers reach the image size, so this is our reading."""
    steps = int(round(math.log2(stride)))
    if 2 ** steps != stride or not 0 <= steps <= 2 * count:
        raise ValueError(f"the encoder's stride must be a power of two up to {4 ** count}, got {stride}")
    strides = [1] * count
    for index in range(steps):
        strides[index % count] *= 2
    return tuple(sorted(strides, reverse=True))


def _convtr_bn_relu(x, filters, stride, name):
    # Kernel 4 at stride <= 2 (DCGAN's); at stride 4 the kernel equals the stride (no overlap, no checkerboard).
    kernel = max(4, stride)
    x = layers.Conv2DTranspose(filters, kernel, strides=stride, padding="same", use_bias=False,
                                     name=f"{name}_convtr")(x)
    x = layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"{name}_bn")(x)
    return layers.ReLU(name=f"{name}_relu")(x)


def _conv_bn_relu(x, filters, name, kernel=3):
    x = layers.Conv2D(filters, kernel, padding="same", use_bias=False, name=f"{name}_conv")(x)
    x = layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"{name}_bn")(x)
    return layers.ReLU(name=f"{name}_relu")(x)


def _path(x, filters, out_channels, name):
    """Three convolutions: two 3x3 conv-BN-ReLU of `filters`, then a 3x3 conv to `out_channels`, sigmoid."""
    for index, width in enumerate(filters):
        x = _conv_bn_relu(x, width, f"{name}_{index}")
    x = layers.Conv2D(out_channels, 3, padding="same", name=f"{name}_out")(x)
    return layers.Activation("sigmoid", dtype="float32", name=f"{name}_sigmoid")(x)


def two_head_decoder(latent_shape, image_channels, filters, path_filters, strides, name="decoder"):
    """z -> {"reconstruction": (B, H, W, C), "attention": (B, H, W, 1)}, both in [0, 1].

    filters: the four transposed convolutions' widths (ConvTr-BN-ReLU, `strides` each);
    path_filters: the two hidden widths of each three-convolution path.
    """
    if len(filters) != len(strides):
        raise ValueError(f"one stride per transposed convolution: {len(filters)} filters, {len(strides)} strides")
    inputs = keras.Input(latent_shape, name="z")
    x = inputs
    for level, (width, stride) in enumerate(zip(filters, strides)):
        x = _convtr_bn_relu(x, width, stride, f"up_{level}")
    return keras.Model(inputs, {"reconstruction": _path(x, path_filters, image_channels, "reconstruction"),
                                "attention": _path(x, path_filters, 1, "attention")}, name=name)


def feature_extractor(image_shape, filters, name="feature_extractor"):
    """F_Img (Eq. 6): two 3x3 conv-BN-ReLU layers at the image's resolution, so that the attention
    map (image-sized) multiplies it point-wise. ReLU features are >= 0, so A = 0 removes a region."""
    inputs = keras.Input(image_shape, name="image")
    x = inputs
    for index, width in enumerate(filters):
        x = _conv_bn_relu(x, width, f"feature_{index}")
    return keras.Model(inputs, x, name=name)


def feature_decoder(latent_shape, out_channels, filters, strides, name="adgan_decoder"):
    """ADGAN's decoder: code -> reconstructed F_Nor. Four transposed convolutions: `filters` (three
    widths) ConvTr-BN-ReLU, then one to F's channels with a ReLU (F_Nor = ReLU features times A is
    never negative), no BN."""
    if len(filters) + 1 != len(strides):
        raise ValueError(f"ADGAN's decoder takes {len(strides) - 1} hidden widths, got {tuple(filters)}")
    inputs = keras.Input(latent_shape, name="code")
    x = inputs
    for level, (width, stride) in enumerate(zip(filters, strides[:-1])):
        x = _convtr_bn_relu(x, width, stride, f"up_{level}")
    stride = strides[-1]
    x = layers.Conv2DTranspose(out_channels, max(4, stride), strides=stride, padding="same",
                                     name="to_features")(x)
    return keras.Model(inputs, layers.ReLU(name="features_relu")(x), name=name)
