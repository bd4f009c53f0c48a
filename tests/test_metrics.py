"""Metrics against small cases worked out by hand (the arithmetic is in the comments)."""

import json

import numpy as np
import pytest

from anomzoo.metrics import (
    best_iou,
    detection_accuracy,
    evaluate,
    image_auroc,
    mean_iou,
    pixel_auroc,
    pro_auc,
    pro_curve,
    threshold_from_normal,
)

# ---------------------------------------------------------------- image / pixel AUROC


def test_image_auroc_perfect_inverted_tied():
    labels = [0, 0, 1, 1]
    assert image_auroc(labels, [0.1, 0.2, 0.8, 0.9]) == 1.0
    assert image_auroc(labels, [0.9, 0.8, 0.2, 0.1]) == 0.0
    # all tied: every (anomalous, normal) pair counts 1/2
    assert image_auroc(labels, [0.5, 0.5, 0.5, 0.5]) == 0.5


def test_image_auroc_partial():
    # pairs (anomalous, normal): (0.6, 0.1) ok, (0.6, 0.7) wrong, (0.9, 0.1) ok, (0.9, 0.7) ok -> 3/4
    assert image_auroc([0, 1, 0, 1], [0.1, 0.6, 0.7, 0.9]) == pytest.approx(0.75)
    # one tie (0.7 vs 0.7) counts 1/2: (0.7,0.1) 1, (0.7,0.7) .5, (0.9,0.1) 1, (0.9,0.7) 1 -> 3.5/4
    assert image_auroc([0, 1, 0, 1], [0.1, 0.7, 0.7, 0.9]) == pytest.approx(0.875)


def test_image_auroc_errors():
    with pytest.raises(ValueError, match="only class 0"):
        image_auroc([0, 0, 0], [0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="lengths differ"):
        image_auroc([0, 1, 1], [0.1, 0.2])
    with pytest.raises(ValueError, match="NaN"):
        image_auroc([0, 1], [0.1, np.nan])
    with pytest.raises(ValueError, match="only 0"):
        image_auroc([0, 2], [0.1, 0.2])


def test_pixel_auroc_flattens_all_images():
    # image 0 is normal, image 1 has one anomalous pixel.
    masks = np.array([[[0, 0], [0, 0]], [[1, 0], [0, 0]]])
    maps = np.array([[[0.1, 0.2], [0.3, 0.4]], [[0.9, 0.0], [0.0, 0.0]]])
    assert pixel_auroc(masks, maps) == 1.0
    # anomalous pixel 0.35: beats 0.1, 0.2, 0.3, 0, 0, 0 and loses to 0.4 -> 6/7
    maps[1, 0, 0] = 0.35
    assert pixel_auroc(masks, maps) == pytest.approx(6 / 7)
    # (N, H, W, 1) masks with (N, H, W) maps are accepted
    assert pixel_auroc(masks[..., None], maps) == pytest.approx(6 / 7)


def test_pixel_auroc_matches_sklearn_with_ties():
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(0)
    masks = (rng.random((3, 8, 8)) < 0.2).astype(np.uint8)
    maps = np.round(rng.random((3, 8, 8)) + 0.3 * masks, 1)  # rounded: many ties
    assert pixel_auroc(masks, maps) == pytest.approx(roc_auc_score(masks.ravel(), maps.ravel()))


def test_pixel_auroc_shape_errors():
    masks = np.zeros((2, 4, 4))
    masks[0, 0, 0] = 1
    with pytest.raises(ValueError, match=r"masks shape \(2, 4, 4\) and maps shape \(2, 4, 5\)"):
        pixel_auroc(masks, np.zeros((2, 4, 5)))
    with pytest.raises(ValueError, match="only 0 and 1"):
        pixel_auroc(masks * 255, np.zeros((2, 4, 4)))
    with pytest.raises(ValueError, match="only class 0"):
        pixel_auroc(np.zeros((2, 4, 4)), np.zeros((2, 4, 4)))


# ---------------------------------------------------------------- IoU


def test_mean_iou_known_overlap():
    # 2x2 image, gt = top row (2 px); prediction (map >= 0.5) = left column (2 px).
    # intersection = 1 px (top-left), union = 3 px -> IoU 1/3.
    masks = np.array([[[1, 1], [0, 0]]])
    maps = np.array([[[0.9, 0.1], [0.7, 0.2]]])
    assert mean_iou(masks, maps, 0.5) == pytest.approx(1 / 3)
    # 4x4: gt = left half (8 px), prediction = top half (8 px); overlap = top-left 2x2 = 4 px,
    # union = 8 + 8 - 4 = 12 -> 1/3 as well.
    m = np.zeros((1, 4, 4)); m[0, :, :2] = 1
    a = np.zeros((1, 4, 4)); a[0, :2, :] = 1.0
    assert mean_iou(m, a, 0.5) == pytest.approx(4 / 12)


def test_mean_iou_ignores_normal_images_and_uses_ge():
    # image 0 normal (ignored even though it has false positives); image 1: perfect -> 1.0;
    # image 2: gt 1 px, prediction 2 px containing it -> 1/2. Mean over anomalous = 0.75.
    masks = np.zeros((3, 2, 2))
    masks[1, 0, 0] = 1
    masks[2, 1, 1] = 1
    maps = np.zeros((3, 2, 2))
    maps[0] = 1.0
    maps[1, 0, 0] = 0.5  # exactly at the threshold: counted anomalous (>=)
    maps[2, 1, :] = 0.8
    assert mean_iou(masks, maps, 0.5) == pytest.approx(0.75)
    # above every value: nothing predicted -> IoU 0 for both
    assert mean_iou(masks, maps, 2.0) == 0.0


def test_best_iou_finds_oracle_threshold():
    masks = np.array([[[1, 1], [0, 0]]])
    maps = np.array([[[0.9, 0.6], [0.3, 0.1]]])
    # thresholds 0.1 -> 2/4, 0.3 -> 2/3, 0.6 -> 1, 0.9 -> 1/2
    iou, t = best_iou(masks, maps, thresholds=[0.1, 0.3, 0.6, 0.9])
    assert iou == 1.0 and t == 0.6
    iou, t = best_iou(masks, maps)  # default grid over [0.1, 0.9]
    assert iou == 1.0 and 0.3 < t <= 0.6


def test_iou_needs_an_anomalous_image():
    with pytest.raises(ValueError, match="anomalous image"):
        mean_iou(np.zeros((2, 2, 2)), np.zeros((2, 2, 2)))


# ---------------------------------------------------------------- PRO


def _pro_case():
    # One 2x4 image with two regions (8-connectivity): r1 = {(0,0),(0,1)} (2 px) and r2 = {(1,3)}.
    # Each r1 pixel weighs 1/(2 regions * 2 px) = 0.25, the r2 pixel 1/(2 * 1) = 0.5; 5 normal px.
    mask = np.array([[[1, 1, 0, 0], [0, 0, 0, 1]]])
    amap = np.array([[[0.9, 0.4, 0.1, 0.2], [0.3, 0.0, 0.6, 0.8]]])
    return mask, amap


def test_pro_curve_by_hand():
    mask, amap = _pro_case()
    # descending: 0.9 r1 -> (0, .25); 0.8 r2 -> (0, .75); 0.6 normal -> (.2, .75);
    # 0.4 r1 -> (.2, 1); then 0.3, 0.2, 0.1, 0.0 normal -> (.4,1) (.6,1) (.8,1) (1,1)
    fpr, pro, _ = pro_curve(mask, amap)
    np.testing.assert_allclose(fpr, [0, 0, 0, 0.2, 0.2, 0.4, 0.6, 0.8, 1.0])
    np.testing.assert_allclose(pro, [0, 0.25, 0.75, 0.75, 1, 1, 1, 1, 1])


def test_pro_auc_partial_by_hand():
    mask, amap = _pro_case()
    # full range: 0.2 * 0.75 + 0.8 * 1 = 0.95
    assert pro_auc(mask, amap, fpr_limit=1.0) == pytest.approx(0.95)
    # up to 0.3: (0.2 * 0.75 + 0.1 * 1) / 0.3 = 0.25 / 0.3
    assert pro_auc(mask, amap, fpr_limit=0.3) == pytest.approx(0.25 / 0.3)
    # up to 0.1 (interpolated on the flat 0.75 segment): 0.1 * 0.75 / 0.1
    assert pro_auc(mask, amap, fpr_limit=0.1) == pytest.approx(0.75)
    # region-weighted, not pixel-weighted: the pixel TPR at FPR 0.2 would be 2/3, PRO is 0.75


def test_pro_auc_perfect_and_grid():
    masks = np.zeros((3, 8, 8))
    masks[1, 1:3, 1:3] = 1
    masks[1, 5:8, 6] = 1
    masks[2, 4:, 4:] = 1
    maps = masks * 0.5 + 0.25  # anomalous 0.75 > normal 0.25
    assert pro_auc(masks, maps) == pytest.approx(1.0)
    assert pro_auc(masks, maps, num_thresholds=50) == pytest.approx(1.0)
    # inverted map: PRO is 0 until every normal pixel is flagged
    assert pro_auc(masks, 1 - maps) == pytest.approx(0.0)


def test_pro_auc_errors():
    with pytest.raises(ValueError, match="region"):
        pro_auc(np.zeros((1, 2, 2)), np.zeros((1, 2, 2)))
    with pytest.raises(ValueError, match="fpr_limit"):
        pro_auc(np.ones((1, 2, 2)), np.zeros((1, 2, 2)), fpr_limit=0)
    with pytest.raises(ValueError, match="do not match"):
        pro_auc(np.ones((1, 2, 2)), np.zeros((1, 2, 3)))


# ---------------------------------------------------------------- detection accuracy / thresholds


def test_detection_accuracy_by_hand():
    labels = [0, 0, 0, 0, 1, 1]
    scores = [0.1, 0.2, 0.5, 0.7, 0.5, 0.3]
    # threshold 0.5 (>=): normal predicted [0,0,1,1] -> 2/4 right; anomalous [1,0] -> 1/2 right
    assert detection_accuracy(labels, scores, 0.5) == pytest.approx(0.5 * (0.5 + 0.5))
    # threshold 0.25: normal [0,0,1,1] -> 1/2; anomalous [1,1] -> 1 => 0.75
    assert detection_accuracy(labels, scores, 0.25) == pytest.approx(0.75)
    with pytest.raises(ValueError, match="only class 1"):
        detection_accuracy([1, 1], [0.1, 0.2], 0.5)


def test_threshold_from_normal():
    normal = np.array([0.1, 0.2, 0.3, 0.4, 0.5])
    assert threshold_from_normal(normal, 0.5) == pytest.approx(0.3)
    t = threshold_from_normal(normal, "max")
    assert t > 0.5 and t == pytest.approx(0.5)
    assert not np.any(normal >= t)  # no normal sample flagged
    assert threshold_from_normal(np.zeros((2, 3, 3)), 0.99) == 0.0  # maps are flattened
    with pytest.raises(ValueError):
        threshold_from_normal(normal, 1.5)


# ---------------------------------------------------------------- evaluate


def test_evaluate_all_metrics_json():
    labels = np.array([0, 1, 1])
    scores = np.array([0.2, 0.9, 0.6])
    masks = np.zeros((3, 4, 4, 1), dtype=np.uint8)
    masks[1, :2, :2] = 1
    masks[2, 3, 3] = 1
    maps = masks.astype(np.float32) * 0.8 + 0.1
    out = evaluate(labels, scores, masks, maps, threshold=0.5)
    assert set(out) == {
        "image_auroc", "detection_accuracy", "pixel_auroc", "iou", "iou_threshold",
        "iou_best", "iou_best_threshold", "pro",
    }
    assert all(type(v) is float for v in out.values())
    json.dumps(out)
    assert out["image_auroc"] == 1.0 and out["detection_accuracy"] == 1.0
    assert out["pixel_auroc"] == 1.0 and out["iou"] == 1.0 and out["iou_threshold"] == 0.5
    assert out["iou_best"] == 1.0 and out["pro"] == pytest.approx(1.0)


def test_evaluate_without_masks_or_anomalies():
    out = evaluate([0, 1], [0.1, 0.9])
    assert out == {"image_auroc": 1.0}
    # masks with no anomalous pixel: pixel metrics are skipped; map threshold defaults to 0.5
    out = evaluate([0, 1], [0.1, 0.9], np.zeros((2, 2, 2)), np.zeros((2, 2, 2)))
    assert out == {"image_auroc": 1.0}
    with pytest.raises(ValueError, match="without maps"):
        evaluate([0, 1], [0.1, 0.9], masks=np.zeros((2, 2, 2)))
    with pytest.raises(ValueError, match="differ in length"):
        evaluate([0, 1], [0.1, 0.9], np.ones((3, 2, 2)), np.ones((3, 2, 2)))


# ---------------------------------------------------------------- inside the object


def test_metrics_inside_a_region_ignore_the_pixels_outside_it():
    """A map that only marks the object (where every defect lies) scores high over all pixels and
    exactly chance inside the object; a map that finds the defect scores 1 inside it too."""
    masks = np.zeros((4, 8, 8), dtype=np.uint8)
    masks[1, 2, 2] = masks[2, 4:6, 4:6] = 1
    region = np.zeros((8, 8), dtype=bool)
    region[1:7, 1:7] = True
    object_only = np.broadcast_to(region, masks.shape).astype(float)
    assert pixel_auroc(masks, object_only) > 0.6
    assert pixel_auroc(masks, object_only, region=region) == 0.5
    finder = masks + 0.1 * object_only
    assert pixel_auroc(masks, finder, region=region) == 1.0
    assert pro_auc(masks, finder, region=region) == pytest.approx(1.0)
    # FPR counts the normal pixels of the region only: the object-only map reaches the limit at once
    assert pro_auc(masks, object_only, region=region) < pro_auc(masks, object_only)
    out = evaluate([0, 1, 1, 0], [0.1, 0.9, 0.8, 0.2], masks, finder, region=region)
    assert out["pixel_auroc_object"] == 1.0 and out["pro_object"] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="region shape"):
        pixel_auroc(masks, finder, region=np.ones((3, 3), bool))
    with pytest.raises(ValueError, match="no pixel"):
        pixel_auroc(masks, finder, region=np.zeros((8, 8), bool))
