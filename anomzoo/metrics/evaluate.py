"""One call for all metrics of a test split, returning plain JSON-serialisable floats."""

from __future__ import annotations

import numpy as np

from ._validate import anomalous_images, as_labels, as_masks_maps, as_region, as_scores
from .auroc import image_auroc, pixel_auroc
from .detection import detection_accuracy
from .iou import best_iou, mean_iou
from .pro import pro_auc


def evaluate(
    labels,
    scores,
    masks=None,
    maps=None,
    threshold: float | None = None,
    *,
    map_threshold: float | None = None,
    fpr_limit: float = 0.3,
    region=None,
) -> dict:
    """All metrics of one test split.

    Returns a dict of Python floats:
      image_auroc                          always;
      detection_accuracy                   when `threshold` (for the image scores) is given;
      pixel_auroc, iou, iou_threshold,
      iou_best, iou_best_threshold, pro    when `masks` are given and contain an anomalous pixel.

    iou is `mean_iou` at `map_threshold`, which defaults to `threshold`, or to 0.5 (CAVGA's fixed
    attention-map threshold) when both are None. Set it separately when image scores and pixel
    maps live on different scales. iou_best / iou_best_threshold are the ORACLE best IoU (threshold
    chosen with the test masks, as AnoSeg reports it). pro is `pro_auc` up to `fpr_limit`.
    `maps` are required with `masks`; `maps` without `masks` are ignored. With `region` ((H, W) or
    (N, H, W) bool, e.g. the object) also pixel_auroc_object and pro_object, the same metrics over
    its pixels only.
    """
    y = as_labels(labels)
    s = as_scores(scores, y.shape[0])
    out = {"image_auroc": image_auroc(y, s)}
    if threshold is not None:
        out["detection_accuracy"] = detection_accuracy(y, s, threshold)
    if masks is not None:
        if maps is None:
            raise ValueError("masks were given without maps")
        m, a = as_masks_maps(masks, maps)
        if m.shape[0] != y.shape[0]:
            raise ValueError(f"labels shape {y.shape} and masks shape {np.shape(masks)} differ in length")
        if anomalous_images(m).size > 0:
            t = map_threshold if map_threshold is not None else (threshold if threshold is not None else 0.5)
            out["pixel_auroc"] = pixel_auroc(m, a)
            out["iou"] = mean_iou(m, a, t)
            out["iou_threshold"] = float(t)
            out["iou_best"], out["iou_best_threshold"] = best_iou(m, a)
            out["pro"] = pro_auc(m, a, fpr_limit=fpr_limit)
            if region is not None and (m & as_region(region, m)).any():
                out["pixel_auroc_object"] = pixel_auroc(m, a, region=region)
                out["pro_object"] = pro_auc(m, a, fpr_limit=fpr_limit, region=region)
    return {k: float(v) for k, v in out.items()}
