"""``load_dataset``: the one entry point from a dataset name or folder to an ``AnomalyDataset``."""

from __future__ import annotations

import os
import pathlib

import numpy as np

from anomzoo.data import cifar10, digits, idx
from anomzoo.data.errors import DatasetError
from anomzoo.data.mvtec import check_image_options, convert_channels, load_mvtec, resize_images
from anomzoo.data.protocols import leave_one_class_out, one_class

DATASETS = ("digits", "mnist", "fashion_mnist", "cifar10")
DATA_DIR_ENV = "ANOMZOO_DATA_DIR"
# GANomaly and its successors resize MNIST 28 -> 32 so that the encoders' stride-2 stages divide evenly.
DEFAULT_IMAGE_SIZE = {"digits": 32, "mnist": 32, "fashion_mnist": 32, "cifar10": 32, "mvtec": 256}
FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
                         "Bag", "Ankle boot")
MNIST_CLASSES = tuple(str(d) for d in range(10))
DATA_DIR_HINT = (f"pass data_dir= or set the environment variable {DATA_DIR_ENV} to a folder holding "
                 "mnist/ and fashion_mnist/ (the four idx .gz files each) and cifar10_jpg.tar.gz or cifar10/ "
                 "(<split>/<class>/ image folders)")


def _keras_download(name: str):
    """(x_train, y_train, x_test, y_test) from ``keras.datasets``, which downloads on first use."""
    try:
        import keras

        (x_train, y_train), (x_test, y_test) = getattr(keras.datasets, name).load_data()
    except Exception as err:  # noqa: BLE001 - any failure here means "no data", whatever its kind
        raise DatasetError(f"no local copy of {name} was given and keras.datasets.{name}.load_data() failed "
                           f"({type(err).__name__}: {err}); {DATA_DIR_HINT}") from err
    if x_train.ndim == 3:  # MNIST-like arrays come without a channel axis
        x_train, x_test = x_train[..., None], x_test[..., None]
    return x_train, np.ravel(y_train), x_test, np.ravel(y_test)


def _first_existing(candidates: list[pathlib.Path], name: str) -> pathlib.Path:
    for candidate in candidates:
        if candidate.exists():
            return candidate
    raise FileNotFoundError(f"{name} not found in data_dir: tried {', '.join(str(c) for c in candidates)}; "
                            + DATA_DIR_HINT)


def _load_arrays(name: str, data_dir: pathlib.Path | None):
    """(x_train, y_train, x_test, y_test, class_names) of an array dataset, images NHWC uint8."""
    if name == "digits":
        return digits.load_digits_arrays(seed=0)  # fixed split: test sets stay comparable across seeds
    classes = {"mnist": MNIST_CLASSES, "fashion_mnist": FASHION_MNIST_CLASSES, "cifar10": cifar10.CLASS_NAMES}[name]
    if data_dir is None:
        return (*_keras_download(name), classes)
    if name in ("mnist", "fashion_mnist"):
        # data_dir may be the parent (holding mnist/) or the idx folder itself.
        found = _first_existing([data_dir / name, data_dir / (idx.FILES["x_train"] + ".gz")], name)
        return (*idx.load_idx_folder(found if found.is_dir() else found.parent), classes)
    source = _first_existing([data_dir / "cifar10_jpg.tar.gz", data_dir / "cifar10", data_dir / "cifar10_jpg",
                              data_dir / "cifar-10-batches-py"], name)
    return cifar10.load_cifar10_arrays(source)


def _mvtec_folder(path: pathlib.Path, category: str | None) -> pathlib.Path:
    if not path.exists():
        raise FileNotFoundError(f"dataset folder not found: {path} (expected an MVTec category folder "
                                "with train/good/ and test/, or an MVTec root folder with category=)")
    if category is not None:
        folder = path / category
        if not folder.is_dir():
            found = sorted(p.name for p in path.iterdir() if (p / "train").is_dir()) if path.is_dir() else []
            raise FileNotFoundError(f"category folder not found: {folder}; categories in {path}: "
                                    f"{', '.join(found) or 'none'}")
        return folder
    if not (path / "train").is_dir():
        found = sorted(p.name for p in path.iterdir() if (p / "train").is_dir()) if path.is_dir() else []
        if found:
            raise DatasetError(f"{path} is an MVTec root folder; pass category= one of {', '.join(found)}")
        raise DatasetError(f"{path} is not an MVTec category folder: it has no train/ folder "
                           "(expected train/good/, test/<type>/, ground_truth/<type>/)")
    return path


def load_dataset(name_or_path: str | os.PathLike, *, category: str | None = None,
                 normal_class: int | str | None = None, anomalous_class: int | str | None = None,
                 image_size: int | None = None, channels: int | None = None,
                 data_dir: str | os.PathLike | None = None, validation_fraction: float = 0.1,
                 seed: int = 0, weak_fraction: float | None = None,
                 labelled_validation_fraction: float | None = None, streaming: bool = False):
    """Load a dataset under an anomaly-detection protocol.

    Parameters
    ----------
    name_or_path : one of ``DATASETS`` ("digits", "mnist", "fashion_mnist", "cifar10"), or the path
        of an MVTec-layout category folder (or of an MVTec root folder, with ``category=``), or of a
        TFRecord folder written by `anomzoo.data.tfrecord.write_tfrecords` (local or gs://; known by
        its manifest).
    category : the category sub-folder, for an MVTec root folder.
    normal_class : array datasets, one-class protocol: this class (index or name) is normal.
    anomalous_class : array datasets, leave-one-class-out protocol: this class is anomalous.
        Give at most one of the two; neither means ``normal_class=0``.
    image_size : side of the square images; default 32 for the array datasets (MNIST is resized
        28 -> 32 as in GANomaly), 256 for MVTec folders, the writer's for TFRecord folders.
    channels : 1 or 3; None keeps the data's own (1 for MNIST/digits, 3 for CIFAR-10, MVTec: as
        the files are).
    data_dir : folder holding ``mnist/``, ``fashion_mnist/``, ``cifar10_jpg.tar.gz`` or ``cifar10/``.
        Default: the environment variable ``ANOMZOO_DATA_DIR``; when neither is set, MNIST,
        Fashion-MNIST and CIFAR-10 come from ``keras.datasets`` (downloaded once, needs internet).
    validation_fraction, seed : seeded fraction of the normal training images kept for validation
        (MVTec folders with ``validation/good`` use that folder instead).
    weak_fraction : the weakly supervised setting (CAVGA_w): this seeded fraction of the anomalous
        test images moves into training with label 1 (``anomzoo.data.weak``).
    labelled_validation_fraction : this seeded fraction of each test defect type (and of the good
        test images) moves out of the test split into ``labelled_validation``, with masks, for
        choosing weights on real defects (``anomzoo.data.labelled_validation``).
    streaming : MVTec-layout and TFRecord folders: leave the training images on disk; the train
        split is then a `StreamedSplit` (`anomzoo.data.streaming`), read batch by batch as training
        runs, and validation and test are loaded into memory (the same images as without streaming).

    Returns
    -------
    AnomalyDataset

    Raises
    ------
    FileNotFoundError : a path that does not exist.
    DatasetError (a ValueError) : an unknown name or class, conflicting arguments, bad data.
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise DatasetError(f"seed must be a non-negative int, got {seed!r}")
    if streaming and weak_fraction is not None:
        raise DatasetError("weak_fraction moves anomalous test images into the training split, which streaming "
                           "leaves on disk: load without streaming for the weakly supervised setting")
    if weak_fraction is not None or labelled_validation_fraction is not None:
        # Both rearrange the plain protocol's splits: load it, then move images (weak labels first).
        from anomzoo.data.labelled_validation import hold_out_labelled
        from anomzoo.data.weak import weakly_supervised

        dataset = load_dataset(name_or_path, category=category, normal_class=normal_class,
                               anomalous_class=anomalous_class, image_size=image_size, channels=channels,
                               data_dir=data_dir, validation_fraction=validation_fraction, seed=seed,
                               streaming=streaming)
        if weak_fraction is not None:
            dataset = weakly_supervised(dataset, weak_fraction, seed)
        if labelled_validation_fraction is not None:
            dataset = hold_out_labelled(dataset, labelled_validation_fraction)
        return dataset
    check_image_options(image_size, channels)
    if isinstance(name_or_path, str) and name_or_path.lower() in DATASETS:
        name = name_or_path.lower()
        if category is not None:
            raise DatasetError(f"category={category!r} applies to MVTec folders only, not to {name!r}")
        if streaming:
            raise DatasetError(f"streaming applies to MVTec-layout and TFRecord folders; {name} is loaded into "
                               "memory whole (it fits): load it without streaming")
        if normal_class is not None and anomalous_class is not None:
            raise DatasetError("give normal_class (one-class protocol) or anomalous_class (leave-one-class-out), "
                               f"not both (got {normal_class!r} and {anomalous_class!r})")
        if data_dir is None and os.environ.get(DATA_DIR_ENV):
            data_dir = os.environ[DATA_DIR_ENV]
        if data_dir is not None and not pathlib.Path(data_dir).is_dir():
            raise FileNotFoundError(f"data_dir not found: {data_dir}")
        data_path = None if data_dir is None else pathlib.Path(data_dir)
        x_train, y_train, x_test, y_test, classes = _load_arrays(name, data_path)
        size = DEFAULT_IMAGE_SIZE[name] if image_size is None else image_size
        x_train = convert_channels(resize_images(x_train, size), channels)
        x_test = convert_channels(resize_images(x_test, size), channels)
        common = dict(dataset=name, validation_fraction=validation_fraction, seed=seed)
        if anomalous_class is not None:
            return leave_one_class_out(x_train, y_train, x_test, y_test, classes, anomalous_class, **common)
        return one_class(x_train, y_train, x_test, y_test, classes, 0 if normal_class is None else normal_class,
                         **common)

    from anomzoo.data import tfrecord

    records = tfrecord.join(name_or_path, category) if category is not None else str(name_or_path)
    if tfrecord.is_tfrecord_folder(records) or tfrecord.is_remote(records):  # remote folders: TFRecords only
        if normal_class is not None or anomalous_class is not None:
            raise DatasetError(f"normal_class / anomalous_class apply to the array datasets, not to the TFRecord "
                               f"folder {records}")
        return tfrecord.load_tfrecord_dataset(records, image_size=image_size, channels=channels,
                                              validation_fraction=validation_fraction, seed=seed, streaming=streaming)
    if isinstance(name_or_path, str) and os.sep not in name_or_path and "/" not in name_or_path \
            and not pathlib.Path(name_or_path).exists():
        raise DatasetError(f"unknown dataset {name_or_path!r}; expected one of {', '.join(DATASETS)} "
                           "or the path of an MVTec-layout folder")
    if normal_class is not None or anomalous_class is not None:
        raise DatasetError("normal_class / anomalous_class apply to the array datasets "
                           f"({', '.join(DATASETS)}), not to the MVTec folder {name_or_path}")
    folder = _mvtec_folder(pathlib.Path(name_or_path), category)
    if streaming:
        from anomzoo.data.streaming import load_mvtec_streamed

        return load_mvtec_streamed(folder, image_size=DEFAULT_IMAGE_SIZE["mvtec"] if image_size is None else image_size,
                                   channels=channels, validation_fraction=validation_fraction, seed=seed)
    return load_mvtec(folder, image_size=DEFAULT_IMAGE_SIZE["mvtec"] if image_size is None else image_size,
                      channels=channels, validation_fraction=validation_fraction, seed=seed)
