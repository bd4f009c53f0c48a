"""Helpers shared by the augmentation layers (keras.ops only, no backend-specific calls)."""

from __future__ import annotations

import math

import keras
from keras import ops


def sub_seed(seed, k: int):
    """The seed of the k-th child layer of a composite layer: None stays None (random)."""
    return None if seed is None else int(seed) + k


def check_range(name: str, value, low: float, high: float) -> tuple[float, float]:
    lo, hi = (float(v) for v in value)
    if not (low < lo <= hi <= high):
        raise ValueError(f"{name} must satisfy {low} < min <= max <= {high}, got {tuple(value)}")
    return lo, hi


def static_hwc(shape, layer_name: str) -> tuple[int, int, int]:
    """(H, W, C) of a (B, H, W, C) shape; they must be known statically (batch may be None)."""
    if len(shape) != 4:
        raise ValueError(f"{layer_name} expects images (B, H, W, C) or (H, W, C), got shape {tuple(shape)}")
    h, w, c = shape[1], shape[2], shape[3]
    if h is None or w is None or c is None:
        raise ValueError(f"{layer_name} needs a static image size (H, W, C), got shape {tuple(shape)}")
    return int(h), int(w), int(c)


def to_batch(x):
    """(images as a batch, whether the input was a single image)."""
    if len(x.shape) == 3:
        return ops.expand_dims(x, 0), True
    return x, False


def from_batch(y, single: bool):
    if not single:
        return y
    if isinstance(y, tuple):
        return tuple(ops.squeeze(t, 0) for t in y)
    return ops.squeeze(y, 0)


def select(condition, a, b):
    """Per-image choice: a where condition (B,) is true, else b; a and b are (B, H, W, C)."""
    return ops.where(ops.reshape(condition, (-1, 1, 1, 1)), a, b)


def changed_mask(out, x, region=None):
    """THE MASK RULE: 1 where any channel of `out` differs from `x` (inside `region` when given).

    region: optional (B, H, W) bool. Returns (B, H, W, 1) float32 in {0, 1}.
    """
    changed = ops.any(ops.not_equal(out, x), axis=-1)
    if region is not None:
        changed = ops.logical_and(changed, region)
    return ops.cast(ops.expand_dims(changed, -1), "float32")


def box_sizes(u_area, u_aspect, height: int, width: int, area_range, aspect_range):
    """Box heights and widths (int32, (B,)) from two (B,) uniforms in [0, 1).

    area ~ U(area_range) * H * W, aspect (h / w) log-uniform in aspect_range (as in CutPaste),
    h = sqrt(area * aspect), w = sqrt(area / aspect), rounded and clipped to the image.
    """
    area = (area_range[0] + (area_range[1] - area_range[0]) * u_area) * float(height * width)
    log_lo, log_hi = math.log(aspect_range[0]), math.log(aspect_range[1])
    aspect = ops.exp(log_lo + (log_hi - log_lo) * u_aspect)
    h = ops.clip(ops.round(ops.sqrt(area * aspect)), 1.0, float(height))
    w = ops.clip(ops.round(ops.sqrt(area / aspect)), 1.0, float(width))
    return ops.cast(h, "int32"), ops.cast(w, "int32")


def box_offsets(u, size, extent: int):
    """A uniform start in [0, extent - size] (int32, (B,)) from a (B,) uniform in [0, 1)."""
    room = ops.cast(extent - size + 1, "float32")
    start = ops.cast(ops.floor(u * room), "int32")
    return ops.clip(start, 0, extent - size)


def coordinate_grids(height: int, width: int):
    """(ys, xs) int32 of shapes (1, H, 1) and (1, 1, W), for broadcasting against (B, 1, 1) bounds."""
    ys = ops.reshape(ops.arange(height, dtype="int32"), (1, height, 1))
    xs = ops.reshape(ops.arange(width, dtype="int32"), (1, 1, width))
    return ys, xs


def box_region(top, left, h, w, height: int, width: int):
    """(B, H, W) bool, true inside each image's box [top, top + h) x [left, left + w)."""
    ys, xs = coordinate_grids(height, width)

    def col(v):
        return ops.reshape(v, (-1, 1, 1))

    inside_y = ops.logical_and(ys >= col(top), ys < col(top + h))
    inside_x = ops.logical_and(xs >= col(left), xs < col(left + w))
    return ops.logical_and(inside_y, inside_x)


def gather_pixels(images, src_y, src_x):
    """out[b, y, x, :] = images[b, src_y[b, y, x], src_x[b, y, x], :] (indices clipped to the image).

    images: (B, H, W, C) with static H, W, C; src_y, src_x: (B, H, W) int32.
    """
    height, width, channels = images.shape[1], images.shape[2], images.shape[3]
    batch = ops.shape(images)[0]
    src_y = ops.clip(src_y, 0, height - 1)
    src_x = ops.clip(src_x, 0, width - 1)
    offset = ops.reshape(ops.arange(batch, dtype="int32") * (height * width), (-1, 1, 1))
    flat_index = ops.reshape(offset + src_y * width + src_x, (-1,))
    flat = ops.reshape(images, (-1, channels))
    return ops.reshape(ops.take(flat, flat_index, axis=0), (-1, height, width, channels))


def random_pixel(allowed, seed_generator):
    """(B,) int32 flat index (y * W + x) of a pixel drawn uniformly among each image's allowed ones.

    allowed: (B, H, W) bool with at least one true pixel per image.
    """
    flat = ops.reshape(ops.cast(allowed, "float32"), (ops.shape(allowed)[0], -1))
    logits = ops.where(flat > 0, 0.0, -1e9)
    return ops.cast(keras.random.categorical(logits, 1, seed=seed_generator)[:, 0], "int32")


def serialize_layer(layer):
    return None if layer is None else keras.saving.serialize_keras_object(layer)


def deserialize_layer(obj):
    if obj is None or isinstance(obj, keras.layers.Layer):
        return obj
    return keras.saving.deserialize_keras_object(obj)


class BoxLayer(keras.layers.Layer):
    """What CutPaste, BlobPaste and BoxFill share: a seeded random region per image (area and
    aspect ranges), an optional `augment` layer, and an (image, mask) output. A subclass defines
    `paste(images, source)`; BoxFill, whose fill is not always a source image, has its own `call`."""

    def __init__(self, seed=None, area_range=(0.02, 0.15), aspect_range=(0.3, 3.3), augment=None, **kwargs):
        super().__init__(**kwargs)
        self.seed = seed
        self.area_range = check_range("area_range", area_range, 0.0, 1.0)
        self.aspect_range = check_range("aspect_range", aspect_range, 0.0, float("inf"))
        self.augment = deserialize_layer(augment)
        self.seed_generator = keras.random.SeedGenerator(seed)

    def build(self, input_shape):
        if self.augment is not None and not self.augment.built:
            self.augment.build(input_shape)
        self.built = True

    def paste(self, images, source, allowed=None):
        """(image, mask): a region of `source` (the images, or their augmented copy) put into `images`,
        changing only pixels where `allowed` ((B, H, W) bool, optional) is true."""
        raise NotImplementedError

    def call(self, images):
        x, single = to_batch(ops.cast(images, self.compute_dtype))
        source = x if self.augment is None else ops.cast(self.augment(x), self.compute_dtype)
        return from_batch(self.paste(x, source), single)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape), tuple(input_shape[:-1]) + (1,)

    def get_config(self):
        return {
            **super().get_config(),
            "seed": self.seed,
            "area_range": list(self.area_range),
            "aspect_range": list(self.aspect_range),
            "augment": serialize_layer(self.augment),
        }
