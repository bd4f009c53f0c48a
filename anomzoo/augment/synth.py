"""AnomalySynthesizer: synthetic anomalies with exact masks, following AnoSeg or attention + ADGAN."""

from __future__ import annotations

import keras
from keras import ops

from ._common import changed_mask, from_batch, static_hwc, sub_seed, to_batch
from .blobpaste import BlobPaste
from .boxfill import BoxFill
from .cutpaste import CutPaste
from .foreground import foreground_mask
from .hard import HardAugment

MODES = ("anoseg", "attention")
REGIONS = ("box", "blob")
OPERATIONS = ("rotation", "perm", "color_jitter")


@keras.saving.register_keras_serializable(package="anomzoo")
class AnomalySynthesizer(keras.layers.Layer):
    """Turn normal images into synthetic anomalies with their masks: returns (image, mask).

    mode="anoseg" (AnoSeg, Sec. 3.1): "we use three types of hard augmentation: rotation, perm,
        and color jitter. Each augmentation is applied with a 50% chance. Then, like Cutpaste,
        the augmented data is pasted into a random region of normal data to generate the
        synthetic anomaly data and corresponding masks". HardAugment(p) on the image, then a
        CutPaste box of the augmented image pasted into the un-augmented one.
    mode="attention" (attention + ADGAN, Sec. 3.2.1): "The first synthesized anomaly data x'_Ano
        is generated using three augmentations ... Similar to CutMix, a random region is selected
        to generate the second anomaly data x''_Ano. The selected region is then replaced with
        the zero value or the corresponding region of x'_Ano, which have the same chance."
        HardAugment(p) gives x'_Ano, then BoxFill(fill="mixed") gives x''_Ano. With
        full_image_prob > 0 an image is replaced by the whole x'_Ano (the paper's first type)
        with that probability; default 0 (the brief's "HardAugment then BoxFill" only).

    operations: which hard augmentations HardAugment may draw, a subset of ("rotation", "perm",
        "color_jitter") (attention + ADGAN's Table 1 compares them alone and combined); default all.
    force_one: passed to HardAugment; None picks per mode: False for "anoseg" (an un-augmented
        patch moved elsewhere is still an anomaly, and the paper's 50% recipe is kept), True for
        "attention" (an un-augmented fill region would leave the image unchanged).

    The mask follows THE MASK RULE: 1 exactly where the output differs from the input on some
    channel (within the pasted / filled region), float32 (B, H, W, 1); it can be empty when
    nothing changed. min_change > 0 narrows it to where some channel changed by more than that
    (AnoSeg's `synthesis_min_change`: a dark patch on a dark region changes pixels by a few
    1/255ths, and marking those invisible changes teaches a map to flag dark normal regions).
    foreground_threshold (mode "anoseg" only): None lets anomalies land anywhere (the papers); a
    value puts them on the object, as `foreground_mask(images, foreground_threshold)` estimates it
    (boxes centred on and clipped to it, blobs drawn inside it): an industrial part's defects lie
    on the part, while most of a centred object's image is background.
    Input (B, H, W, C) float in [0, 1] or one (H, W, C) image; images must be
    square and divisible by `grid` while rotation / perm are on. Deterministic given `seed`.
    """

    def __init__(
        self,
        seed=None,
        mode: str = "anoseg",
        area_range=(0.02, 0.15),
        aspect_range=(0.3, 3.3),
        p: float = 0.5,
        grid: int = 2,
        force_one: bool | None = None,
        full_image_prob: float = 0.0,
        operations=OPERATIONS,
        min_change: float = 0.0,
        region: str = "box",
        opacity_range=(0.3, 1.0),
        foreground_threshold: float | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        operations = tuple(operations)
        if not operations or set(operations) - set(OPERATIONS):
            raise ValueError(f"operations must be a non-empty subset of {OPERATIONS}, got {operations}")
        if not 0.0 <= float(full_image_prob) <= 1.0:
            raise ValueError(f"full_image_prob must be in [0, 1], got {full_image_prob}")
        if region not in REGIONS or (region != "box" and mode != "anoseg"):
            raise ValueError(f"region must be one of {REGIONS} ('blob' in mode 'anoseg' only), got {region!r}")
        if not 0.0 <= float(min_change) < 1.0:
            raise ValueError(f"min_change must be in [0, 1), got {min_change}")
        if foreground_threshold is not None and (mode != "anoseg" or not 0.0 <= float(foreground_threshold) < 1.0):
            raise ValueError("foreground_threshold must be None or in [0, 1) (in mode 'anoseg' only), "
                             f"got {foreground_threshold!r} in mode {mode!r}")
        self.seed = seed
        self.mode = mode
        self.area_range = tuple(float(v) for v in area_range)
        self.aspect_range = tuple(float(v) for v in aspect_range)
        self.p = float(p)
        self.grid = int(grid)
        self.force_one = force_one
        self.full_image_prob = float(full_image_prob)
        self.operations = operations
        self.min_change = float(min_change)
        self.region = region
        self.opacity_range = tuple(float(v) for v in opacity_range)
        self.foreground_threshold = None if foreground_threshold is None else float(foreground_threshold)
        resolved_force = (mode == "attention") if force_one is None else bool(force_one)
        self.hard = HardAugment(seed=sub_seed(seed, 1), p=self.p, grid=self.grid, force_one=resolved_force,
                                **{name: name in operations for name in OPERATIONS})
        if region == "blob":
            self.region_layer = BlobPaste(seed=sub_seed(seed, 10), area_range=self.area_range,
                                          opacity_range=self.opacity_range)
        elif mode == "anoseg":
            self.region_layer = CutPaste(
                seed=sub_seed(seed, 10), area_range=self.area_range, aspect_range=self.aspect_range
            )
        else:
            self.region_layer = BoxFill(
                seed=sub_seed(seed, 10),
                area_range=self.area_range,
                aspect_range=self.aspect_range,
                fill="mixed",
                augment=self.hard,  # not called by BoxFill here: the synthesizer passes x'_Ano
            )
        self.seed_generator = keras.random.SeedGenerator(seed)

    def build(self, input_shape):
        for layer in (self.hard, self.region_layer):
            if not layer.built:
                layer.build(input_shape)
        self.built = True

    def call(self, images):
        x, single = to_batch(ops.cast(images, self.compute_dtype))
        static_hwc(x.shape, type(self).__name__)
        augmented = ops.cast(self.hard(x), self.compute_dtype)
        if self.mode == "anoseg":
            allowed = None if self.foreground_threshold is None else foreground_mask(x, self.foreground_threshold)
            out, mask = self.region_layer.paste(x, augmented, allowed)
        else:
            out, mask = self.region_layer.fill_box(x, augmented)
            if self.full_image_prob > 0.0:
                u = keras.random.uniform((ops.shape(x)[0],), seed=self.seed_generator)
                full = ops.reshape(u < self.full_image_prob, (-1, 1, 1, 1))
                out = ops.where(full, augmented, out)
                mask = ops.where(full, changed_mask(augmented, x), mask)
        if self.min_change > 0.0:
            mask = mask * ops.cast(ops.max(ops.abs(out - x), axis=-1, keepdims=True) > self.min_change, mask.dtype)
        return from_batch((out, mask), single)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape), tuple(input_shape[:-1]) + (1,)

    def get_config(self):
        return {
            **super().get_config(),
            "seed": self.seed,
            "mode": self.mode,
            "area_range": list(self.area_range),
            "aspect_range": list(self.aspect_range),
            "p": self.p,
            "grid": self.grid,
            "force_one": self.force_one,
            "full_image_prob": self.full_image_prob,
            "operations": list(self.operations),
            "min_change": self.min_change,
            "region": self.region,
            "opacity_range": list(self.opacity_range),
            "foreground_threshold": self.foreground_threshold,
        }
