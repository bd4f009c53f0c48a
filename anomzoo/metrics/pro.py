"""Per-region overlap (PRO) curve and its normalised area up to a false-positive-rate limit.

As in the MVTec AD evaluation (Bergmann et al.): every connected component of every ground-truth
mask is one region (8-connectivity, like the official MVTec code's 3x3 structuring element). For a
threshold t (pixel anomalous when map >= t), PRO(t) is the mean over ALL regions of the fraction
of the region's pixels predicted anomalous, and FPR(t) is the fraction of normal pixels (mask 0, of
all images) predicted anomalous. The PRO-vs-FPR curve is integrated over FPR in [0, fpr_limit] with
the trapezoid rule (linearly interpolating the curve at fpr_limit) and divided by fpr_limit, so a
perfect map scores 1.0.

Implementation: PRO(t) equals a weighted true-positive rate in which each anomalous pixel of region
r weighs 1 / (n_regions * |r|), so the whole curve comes from one sort of all pixel values. With
`num_thresholds=None` (default) the thresholds are exactly the distinct map values (the exact
curve, O(P log P) for P pixels); with an integer, a grid of that many thresholds evenly spaced
between the map minimum and maximum is used instead (the MVTec reference code's approach).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from ._curve import area_up_to, weighted_curve
from ._validate import as_masks_maps, as_region

_STRUCTURE_8 = np.ones((3, 3), dtype=int)


def pro_curve(masks, maps, num_thresholds: int | None = None,
              region=None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(fpr, pro, thresholds), ordered by increasing FPR (decreasing threshold).

    The first point is (0, 0) at threshold +inf (nothing predicted anomalous). region: (H, W) or
    (N, H, W) bool; only its pixels count (defect regions are cut to it, and FPR is the share of
    its normal pixels); None counts all.
    """
    m, a = as_masks_maps(masks, maps)
    inside = as_region(region, m)
    m = m & inside
    weights = np.zeros(m.shape, dtype=np.float64)
    sizes = []
    labelled = []
    for i in range(m.shape[0]):
        if not m[i].any():
            continue
        lab, n = ndimage.label(m[i], structure=_STRUCTURE_8)
        counts = np.bincount(lab.ravel(), minlength=n + 1)
        labelled.append((i, lab, counts))
        sizes.append(n)
    n_regions = int(sum(sizes))
    if n_regions == 0:
        raise ValueError("PRO needs at least one anomalous region (a mask with a 1), got none")
    for i, lab, counts in labelled:
        w = np.zeros(counts.shape, dtype=np.float64)
        w[1:] = 1.0 / (n_regions * counts[1:])
        weights[i] = w[lab]
    negative = ~m & inside
    if not negative.any():
        raise ValueError("PRO needs at least one normal pixel (mask 0) to measure the false-positive rate")
    return weighted_curve(a, weights, negative, num_thresholds)


def pro_auc(masks, maps, fpr_limit: float = 0.3, num_thresholds: int | None = None, region=None) -> float:
    """Normalised area under the PRO curve for FPR in [0, fpr_limit] (1.0 = perfect), over the pixels
    of `region` (all when None). See module doc."""
    if not 0.0 < float(fpr_limit) <= 1.0:
        raise ValueError(f"fpr_limit must be in (0, 1], got {fpr_limit}")
    fpr, pro, _ = pro_curve(masks, maps, num_thresholds=num_thresholds, region=region)
    return area_up_to(fpr, pro, float(fpr_limit)) / float(fpr_limit)
