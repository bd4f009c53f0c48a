"""BoxFill: the CutMix-like step of the attention + ADGAN paper (a box of zeros or augmented pixels)."""

from __future__ import annotations

import keras
from keras import ops

from ._common import (
    BoxLayer,
    box_offsets,
    box_region,
    box_sizes,
    changed_mask,
    from_batch,
    serialize_layer,
    static_hwc,
    sub_seed,
    to_batch,
)
from .hard import HardAugment

FILLS = ("zeros", "augmented", "mixed")


@keras.saving.register_keras_serializable(package="anomzoo")
class BoxFill(BoxLayer):
    """Replace a random box of each image with zeros or with the same box of an augmented copy.

    Attention + ADGAN, Sec. 3.2.1: "Similar to CutMix, a random region is selected ... The
    selected region is then replaced with the zero value or the corresponding region of
    x'_Ano [the hard-augmented image], which have the same chance."

    fill: "zeros", "augmented", or "mixed" (zeros or augmented with probability 1/2 per image).
    augment: the layer producing the augmented image; when None and fill needs it, a
        HardAugment(seed + 1) is used. area_range / aspect_range as in CutPaste (the paper gives
        no box sizes; the defaults are CutPaste's).

    Returns (image, mask) like CutPaste: mask (B, H, W, 1) float32 is 1 exactly where the output
    differs from the input (inside the box AND changed on some channel; e.g. pixels that were
    already 0 under a zero fill stay 0). Input (B, H, W, C) or one (H, W, C) image.
    Deterministic given `seed`.
    """

    def __init__(self, seed=None, area_range=(0.02, 0.15), aspect_range=(0.3, 3.3), fill: str = "mixed",
                 augment=None, **kwargs):
        if fill not in FILLS:
            raise ValueError(f"fill must be one of {FILLS}, got {fill!r}")
        super().__init__(seed, area_range, aspect_range, augment, **kwargs)
        self.fill = fill
        self.augment_arg = self.augment  # what get_config records: None stays None
        if self.augment is None and fill != "zeros":
            self.augment = HardAugment(seed=sub_seed(seed, 1))

    def fill_box(self, images, augmented):
        """Fill a box of `images` from zeros / `augmented` (None for fill="zeros"); returns (image, mask)."""
        height, width, _ = static_hwc(images.shape, type(self).__name__)
        u = keras.random.uniform((ops.shape(images)[0], 5), seed=self.seed_generator)
        h, w = box_sizes(u[:, 0], u[:, 1], height, width, self.area_range, self.aspect_range)
        top, left = box_offsets(u[:, 2], h, height), box_offsets(u[:, 3], w, width)
        region = box_region(top, left, h, w, height, width)
        zeros = ops.zeros_like(images)
        if self.fill == "zeros":
            content = zeros
        elif self.fill == "augmented":
            content = augmented
        else:
            use_zeros = ops.reshape(u[:, 4] < 0.5, (-1, 1, 1, 1))
            content = ops.where(use_zeros, zeros, augmented)
        out = ops.where(ops.expand_dims(region, -1), content, images)
        return out, changed_mask(out, images, region)

    def call(self, images):
        x, single = to_batch(ops.cast(images, self.compute_dtype))
        augmented = None if self.fill == "zeros" else ops.cast(self.augment(x), self.compute_dtype)
        return from_batch(self.fill_box(x, augmented), single)

    def get_config(self):
        return {**super().get_config(), "fill": self.fill, "augment": serialize_layer(self.augment_arg)}
