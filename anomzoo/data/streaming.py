"""Training data larger than memory: a training split that stays on disk and streams through tf.data.

Small data stays in memory (`Split`, `make_pipeline`); large data streams (DESIGN.md, "Beyond one
machine"; the design verified in ../shared/reviews/scaleout-2026-12-07.md, section 4). Two sources:

- **files**: the sorted image files of an MVTec-layout ``train/good`` folder (100k paths fit in
  memory; the pixels do not). Pass k is ``stateless_shuffle(range(N), seed=[seed, k])``, the order
  `make_pipeline` gives the same images in memory, then this worker's share ``order[i::n]``, and only
  then are files read and decoded (`decode_image_file`, bit-equal to the OpenCV loaders when images
  shrink or keep their size).
- **TFRecord shards** written by `anomzoo.data.tfrecord.write_tfrecords` (~100 MB each, for a million
  images, GCS or TPU; paths go through ``tf.io.gfile``). Records cannot be read at random, so pass k
  shuffles the shard files by [seed, k], interleaves them, and shuffles windows of ``shuffle_window``
  records by a seed folded from [seed, k] and the window's number: every record once per pass, the
  same seed the same order, not a uniform permutation (no TFRecord pipeline gives one).

Validation and test stay in memory (`Split`): they are small and needed whole for thresholds and
metrics. Statistics of the training images (the mean normal image of the floors, the object region of
the pixel metrics) are streamed over at most `STATISTICS_CAP` of them (`normal_batches`).
"""

from __future__ import annotations

import dataclasses
from typing import Iterator

import numpy as np

from anomzoo.data.errors import DatasetError
from anomzoo.data.mvtec import list_mvtec
from anomzoo.data.pipeline import (TF_IMAGE_FORMATS, check_batch_size, check_shard, decode_image_bytes,
                                   decode_image_file, make_pipeline, parallel_calls, prefetched)

#: the most training images the streamed statistics read (the mean normal image, the object region):
#: evenly spaced through the stored order, so exact for up to this many (every MVTec AD category) and a
#: deterministic estimate beyond, for the price of one pass over this many images, not over a million.
STATISTICS_CAP = 4096
#: records shuffled together in a TFRecord pass (encoded bytes: ~100 MB of 100 kB PNGs).
SHUFFLE_WINDOW = 1024

_PARSE_KEYS = ("image", "index", "label", "path")


@dataclasses.dataclass(frozen=True, eq=False)
class StreamedSplit:
    """A split of normal training images (or weakly labelled ones) that stays on disk.

    image_shape: (H, W, C) of the images it yields, H == W.
    labels: (N,) int32, 0 = normal (all of an MVTec train split), 1 = anomalous.
    paths: (N,) str, the sorted image files; or None for TFRecord shards.
    record_files: the TFRecord shard files, sorted; file j holds the records of indices
        first_index_j ... first_index_j + record_counts[j] - 1, in order (as `write_tfrecords` writes).
    record_counts: the records in each shard file.
    record_index: the sorted record indices that belong to this split (None: every record), e.g. the
        training part when a seeded fraction of train/good went to validation.
    shuffle_window: records shuffled together in a TFRecord pass.
    """

    image_shape: tuple[int, int, int]
    labels: np.ndarray
    paths: np.ndarray | None = None
    record_files: tuple[str, ...] = ()
    record_counts: tuple[int, ...] = ()
    record_index: np.ndarray | None = None
    shuffle_window: int = SHUFFLE_WINDOW

    def __post_init__(self):
        shape = tuple(int(d) for d in self.image_shape)
        if len(shape) != 3 or shape[0] != shape[1] or shape[0] < 1 or shape[2] not in (1, 3):
            raise DatasetError(f"a streamed split yields square images with 1 or 3 channels, (size, size, channels); "
                               f"got image_shape {self.image_shape!r}")
        object.__setattr__(self, "image_shape", shape)
        object.__setattr__(self, "labels", np.asarray(self.labels, dtype=np.int32))
        if (self.paths is None) == (not self.record_files):
            raise DatasetError("a streamed split reads image files (paths=) or TFRecord shards (record_files=), "
                               "exactly one of the two")
        if self.paths is not None:
            object.__setattr__(self, "paths", np.asarray([str(p) for p in self.paths], dtype=str))
            count = len(self.paths)
        else:
            if len(self.record_counts) != len(self.record_files):
                raise DatasetError(f"{len(self.record_files)} TFRecord files but {len(self.record_counts)} "
                                   "record counts")
            object.__setattr__(self, "record_files", tuple(str(f) for f in self.record_files))
            object.__setattr__(self, "record_counts", tuple(int(c) for c in self.record_counts))
            if self.record_index is not None:
                object.__setattr__(self, "record_index", np.asarray(self.record_index, dtype=np.int64))
            count = sum(self.record_counts) if self.record_index is None else len(self.record_index)
        if len(self.labels) != count:
            raise DatasetError(f"a streamed split of {count} images has {len(self.labels)} labels")
        if self.shuffle_window < 1:
            raise DatasetError(f"shuffle_window must be a positive int, got {self.shuffle_window!r}")

    def __len__(self) -> int:
        return int(len(self.labels))

    @property
    def reads_records(self) -> bool:
        return self.paths is None

    @property
    def has_anomalous_labels(self) -> bool:
        """Whether batches carry "label" (weak supervision), as `make_pipeline` gets labels in `train`."""
        return bool(np.any(self.labels == 1))

    # ----------------------------------------------------------------------------------------
    # Training pipeline
    # ----------------------------------------------------------------------------------------

    def pipeline(self, *, batch_size: int, seed: int, epochs: int, first_epoch: int = 0,
                 drop_remainder: bool = False, shard: tuple[int, int] = (1, 0), whole_batches_of: int | None = None):
        """``epochs`` passes from pass ``first_epoch`` on, as a tf.data.Dataset of the dicts
        `make_pipeline` yields: {"image": (B, H, W, C) float32 in [0, 1]}, plus "label" (int32) when
        the split holds anomalous images.

        The order of pass k depends only on (seed, k), so a run resumed at epoch k sees the batches of
        an uninterrupted one. Image files: the order `make_pipeline(shuffle=True)` gives the same images.
        shard (count, index): this worker's share, taken before anything is decoded. Image files and
        TFRecords sharded by record: ``order[index::count]`` of the pass (cut first to a multiple of
        ``whole_batches_of``, the global batch, when given), so that with ``batch_size`` = B / count the
        workers' k-th batches together are the unsharded k-th batch of B (`make_pipeline`'s rule).
        TFRecords are sharded by file instead (each worker reads only its files, ``files[index::count]``)
        when that gives every worker as many records; each worker's order is then its own, every record
        still read once per pass (`shards_files`).
        """
        import tensorflow as tf

        check_batch_size(batch_size)
        count, index = check_shard(shard)
        if isinstance(epochs, bool) or not isinstance(epochs, (int, np.integer)) or epochs < 1:
            raise ValueError(f"epochs must be a positive int, got {epochs!r}")
        if whole_batches_of is not None and (whole_batches_of < 1 or whole_batches_of % count):
            raise ValueError(f"whole_batches_of ({whole_batches_of}) must be a positive multiple of the "
                             f"shard count {count}")
        seed = int(seed)

        def one_pass(epoch):
            seeds = tf.stack([tf.constant(seed, tf.int64), tf.cast(epoch, tf.int64)])
            items = (self._records_pass(seeds, count, index, whole_batches_of) if self.reads_records
                     else self._files_pass(seeds, count, index, whole_batches_of))
            return items.batch(batch_size, drop_remainder=drop_remainder)

        passes = tf.data.Dataset.range(int(first_epoch), int(first_epoch) + int(epochs))
        return prefetched(passes.flat_map(one_pass))

    def _files_pass(self, seeds, count, index, whole):
        import tensorflow as tf

        n = len(self)
        paths, labels = tf.constant(self.paths), tf.constant(self.labels)
        order = tf.random.experimental.stateless_shuffle(tf.range(n, dtype=tf.int64), seed=seeds)
        if whole:
            order = order[:n // whole * whole]
        order = order[index::count]
        size, channels = self.image_shape[0], self.image_shape[2]
        labelled = self.has_anomalous_labels

        def decode(position):
            item = {"image": _as_float(decode_image_file(tf.gather(paths, position), size, channels))}
            if labelled:
                item["label"] = tf.gather(labels, position)
            return item

        return tf.data.Dataset.from_tensor_slices(order).map(decode, num_parallel_calls=parallel_calls(),
                                                             deterministic=True)

    def _records_pass(self, seeds, count, index, whole):
        import tensorflow as tf

        by_files = self.shards_files(count)
        files = np.asarray(self.record_files[index::count] if by_files else self.record_files)
        order = tf.random.experimental.stateless_shuffle(tf.range(len(files), dtype=tf.int64), seed=seeds)
        cycle = min(4, len(files))
        records = (tf.data.Dataset.from_tensor_slices(tf.gather(tf.constant(files), order))
                   .interleave(tf.data.TFRecordDataset, cycle_length=cycle, block_length=1,
                               num_parallel_calls=cycle, deterministic=True)
                   .map(parse_record))
        records = self._kept(records)
        records = _window_shuffle(records, seeds, self.shuffle_window)
        if by_files:
            share = self._file_counts()[index::count].sum()
            if whole:
                per_worker = whole // count
                records = records.take(share // per_worker * per_worker)
        else:
            if whole:
                records = records.take(len(self) // whole * whole)
            if count > 1:
                records = records.shard(count, index)
        return records.map(self._decode_record, num_parallel_calls=parallel_calls(), deterministic=True)

    def shards_files(self, count: int) -> bool:
        """Whether `pipeline(shard=(count, i))` gives each worker whole TFRecord files (it reads only
        those): when there are at least ``count`` files and ``files[i::count]`` hold as many of this
        split's records for every i, so every worker takes the same number of steps. Otherwise every
        worker reads every file and keeps every count-th record (`make_pipeline`'s rule)."""
        if not self.reads_records or count == 1 or len(self.record_files) < count:
            return False
        counts = self._file_counts()
        return len({int(counts[i::count].sum()) for i in range(count)}) == 1

    def _file_counts(self) -> np.ndarray:
        """Records of this split in each file (fewer than the file holds where record_index leaves some out)."""
        counts = np.asarray(self.record_counts, dtype=np.int64)
        if self.record_index is None:
            return counts
        ends = np.cumsum(counts)
        return np.diff(np.searchsorted(self.record_index, np.concatenate([[0], ends])))

    def _kept(self, records):
        """Only the records of this split (all of them unless ``record_index`` says otherwise)."""
        import tensorflow as tf

        if self.record_index is None:
            return records
        keep = np.zeros(int(sum(self.record_counts)), dtype=bool)
        keep[self.record_index] = True
        keep = tf.constant(keep)
        return records.filter(lambda record: tf.gather(keep, record["index"]))

    def _decode_record(self, record):
        size, channels = self.image_shape[0], self.image_shape[2]
        item = {"image": _as_float(decode_image_bytes(record["image"], size, channels, source=record["path"]))}
        if self.has_anomalous_labels:
            import tensorflow as tf

            item["label"] = tf.cast(record["label"], tf.int32)
        return item

    # ----------------------------------------------------------------------------------------
    # Statistics
    # ----------------------------------------------------------------------------------------

    def batches(self, batch_size: int = 64, limit: int | None = None) -> Iterator[np.ndarray]:
        """(B, H, W, C) uint8 arrays in stored order (sorted files, record index), one streaming pass;
        with ``limit``, only that many images, evenly spaced through the order (`spread`)."""
        import tensorflow as tf

        check_batch_size(batch_size)
        size, channels = self.image_shape[0], self.image_shape[2]
        positions = spread(len(self), limit)
        if not self.reads_records:
            paths = tf.data.Dataset.from_tensor_slices(self.paths[positions])
            images = paths.map(lambda path: decode_image_file(path, size, channels),
                               num_parallel_calls=parallel_calls(), deterministic=True)
        else:
            records = self._kept(tf.data.TFRecordDataset(list(self.record_files)).map(parse_record))
            if len(positions) < len(self):
                wanted = np.zeros(len(self), dtype=bool)
                wanted[positions] = True
                wanted = tf.constant(wanted)
                records = records.enumerate().filter(lambda i, record: tf.gather(wanted, i)).map(lambda i, r: r)
            images = records.map(lambda r: decode_image_bytes(r["image"], size, channels, source=r["path"]),
                                 num_parallel_calls=parallel_calls(), deterministic=True)
        yield from prefetched(images.batch(batch_size)).as_numpy_iterator()

    def mean_image(self, limit: int | None = None) -> np.ndarray:
        """(H, W, C) float32 in [0, 1]: the mean training image, from one streaming pass (over ``limit``
        evenly spaced images, when given); summed exactly in integers, so the order cannot change it."""
        total, count = np.zeros(self.image_shape, dtype=np.int64), 0
        for batch in self.batches(limit=limit):
            total += batch.sum(axis=0, dtype=np.int64)
            count += len(batch)
        if count == 0:
            raise DatasetError("the streamed split is empty: it has no mean image")
        return (total / (count * 255.0)).astype(np.float32)


def spread(n: int, limit: int | None) -> np.ndarray:
    """``min(n, limit)`` sorted positions evenly spaced over ``range(n)`` (all of them without a limit)."""
    if limit is None or limit >= n:
        return np.arange(n)
    if limit < 1:
        raise ValueError(f"limit must be a positive int or None, got {limit!r}")
    return np.arange(limit, dtype=np.int64) * n // limit


def _as_float(image):
    import tensorflow as tf

    return tf.cast(image, tf.float32) / 255.0


def _window_shuffle(records, seeds, window):
    """Shuffle each run of ``window`` records by a seed folded from ``seeds`` and the window's number:
    stateless, so the same seeds give the same order whatever the global random state."""
    import tensorflow as tf

    def shuffle(number, block):
        seed = tf.random.experimental.stateless_fold_in(seeds, number)
        order = tf.random.experimental.stateless_shuffle(tf.range(tf.shape(block["index"])[0]), seed=seed)
        return {key: tf.gather(value, order) for key, value in block.items()}

    return records.batch(window).enumerate().map(shuffle).unbatch()


def record_features():
    """The features of one TFRecord `tf.train.Example` (`anomzoo.data.tfrecord` writes them):
    image (the image file's own bytes), index (its position in its split), label, path (the source
    file), defect_type, mask (the mask file's bytes; empty for normal images)."""
    import tensorflow as tf

    return {"image": tf.io.FixedLenFeature([], tf.string), "index": tf.io.FixedLenFeature([], tf.int64),
            "label": tf.io.FixedLenFeature([], tf.int64), "path": tf.io.FixedLenFeature([], tf.string),
            "defect_type": tf.io.FixedLenFeature([], tf.string, default_value="good"),
            "mask": tf.io.FixedLenFeature([], tf.string, default_value="")}


def parse_record(serialized, keys=_PARSE_KEYS):
    """The ``keys`` of one serialized record (`record_features`)."""
    import tensorflow as tf

    features = record_features()
    return tf.io.parse_single_example(serialized, {key: features[key] for key in keys})


# --------------------------------------------------------------------------------------------
# What training and the statistics call, whatever the split's kind
# --------------------------------------------------------------------------------------------


def training_pipeline(split, *, batch_size: int, seed: int, epochs: int, first_epoch: int = 0,
                      drop_remainder: bool = False, shard: tuple[int, int] = (1, 0),
                      whole_batches_of: int | None = None):
    """The training pipeline of a split held in memory (`make_pipeline`, shuffled) or streamed
    (`StreamedSplit.pipeline`): the same dicts, the same order for the same images, the same
    sharding rule. Labels reach the batches only when some training image is anomalous (weak
    supervision, CAVGA_w)."""
    if isinstance(split, StreamedSplit):
        return split.pipeline(batch_size=batch_size, seed=seed, epochs=epochs, first_epoch=first_epoch,
                              drop_remainder=drop_remainder, shard=shard, whole_batches_of=whole_batches_of)
    labels = split.labels if np.any(split.labels == 1) else None
    return make_pipeline(split.images, batch_size=batch_size, shuffle=True, seed=seed, labels=labels, epochs=epochs,
                         first_epoch=first_epoch, drop_remainder=drop_remainder, shard=shard,
                         whole_batches_of=whole_batches_of)


def normal_batches(train, batch_size: int = 64, limit: int | None = STATISTICS_CAP) -> Iterator[np.ndarray]:
    """Chunks of ``batch_size`` training images, for statistics that need them all: an (N, H, W, C)
    array (chunks of it, as they are), a `Split` (its images), or a `StreamedSplit` (streamed: at most
    ``limit`` images, evenly spaced, see `STATISTICS_CAP`)."""
    if isinstance(train, StreamedSplit):
        yield from train.batches(batch_size, limit)
        return
    images = np.asarray(getattr(train, "images", train))
    for start in range(0, len(images), batch_size):
        yield images[start:start + batch_size]


def mean_normal_image(train) -> np.ndarray:
    """(H, W, C) float32: the mean normal training image of an array, a `Split` (as
    ``as_float_images(images).mean(axis=0)`` always was) or a `StreamedSplit` (`StreamedSplit.mean_image`
    over at most `STATISTICS_CAP` evenly spaced images)."""
    if isinstance(train, StreamedSplit):
        return train.mean_image(limit=STATISTICS_CAP)
    images = np.asarray(getattr(train, "images", train))
    floats = images.astype("float32") / 255.0 if images.dtype == np.uint8 else images.astype("float32")
    return floats.mean(axis=0)


# --------------------------------------------------------------------------------------------
# An MVTec-layout folder with its training images streamed
# --------------------------------------------------------------------------------------------


def in_memory_splits(decoded_validation, validation_files, decoded_test, test_files, test_types, test_masks,
                     image_size, channels):
    """(validation, test) `Split`s from decoded images and masks, finished exactly as `load_mvtec` does."""
    from anomzoo.data.mvtec import _finish, _finish_masks, _make_split

    if decoded_validation:
        images = _finish(decoded_validation, validation_files, image_size, channels)
    else:
        images = np.zeros((0, image_size, image_size, channels), np.uint8)
    validation = _make_split(images, np.zeros(len(validation_files)), np.zeros(images.shape[:3] + (1,), np.uint8),
                             ["good"] * len(validation_files), validation_files)
    test = _make_split(_finish(decoded_test, test_files, image_size, channels),
                       [int(t != "good") for t in test_types], _finish_masks(test_masks, image_size),
                       test_types, test_files)
    return validation, test


def load_mvtec_streamed(root, *, image_size: int = 256, channels: int | None = None,
                        validation_fraction: float = 0.1, seed: int = 0):
    """`load_mvtec` with the training images left on disk: an `AnomalyDataset` whose train split is a
    `StreamedSplit` of the sorted train/good files and whose validation and test splits are the
    in-memory `Split`s `load_mvtec` returns (the same images: without validation/good, the same seeded
    part of train/good is validation, and only the rest streams).

    Only the training files' first bytes are read here, to name any that tf.io cannot decode
    (TIFF, WebP, not an image) now rather than at its batch; with ``channels=None``, also to see
    whether any is in colour (3 channels if any image is, as `load_mvtec` decides).
    """
    from anomzoo.data.mvtec import _read_all, _read_mask, check_image_options
    from anomzoo.data.protocols import split_off_validation
    from anomzoo.data.types import AnomalyDataset

    check_image_options(image_size, channels)
    if image_size is None:
        raise DatasetError("streaming needs an image_size: streamed images are resized to one square size")
    files = list_mvtec(root)
    formats = check_streamable(files.train)
    train_files = list(files.train)
    if files.validation:
        validation_files = list(files.validation)
    else:
        train_idx, val_idx = split_off_validation(len(train_files), validation_fraction, seed,
                                                  what=str(files.root / "train" / "good"))
        validation_files = [train_files[i] for i in val_idx]
        train_files = [train_files[i] for i in train_idx]
    decoded = _read_all(validation_files + files.test) if validation_files + files.test else []
    decoded_validation, decoded_test = decoded[:len(validation_files)], decoded[len(validation_files):]
    test_masks = [np.zeros(image.shape[:2] + (1,), np.uint8) if mask is None else _read_mask(mask, path, image.shape)
                  for image, path, mask in zip(decoded_test, files.test, files.masks)]
    if channels is None:
        in_memory_colour = any(image.shape[2] == 3 for image in decoded)
        channels = 3 if in_memory_colour or any_colour(files.train, formats) else 1
    validation, test = in_memory_splits(decoded_validation, validation_files, decoded_test, files.test,
                                        files.test_types, test_masks, image_size, channels)
    train = StreamedSplit(image_shape=(image_size, image_size, channels), labels=np.zeros(len(train_files)),
                          paths=np.asarray([str(p) for p in train_files], dtype=str))
    return AnomalyDataset(name="mvtec", protocol="mvtec", target=files.root.resolve().name,
                          train=train, validation=validation, test=test)


# --------------------------------------------------------------------------------------------
# File headers: what tf.io can decode, and which files are in colour
# --------------------------------------------------------------------------------------------

_SIGNATURES = ((b"\x89PNG\r\n\x1a\n", "PNG"), (b"\xff\xd8\xff", "JPEG"), (b"GIF8", "GIF"), (b"BM", "BMP"),
               (b"II*\x00", "TIFF"), (b"MM\x00*", "TIFF"))


def file_format(path) -> str:
    """"PNG", "JPEG", "GIF", "BMP", "TIFF", "WebP" from a file's first bytes; a DatasetError naming
    the file when it is empty, unreadable or none of these."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(16)
    except OSError as error:
        raise DatasetError(f"cannot read image {path}: {error}") from error
    return bytes_format(head, path)


def bytes_format(data: bytes, source) -> str:
    """`file_format` of a file's bytes (its first 16 suffice); ``source`` names it in the error."""
    if not data:
        raise DatasetError(f"cannot decode image {source}: the file is empty")
    for signature, name in _SIGNATURES:
        if data.startswith(signature):
            return name
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WebP"
    raise DatasetError(f"cannot decode image {source}: it is not an image file (it starts with {data[:8]!r}; "
                       f"{TF_IMAGE_FORMATS}, TIFF or WebP expected)")


def check_streamable(paths) -> list[str]:
    """The format of each file (`file_format`), or a DatasetError naming the first that tf.io cannot
    decode in a pipeline. One file after the other: 16 bytes each, and no future per file held."""
    formats = []
    for path in paths:
        kind = file_format(path)
        if kind not in TF_IMAGE_FORMATS.split(", "):
            raise DatasetError(f"cannot stream {path}: it is a {kind} file, and streaming decodes with tf.io, which "
                               f"reads {TF_IMAGE_FORMATS}; convert it, load without streaming, or write TFRecords "
                               "(anomzoo data to-tfrecord stores such images losslessly as PNG)")
        formats.append(kind)
    return formats


def any_colour(paths, formats) -> bool:
    """Whether any file decodes to colour (3 channels) with the OpenCV loaders, read from PNG and JPEG
    headers (other formats are decoded); stops at the first colour file."""
    from anomzoo.data.mvtec import read_image

    for path, kind in zip(paths, formats):
        colour = _header_colour(path, kind)
        if colour is None:
            colour = read_image(path).shape[2] == 3
        if colour:
            return True
    return False


def _header_colour(path, kind) -> bool | None:
    """Colour or grey from a PNG's colour type or a JPEG's component count; None when unknown."""
    with open(path, "rb") as handle:
        if kind == "PNG":
            head = handle.read(26)
            # 2 RGB, 3 palette (OpenCV expands it to BGR), 6 RGBA: colour; 0 grey, 4 grey + alpha: grey.
            return head[25] in (2, 3, 6) if len(head) == 26 and head[12:16] == b"IHDR" else None
        if kind == "JPEG":
            components = _jpeg_components(handle)
            return None if components is None else components != 1  # OpenCV turns CMYK into BGR
    return None


def _jpeg_components(handle) -> int | None:
    """The component count in a JPEG's start-of-frame segment (1 grey, 3 YCbCr, 4 CMYK)."""
    handle.seek(2)
    while True:
        marker = handle.read(2)
        if len(marker) < 2 or marker[0] != 0xFF:
            return None
        kind = marker[1]
        if kind == 0xFF:  # fill byte: the marker follows
            handle.seek(-1, 1)
            continue
        if kind == 0x01 or 0xD0 <= kind <= 0xD8:  # markers without a length
            continue
        length = int.from_bytes(handle.read(2), "big")
        if kind in (0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF):
            frame = handle.read(6)
            return frame[5] if len(frame) == 6 else None
        if length < 2 or kind == 0xDA:  # a broken length, or the scan began without a frame
            return None
        handle.seek(length - 2, 1)
