"""The inference contract's input check, shared by the models and the export runners.

Images are float32 (N, H, W, C) in [0, 1] of the model's shape. uint8 images are divided by 255
(the one conversion done for you); anything else that does not fit (another shape or channel
count, other integers, floats outside [0, 1] such as 0-255 values, NaN) is a ValueError naming
what was expected, before it reaches a graph (where a wrong shape can abort the process inside
oneDNN instead of raising). `check_images_in_graph` does the same inside a traced function, for
the batches that `model.predict` draws from a `tf.data` dataset or a generator.
"""

import numpy as np


# How far outside [0, 1] a float may lie (resampling and colour conversions overshoot a little).
SLACK = 1e-3


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
        if low < -SLACK or high > 1.0 + SLACK:
            raise ValueError(f"{owner} takes float images in [0, 1], got values in [{low:g}, {high:g}]; "
                             "divide 0-255 images by 255 (or pass them as uint8)")
    return images


def check_images_in_graph(images, image_shape, owner):
    """`check_images` for a batch tensor inside a traced function: dtype and static shape are checked
    while tracing (ValueError), the size and the values when the batch runs (InvalidArgumentError
    with the same message)."""
    import tensorflow as tf

    images = tf.convert_to_tensor(images)
    expected = f"(N, {', '.join(map(str, image_shape))})"
    if images.shape.rank != 4 or not images.shape[1:].is_compatible_with(image_shape):
        raise ValueError(f"{owner} takes images of shape {expected}, floats in [0, 1]; got shape {images.shape}")
    if images.dtype == tf.uint8:
        images = tf.cast(images, tf.float32) / 255.0
    elif not images.dtype.is_floating:
        raise ValueError(f"{owner} takes float images in [0, 1] (or uint8 0-255), got dtype {images.dtype.name}")
    size_checked = tf.debugging.assert_equal(tf.shape(images)[1:], tf.constant(image_shape, tf.int32),
                                             message=f"{owner} takes images of shape {expected}")
    with tf.control_dependencies([size_checked]):  # before any op that needs the size
        images = tf.identity(tf.cast(images, tf.float32))  # a new op: a no-op cast would drop the dependency
    in_range = tf.reduce_all((images >= -SLACK) & (images <= 1.0 + SLACK))  # False for NaN too
    tf.debugging.Assert(in_range, [f"{owner} takes float images in [0, 1] (or uint8 0-255), without NaN; "
                                   "divide 0-255 images by 255. Got values from", tf.reduce_min(images),
                                   "to", tf.reduce_max(images)])
    return tf.ensure_shape(images, (None, *image_shape))
