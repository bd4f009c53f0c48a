"""tf.data input pipelines from the uint8 arrays the loaders return.

TensorFlow is imported inside the functions, so that ``import anomzoo.data`` stays fast for code
that only needs the arrays (metrics, reports, tests).
"""

from __future__ import annotations

import os
from typing import Callable

import numpy as np


def make_pipeline(images: np.ndarray, *, batch_size: int, shuffle: bool, seed: int = 0, cache: bool = True,
                  augment: Callable | None = None, drop_remainder: bool = False,
                  masks: np.ndarray | None = None, labels: np.ndarray | None = None):
    """A batched, prefetched ``tf.data.Dataset`` over in-memory images.

    Parameters
    ----------
    images : (N, H, W, C) uint8; yielded as float32 in [0, 1].
    batch_size : images per batch.
    shuffle : reshuffle (seeded, full buffer) at every pass over the data; True for training.
    seed : shuffle seed; the same seed gives the same sequence of epochs.
    cache : keep the float32 images in memory after the first pass (4 bytes per pixel: 40,500
        CIFAR images take about 500 MB). With False the uint8 images are scaled batch by batch,
        which costs little and keeps memory at 1 byte per pixel.
    augment : optional callable or Keras layer, mapped over batches after batching (in parallel).
        It receives exactly what the pipeline yields and must return the same structure: a float32
        image batch, or, when masks/labels are given, the tuple as positional arguments
        (``augment(images, masks)`` or ``augment(images, masks, labels)``), so that geometric
        augmentation can move masks together with their images.
    drop_remainder : drop the last, smaller batch (keeps batch shapes static).
    masks : optional (N, H, W, 1) {0, 1}; yielded as float32.
    labels : optional (N,) 0/1; yielded as int32. Labels without masks are not supported
        (pass zero masks), which keeps the yielded structure to three fixed shapes.

    Yields
    ------
    ``images`` when masks and labels are None, ``(images, masks)`` with masks, and
    ``(images, masks, labels)`` with both.
    """
    import tensorflow as tf

    images = np.asarray(images)
    if images.ndim != 4 or images.dtype != np.uint8:
        raise ValueError(f"images must be (N, H, W, C) uint8, got shape {images.shape} dtype {images.dtype}")
    if labels is not None and masks is None:
        raise ValueError("labels need masks: pass masks (zeros when there is no pixel ground truth)")
    n = images.shape[0]
    for extra, what in ((masks, "masks"), (labels, "labels")):
        if extra is not None and len(extra) != n:
            raise ValueError(f"{what} hold {len(extra)} items but images hold {n}")
    if not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")

    tensors = [images]
    if masks is not None:
        tensors.append(np.asarray(masks, dtype=np.uint8))
    if labels is not None:
        tensors.append(np.asarray(labels, dtype=np.int32))

    def scale(image, *rest):
        # Images to [0, 1]; masks are already {0, 1} and only change type; labels stay int32.
        image = tf.cast(image, tf.float32) / 255.0
        if not rest:
            return image
        return (image, tf.cast(rest[0], tf.float32), *rest[1:])

    ds = tf.data.Dataset.from_tensor_slices(tuple(tensors) if len(tensors) > 1 else tensors[0])
    if cache:
        ds = ds.map(scale, num_parallel_calls=tf.data.AUTOTUNE).cache()
    if shuffle:
        ds = ds.shuffle(max(n, 1), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size, drop_remainder=drop_remainder)
    if not cache:  # scaling a whole batch at once is far cheaper than per image
        ds = ds.map(scale, num_parallel_calls=tf.data.AUTOTUNE)
    if augment is not None:
        if len(tensors) == 1:
            ds = ds.map(lambda x: augment(x), num_parallel_calls=tf.data.AUTOTUNE)
        else:
            ds = ds.map(lambda *xs: augment(*xs), num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(tf.data.AUTOTUNE)


def decode_image_file(path, image_size: int, channels: int = 3):
    """Read and decode one image file with tf.io, for pipelines that stream files from disk.

    Parameters
    ----------
    path : a string (or string tensor) naming a PNG, JPEG, BMP or GIF file.
    image_size : side of the square output.
    channels : 1 or 3.

    Returns
    -------
    (image_size, image_size, channels) uint8 tensor. Resizing uses area averaging when shrinking
    and bilinear interpolation when enlarging, like the OpenCV loaders, though the pixel values
    differ slightly from theirs.
    """
    import tensorflow as tf

    if isinstance(path, os.PathLike):
        path = os.fspath(path)
    image = tf.io.decode_image(tf.io.read_file(path), channels=channels, expand_animations=False)
    shape = tf.shape(image)
    shrinking = tf.logical_and(shape[0] >= image_size, shape[1] >= image_size)
    image = tf.cond(shrinking,
                    lambda: tf.image.resize(image, (image_size, image_size), method="area"),
                    lambda: tf.image.resize(image, (image_size, image_size), method="bilinear"))
    return tf.cast(tf.clip_by_value(tf.round(image), 0, 255), tf.uint8)
