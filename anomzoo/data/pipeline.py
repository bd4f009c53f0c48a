"""tf.data input pipelines from the uint8 arrays the loaders return.

TensorFlow is imported inside the functions, so that ``import anomzoo.data`` stays fast for code
that only needs the arrays (metrics, reports, tests).
"""

from __future__ import annotations

import os
from typing import Callable

import numpy as np


def make_pipeline(images: np.ndarray, *, batch_size: int, shuffle: bool, seed: int = 0,
                  augment: Callable | None = None, drop_remainder: bool = False,
                  masks: np.ndarray | None = None, labels: np.ndarray | None = None,
                  epochs: int | None = None, first_epoch: int = 0, shard: tuple[int, int] = (1, 0),
                  whole_batches_of: int | None = None):
    """A batched, prefetched ``tf.data.Dataset`` of dicts over in-memory images.

    Parameters
    ----------
    images : (N, H, W, C) uint8; yielded as float32 in [0, 1] under "image".
    batch_size : images per batch.
    shuffle : a new seeded order at every pass over the data; True for training.
    seed : shuffle seed; the same seed gives the same sequence of epochs.
    epochs, first_epoch : with ``epochs``, the dataset holds that many passes in a row, starting
        at pass ``first_epoch``, and the order of pass k depends only on (seed, k). Give `fit`
        ``steps_per_epoch=steps_per_epoch(N, batch_size)``. This is what lets a resumed run see the
        same batches as an uninterrupted one. Without ``epochs`` the dataset is one pass, and each
        new iteration over it is shuffled anew.
    augment : optional callable or Keras layer, mapped over batches (in parallel). It receives the
        batch dict and must return a dict, so that geometric augmentation can move masks together
        with their images.
    drop_remainder : drop the last, smaller batch (keeps batch shapes static).
    masks : optional (N, H, W, 1) {0, 1}; yielded as float32 under "mask".
    labels : optional (N,) 0/1; yielded as int32 under "label".
    shard, whole_batches_of : for several workers or replicas (`anomzoo.distribute`), with ``epochs``:
        each pass is cut to a multiple of ``whole_batches_of`` (the global batch) positions, then
        shard (count, index) keeps positions index, index + count, ... of it, before any image is
        gathered. With ``batch_size`` = global batch / count, the shards' batches of step k together
        hold exactly the images of the unsharded step k, and every shard has the same number of steps.
        `anomzoo.data.streaming.StreamedSplit.pipeline` shards by the same rule.

    Yields
    ------
    {"image": (B, H, W, C) float32} plus "mask" and "label" when given: the whole batch reaches
    the model (`AnomalyModel.train_step`), never only its first element.

    The arrays stay uint8 in memory and whole batches are gathered by index and scaled there: the
    shuffle moves indices, not images. (A shuffle buffer of N decoded float images, the previous
    design, had to be refilled at every epoch, and `fit` idled for seconds at each epoch's start.)
    """
    import tensorflow as tf

    images = np.asarray(images)
    if images.ndim != 4 or images.dtype != np.uint8:
        raise ValueError(f"images must be (N, H, W, C) uint8, got shape {images.shape} dtype {images.dtype}")
    n = images.shape[0]
    for extra, what in ((masks, "masks"), (labels, "labels")):
        if extra is not None and len(extra) != n:
            raise ValueError(f"{what} hold {len(extra)} items but images hold {n}")
    check_batch_size(batch_size)

    arrays = {"image": tf.constant(images)}
    if masks is not None:
        arrays["mask"] = tf.constant(np.asarray(masks, dtype=np.uint8))
    if labels is not None:
        arrays["label"] = tf.constant(np.asarray(labels, dtype=np.int32))

    def gather(index):
        batch = {key: tf.gather(value, index) for key, value in arrays.items()}
        batch["image"] = tf.cast(batch["image"], tf.float32) / 255.0
        if "mask" in batch:
            batch["mask"] = tf.cast(batch["mask"], tf.float32)
        return batch

    shards, shard_index = check_shard(shard)
    if epochs is None and (shards, whole_batches_of) != (1, None):
        raise ValueError("shard and whole_batches_of apply to a pipeline of given epochs")

    def one_pass(epoch):
        order = tf.range(n, dtype=tf.int64)
        if shuffle:
            seeds = tf.stack([tf.constant(seed, tf.int64), tf.cast(epoch, tf.int64)])
            order = tf.random.experimental.stateless_shuffle(order, seed=seeds)
        if whole_batches_of:
            order = order[:n // whole_batches_of * whole_batches_of]
        order = order[shard_index::shards]
        return tf.data.Dataset.from_tensor_slices(order).batch(batch_size, drop_remainder=drop_remainder)

    if epochs is None:
        ds = tf.data.Dataset.range(n)
        if shuffle:
            ds = ds.shuffle(max(n, 1), seed=seed, reshuffle_each_iteration=True)
        ds = ds.batch(batch_size, drop_remainder=drop_remainder)
    else:
        ds = tf.data.Dataset.range(first_epoch, first_epoch + int(epochs)).flat_map(one_pass)
    # Fixed parallelism and prefetch, with tf.data's autotuning off: the autotuner's background
    # thread sleeps in periods that grow to seconds, and an iterator waits for it when it is deleted,
    # so `fit` sat idle for up to ~5 s at the end of a call or an epoch (measured: Keras' own AUTOTUNE
    # pipeline for NumPy input, 4.4 s after `on_train_end`; this one 0.4-0.9 s before, 0.00 after).
    ds = ds.map(gather, num_parallel_calls=parallel_calls())
    if augment is not None:
        ds = ds.map(augment, num_parallel_calls=parallel_calls())
    return prefetched(ds)


def parallel_calls() -> int:
    """The fixed parallelism of every map in the training pipelines (see `prefetched`)."""
    return min(4, os.cpu_count() or 1)


def prefetched(ds):
    """``ds`` prefetching two batches, with tf.data's autotuning off (why: the comment in `make_pipeline`)."""
    import tensorflow as tf

    options = tf.data.Options()
    options.autotune.enabled = False
    return ds.prefetch(2).with_options(options)


def check_batch_size(batch_size) -> None:
    if not isinstance(batch_size, (int, np.integer)) or isinstance(batch_size, bool) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")


def check_shard(shard) -> tuple[int, int]:
    """(count, index) of a ``shard=`` argument, or a ValueError saying what is expected."""
    try:
        count, index = (int(v) for v in shard)
        valid = all(float(v) == int(v) and not isinstance(v, bool) for v in shard)
    except (TypeError, ValueError):
        valid = False
    if not valid or count < 1 or not 0 <= index < count:
        raise ValueError(f"shard must be (count, index) with count >= 1 and 0 <= index < count (this worker's "
                         f"share, order[index::count]), got {shard!r}")
    return count, index


def steps_per_epoch(n: int, batch_size: int, drop_remainder: bool = False) -> int:
    """Batches in one pass over ``n`` images (what `fit` needs with ``make_pipeline(epochs=...)``)."""
    return n // batch_size if drop_remainder else -(-n // batch_size)


#: the formats `decode_image_file` reads (tf.io's); the OpenCV loaders also read TIFF and WebP.
TF_IMAGE_FORMATS = "PNG, JPEG, BMP, GIF"


def decode_image_file(path, image_size: int, channels: int = 3):
    """Read and decode one image file with tf.io, for pipelines that stream files from disk.

    Parameters
    ----------
    path : a string (or string tensor) naming a PNG, JPEG, BMP or GIF file.
    image_size : side of the square output.
    channels : 1 or 3.

    Returns
    -------
    (image_size, image_size, channels) uint8 tensor, decoded, resized and converted as the OpenCV
    loaders do (see `anomzoo.data.tf_decode`). A file that is no PNG, JPEG, BMP or GIF stops the
    pipeline with an InvalidArgumentError that names it.
    """
    import tensorflow as tf

    if isinstance(path, os.PathLike):
        path = os.fspath(path)
    return decode_image_bytes(tf.io.read_file(path), image_size, channels, source=path)


def decode_image_bytes(data, image_size: int, channels: int = 3, source=""):
    """`decode_image_file` for an image's encoded bytes (a scalar string tensor), e.g. from a TFRecord.

    source : the file the bytes came from (a string or string tensor), named in the error raised,
        inside the graph, when the bytes are not a PNG, JPEG, BMP or GIF image (an empty file, a TIFF,
        an HTML page saved as .png). A file damaged after its header still fails in TensorFlow's
        decoder, whose message names no file.
    """
    import tensorflow as tf

    from anomzoo.data import tf_decode

    check = tf.debugging.Assert(is_tf_image(data), ["cannot decode image", source,
                                                    f"(not a {TF_IMAGE_FORMATS} file, or empty)"])
    with tf.control_dependencies([check]):
        image = tf_decode.resize_like_loaders(tf_decode.decode_rgb(data), image_size)
    return tf.cast(tf_decode.to_channels(image, channels), tf.uint8)


def is_tf_image(data):
    """Whether encoded bytes start as a PNG, JPEG, BMP or GIF file does (a bool tensor)."""
    import tensorflow as tf

    def starts(prefix):
        return tf.equal(tf.strings.substr(data, 0, len(prefix)), prefix)

    return tf.reduce_any(tf.stack([tf.io.is_jpeg(data), starts(b"\x89PNG\r\n\x1a\n"), starts(b"GIF8"),
                                   starts(b"BM")]))
