"""Honest model selection: a fixed validation set of held-out normal images and anomalies.

No test image is ever seen before the final evaluation, so the checkpoint a run keeps is chosen on
this set: the validation split's normal images plus one synthetic anomaly made from each of them
(AnomalySynthesizer, seeded, with its exact mask), or, where the user has a few labelled defects
(`load_dataset(labelled_validation_fraction=...)`), those real anomalies. The set is made once per
run, so every epoch is scored on the same images.
"""

from __future__ import annotations

import dataclasses

import numpy as np

#: selection rules: "last" keeps the final epoch's weights; the others the epoch (of each stage)
#: with the best value of that validation metric.
RULES = {
    "last": "last epoch of each stage (no checkpoint selection)",
    "val_syn_auroc": "epoch of each stage with the best mean of image and pixel AUROC on the validation set "
                     "(held-out normal images + seeded synthetic anomalies of them; no test data), or with the "
                     "best of the one metric a stage names (AnoSeg: pixel AUROC for segmentation, image AUROC "
                     "for the detector)",
    "val_syn_image_auroc": "epoch of each stage with the best image AUROC on the validation set "
                           "(held-out normal images + seeded synthetic anomalies of them; no test data)",
    "val_syn_pixel_auroc": "epoch of each stage with the best pixel AUROC on the validation set "
                           "(held-out normal images + seeded synthetic anomalies of them; no test data)",
    "val_real_auroc": "as val_syn_auroc, on the labelled validation split instead: held-out normal images + "
                      "real anomalous images with masks, taken out of the test split (the test metrics are on "
                      "the rest)",
    "val_real_image_auroc": "epoch of each stage with the best image AUROC on the labelled validation split",
    "val_real_pixel_auroc": "epoch of each stage with the best pixel AUROC on the labelled validation split",
}


def uses_real_anomalies(rule: str) -> bool:
    """Whether a selection rule scores the labelled validation split (real anomalies)."""
    return rule.startswith("val_real_")


@dataclasses.dataclass(frozen=True)
class ValidationSet:
    """images (N, H, W, C) float32 in [0, 1]; labels (N,) 0 normal / 1 anomalous; masks (N, H, W, 1).

    kind: "syn" (synthetic anomalies) or "real" (labelled ones); it names the metrics ("val_syn_...").
    """

    images: np.ndarray
    labels: np.ndarray
    masks: np.ndarray
    kind: str = "syn"

    def __len__(self):
        return int(self.images.shape[0])


def synthetic_validation_set(images, *, seed=0, mode="anoseg", max_normal=256, area_range=(0.02, 0.15),
                             min_change=0.0, region="box", opacity_range=(0.3, 1.0), foreground_threshold=None):
    """The validation set made from `images` ((N, H, W, C) uint8 normal images, held out from training).

    At most `max_normal` of them are used (a seeded choice), each with one synthetic anomaly; an
    anomaly whose mask came out empty (the synthesiser changed nothing) is left out. area_range: the
    anomalous region's area as a fraction of the image (the synthesiser's default unless a sweep asks
    how a model does on smaller or larger anomalies). min_change: a pixel of an anomaly is marked only
    where some channel changed by more than this (AnoSeg's `synthesis_min_change`); 0 marks every
    pixel the synthesiser touched. region, opacity_range: the synthesiser's ("box": CutPaste
    rectangles; "blob": irregular regions blended at an opacity in opacity_range), foreground_threshold
    (None: anywhere; a value: on the object, as `anomzoo.augment.foreground_mask` estimates it).
    """
    from anomzoo.augment import AnomalySynthesizer

    images = np.asarray(images)
    if images.ndim != 4 or len(images) == 0:
        raise ValueError(f"need (N, H, W, C) normal validation images, got shape {images.shape}; "
                         "the selection rules other than 'last' need a validation split")
    if len(images) > max_normal:
        images = images[np.sort(np.random.default_rng(seed).choice(len(images), max_normal, replace=False))]
    normal = images.astype("float32") / 255.0 if images.dtype == np.uint8 else images.astype("float32")
    synthesizer = AnomalySynthesizer(seed=seed, mode=mode, area_range=area_range, min_change=min_change,
                                     region=region, opacity_range=opacity_range,
                                     foreground_threshold=foreground_threshold)
    anomalies, masks = (np.asarray(t) for t in synthesizer(normal))
    changed = masks.reshape(len(masks), -1).max(axis=1) > 0
    return ValidationSet(
        images=np.concatenate([normal, anomalies[changed]]),
        labels=np.concatenate([np.zeros(len(normal), np.int32), np.ones(int(changed.sum()), np.int32)]),
        masks=np.concatenate([np.zeros_like(masks), masks[changed]]).astype("float32"),
    )


def labelled_validation_set(dataset):
    """The validation split's normal images plus the labelled validation split (real anomalies, masks)."""
    labelled = dataset.labelled_validation
    if labelled is None or not np.any(labelled.labels == 1):
        raise ValueError("the 'val_real_*' selection rules need a labelled validation split with anomalies: "
                         "load the data with labelled_validation_fraction (CLI: --labelled-validation F)")
    normal = dataset.validation
    images = np.concatenate([normal.images, labelled.images]).astype("float32") / 255.0
    masks = np.concatenate([np.zeros(normal.images.shape[:3] + (1,), np.float32), labelled.masks.astype("float32")])
    labels = np.concatenate([np.zeros(len(normal), np.int32), labelled.labels.astype(np.int32)])
    return ValidationSet(images=images, labels=labels, masks=masks, kind="real")


def validation_metrics(model, validation, batch_size=32):
    """{"val_K_image_auroc", "val_K_pixel_auroc", "val_K_auroc" (their mean)} of `model`, K the set's kind."""
    outputs = model.predict(validation.images, batch_size=batch_size, verbose=0)
    from anomzoo import metrics  # here, not at the top: the CLI reads RULES without loading scikit-learn

    image = metrics.image_auroc(validation.labels, np.asarray(outputs["score"]))
    pixel = metrics.pixel_auroc(validation.masks, np.asarray(outputs["anomaly_map"]))
    prefix = f"val_{validation.kind}_"
    return {f"{prefix}image_auroc": image, f"{prefix}pixel_auroc": pixel, f"{prefix}auroc": 0.5 * (image + pixel)}
