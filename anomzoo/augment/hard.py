"""HardAugment: rotation, perm and colour jitter, each applied with probability p per image."""

from __future__ import annotations

import keras
from keras import ops

from ._common import from_batch, select, static_hwc, sub_seed, to_batch
from .color import HardColorJitter, jitter_any_channels
from .perm import RandomPatchPermutation
from .rotate import RandomRotate90


@keras.saving.register_keras_serializable(package="anomzoo")
class HardAugment(keras.layers.Layer):
    """Hard (distribution-shifting) augmentation, in the papers' order: rotation (k * 90 deg,
    k in {1, 2, 3}), then perm (grid x grid jigsaw), then colour jitter, each drawn independently
    per image with probability `p` (AnoSeg Fig. 3: "Hard augmentations are applied with a 50%
    chance"; Sec. 3.1: "Each augmentation is applied with a 50% chance").

    rotation / perm / color_jitter: switch each operation off with False. With all three on,
        images must be square (rotation), divisible by `grid` (perm) and have 1 or 3 channels.
    force_one: when True, an image that drew no operation (probability (1 - p)^3) gets one
        enabled operation chosen uniformly, so every output is augmented. Default False (the
        papers' recipe: about 1/8 of the images come out unchanged at p = 0.5).
    jitter: optional dict of HardColorJitter arguments (factors) overriding the defaults.

    Input (B, H, W, C) float in [0, 1], or one (H, W, C) image; output the same shape, float32.
    Always applied (no `training` switch). Deterministic given `seed` (child layers get seed + 1,
    seed + 2, seed + 3).
    """

    def __init__(
        self,
        seed=None,
        p: float = 0.5,
        rotation: bool = True,
        perm: bool = True,
        color_jitter: bool = True,
        grid: int = 2,
        force_one: bool = False,
        jitter: dict | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if not 0.0 <= float(p) <= 1.0:
            raise ValueError(f"p must be in [0, 1], got {p}")
        if not (rotation or perm or color_jitter):
            raise ValueError("HardAugment needs at least one of rotation, perm, color_jitter")
        self.seed = seed
        self.p = float(p)
        self.rotation = bool(rotation)
        self.perm = bool(perm)
        self.color_jitter = bool(color_jitter)
        self.grid = int(grid)
        self.force_one = bool(force_one)
        self.jitter = dict(jitter) if jitter else None
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.rotate_layer = RandomRotate90(seed=sub_seed(seed, 1)) if self.rotation else None
        self.perm_layer = (
            RandomPatchPermutation(grid=self.grid, seed=sub_seed(seed, 2)) if self.perm else None
        )
        self.jitter_layer = (
            HardColorJitter(seed=sub_seed(seed, 3), **(self.jitter or {})) if self.color_jitter else None
        )

    def build(self, input_shape):
        shape = tuple(input_shape) if len(input_shape) == 4 else (None, *input_shape)
        for layer in (self.rotate_layer, self.perm_layer):
            if layer is not None and not layer.built:
                layer.build(shape)
        if self.jitter_layer is not None and not self.jitter_layer.built:
            self.jitter_layer.build(shape[:-1] + (3,))  # grey images are tiled to RGB
        self.built = True

    def _ops(self):
        ops_ = []
        if self.rotation:
            ops_.append(self.rotate_layer)
        if self.perm:
            ops_.append(self.perm_layer)
        if self.color_jitter:
            ops_.append(lambda t: jitter_any_channels(self.jitter_layer, t))
        return ops_

    def call(self, images):
        x, single = to_batch(ops.cast(images, self.compute_dtype))
        static_hwc(x.shape, type(self).__name__)
        transforms = self._ops()
        n = len(transforms)
        batch = ops.shape(x)[0]
        coins = keras.random.uniform((batch, n), seed=self.seed_generator) < self.p
        if self.force_one:
            chosen = keras.random.randint((batch,), 0, n, seed=self.seed_generator)
            forced = ops.equal(ops.arange(n, dtype="int32")[None, :], ops.reshape(chosen, (-1, 1)))
            none = ops.logical_not(ops.any(coins, axis=-1, keepdims=True))
            coins = ops.where(none, forced, coins)
        out = x
        for j, transform in enumerate(transforms):
            out = select(coins[:, j], ops.cast(transform(out), self.compute_dtype), out)
        return from_batch(out, single)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        return {
            **super().get_config(),
            "seed": self.seed,
            "p": self.p,
            "rotation": self.rotation,
            "perm": self.perm,
            "color_jitter": self.color_jitter,
            "grid": self.grid,
            "force_one": self.force_one,
            "jitter": self.jitter,
        }
