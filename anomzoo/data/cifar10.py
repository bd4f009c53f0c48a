"""Read CIFAR-10 from class folders, from a tar archive of them, or from the original pickles.

Accepted sources (nothing is extracted or cached on disk):

* a folder ``<root>/{train,test}/<class>/*.jpg|png``;
* an archive such as ``cifar10_jpg.tar.gz`` holding ``<top>/{train,test}/<class>/NNNN.jpg``,
  read member by member with tarfile and decoded in memory with ``cv2.imdecode``
  (all 60,000 images in about 5 s);
* the original python download ``cifar-10-batches-py/`` (data_batch_1..5, test_batch).
"""

from __future__ import annotations

import os
import pathlib
import pickle
import tarfile

import cv2
import numpy as np

from anomzoo.data.errors import DatasetError
from anomzoo.data.mvtec import IMAGE_EXTENSIONS, is_hidden, read_image, to_hwc_rgb

# The standard CIFAR-10 label order (batches.meta of the original release).
CLASS_NAMES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
SPLITS = ("train", "test")

Arrays = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, tuple[str, ...]]


def _assemble(items: dict[str, list[tuple[int, str, np.ndarray]]], source: str) -> Arrays:
    """Sort (class, name, image) items of each split and stack them into arrays."""
    out = []
    for split in SPLITS:
        entries = sorted(items[split], key=lambda e: (e[0], e[1]))  # deterministic, whatever the listing order
        if not entries:
            raise DatasetError(f"no {split} images in {source} (expected {split}/<class>/*.jpg for classes "
                               f"{', '.join(CLASS_NAMES)})")
        missing = sorted(set(CLASS_NAMES) - {CLASS_NAMES[e[0]] for e in entries})
        if missing:
            raise DatasetError(f"{source} has no {split} images of class(es) {', '.join(missing)}")
        for _, name, image in entries:
            if image.shape != (32, 32, 3):
                raise DatasetError(f"CIFAR-10 image {name} is {image.shape}, expected (32, 32, 3)")
        out.append(np.stack([e[2] for e in entries]))
        out.append(np.array([e[0] for e in entries], dtype=np.int64))
    return out[0], out[1], out[2], out[3], CLASS_NAMES


def _class_index(name: str, where: str) -> int:
    if name not in CLASS_NAMES:
        raise DatasetError(f"unknown CIFAR-10 class folder {name!r} in {where}; expected one of "
                           f"{', '.join(CLASS_NAMES)}")
    return CLASS_NAMES.index(name)


def load_cifar10_archive(path: str | os.PathLike) -> Arrays:
    """Read every image of a tar(.gz) archive laid out as ``<top>/{train,test}/<class>/<file>``."""
    path = pathlib.Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"CIFAR-10 archive not found: {path}")
    members = []  # (split, label, name, encoded bytes)
    try:
        with tarfile.open(path, "r:*") as tar:
            for member in tar:  # streaming: a gzip archive is read once, front to back
                parts = member.name.split("/")
                if not member.isfile() or len(parts) < 3 or parts[-3] not in SPLITS:
                    continue
                if os.path.splitext(parts[-1])[1].lower() not in IMAGE_EXTENSIONS:
                    continue
                label = _class_index(parts[-2], f"{path}:{member.name}")
                members.append((parts[-3], label, member.name, tar.extractfile(member).read()))
    except (tarfile.TarError, OSError, EOFError) as err:
        raise DatasetError(f"cannot read CIFAR-10 archive {path}: {err}") from err

    # A plain loop: 32x32 JPEGs decode in ~25 us each, too little work for threads to pay off.
    items: dict[str, list] = {split: [] for split in SPLITS}
    for split, label, name, raw in members:
        data = np.frombuffer(raw, dtype=np.uint8)
        image = to_hwc_rgb(cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None, f"{path}:{name}")
        items[split].append((label, name, image))
    return _assemble(items, str(path))


def load_cifar10_folder(root: str | os.PathLike) -> Arrays:
    """Read ``<root>/{train,test}/<class>/*`` image folders."""
    root = pathlib.Path(root)
    items: dict[str, list] = {split: [] for split in SPLITS}
    for split in SPLITS:
        split_dir = root / split
        if not split_dir.is_dir():
            raise FileNotFoundError(f"CIFAR-10 folder {split_dir} not found (expected {root}/{{train,test}}/<class>/)")
        for class_dir in sorted(p for p in split_dir.iterdir() if p.is_dir() and not is_hidden(p)):
            label = _class_index(class_dir.name, str(split_dir))
            for file in sorted(class_dir.iterdir()):
                if file.suffix.lower() in IMAGE_EXTENSIONS and not is_hidden(file):
                    items[split].append((label, str(file), read_image(file)))
    return _assemble(items, str(root))


def load_cifar10_pickles(root: str | os.PathLike) -> Arrays:
    """Read the original ``cifar-10-batches-py`` folder (data_batch_1..5 and test_batch)."""
    root = pathlib.Path(root)

    def read(names):
        xs, ys = [], []
        for name in names:
            file = root / name
            if not file.is_file():
                raise FileNotFoundError(f"CIFAR-10 batch file not found: {file}")
            try:
                with open(file, "rb") as f:
                    batch = pickle.load(f, encoding="bytes")
                # Rows are 3072 bytes: the red plane, then green, then blue, each 32x32.
                xs.append(np.asarray(batch[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
                ys.append(np.asarray(batch[b"labels"], dtype=np.int64))
            except (pickle.UnpicklingError, KeyError, ValueError, EOFError) as err:
                raise DatasetError(f"{file} is not a CIFAR-10 python batch: {err}") from err
        return np.concatenate(xs), np.concatenate(ys)

    x_train, y_train = read([f"data_batch_{i}" for i in range(1, 6)])
    x_test, y_test = read(["test_batch"])
    return x_train, y_train, x_test, y_test, CLASS_NAMES


def load_cifar10_arrays(source: str | os.PathLike) -> Arrays:
    """CIFAR-10 as (x_train, y_train, x_test, y_test, class_names) from any accepted source.

    Images are (N, 32, 32, 3) uint8 RGB, labels (N,) int64 in the standard class order. Images
    from folders or archives are sorted by class, then by file name; pickles keep their order.
    """
    source = pathlib.Path(source)
    if source.is_file():
        return load_cifar10_archive(source)
    if (source / "data_batch_1").is_file():
        return load_cifar10_pickles(source)
    if source.is_dir():
        return load_cifar10_folder(source)
    raise FileNotFoundError(f"CIFAR-10 source not found: {source} (expected an archive, a folder with "
                            "train/ and test/ class folders, or cifar-10-batches-py/)")
