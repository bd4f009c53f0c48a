"""The inference contract's input check, shared by the models and the export runners.

Images are float32 (N, H, W, C) in [0, 1] of the model's shape. uint8 images are divided by 255
(the one conversion done for you); anything else that does not fit (another shape or channel
count, other integers, floats outside [0, 1] such as 0-255 values, NaN) is a ValueError naming
what was expected, before it reaches a graph (where a wrong shape can abort the process inside
oneDNN instead of raising).
"""

import numpy as np


def check_images(images, image_shape, owner):
    """`images` as float32 (N, *image_shape) in [0, 1]; `owner` names the model or export in errors."""
    images = np.asarray(images)
    expected = f"(N, {', '.join(map(str, image_shape))})"
    if images.ndim != 4 or tuple(images.shape[1:]) != tuple(image_shape):
        raise ValueError(f"{owner} takes images of shape {expected}, floats in [0, 1]; got shape {images.shape}")
    if images.dtype == np.uint8:
        return images.astype("float32") / 255.0
    if not np.issubdtype(images.dtype, np.floating):
        raise ValueError(f"{owner} takes float images in [0, 1] (or uint8 0-255), got dtype {images.dtype}")
    images = images.astype("float32", copy=False)
    if images.size:
        low, high = float(np.min(images)), float(np.max(images))
        if not (np.isfinite(low) and np.isfinite(high)):
            raise ValueError("the images contain NaN or infinite values")
        if low < -1e-3 or high > 1.0 + 1e-3:
            raise ValueError(f"{owner} takes float images in [0, 1], got values in [{low:g}, {high:g}]; "
                             "divide 0-255 images by 255 (or pass them as uint8)")
    return images
