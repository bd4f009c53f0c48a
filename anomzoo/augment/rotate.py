"""RandomRotate90: each image rotated by a random multiple of 90 degrees."""

from __future__ import annotations

import keras
from keras import ops

from ._common import from_batch, select, static_hwc, to_batch


def rotate90(images, k):
    """Rotate a batch (B, H, W, C) counter-clockwise by k * 90 degrees (numpy's rot90 direction).

    k: a Python int (same for all images) or an int tensor of shape (B,) (one per image; then the
    images must be square).
    """
    if isinstance(k, int):
        return ops.rot90(images, k=k % 4, axes=(1, 2))
    k = ops.mod(ops.cast(k, "int32"), 4)
    out = images
    for j in (1, 2, 3):
        out = select(ops.equal(k, j), ops.rot90(images, k=j, axes=(1, 2)), out)
    return out


@keras.saving.register_keras_serializable(package="anomzoo")
class RandomRotate90(keras.layers.Layer):
    """Rotate each image by k * 90 degrees, k drawn per image from {1, 2, 3} ({0, 1, 2, 3} with
    include_identity=True).

    Input: (B, H, W, C) or a single (H, W, C) image; images must be SQUARE (H == W), otherwise a
    ValueError is raised (a 90-degree rotation would change the shape). Always applied: the
    `training` flag is not used (these layers synthesise data). Deterministic given `seed`.
    """

    def __init__(self, seed=None, include_identity: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.seed = seed
        self.include_identity = bool(include_identity)
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, images):
        x, single = to_batch(ops.cast(images, self.compute_dtype))
        height, width, _ = static_hwc(x.shape, type(self).__name__)
        if height != width:
            raise ValueError(f"{type(self).__name__} needs square images, got H={height}, W={width}")
        k = keras.random.randint(
            (ops.shape(x)[0],), 0 if self.include_identity else 1, 4, seed=self.seed_generator
        )
        return from_batch(rotate90(x, k), single)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        return {**super().get_config(), "seed": self.seed, "include_identity": self.include_identity}
