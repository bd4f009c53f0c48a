"""BlobPaste: an irregular blob of another place of each image (optionally augmented), blended in."""

from __future__ import annotations

import keras
from keras import ops

from ._common import (
    BoxLayer,
    changed_mask,
    check_range,
    coordinate_grids,
    gather_pixels,
    static_hwc,
)

#: noise grids (cells per image side) whose mix shapes the blobs: coarse gives round blobs, fine
#: gives ragged, branching ones; each image mixes the two with its own weight.
NOISE_GRIDS = (4, 8)


@keras.saving.register_keras_serializable(package="anomzoo")
class BlobPaste(BoxLayer):
    """Paste an irregular region taken from elsewhere in each image, at a random opacity.

    DRAEM's recipe (Zavrtanik et al., ICCV 2021) without its external texture set: the region is a
    thresholded smooth noise field (bilinearly upsampled Gaussian noise on NOISE_GRIDS, standing in
    for DRAEM's Perlin noise), the texture is the (augmented) image itself shifted by a random
    offset, and the pasted pixels are blended as x + opacity * (texture - x) with opacity uniform in
    `opacity_range` (DRAEM's beta), so anomalies range from faint to opaque. Defects of industrial
    parts are mostly small, irregular and of low contrast (cuts, holes, stains); a rectangle pasted
    at full opacity is none of these.

    area_range: the region's area as a fraction of the image, uniform (the noise is thresholded at
        that quantile, so the area is exact up to ties). aspect_range is unused (kept by BoxLayer).
    augment: optional layer (e.g. HardAugment) applied to the whole image first; the texture comes
        from the augmented image.

    Returns (image, mask): mask (B, H, W, 1) float32 = 1 exactly where the output differs from the
    input inside the region (THE MASK RULE). Input (B, H, W, C) or one (H, W, C) image; H and W at
    least max(NOISE_GRIDS). Deterministic given `seed`.
    """

    def __init__(self, seed=None, area_range=(0.002, 0.05), opacity_range=(0.3, 1.0), **kwargs):
        super().__init__(seed=seed, area_range=area_range, **kwargs)
        self.opacity_range = check_range("opacity_range", opacity_range, 0.0, 1.0)

    def region(self, batch, height: int, width: int, u_area, u_mix, allowed=None):
        """(B, H, W) bool: each image's noise field above its (1 - area) quantile; with `allowed`
        ((B, H, W) bool) the field is lowered outside it, so the blob lies on allowed pixels as far
        as they reach the asked area."""
        fields = []
        for grid in NOISE_GRIDS:
            coarse = keras.random.normal((batch, grid + 1, grid + 1, 1), seed=self.seed_generator)
            fields.append(ops.image.resize(coarse, (height, width), interpolation="bilinear"))
        mix = ops.reshape(u_mix, (-1, 1, 1, 1))
        noise = mix * fields[0] + (1.0 - mix) * fields[1]
        if allowed is not None:
            noise = ops.where(ops.expand_dims(allowed, -1), noise, noise - 1e3)
        noise = ops.reshape(noise, (batch, height * width))
        lo, hi = self.area_range
        area = lo + (hi - lo) * u_area
        rank = ops.cast(ops.clip(ops.round((1.0 - area) * (height * width)), 0, height * width - 1), "int32")
        threshold = ops.take_along_axis(ops.sort(noise, axis=-1), ops.expand_dims(rank, -1), axis=-1)
        return ops.reshape(noise >= threshold, (batch, height, width))

    def paste(self, images, source, allowed=None):
        """Blend a blob of `source` (same shape as images, shifted) into `images`; returns (image, mask).

        allowed: optional (B, H, W) bool (e.g. `foreground_mask`): only allowed pixels change.
        """
        height, width, _ = static_hwc(images.shape, type(self).__name__)
        batch = ops.shape(images)[0]
        u = keras.random.uniform((batch, 5), seed=self.seed_generator)
        region = self.region(batch, height, width, u[:, 0], u[:, 1], allowed)
        if allowed is not None:
            region = ops.logical_and(region, allowed)
        # The texture comes from a random other place: shifts of at least a quarter of the image.
        shift_y = ops.cast((0.25 + 0.5 * u[:, 2]) * height, "int32")
        shift_x = ops.cast((0.25 + 0.5 * u[:, 3]) * width, "int32")
        ys, xs = coordinate_grids(height, width)
        texture = gather_pixels(source, (ys + ops.reshape(shift_y, (-1, 1, 1))) % height,
                                (xs + ops.reshape(shift_x, (-1, 1, 1))) % width)
        lo, hi = self.opacity_range
        opacity = ops.reshape(lo + (hi - lo) * u[:, 4], (-1, 1, 1, 1))
        blended = images + opacity * (texture - images)
        out = ops.where(ops.expand_dims(region, -1), blended, images)
        return out, changed_mask(out, images, region)

    def get_config(self):
        return {**super().get_config(), "opacity_range": list(self.opacity_range)}
