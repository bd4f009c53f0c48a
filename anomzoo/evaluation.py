"""`evaluate_model()`: test-set metrics of a trained model, with thresholds from normal data only."""

import warnings

import numpy as np

from anomzoo import metrics

#: how the detection and map thresholds are chosen; recorded with every result.
THRESHOLD_RULE = (
    "image threshold = 99th percentile of validation (normal) image scores; "
    "map threshold = 99th percentile of validation (normal) anomaly-map pixels"
)


#: what is done instead when there are no validation images (e.g. a one-image training set).
NO_VALIDATION_RULE = (
    "no validation images: no image threshold, so detection_accuracy is not reported; "
    "map threshold fixed at 0.5 (CAVGA's attention threshold)"
)


def threshold_rule(dataset):
    """The threshold rule that `evaluate_model` really applies to `dataset`."""
    return THRESHOLD_RULE if len(dataset.validation) else NO_VALIDATION_RULE


def predict(model, images, batch_size=64):
    """Run the inference contract over uint8 (or [0, 1] float) images; numpy outputs, images dropped."""
    images = np.asarray(images)
    if images.dtype == np.uint8:
        images = images.astype("float32") / 255.0
    outputs = model.predict(images, batch_size=batch_size, verbose=0)
    return {k: np.asarray(v) for k, v in outputs.items() if np.ndim(v) == 1 or k == "anomaly_map"}


def validation_thresholds(model, dataset, batch_size=64):
    """(image threshold, map threshold) by THRESHOLD_RULE from the validation (normal) images;
    (None, None) when there are none."""
    if not len(dataset.validation):
        return None, None
    validation = predict(model, dataset.validation.images, batch_size)
    return (metrics.threshold_from_normal(validation["score"], 0.99),
            metrics.threshold_from_normal(validation["anomaly_map"], 0.99))


#: fewer test images of a kind than this and `evaluate_model` warns that its metrics say little.
MIN_TEST_IMAGES = 10

#: a training image's foreground estimate (`augment.foreground_mask`) threshold, and the share of
#: training images in which a pixel must be foreground to belong to the object region.
OBJECT_THRESHOLD, OBJECT_SHARE = 0.03, 0.5


def as_float_images(images):
    """float32 images in [0, 1]: uint8 divided by 255, floats as they are."""
    images = np.asarray(images)
    return images.astype("float32") / 255.0 if images.dtype == np.uint8 else images.astype("float32")


def object_region(train_images):
    """(H, W) bool: the pixels where the object lies in at least half of the normal TRAINING images
    (no test image), at the size of the images. Pixel metrics restricted to it judge a map on the
    object: on the tire a map that only marks the tire scores a pixel AUROC of 0.91 over all pixels.
    `train_images`: an array, a `Split`, or a `StreamedSplit`, whose images are streamed (counted in
    chunks: at most `anomzoo.data.streaming.STATISTICS_CAP` of them, evenly spaced)."""
    from anomzoo.augment.foreground import foreground_mask  # keras ops: imported when needed
    from anomzoo.data import normal_batches

    found, count = 0, 0
    for chunk in normal_batches(train_images, 64):
        found = found + np.asarray(foreground_mask(as_float_images(chunk), OBJECT_THRESHOLD)).sum(axis=0)
        count += len(chunk)
    return found / count >= OBJECT_SHARE


def evaluate_model(model, dataset, batch_size=64):
    """(metrics dict, test predictions) for `model` on `dataset.test`.

    Thresholds come from the validation split (normal training images held out from training), so
    no test label touches them; `iou_best` is the exception the metrics name as an oracle.
    """
    normal, anomalous = int(np.sum(dataset.test.labels == 0)), int(np.sum(dataset.test.labels == 1))
    if min(normal, anomalous) < MIN_TEST_IMAGES:
        warnings.warn(f"the test set holds {normal} normal and {anomalous} anomalous images: metrics from so few "
                      f"(under {MIN_TEST_IMAGES} of a kind) say little", stacklevel=2)
    test = predict(model, dataset.test.images, batch_size)
    threshold, map_threshold = validation_thresholds(model, dataset, batch_size)
    results = metrics.evaluate(
        dataset.test.labels,
        test["score"],
        masks=dataset.test.masks,
        maps=test["anomaly_map"] if dataset.test.masks is not None else None,
        threshold=threshold,
        map_threshold=map_threshold,
        region=object_region(dataset.train) if dataset.test.masks is not None else None,
    )
    if threshold is not None:
        # Both thresholds travel with the model (exports, predict), so they are recorded.
        results["score_threshold"] = float(threshold)
        results["map_threshold"] = float(map_threshold)
    if "iou" in results:
        # AnoSeg's Fig. 6b: mean IoU as the map threshold sweeps [0, 1] (a curve over test masks,
        # reported for robustness to the threshold, never used to choose one).
        thresholds = np.round(np.linspace(0.0, 1.0, 21), 3)
        curve = metrics.iou_curve(dataset.test.masks, test["anomaly_map"], thresholds)
        results["iou_curve"] = {"thresholds": thresholds.tolist(), "iou": [float(v) for v in curve]}
    # Diagnostics: AUROC of each extra per-image output (e.g. SAGAN's R and L). Reported, never used
    # to pick the score: that choice would be made with test labels.
    for name, values in test.items():
        if name != "score" and values.ndim == 1:
            results[f"diagnostic_auroc_{name}"] = metrics.image_auroc(dataset.test.labels, values)
    return results, test
