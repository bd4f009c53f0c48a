"""AnoSeg's networks (Song, Kong et al., Appendix B, Table 6), as pure builders.

At 256 px, Table 6 exactly: a ResNet-18 convolutional encoder (8x8x512), and decoders of
Conv 3x3 (512) then five [ConvTr 4x4/2, Conv 3x3] pairs (512/256, 256/128, 128/128, 128/128,
128/128) and a 3x3 output conv with a sigmoid, BN + ReLU after every hidden layer; the
discriminator is eight 4x4/2 convs (64, 128, 256, 512, 512, 512, 128, 1), LeakyReLU 0.2, BN on all
but the first and the last. Other sizes keep the layers and their widths: the decoders always
upsample as often as the encoder's stride needs (five times at stride 32; see
`encoder_stride_for` for smaller images), and the discriminator has log2(size) convs,
dropping from the middle of its list so that its 128-channel feature layer (AnoSeg's f(.), the
second to last layer) and its 1x1 output stay.
"""

import math

import keras

from anomzoo.layers import BN_MOMENTUM
from anomzoo.layers import nn as layers
from anomzoo.layers.coords import CoordinateChannels
from anomzoo.layers.resnet import resnet18_encoder

#: Table 6's widths: decoder Conv 1..6 (each ConvTr k has Conv k's width), discriminator Conv 1..7.
DECODER_FILTERS = (512, 256, 128, 128, 128, 128)
DISCRIMINATOR_FILTERS = (64, 128, 256, 512, 512, 512, 128)


def encoder_stride_for(image_shape, encoder_stride="auto"):
    """The encoder's stride: "auto" keeps Table 6's 8x8 feature map at every size (stride 32 at
    256 px and above, 16 at 128 px, 8 at 64 px and below), so that small images are not squeezed
    into a 2x2 bottleneck; an int is used as it is. Checks the image shape against it."""
    size = image_shape[0]
    stride = int(min(32, max(8, size // 8))) if encoder_stride == "auto" else int(encoder_stride)
    check_image_shape(image_shape, stride)
    return stride


def check_image_shape(image_shape, encoder_stride=32):
    size = image_shape[0]
    if image_shape[0] != image_shape[1] or size < encoder_stride or 2 ** int(math.log2(size)) != size:
        raise ValueError(f"AnoSeg needs square images of a power-of-two size >= {encoder_stride} (its encoder "
                         f"has stride {encoder_stride} and its discriminator halves the image down to 1x1), "
                         f"got {tuple(image_shape)}")


def _conv_bn_relu(x, filters, name, transposed=False):
    if transposed:
        x = layers.Conv2DTranspose(filters, 4, strides=2, padding="same", use_bias=False,
                                         name=f"{name}_convtr")(x)
    else:
        x = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_conv")(x)
    x = layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"{name}_bn")(x)
    return layers.ReLU(name=f"{name}_relu")(x)


def decoder(features, out_channels, filters, name, upsamplings=5):
    """Table 6's decoder on encoder features: (B, h, w, F) -> (B, 2^k h, 2^k w, out_channels) in [0, 1].

    With k = upsamplings < 5 (an encoder of stride 16 or 8) the first 5 - k [ConvTr, Conv] pairs
    are left out, so the layers at the highest resolutions stay as Table 6 has them.
    """
    first = 5 - upsamplings
    x = _conv_bn_relu(features, filters[first], f"{name}_1")
    for level in range(first, 5):
        x = _conv_bn_relu(x, filters[level], f"{name}_up{level + 1}", transposed=True)
        x = _conv_bn_relu(x, filters[level + 1], f"{name}_{level + 2}")
    return layers.Conv2D(out_channels, 3, padding="same", activation="sigmoid", name=f"{name}_out")(x)


def _encoder_input(inputs, coordinates):
    """Images (and maps) in [0, 1] to the encoder's [-1, 1] input, with coordinate channels."""
    x = layers.Rescaling(2.0, offset=-1.0, name="to_signed")(inputs)
    return CoordinateChannels(name="coordinates")(x) if coordinates else x


def _upsamplings(stride):
    return int(math.log2(stride))


def segmenter(image_shape, encoder_filters, encoder_blocks, decoder_filters, coordinates=True, encoder_stride=32,
              name="segmenter"):
    """AnoSeg's generator: image -> {"map": (B, H, W, 1) normal-ness in [0, 1],
    "reconstruction": (B, H, W, C) in [0, 1]}; one encoder, two decoders of the same structure."""
    inputs = keras.Input(image_shape, name="image")
    x = _encoder_input(inputs, coordinates)
    features = resnet18_encoder(x.shape[1:], encoder_filters, encoder_blocks, encoder_stride,
                                name=f"{name}_encoder")(x)
    ups = _upsamplings(encoder_stride)
    outputs = {
        "map": decoder(features, 1, decoder_filters, "map_decoder", ups),
        "reconstruction": decoder(features, image_shape[-1], decoder_filters, "image_decoder", ups),
    }
    return keras.Model(inputs, outputs, name=name)


def detector_generator(input_shape, image_channels, encoder_filters, encoder_blocks, decoder_filters,
                       coordinates=True, encoder_stride=32, name="detector_generator"):
    """The detector's generator (Sec. 4.2: AnoSeg's structure without the map decoder):
    concat(image, map) (or the image alone) -> reconstructed image in [0, 1]."""
    inputs = keras.Input(input_shape, name="pair")
    x = _encoder_input(inputs, coordinates)
    features = resnet18_encoder(x.shape[1:], encoder_filters, encoder_blocks, encoder_stride,
                                name=f"{name}_encoder")(x)
    return keras.Model(inputs, decoder(features, image_channels, decoder_filters, "image_decoder",
                                       _upsamplings(encoder_stride)), name=name)


def discriminator(input_shape, filters=DISCRIMINATOR_FILTERS, name="discriminator"):
    """Table 6's discriminator on concat(image, map): -> {"features": (B, F) the second to last
    layer, flattened (AnoSeg's f), "logits": (B,)}. Losses use the logits (no clipped sigmoid)."""
    size = input_shape[0]
    hidden = int(math.log2(size)) - 1
    widths = list(filters[: max(hidden - 1, 1)]) + [filters[-1]] if hidden > 1 else [filters[-1]]
    inputs = keras.Input(input_shape, name="pair")
    x = layers.Rescaling(2.0, offset=-1.0, name="to_signed")(inputs)
    for level, width in enumerate(widths):
        x = layers.Conv2D(width, 4, strides=2, padding="same", use_bias=False, name=f"conv_{level + 1}")(x)
        if level:
            x = layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"bn_{level + 1}")(x)
        x = layers.LeakyReLU(0.2, name=f"lrelu_{level + 1}")(x)
    features = layers.Flatten(name="features")(x)
    logits = layers.Conv2D(1, 4, strides=2, padding="same", name=f"conv_{len(widths) + 1}")(x)
    return keras.Model(inputs, {"features": features, "logits": layers.Reshape((), name="logits")(logits)},
                       name=name)
