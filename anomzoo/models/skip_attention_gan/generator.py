"""SAGAN's generator: a U-Net with CBAM in every encoder level (Liu et al., ICIP 2021, Fig. 1).

Fig. 1 is not in the text; this is the configuration whose weight count reproduces the paper's
Table 1 exactly (5,181,089 / 18,498,481, see `param_count.py`): the SmaAt-UNet layout
(Trebing et al. 2021), which is a U-Net with CBAM and depthwise-separable convolutions.

- A "DSC" is a 3x3 depthwise conv with depth multiplier 2 and a 1x1 pointwise conv, both with
  biases, then BatchNorm and ReLU; `separable=False` makes it a plain 3x3 conv (with bias). The
  layers come from `anomzoo.layers.nn`: by default CPU versions with the same variables and
  function as Keras' DepthwiseConv2D, Conv2D and BatchNormalization.
- Encoder level i (i = 0..depth): two DSCs to `base_filters * 2**i` channels (the deepest level
  keeps the previous width, as a bilinear U-Net does), CBAM; the CBAM output is the skip and,
  as the paper's text says, what max pooling passes down.
- Decoder level: bilinear upsampling x2, concat(skip, upsampled), a DSC to half the concatenated
  width and a second halving again (to `base_filters` at the top).
- A 1x1 conv (with bias) gives the image; tanh, since the generator works in [-1, 1] as
  Skip-GANomaly does.
"""

import keras


from anomzoo.layers import BN_MOMENTUM
from anomzoo.layers import nn as layers
from anomzoo.layers.cbam import CBAM


def conv_unit(x, filters, separable, name):
    """One "DSC" (or plain conv) + BatchNorm + ReLU."""
    if separable:
        x = layers.DepthwiseConv2D(3, padding="same", depth_multiplier=2, name=f"{name}_depthwise")(x)
        x = layers.PointwiseConv2D(filters, depth_multiplier=2, name=f"{name}_pointwise")(x)
    else:
        x = keras.layers.Conv2D(filters, 3, padding="same", name=f"{name}_conv")(x)
    x = layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"{name}_bn")(x)
    return layers.ReLU(name=f"{name}_relu")(x)


def skip_attention_generator(
    image_shape,
    base_filters=64,
    depth=4,
    separable=True,
    cbam_reduction=16,
    cbam_kernel_size=7,
    output_channels=None,
    name="generator",
):
    """Images in [-1, 1] -> reconstructions in [-1, 1].

    depth: number of max-pooling steps, so the image side must be divisible by 2**depth.
    output_channels: defaults to the input's channels (set it only to reproduce Table 1's count).
    """
    height, width, channels = image_shape
    if height % 2**depth or width % 2**depth:
        raise ValueError(f"image size {height}x{width} must be divisible by 2**depth = {2**depth}")
    widths = [base_filters * 2**i for i in range(depth)] + [base_filters * 2 ** (depth - 1)]
    inputs = keras.Input(image_shape, name="image")
    x = inputs
    skips = []
    for level, filters in enumerate(widths):
        if level:
            x = layers.MaxPooling2D(2, name=f"enc{level}_pool")(x)
        x = conv_unit(x, filters, separable, f"enc{level}_a")
        x = conv_unit(x, filters, separable, f"enc{level}_b")
        x = CBAM(cbam_reduction, cbam_kernel_size, name=f"enc{level}_cbam")(x)
        skips.append(x)
    for level in reversed(range(depth)):
        x = layers.UpSampling2D(2, interpolation="bilinear", name=f"dec{level}_up")(x)
        x = layers.Concatenate(name=f"dec{level}_concat")([skips[level], x])
        x = conv_unit(x, widths[level], separable, f"dec{level}_a")
        x = conv_unit(x, max(widths[level] // 2, base_filters), separable, f"dec{level}_b")
    outputs = keras.layers.Conv2D(output_channels or channels, 1, activation="tanh", name="to_image")(x)
    return keras.Model(inputs, outputs, name=name)
