"""CutPaste: a random rectangle of each image (optionally augmented) pasted elsewhere in it."""

from __future__ import annotations

import keras
from keras import ops

from ._common import (
    BoxLayer,
    box_offsets,
    box_region,
    box_sizes,
    changed_mask,
    coordinate_grids,
    gather_pixels,
    random_pixel,
    static_hwc,
)


@keras.saving.register_keras_serializable(package="anomzoo")
class CutPaste(BoxLayer):
    """Cut a random rectangle out of each image and paste it at another random location of the
    same image (Li et al., CutPaste, CVPR 2021).

    area_range: box area as a fraction of the image area, uniform. aspect_range: box h / w,
        log-uniform (CutPaste's defaults: area (0.02, 0.15), aspect (0.3, 3.3)).
    augment: optional layer (e.g. HardAugment) applied to the whole image first; the patch is
        then cut from the augmented image (at the source box) and pasted into the un-augmented
        image (at the destination box), which is AnoSeg's "the augmented data is pasted into a
        random region of normal data".

    Returns (image, mask): image (B, H, W, C) float32, mask (B, H, W, 1) float32 in {0, 1} marking
    exactly the pixels that changed (inside the destination box AND different from the input on
    some channel), so pixels where the pasted patch equals the original are 0. Source and
    destination boxes are drawn independently and may overlap or coincide (then the mask can be
    empty). Input (B, H, W, C) or one (H, W, C) image. Deterministic given `seed`.
    """

    def paste(self, images, source, allowed=None):
        """Paste a box of `source` (same shape as images) into `images`; returns (image, mask).

        allowed: optional (B, H, W) bool (e.g. `foreground_mask`): the box is centred on a random
        allowed pixel and only its allowed pixels change.
        """
        height, width, _ = static_hwc(images.shape, type(self).__name__)
        u = keras.random.uniform((ops.shape(images)[0], 6), seed=self.seed_generator)
        h, w = box_sizes(u[:, 0], u[:, 1], height, width, self.area_range, self.aspect_range)
        src_top, src_left = box_offsets(u[:, 2], h, height), box_offsets(u[:, 3], w, width)
        if allowed is None:
            dst_top, dst_left = box_offsets(u[:, 4], h, height), box_offsets(u[:, 5], w, width)
        else:
            centre = random_pixel(allowed, self.seed_generator)
            dst_top = ops.clip(centre // width - h // 2, 0, height - h)
            dst_left = ops.clip(centre % width - w // 2, 0, width - w)
        region = box_region(dst_top, dst_left, h, w, height, width)
        if allowed is not None:
            region = ops.logical_and(region, allowed)
        ys, xs = coordinate_grids(height, width)
        shift_y = ops.reshape(src_top - dst_top, (-1, 1, 1))
        shift_x = ops.reshape(src_left - dst_left, (-1, 1, 1))
        patch = gather_pixels(source, ys + shift_y, xs + shift_x)
        out = ops.where(ops.expand_dims(region, -1), patch, images)
        return out, changed_mask(out, images, region)
