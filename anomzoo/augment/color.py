"""Colour jitter for hard augmentation: keras.layers.RandomColorJitter with strong defaults."""

from __future__ import annotations

import keras
from keras import ops

# Close to the SimCLR / CSI strength (torchvision ColorJitter(0.4, 0.4, 0.4, 0.1)) in Keras'
# parametrisation. brightness: Keras' shift is ADDITIVE (torchvision's is multiplicative) and
# +-0.4 of the value range turns dark images (MVTec's tire, screw) black or flat grey, so +-0.2.
# contrast: factor in [0.6, 1.4]. saturation: Keras samples f and scales S by f / (1 - f), so
# (0.375, 0.5833) is a multiplier in [0.6, 1.4]. hue: Keras shifts by +-factor / 2 of the
# circle, so 0.2 is a shift of up to 0.1 turn.
DEFAULT_JITTER = {
    "brightness_factor": 0.2,
    "contrast_factor": 0.4,
    "saturation_factor": (0.375, 0.5833),
    "hue_factor": 0.2,
}


@keras.saving.register_keras_serializable(package="anomzoo")
class HardColorJitter(keras.layers.RandomColorJitter):
    """keras.layers.RandomColorJitter with value_range (0, 1) and strong default factors
    (brightness, contrast, saturation, hue applied in that order; see DEFAULT_JITTER).

    Needs RGB input (C = 3). Like every Keras preprocessing layer it is a no-op when called with
    training=False; `HardAugment` calls it with training=True.
    """

    def __init__(
        self,
        value_range=(0, 1),
        brightness_factor=DEFAULT_JITTER["brightness_factor"],
        contrast_factor=DEFAULT_JITTER["contrast_factor"],
        saturation_factor=DEFAULT_JITTER["saturation_factor"],
        hue_factor=DEFAULT_JITTER["hue_factor"],
        seed=None,
        **kwargs,
    ):
        super().__init__(
            value_range=value_range,
            brightness_factor=brightness_factor,
            contrast_factor=contrast_factor,
            saturation_factor=saturation_factor,
            hue_factor=hue_factor,
            seed=seed,
            **kwargs,
        )


def jitter_any_channels(jitter, images):
    """Apply an RGB colour jitter to (B, H, W, 3) images, or to grey (B, H, W, 1) images by tiling
    them to RGB and keeping one channel (saturation and hue do nothing to grey pixels)."""
    channels = images.shape[-1]
    if channels == 3:
        return jitter(images, training=True)
    if channels == 1:
        return jitter(ops.tile(images, (1, 1, 1, 3)), training=True)[..., :1]
    raise ValueError(f"colour jitter needs 1 or 3 channels, got {channels}")
