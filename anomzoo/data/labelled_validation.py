"""A labelled validation split: a few real defective images, with their masks, to choose weights on.

Synthetic anomalies are a poor guide to which epoch finds a user's real defects (AnoSeg on the tire:
its selection set scores 0.95 pixel AUROC at epochs whose real-defect score is anywhere in 0.39-0.95).
A user with a handful of labelled defects can select on those instead, as anomalib does by default
(`val_split_mode="from_test"`): a seeded share of the test images, the same share of each defect
type and of the good ones, moves out of the test split into `labelled_validation`. No image is both
a validation and a test image; the test metrics are then on the rest, and say so in their counts.
The draw has its own fixed seed, not the training seed: every run and every model asked for the
same fraction is validated and tested on the same images, so their test metrics compare.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from anomzoo.data.errors import DatasetError
from anomzoo.data.types import AnomalyDataset


#: the seed of the draw (see above).
SPLIT_SEED = 0


def hold_out_labelled(dataset: AnomalyDataset, fraction: float) -> AnomalyDataset:
    """`dataset` with a seeded `fraction` of each test defect type (and of the good test images)
    moved into a `labelled_validation` split, masks included (at least one image of each type that
    has two or more; a type with one image stays in the test split)."""
    if not 0.0 < fraction < 1.0:
        raise DatasetError(f"the labelled validation fraction must be in (0, 1), got {fraction!r}")
    test = dataset.test
    if test.masks is None or not np.any(test.labels == 1):
        raise DatasetError(f"{dataset.name}'s test split has no anomalous images with masks to hold out for "
                           "validation (a labelled validation split needs pixel ground truth)")
    rng = np.random.default_rng(SPLIT_SEED)
    moved = []
    for kind in sorted(set(test.defect_types.tolist())):
        members = np.flatnonzero(test.defect_types == kind)
        count = min(max(1, int(round(fraction * members.size))), members.size - 1)
        if count > 0:
            moved.append(rng.choice(members, size=count, replace=False))
    moved = np.sort(np.concatenate(moved))
    kept = np.setdiff1d(np.arange(len(test)), moved)
    return dataclasses.replace(dataset, test=test.take(kept), labelled_validation=test.take(moved))
