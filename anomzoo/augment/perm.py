"""RandomPatchPermutation ("perm"): a jigsaw shuffle of grid x grid patches."""

from __future__ import annotations

import keras
from keras import ops

from ._common import from_batch, static_hwc, to_batch


def permute_patches(images, perm, grid: int):
    """Rearrange the grid x grid patches of each image: output patch i = input patch perm[b, i].

    images: (B, H, W, C), H and W divisible by grid; perm: (B, grid * grid) int; patches are
    numbered row-major.
    """
    height, width, channels = images.shape[1], images.shape[2], images.shape[3]
    ph, pw, n = height // grid, width // grid, grid * grid
    patches = ops.reshape(images, (-1, grid, ph, grid, pw, channels))
    patches = ops.transpose(patches, (0, 1, 3, 2, 4, 5))
    patches = ops.reshape(patches, (-1, ph * pw * channels))  # (B * n, P)
    batch = ops.shape(images)[0]
    index = ops.reshape(ops.arange(batch, dtype="int32") * n, (-1, 1)) + ops.cast(perm, "int32")
    shuffled = ops.take(patches, ops.reshape(index, (-1,)), axis=0)
    shuffled = ops.reshape(shuffled, (-1, grid, grid, ph, pw, channels))
    shuffled = ops.transpose(shuffled, (0, 1, 3, 2, 4, 5))
    return ops.reshape(shuffled, (-1, height, width, channels))


@keras.saving.register_keras_serializable(package="anomzoo")
class RandomPatchPermutation(keras.layers.Layer):
    """Split each image into grid x grid equal patches and shuffle them (one permutation per image).

    The permutation is never the identity: when the identity is drawn (probability 1 / (grid^2)!)
    the cyclic shift (1, 2, ..., n-1, 0) is used instead. The image still comes out unchanged
    when its patches are identical (e.g. a constant image). H and W must be divisible by `grid`
    (ValueError otherwise; crop or resize first). Input (B, H, W, C) or (H, W, C). Always applied;
    deterministic given `seed`.
    """

    def __init__(self, grid: int = 2, seed=None, **kwargs):
        super().__init__(**kwargs)
        if int(grid) < 2:
            raise ValueError(f"grid must be >= 2, got {grid}")
        self.grid = int(grid)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, images):
        x, single = to_batch(ops.cast(images, self.compute_dtype))
        height, width, _ = static_hwc(x.shape, type(self).__name__)
        if height % self.grid or width % self.grid:
            raise ValueError(
                f"{type(self).__name__}: image size {height}x{width} is not divisible by grid={self.grid}"
            )
        n = self.grid * self.grid
        perm = ops.argsort(keras.random.uniform((ops.shape(x)[0], n), seed=self.seed_generator), axis=-1)
        perm = ops.cast(perm, "int32")
        identity = ops.arange(n, dtype="int32")
        is_identity = ops.all(ops.equal(perm, identity[None, :]), axis=-1, keepdims=True)
        perm = ops.where(is_identity, ops.roll(identity, -1)[None, :], perm)
        return from_batch(permute_patches(x, perm, self.grid), single)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        return {**super().get_config(), "grid": self.grid, "seed": self.seed}
