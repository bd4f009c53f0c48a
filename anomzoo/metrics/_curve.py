"""A weighted ROC-style curve from one sort of all values; shared by pixel AUROC and PRO."""

from __future__ import annotations

import numpy as np

_trapezoid = getattr(np, "trapezoid", None) or np.trapz  # numpy < 2 has only trapz


def weighted_curve(values: np.ndarray, pos_weight: np.ndarray, negative: np.ndarray, num_thresholds=None):
    """(fpr, tpr, thresholds) for the rule `value >= t`, ordered by increasing FPR.

    tpr(t) = sum of pos_weight over values >= t divided by its total; fpr(t) = fraction of the
    `negative` entries with value >= t. Thresholds are the distinct values (exact curve) when
    num_thresholds is None, else that many evenly spaced between min and max. The first point
    is (0, 0) at threshold +inf. Tied values move fpr and tpr together (a diagonal segment), so
    the trapezoid area counts ties one half, like scikit-learn.
    """
    values = values.ravel()
    order = np.argsort(values)  # ties are grouped below, so no stable sort is needed
    v = values[order]
    cum_w = np.concatenate([[0.0], np.cumsum(pos_weight.ravel()[order], dtype=np.float64)])
    cum_n = np.concatenate([[0], np.cumsum(negative.ravel()[order], dtype=np.int64)])
    if num_thresholds is None:
        thresholds = v[np.concatenate([[True], v[1:] != v[:-1]])]  # distinct values, ascending
    else:
        if int(num_thresholds) < 2:
            raise ValueError(f"num_thresholds must be >= 2 or None, got {num_thresholds}")
        thresholds = np.linspace(v[0], v[-1], int(num_thresholds))
    start = np.searchsorted(v, thresholds, side="left")  # first index with value >= t
    tpr = (cum_w[-1] - cum_w[start]) / cum_w[-1]
    fpr = (cum_n[-1] - cum_n[start]) / cum_n[-1]
    fpr = np.concatenate([[0.0], fpr[::-1]])
    tpr = np.concatenate([[0.0], np.clip(tpr[::-1], 0.0, 1.0)])
    thresholds = np.concatenate([[np.inf], thresholds[::-1]])
    return fpr, tpr, thresholds


def area_up_to(x: np.ndarray, y: np.ndarray, limit: float = 1.0) -> float:
    """Trapezoid area under y(x) for x in [0, limit]; x non-decreasing from 0, interpolated at limit."""
    k = int(np.searchsorted(x, limit, side="right"))  # x[:k] <= limit
    xs, ys = x[:k], y[:k]
    if k < x.size and xs[-1] < limit:
        x0, x1, y0, y1 = x[k - 1], x[k], y[k - 1], y[k]  # x0 < limit < x1
        xs = np.append(xs, limit)
        ys = np.append(ys, y0 + (y1 - y0) * (limit - x0) / (x1 - x0))
    return float(_trapezoid(ys, xs))
