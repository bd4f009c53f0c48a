"""The DCGAN discriminator of Skip-GANomaly (its `BasicDiscriminator`), shared by the GAN models.

Conv 4x4 stride 2 halves the image until it is 4x4 (BatchNorm on all but the first conv),
LeakyReLU 0.2; a 4x4 valid conv maps that to a `latent_dim`-channel 1x1 feature, the latent that
L_lat compares; a 3x3 conv + sigmoid on it classifies real vs. generated. With 32x32 RGB input
this has 1,069,700 weights, the discriminator share of SAGAN's Table 1.
"""

import math

import keras

from anomzoo.layers import BN_MOMENTUM
from anomzoo.layers import nn as layers


def check_image_shape(image_shape, owner="the DCGAN discriminator"):
    """Images the discriminator can halve down to 4x4: square, a power of two, at least 8 px.
    `owner` names the model in the message, so that a user who asked for a model hears about it."""
    height, width = image_shape[:2]
    if height != width or height < 8 or 2 ** int(math.log2(height)) != height:
        raise ValueError(f"{owner} needs square images of a power-of-two size >= 8 (the DCGAN discriminator "
                         f"halves them down to 4x4), got {height}x{width}")


def dcgan_discriminator(image_shape, base_filters=64, latent_dim=100, name="discriminator"):
    """A functional model: images -> {"features": (B, 1, 1, latent_dim), "logits": (B,), "probability": (B,)}.

    Losses should use the logits: Keras' binary cross-entropy on probabilities clips them to
    [1e-7, 1 - 1e-7], so a saturated discriminator gets no gradient and never recovers (seen at
    128 px with SAGAN's lr 2e-3: D called every image fake from the first epoch on).
    """
    check_image_shape(image_shape)
    size = image_shape[0]
    inputs = keras.Input(image_shape, name="image")
    x = layers.Conv2D(base_filters, 4, strides=2, padding="same", use_bias=False, name="conv_0")(inputs)
    x = layers.LeakyReLU(0.2)(x)
    filters, size, level = base_filters, size // 2, 1
    while size > 4:
        filters *= 2
        x = layers.Conv2D(filters, 4, strides=2, padding="same", use_bias=False, name=f"conv_{level}")(x)
        x = layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"bn_{level}")(x)
        x = layers.LeakyReLU(0.2)(x)
        size, level = size // 2, level + 1
    features = layers.Conv2D(latent_dim, 4, padding="valid", use_bias=False, name="to_latent")(x)
    logits = layers.Reshape((), name="logits")(
        layers.Conv2D(1, 3, padding="same", use_bias=False, name="classifier")(features)
    )
    probability = layers.Activation("sigmoid", dtype="float32", name="probability")(logits)
    return keras.Model(inputs, {"features": features, "logits": logits, "probability": probability}, name=name)
