"""Image-level and pixel-level AUROC (scikit-learn's roc_auc_score)."""

from __future__ import annotations

from sklearn.metrics import roc_auc_score

from ._curve import area_up_to, weighted_curve
from ._validate import as_labels, as_masks_maps, as_region, as_scores


def image_auroc(labels, scores) -> float:
    """Area under the ROC curve of image scores (higher = more anomalous) against labels (1 = anomalous).

    Ties count one half (scikit-learn's convention), so constant scores give 0.5.
    Raises ValueError when only one class is present, lengths differ or scores hold NaN / inf.
    """
    y = as_labels(labels)
    s = as_scores(scores, y.shape[0])
    return float(roc_auc_score(y, s))


def pixel_auroc(masks, maps, region=None) -> float:
    """AUROC over every pixel of every test image at once (all pixels flattened together).

    masks: (N, H, W) or (N, H, W, 1) in {0, 1}; maps: the same shape, higher = more anomalous.
    Normal images contribute their pixels as negatives. Needs at least one anomalous and one
    normal pixel. region: (H, W) or (N, H, W) bool, the pixels to score (e.g. the object, so that a
    map that only tells object from background is not rewarded); None scores all.
    """
    m, a = as_masks_maps(masks, maps)
    inside = as_region(region, m)
    m, a = m[inside], a[inside]
    if m.all() or not m.any():
        raise ValueError(
            f"mask pixels contain only class {int(m.flat[0])}: pixel AUROC needs both normal (0) "
            "and anomalous (1) pixels"
        )
    # Same value as roc_auc_score (ties count one half) from one unstable sort, several times
    # faster than scikit-learn on the millions of pixels of a test set.
    fpr, tpr, _ = weighted_curve(a, m, ~m)
    return area_up_to(fpr, tpr)
