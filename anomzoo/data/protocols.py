"""Turn a labelled classification dataset into an anomaly-detection one.

Two protocols from the literature:

* ``one_class`` (CAVGA, ADGAN, OCGAN ...): one class is normal. Train on its training images;
  test on the whole test set, every other class being anomalous.
* ``leave_one_class_out`` (GANomaly, Skip-GANomaly, SAGAN): one class is anomalous. Train on the
  training images of all other classes; test on their test images (normal) plus every image of
  the anomalous class, from train and test alike. For CIFAR-10 that is 45,000 training images and
  9,000 normal + 6,000 anomalous test images, the counts the SAGAN paper gives.

Both take (x_train, y_train, x_test, y_test, class_names) with images as (N, H, W, C) uint8 and
integer class labels, and return an ``AnomalyDataset`` whose validation split is a seeded fraction
of the normal training images, removed from train.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from anomzoo.data.errors import DatasetError
from anomzoo.data.types import AnomalyDataset, Split


def split_off_validation(n: int, fraction: float, seed: int,
                         what: str = "training set") -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, validation) that move a seeded ``fraction`` of ``n`` items to validation.

    Both index arrays are sorted, so the kept training images stay in their original order;
    the same (n, fraction, seed) always gives the same split.
    """
    if not 0.0 <= fraction < 1.0:
        raise DatasetError(f"validation_fraction must be in [0, 1), got {fraction!r}")
    n_val = int(round(fraction * n))
    if fraction > 0 and n_val == 0 and n > 1:
        n_val = 1  # a requested validation split should never come back empty
    if n_val >= n:
        raise DatasetError(f"{what} has {n} image(s): too few to keep any for training after moving "
                           f"validation_fraction={fraction} of them to validation")
    order = np.random.default_rng(seed).permutation(n)
    return np.sort(order[n_val:]), np.sort(order[:n_val])


def resolve_class(value, class_names: Sequence[str], argument: str = "class") -> int:
    """The index of a class given by index or by name (names match case-insensitively)."""
    names = list(class_names)
    valid = ", ".join(f"{i}={name!r}" for i, name in enumerate(names))
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        if 0 <= value < len(names):
            return int(value)
    elif isinstance(value, str):
        lowered = [name.lower() for name in names]
        if value.lower() in lowered:
            return lowered.index(value.lower())
        if value.isdigit() and int(value) < len(names):  # "3" from a command line
            return int(value)
    raise DatasetError(f"unknown {argument} {value!r}; valid classes are {valid}")


def _check_arrays(x_train, y_train, x_test, y_test, class_names) -> None:
    for x, y, split in ((x_train, y_train, "train"), (x_test, y_test, "test")):
        if x.ndim != 4 or x.dtype != np.uint8:
            raise DatasetError(f"{split} images must be (N, H, W, C) uint8, got shape {x.shape} dtype {x.dtype}")
        if y.shape != (x.shape[0],):
            raise DatasetError(f"{split} labels must have shape ({x.shape[0]},), got {y.shape}")
    if len(class_names) == 0:
        raise DatasetError("class_names is empty")


def _split(x, index, labels, defect_types, paths_split, dataset, masks=None) -> Split:
    return Split(images=x[index], labels=np.asarray(labels, dtype=np.int32), masks=masks,
                 defect_types=np.asarray(defect_types, dtype=str),
                 paths=np.asarray([f"{dataset}:{paths_split}:{i}" for i in index], dtype=str))


def _normal_splits(x_train, normal_idx, dataset, validation_fraction, seed, what):
    """Train and validation splits from the normal training images ``normal_idx``."""
    keep, val = split_off_validation(len(normal_idx), validation_fraction, seed, what)
    train_idx, val_idx = normal_idx[keep], normal_idx[val]
    train = _split(x_train, train_idx, np.zeros(len(train_idx)), ["good"] * len(train_idx), "train", dataset)
    validation = _split(x_train, val_idx, np.zeros(len(val_idx)), ["good"] * len(val_idx), "train", dataset)
    return train, validation


def one_class(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, y_test: np.ndarray,
              class_names: Sequence[str], normal_class: int | str, *, dataset: str = "dataset",
              validation_fraction: float = 0.1, seed: int = 0) -> AnomalyDataset:
    """One normal class; all other classes anomalous (CAVGA / ADGAN protocol).

    Parameters
    ----------
    x_train, y_train, x_test, y_test : (N, H, W, C) uint8 images and (N,) integer class labels.
    class_names : name of each class index.
    normal_class : the normal class, as index or name.
    dataset : name used in ``AnomalyDataset.name`` and in ``paths`` ("<dataset>:<split>:<index>").
    validation_fraction, seed : seeded fraction of the normal training images moved to validation.

    Returns
    -------
    AnomalyDataset(protocol="one_class", target=<normal class name>): train/validation hold the
    normal class's training images; test is the whole test set, label 1 for every other class.
    ``defect_types`` is "good" for normal images and the class name for anomalous ones.
    """
    _check_arrays(x_train, y_train, x_test, y_test, class_names)
    c = resolve_class(normal_class, class_names, "normal_class")
    normal_idx = np.flatnonzero(y_train == c)
    if normal_idx.size == 0:
        raise DatasetError(f"normal_class {class_names[c]!r} has no training images in {dataset}")
    train, validation = _normal_splits(x_train, normal_idx, dataset, validation_fraction, seed,
                                       f"{dataset} class {class_names[c]!r}")
    test_idx = np.arange(len(y_test))
    labels = (y_test != c).astype(np.int32)
    types = np.where(labels == 0, "good", np.asarray(class_names, dtype=str)[y_test])
    test = _split(x_test, test_idx, labels, types, "test", dataset)
    return AnomalyDataset(name=dataset, protocol="one_class", target=str(class_names[c]),
                          train=train, validation=validation, test=test)


def leave_one_class_out(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, y_test: np.ndarray,
                        class_names: Sequence[str], anomalous_class: int | str, *, dataset: str = "dataset",
                        validation_fraction: float = 0.1, seed: int = 0) -> AnomalyDataset:
    """One anomalous class; all other classes normal (GANomaly / Skip-GANomaly / SAGAN protocol).

    Parameters
    ----------
    As ``one_class``, with ``anomalous_class`` (index or name) instead of ``normal_class``.

    Returns
    -------
    AnomalyDataset(protocol="leave_one_class_out", target=<anomalous class name>): train/validation
    hold the other classes' training images; test holds the other classes' test images (label 0)
    followed by the anomalous class's test images and then its training images (label 1).
    ``paths`` keep each image's origin ("<dataset>:train:<i>" or "<dataset>:test:<i>").
    """
    _check_arrays(x_train, y_train, x_test, y_test, class_names)
    c = resolve_class(anomalous_class, class_names, "anomalous_class")
    normal_idx = np.flatnonzero(y_train != c)
    if normal_idx.size == 0:
        raise DatasetError(f"{dataset} has no training images outside anomalous_class {class_names[c]!r}")
    anomalous_train = np.flatnonzero(y_train == c)
    anomalous_test = np.flatnonzero(y_test == c)
    if anomalous_train.size + anomalous_test.size == 0:
        raise DatasetError(f"anomalous_class {class_names[c]!r} has no images in {dataset}")
    train, validation = _normal_splits(x_train, normal_idx, dataset, validation_fraction, seed,
                                       f"{dataset} without class {class_names[c]!r}")

    normal_test = np.flatnonzero(y_test != c)
    name = str(class_names[c])
    images = np.concatenate([x_test[normal_test], x_test[anomalous_test], x_train[anomalous_train]])
    labels = np.concatenate([np.zeros(normal_test.size), np.ones(anomalous_test.size + anomalous_train.size)])
    types = ["good"] * normal_test.size + [name] * (anomalous_test.size + anomalous_train.size)
    paths = ([f"{dataset}:test:{i}" for i in normal_test] + [f"{dataset}:test:{i}" for i in anomalous_test]
             + [f"{dataset}:train:{i}" for i in anomalous_train])
    test = Split(images=images, labels=labels.astype(np.int32), masks=None,
                 defect_types=np.asarray(types, dtype=str), paths=np.asarray(paths, dtype=str))
    return AnomalyDataset(name=dataset, protocol="leave_one_class_out", target=name,
                          train=train, validation=validation, test=test)
