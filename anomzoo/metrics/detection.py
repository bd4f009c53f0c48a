"""Thresholded image-level detection: balanced accuracy and thresholds set from normal data only.

Convention (shared with the IoU binarisation): an image is predicted anomalous when
`score >= threshold`.
"""

from __future__ import annotations

import numpy as np

from ._validate import as_labels, as_scores, check_finite


def detection_accuracy(labels, scores, threshold: float) -> float:
    """0.5 * (accuracy on normal images + accuracy on anomalous images), predicting anomalous
    when `score >= threshold` (CAVGA's "mean of normal and anomalous accuracy").

    Both classes must be present.
    """
    y = as_labels(labels)
    s = as_scores(scores, y.shape[0])
    if not np.isfinite(threshold):
        raise ValueError(f"threshold must be finite, got {threshold}")
    predicted = s >= float(threshold)
    acc_normal = float(np.mean(~predicted[y == 0]))
    acc_anomalous = float(np.mean(predicted[y == 1]))
    return 0.5 * (acc_normal + acc_anomalous)


def threshold_from_normal(normal_scores, quantile: float | str = 0.99) -> float:
    """A decision threshold computed from NORMAL data only (e.g. the validation split), never from
    test labels.

    normal_scores: scores (or anomaly maps, any shape; they are flattened) of normal samples.
    quantile: a float in [0, 1], the quantile of the normal scores (numpy's linear interpolation),
        so that with the `score >= threshold` rule about (1 - quantile) of normal samples are
        flagged; or "max", which returns the smallest float strictly above the largest normal
        score, so that no normal sample is flagged.
    """
    s = np.asarray(normal_scores, dtype=np.float64).ravel()
    if s.size == 0:
        raise ValueError("normal_scores is empty")
    check_finite(s, "normal_scores")
    if isinstance(quantile, str):
        if quantile != "max":
            raise ValueError(f"quantile must be a float in [0, 1] or 'max', got {quantile!r}")
        return float(np.nextafter(s.max(), np.inf))
    q = float(quantile)
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"quantile must be in [0, 1], got {quantile}")
    return float(np.quantile(s, q))
