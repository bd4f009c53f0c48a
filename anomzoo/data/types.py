"""The two containers every loader returns: a `Split` of images and an `AnomalyDataset` of splits."""

from __future__ import annotations

import dataclasses

import numpy as np


@dataclasses.dataclass(frozen=True)
class Split:
    """Images of one split, already decoded and resized.

    images: (N, H, W, C) uint8.
    labels: (N,) int32, 0 = normal, 1 = anomalous.
    masks: (N, H, W, 1) uint8 in {0, 1} (all zero for normal images), or None when the
        dataset has no pixel ground truth (MNIST, CIFAR-10, digits).
    defect_types: (N,) str, "good" for normal images, else the defect type or class name.
    paths: (N,) str, the source file, or "<dataset>:<split>:<index>" for array datasets.
    """

    images: np.ndarray
    labels: np.ndarray
    masks: np.ndarray | None
    defect_types: np.ndarray
    paths: np.ndarray

    def __len__(self) -> int:
        return int(self.images.shape[0])

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(H, W, C), as `StreamedSplit.image_shape`."""
        return tuple(int(d) for d in self.images.shape[1:])

    def take(self, index: np.ndarray, masks: bool = True) -> "Split":
        """The images at `index`, with their labels, types, paths and (unless masks=False) masks."""
        return Split(images=self.images[index], labels=self.labels[index],
                     masks=self.masks[index] if masks and self.masks is not None else None,
                     defect_types=self.defect_types[index], paths=self.paths[index])


@dataclasses.dataclass(frozen=True)
class AnomalyDataset:
    """A train / validation / test triple under one protocol.

    train and validation hold normal images only; test holds both. labelled_validation, when a
    loader was asked for it (`anomzoo.data.labelled_validation`), holds real normal and anomalous
    images with masks, taken out of the test split, for choosing weights.
    train is a `StreamedSplit` (images left on disk, `anomzoo.data.streaming`) when the dataset was
    loaded with ``streaming=True``; validation and test are always in memory.
    protocol: "one_class", "leave_one_class_out" or "mvtec".
    target: the normal class (one_class), the anomalous class (leave_one_class_out) or the
        category (mvtec), as a name.
    """

    name: str
    protocol: str
    target: str
    train: Split  # or an anomzoo.data.streaming.StreamedSplit (types stays below streaming)
    validation: Split
    test: Split
    labelled_validation: Split | None = None

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return self.train.image_shape
