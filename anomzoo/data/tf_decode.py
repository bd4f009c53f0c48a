"""Encoded image bytes -> model input with TensorFlow ops, exactly as the OpenCV loaders read files.

Used where decoding must live in a graph: the exported `serve_bytes` signature, and
`decode_image_file` for pipelines that stream files.

The loaders (OpenCV) decode a file to 8-bit RGB or grey, resize it to the model's square size with
INTER_AREA when shrinking and INTER_LINEAR when enlarging, round to uint8, convert the channels
(grey -> RGB by repetition, RGB -> grey with ITU-R 601 weights) and divide by 255. This module does
the same, so a served model sees what the trained model saw:

- JPEG through libjpeg's accurate integer DCT (OpenCV's default): the same pixels;
- PNG decoded at 16 bits and brought to 8 with round(x / 257), as the loaders do for 16-bit files
  (an 8-bit file comes back unchanged); other formats (BMP, GIF) through `decode_image`;
- shrinking: TensorFlow's "area" resize equals OpenCV's INTER_AREA (checked bit for bit on the tire
  images at 32-256 px); enlarging: bilinear with half-pixel centres, which OpenCV computes in
  fixed point, so about 8% of pixels differ by one grey level (scores then differ slightly: the
  export tests bound it).
"""

import tensorflow as tf

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_LUMA = (0.299, 0.587, 0.114)


def decode_rgb(data):
    """One encoded image (a scalar string tensor) -> (H, W, 3) uint8."""

    def png():
        wide = tf.io.decode_png(data, channels=3, dtype=tf.uint16)
        return tf.cast(tf.round(tf.cast(wide, tf.float32) / 257.0), tf.uint8)

    def other():
        image = tf.io.decode_image(data, channels=3, expand_animations=False)
        return tf.ensure_shape(image, (None, None, 3))

    def jpeg():
        return tf.io.decode_jpeg(data, channels=3, dct_method="INTEGER_ACCURATE")

    is_png = tf.equal(tf.strings.substr(data, 0, len(_PNG_SIGNATURE)), _PNG_SIGNATURE)
    return tf.cond(tf.io.is_jpeg(data), jpeg, lambda: tf.cond(is_png, png, other))


def resize_like_loaders(image, size):
    """(H, W, 3) uint8 -> (size, size, 3) float32 holding whole numbers in [0, 255]."""
    height, width = tf.shape(image)[0], tf.shape(image)[1]
    pixels = tf.cast(image, tf.float32)[None]
    shrinking = size <= tf.minimum(height, width)
    resized = tf.cond(shrinking,
                      lambda: tf.image.resize(pixels, (size, size), method="area"),
                      lambda: tf.image.resize(pixels, (size, size), method="bilinear"))
    return tf.clip_by_value(tf.round(resized[0]), 0.0, 255.0)


def to_channels(image, channels):
    """(size, size, 3) whole numbers -> `channels` (1 or 3), as `anomzoo.data` converts them."""
    if channels == 3:
        return image
    grey = tf.tensordot(image, tf.constant(_LUMA, tf.float32), axes=[[2], [0]])
    return tf.clip_by_value(tf.round(grey), 0.0, 255.0)[..., None]


def images_from_bytes(image_bytes, image_shape):
    """(B,) encoded images of any size -> (B, *image_shape) float32 in [0, 1]."""
    size, channels = int(image_shape[0]), int(image_shape[-1])

    def one(data):
        return to_channels(resize_like_loaders(decode_rgb(data), size), channels) / 255.0

    return tf.map_fn(one, image_bytes, fn_output_signature=tf.TensorSpec((size, size, channels), tf.float32))
