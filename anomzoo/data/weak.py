"""The weakly supervised setting of CAVGA_w: a few labelled anomalous images join the training set.

CAVGA (ECCV 2020, Sec. 4) trains with every normal training image plus 2% of the anomalous images,
drawn at random. They are taken out of the test set (no image is both trained and tested on) and
recorded by path in the training split, with label 1; `training.train` passes the training labels
into every batch as "label" when any is anomalous.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from anomzoo.data.errors import DatasetError
from anomzoo.data.types import AnomalyDataset, Split


def weakly_supervised(dataset: AnomalyDataset, fraction: float = 0.02, seed: int = 0) -> AnomalyDataset:
    """`dataset` with a seeded `fraction` of its anomalous test images moved into training (label 1).

    At least one image moves when `fraction` > 0. The moved images' paths are in
    `moved_anomalies(result)`; their masks are dropped (weak labels: image level only).
    """
    if not 0.0 < fraction < 1.0:
        raise DatasetError(f"the weakly supervised fraction must be in (0, 1), got {fraction!r}")
    anomalous = np.flatnonzero(dataset.test.labels == 1)
    if anomalous.size < 2:
        raise DatasetError(f"{dataset.name} has {anomalous.size} anomalous test image(s): too few to move any "
                           "into training and still test on anomalies")
    count = min(max(1, int(round(fraction * anomalous.size))), anomalous.size - 1)
    moved = np.sort(np.random.default_rng(seed).choice(anomalous, size=count, replace=False))
    kept = np.setdiff1d(np.arange(len(dataset.test)), moved)
    extra = dataset.test.take(moved, masks=False)
    train = dataset.train
    joined = Split(images=np.concatenate([train.images, extra.images]),
                   labels=np.concatenate([train.labels, np.ones(count, dtype=np.int32)]).astype(np.int32),
                   masks=None, defect_types=np.concatenate([train.defect_types, extra.defect_types]),
                   paths=np.concatenate([train.paths, extra.paths]))
    return dataclasses.replace(dataset, train=joined, test=dataset.test.take(kept))


def moved_anomalies(dataset: AnomalyDataset) -> list[str]:
    """The paths of the anomalous images in the training split (those `weakly_supervised` moved)."""
    return [str(p) for p in dataset.train.paths[dataset.train.labels == 1]]
