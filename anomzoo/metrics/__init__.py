"""Anomaly detection / localisation metrics (numpy + scikit-learn).

Conventions: scores and maps are higher = more anomalous; labels 0 = normal, 1 = anomalous;
masks (N, H, W) or (N, H, W, 1) in {0, 1}, maps of the same shape. Thresholded decisions use
`value >= threshold` everywhere (image detection and map binarisation).
"""

from .auroc import image_auroc, pixel_auroc
from .detection import detection_accuracy, threshold_from_normal
from .evaluate import evaluate
from .iou import best_iou, iou_curve, mean_iou
from .pro import pro_auc, pro_curve

__all__ = [
    "best_iou",
    "detection_accuracy",
    "evaluate",
    "image_auroc",
    "iou_curve",
    "mean_iou",
    "pixel_auroc",
    "pro_auc",
    "pro_curve",
    "threshold_from_normal",
]
