"""Segmentation IoU of binarised anomaly maps, at a fixed threshold and at the best ("oracle") one.

Binarisation convention (shared with `detection_accuracy`): a pixel is predicted anomalous when
`map >= threshold`.
"""

from __future__ import annotations

import numpy as np

from ._validate import anomalous_images, as_masks_maps


def iou_curve(masks, maps, thresholds) -> np.ndarray:
    """Mean IoU over the anomalous images (non-empty mask) for each threshold in `thresholds`.

    For one image: IoU = |pred & gt| / |pred | gt| with pred = (map >= t). Computed exactly for
    every threshold from the sorted map values of each image (no loop over thresholds).
    Normal images (empty mask) are ignored; at least one anomalous image is required.
    """
    m, a = as_masks_maps(masks, maps)
    t = np.atleast_1d(np.asarray(thresholds, dtype=np.float64))
    if t.ndim != 1 or t.size == 0 or not np.all(np.isfinite(t)):
        raise ValueError(f"thresholds must be a non-empty 1-D array of finite values, got {thresholds!r}")
    idx = anomalous_images(m)
    if idx.size == 0:
        raise ValueError("IoU needs at least one anomalous image (a mask with a 1), got none")
    total = np.zeros(t.shape, dtype=np.float64)
    for i in idx:
        values = a[i].ravel()
        gt = m[i].ravel()
        all_sorted = np.sort(values)
        gt_sorted = np.sort(values[gt])
        n_pred = all_sorted.size - np.searchsorted(all_sorted, t, side="left")  # map >= t
        n_inter = gt_sorted.size - np.searchsorted(gt_sorted, t, side="left")
        union = n_pred + gt_sorted.size - n_inter  # >= |gt| > 0
        total += n_inter / union
    return total / idx.size


def mean_iou(masks, maps, threshold: float = 0.5) -> float:
    """Mean IoU of `maps >= threshold` against `masks`, over the images with a non-empty mask.

    This is the CAVGA / AnoSeg segmentation IoU: one IoU per anomalous test image, then their
    mean; normal images (empty masks) are not counted.
    """
    return float(iou_curve(masks, maps, [threshold])[0])


def best_iou(masks, maps, thresholds=None, num_thresholds: int = 10000) -> tuple[float, float]:
    """The best mean IoU over a grid of thresholds: `(iou, threshold)`.

    ORACLE METRIC: the threshold is chosen with the test masks, i.e. with test labels. This is how
    AnoSeg reports its IoU (Sec. 4.3.4 sweeps the threshold over the score range in 10000 steps
    and reports the best); it is an upper bound, not something a deployed detector can achieve.
    Use `mean_iou` with a threshold from `threshold_from_normal` for an honest number.

    thresholds: explicit candidate thresholds; by default `num_thresholds` values evenly spaced
        between the minimum and maximum of `maps`. Ties go to the lowest threshold.
    """
    if thresholds is None:
        a = np.asarray(maps, dtype=np.float64)
        if a.size == 0:
            raise ValueError("maps are empty")
        lo, hi = float(np.min(a)), float(np.max(a))
        thresholds = np.linspace(lo, hi, max(int(num_thresholds), 1)) if hi > lo else np.array([lo])
    t = np.atleast_1d(np.asarray(thresholds, dtype=np.float64))
    curve = iou_curve(masks, maps, t)
    k = int(np.argmax(curve))
    return float(curve[k]), float(t[k])
