"""Where the object is: a foreground estimate for placing synthetic anomalies on it, not on the background."""

from __future__ import annotations

from keras import ops

#: the smoothing window as a fraction of the image side: wide enough to bridge an object's own dark
#: parts (a tire's tread grooves at 64 px are 3-5 pixels), narrow enough to keep its outline.
WINDOW_FRACTION = 1 / 7
#: an image whose estimate covers less than this share of it (a texture, or an object the colour of
#: its background) is treated as all foreground: anomalies may then land anywhere, as without a prior.
MIN_SHARE = 0.01


def foreground_mask(images, threshold: float):
    """(B, H, W) bool: pixels whose neighbourhood differs from the image's border colour by more than `threshold`.

    The background colour is the mean of the image's outermost rows and columns (objects of inspection
    data are photographed centred, on a plain background); a pixel's difference is its largest
    per-channel absolute difference from it, averaged over a window of WINDOW_FRACTION of the image
    side. Images are (B, H, W, C) floats in [0, 1]. On the MVTec 3D-AD tire at 64 px, threshold 0.03
    covers the tire (about a third of the image) and none of the background.
    """
    height, width = int(images.shape[1]), int(images.shape[2])
    border = ops.concatenate([images[:, 0], images[:, -1], images[:, :, 0], images[:, :, -1]], axis=1)
    background = ops.mean(border, axis=1)[:, None, None, :]
    difference = ops.max(ops.abs(images - background), axis=-1, keepdims=True)
    window = max(3, round(min(height, width) * WINDOW_FRACTION) // 2 * 2 + 1)
    smooth = ops.average_pool(difference, window, strides=1, padding="same")[..., 0]
    found = smooth > threshold
    share = ops.mean(ops.cast(found, "float32"), axis=(1, 2))
    return ops.logical_or(found, ops.reshape(share < MIN_SHARE, (-1, 1, 1)))
