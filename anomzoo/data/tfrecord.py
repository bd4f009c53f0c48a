"""An MVTec-layout category as TFRecord shards: a complete dataset that streams from disk or GCS.

    write_tfrecords("mvtec/bottle", "gs://bucket/bottle-tfrecord")   # or: anomzoo data to-tfrecord
    load_dataset("gs://bucket/bottle-tfrecord", streaming=True)

The folder holds ``<split>-<j>-of-<n>.tfrecord`` shards of about ``shard_bytes`` each for train,
validation (when the source has validation/good) and test, and a JSON manifest (`MANIFEST`: counts,
shards, the image size to decode to, channels, the source). Each record is one image
(`anomzoo.data.streaming.record_features`): the image file's own bytes (no re-encoding, so tf.io and
OpenCV decode it as they decode the file; TIFF and WebP, which tf.io cannot decode, are stored as
lossless PNG of what OpenCV decodes), its index in its split (the sorted order `load_mvtec` uses),
label, path, defect type and, for defective test images, the mask file's bytes. Records of a split
are written in index order, in consecutive blocks of near-equal counts, one block per shard.

Every image and mask is decoded once while writing, so an unreadable file or a mask of the wrong size
is reported then, by name. The whole folder appears at once (local folders: written beside it and
renamed; gs:// and other remote folders: each file written under a temporary name and renamed, the
manifest last, and everything removed again on failure): a folder without its manifest was never
finished, and loading it says so.
"""

from __future__ import annotations

import concurrent.futures
import json
import math
import os
import pathlib
import posixpath

import numpy as np

from anomzoo.data.errors import DatasetError
from anomzoo.data.mvtec import list_mvtec
from anomzoo.data.pipeline import TF_IMAGE_FORMATS
from anomzoo.data.streaming import (StreamedSplit, bytes_format, in_memory_splits, parse_record,
                                    record_features)

#: the manifest's file name: its presence is what makes a folder a TFRecord dataset.
MANIFEST = "anomzoo_tfrecord.json"
FORMAT = "anomzoo-tfrecord"
VERSION = 1
#: images decoded (and their bytes held) at once while writing.
_CHUNK = 64


def is_remote(path) -> bool:
    return "://" in str(path)


def join(folder, name) -> str:
    """``folder/name`` for local folders and URLs alike (pathlib would turn gs:// into gs:/)."""
    folder = str(folder)
    return posixpath.join(folder, name) if is_remote(folder) else os.path.join(folder, name)


def is_tfrecord_folder(path) -> bool:
    """Whether ``path`` is a folder `write_tfrecords` finished (it holds `MANIFEST`)."""
    if is_remote(path):
        import tensorflow as tf

        return tf.io.gfile.exists(join(path, MANIFEST))
    return os.path.isfile(join(path, MANIFEST))


# --------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------


def write_tfrecords(source, out_dir, *, image_size: int = 256, category: str | None = None,
                    shard_bytes: int = 100_000_000) -> dict:
    """Write the MVTec-layout category folder ``source`` (or ``source/category``) as TFRecord shards
    and a manifest into ``out_dir``, a new or empty folder (local or gs://).

    image_size : the square side `load_dataset` decodes to by default (the records keep the files'
        own size, so another ``image_size=`` works too when loading).
    shard_bytes : about this many bytes of image and mask files per shard (100 MB: large enough to
        read fast from GCS, small enough that many shards spread over many workers).

    Returns the manifest (a dict). Raises FileNotFoundError or DatasetError naming the file at fault
    (a missing folder or mask, an unreadable image, a mask whose size differs from its image's) and
    ValueError for an ``out_dir`` that is not new or empty.
    """
    from anomzoo.data.mvtec import check_image_options

    check_image_options(image_size, None)
    if image_size is None:
        raise DatasetError("write_tfrecords needs an image_size (the default size records are decoded to)")
    if isinstance(shard_bytes, bool) or not isinstance(shard_bytes, (int, np.integer)) or shard_bytes < 1:
        raise ValueError(f"shard_bytes must be a positive int, got {shard_bytes!r}")
    root = pathlib.Path(source) / category if category else pathlib.Path(source)
    files = list_mvtec(root)
    _check_new_folder(out_dir)
    splits = {"train": ([(p, None, "good") for p in files.train]),
              "validation": ([(p, None, "good") for p in files.validation]),
              "test": list(zip(files.test, files.masks, files.test_types))}
    if not splits["validation"]:
        del splits["validation"]
    if is_remote(out_dir):
        return _write_remote(out_dir, splits, files.root, image_size, shard_bytes)
    from anomzoo.files import atomic_directory

    with atomic_directory(out_dir) as tmp:
        manifest = _write_all(str(tmp), splits, files.root, image_size, shard_bytes)
    return manifest


def _check_new_folder(out_dir):
    if not is_remote(out_dir):
        from anomzoo.files import check_new_directory

        check_new_directory(out_dir, flag="the TFRecord folder")
        return
    import tensorflow as tf

    if tf.io.gfile.exists(out_dir) and tf.io.gfile.listdir(out_dir):
        raise ValueError(f"the TFRecord folder {out_dir} is not empty; choose a new folder")


def _write_remote(out_dir, splits, root, image_size, shard_bytes):
    """`_write_all` into a remote folder, removing every file it wrote when it fails."""
    import tensorflow as tf

    written = []
    try:
        return _write_all(str(out_dir), splits, root, image_size, shard_bytes, written)
    except BaseException:
        for path in written:
            if tf.io.gfile.exists(path):
                tf.io.gfile.remove(path)
        raise


def _write_all(folder, splits, root, image_size, shard_bytes, written=None):
    """Every split's shards, then the manifest (each file under a temporary name, then renamed)."""
    written = [] if written is None else written
    colour, reencoded, facts = False, [], {}
    for split, items in splits.items():
        facts[split], split_colour, split_reencoded = _write_split(folder, split, items, shard_bytes, written)
        colour |= split_colour
        reencoded += split_reencoded
    manifest = {"format": FORMAT, "version": VERSION, "source": str(root.resolve()), "category": root.resolve().name,
                "image_size": int(image_size), "channels": 3 if colour else 1,
                "reencoded_as_png": [str(p) for p in reencoded], "splits": facts}
    _write_file(folder, MANIFEST, json.dumps(manifest, indent=2).encode(), written)
    return manifest


def _write_split(folder, split, items, shard_bytes, written):
    """(facts, any colour image, paths re-encoded as PNG) after writing ``items`` (path, mask, type)."""
    import tensorflow as tf

    sizes = [os.path.getsize(path) + (os.path.getsize(mask) if mask else 0) for path, mask, _ in items]
    count = max(1, math.ceil(sum(sizes) / shard_bytes))
    blocks = np.array_split(np.arange(len(items)), count)
    shards, colour, reencoded = [], False, []
    with concurrent.futures.ThreadPoolExecutor(min(8, os.cpu_count() or 1)) as pool:
        for number, block in enumerate(blocks):
            name = f"{split}-{number:05d}-of-{count:05d}.tfrecord"
            final, tmp = join(folder, name), join(folder, f".{name}.tmp")
            written.append(tmp)
            with tf.io.TFRecordWriter(tmp) as writer:
                for start in range(0, len(block), _CHUNK):
                    chunk = [items[i] for i in block[start:start + _CHUNK]]
                    for index, (path, mask, kind), (data, mask_data, is_colour, was_reencoded) in zip(
                            block[start:start + _CHUNK], chunk, pool.map(_record_bytes, chunk)):
                        writer.write(_example(data, int(index), int(kind != "good"), str(path), kind, mask_data))
                        colour |= is_colour
                        if was_reencoded:
                            reencoded.append(path)
            written.append(final)
            tf.io.gfile.rename(tmp, final, overwrite=True)
            shards.append({"file": name, "count": int(len(block)), "first_index": int(block[0]) if len(block) else 0})
    facts = {"count": len(items), "anomalous": sum(kind != "good" for _, _, kind in items), "shards": shards}
    return facts, colour, reencoded


def _record_bytes(item):
    """(image bytes, mask bytes, colour, re-encoded) of one (path, mask path, type), after decoding
    both as `load_mvtec` does, so that an unreadable file is reported here, by name."""
    import cv2

    from anomzoo.data.mvtec import _decode, _read_mask, to_hwc_rgb

    path, mask, _ = item
    try:
        data = pathlib.Path(path).read_bytes()
    except OSError as error:
        raise DatasetError(f"cannot read image {path}: {error}") from error
    kind = bytes_format(data, path)  # a DatasetError naming the file when it is not an image
    image = to_hwc_rgb(_decode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED, path), str(path))
    reencoded = kind not in TF_IMAGE_FORMATS.split(", ")
    if reencoded:  # lossless PNG of what OpenCV decoded: both decoders then read these very pixels
        bgr = image if image.shape[2] == 1 else cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
        ok, encoded = cv2.imencode(".png", bgr)
        if not ok:
            raise DatasetError(f"cannot store {path} as PNG")
        data = encoded.tobytes()
    mask_data = b""
    if mask is not None:
        _read_mask(mask, path, image.shape)  # a DatasetError when the mask is unreadable or of another size
        mask_data = pathlib.Path(mask).read_bytes()
    return data, mask_data, image.shape[2] == 3, reencoded


def _example(image, index, label, path, defect_type, mask):
    import tensorflow as tf

    def as_bytes(value):
        return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))

    def as_int(value):
        return tf.train.Feature(int64_list=tf.train.Int64List(value=[value]))

    features = {"image": as_bytes(image), "index": as_int(index), "label": as_int(label),
                "path": as_bytes(path.encode()), "defect_type": as_bytes(defect_type.encode()), "mask": as_bytes(mask)}
    assert set(features) == set(record_features())
    return tf.train.Example(features=tf.train.Features(feature=features)).SerializeToString()


def _write_file(folder, name, data, written):
    import tensorflow as tf

    final, tmp = join(folder, name), join(folder, f".{name}.tmp")
    written.append(tmp)
    with tf.io.gfile.GFile(tmp, "wb") as handle:
        handle.write(data)
    written.append(final)
    tf.io.gfile.rename(tmp, final, overwrite=True)


# --------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------


def read_manifest(folder) -> dict:
    """The manifest of a TFRecord folder, checked; a DatasetError naming the folder otherwise."""
    import tensorflow as tf

    path = join(folder, MANIFEST)
    if not tf.io.gfile.exists(path):
        raise DatasetError(f"{folder} is not a TFRecord dataset: it has no {MANIFEST} (written last by anomzoo data "
                           "to-tfrecord; a folder without it was never finished)")
    try:
        with tf.io.gfile.GFile(path, "rb") as handle:
            manifest = json.loads(handle.read())
    except (ValueError, UnicodeDecodeError) as error:
        raise DatasetError(f"{path} is not a readable manifest: {error}") from None
    if manifest.get("format") != FORMAT or manifest.get("version") != VERSION:
        raise DatasetError(f"{path} is not an anomzoo TFRecord manifest of version {VERSION} "
                           f"(format {manifest.get('format')!r}, version {manifest.get('version')!r})")
    for split in ("train", "test"):
        if split not in manifest.get("splits", {}):
            raise DatasetError(f"{path} lists no {split} split")
    return manifest


def _shard_files(folder, facts, split):
    """The shard files of ``split`` (checked to exist) and their record counts."""
    import tensorflow as tf

    files = [join(folder, shard["file"]) for shard in facts["shards"]]
    missing = [f for f in files if not tf.io.gfile.exists(f)]
    if missing:
        raise DatasetError(f"the {split} shard {missing[0]} listed in {join(folder, MANIFEST)} is missing "
                           f"({len(missing)} of {len(files)} missing)")
    return files, [int(shard["count"]) for shard in facts["shards"]]


def _read_records(files, indices=None):
    """{index: (image bytes, path, defect type, mask bytes)} of the records (those of ``indices``, if given)."""
    import tensorflow as tf

    wanted = None if indices is None else set(int(i) for i in indices)
    keys = ("image", "index", "path", "defect_type", "mask")
    records = {}
    for record in tf.data.TFRecordDataset(files).map(lambda r: parse_record(r, keys)).as_numpy_iterator():
        index = int(record["index"])
        if wanted is None or index in wanted:
            records[index] = (record["image"], record["path"].decode(), record["defect_type"].decode(),
                              record["mask"])
    return [records[i] for i in sorted(records)]


def _decode_records(records):
    """OpenCV decodes of the records' images and masks, as `load_mvtec` decodes the files."""
    import cv2

    from anomzoo.data.mvtec import _decode, to_hwc_rgb

    images, masks = [], []
    for data, path, _, mask in records:
        images.append(to_hwc_rgb(_decode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED, path), path))
        if mask:
            decoded = _decode(np.frombuffer(mask, np.uint8), cv2.IMREAD_GRAYSCALE, path)
            masks.append((decoded > 0).astype(np.uint8)[:, :, None])
        else:
            masks.append(np.zeros(images[-1].shape[:2] + (1,), np.uint8))
    return images, masks


def load_tfrecord_dataset(folder, *, image_size: int | None = None, channels: int | None = None,
                          validation_fraction: float = 0.1, seed: int = 0, streaming: bool = True):
    """The `AnomalyDataset` of a folder `write_tfrecords` wrote: the images `load_mvtec` gives for its
    source folder, bit for bit (test and validation decoded with OpenCV, the training images by
    `decode_image_bytes` as they stream; see `anomzoo.data.tf_decode` for where the two may differ).

    streaming : True: train is a `StreamedSplit` of the train shards; False: every split in memory.
    image_size, channels : default: the manifest's (the writer's ``image_size``; 3 if any image is in colour).
    validation_fraction, seed : when the source had no validation/good, that seeded part of train/good
        (`split_off_validation`, as `load_mvtec` draws it) is read into memory as validation (one pass
        over the train shards, decoding only those), and only the rest streams.
    """
    from anomzoo.data.mvtec import _finish, _make_split, check_image_options
    from anomzoo.data.protocols import split_off_validation
    from anomzoo.data.types import AnomalyDataset

    check_image_options(image_size, channels)
    folder = str(folder)
    manifest = read_manifest(folder)
    size = int(image_size or manifest["image_size"])
    channels = int(channels or manifest["channels"])
    facts = manifest["splits"]
    train_files, train_counts = _shard_files(folder, facts["train"], "train")
    n_train = int(facts["train"]["count"])
    if "validation" in facts:
        validation_records = _read_records(_shard_files(folder, facts["validation"], "validation")[0])
        train_index = np.arange(n_train)
    else:
        train_index, val_index = split_off_validation(n_train, validation_fraction, seed,
                                                      what=f"{manifest['source']}/train/good (in {folder})")
        validation_records = _read_records(train_files, val_index) if len(val_index) else []
    test_records = _read_records(_shard_files(folder, facts["test"], "test")[0])
    validation_images, _ = _decode_records(validation_records)
    test_images, test_masks = _decode_records(test_records)
    validation, test = in_memory_splits(validation_images, [r[1] for r in validation_records], test_images,
                                        [r[1] for r in test_records], [r[2] for r in test_records], test_masks,
                                        size, channels)
    if streaming:
        train = StreamedSplit(image_shape=(size, size, channels), labels=np.zeros(len(train_index)),
                              record_files=tuple(train_files), record_counts=tuple(train_counts),
                              record_index=None if len(train_index) == n_train else train_index)
    else:
        records = _read_records(train_files, train_index)
        images, _ = _decode_records(records)
        paths = [r[1] for r in records]
        stacked = _finish(images, paths, size, channels)
        train = _make_split(stacked, np.zeros(len(paths)), np.zeros(stacked.shape[:3] + (1,), np.uint8),
                            ["good"] * len(paths), paths)
    return AnomalyDataset(name="mvtec", protocol="mvtec", target=manifest["category"],
                          train=train, validation=validation, test=test)
