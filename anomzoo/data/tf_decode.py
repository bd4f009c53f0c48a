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
#: the largest image decoded (width x height): 32 Mpx, 96 MB as 8-bit RGB (a 5,792 px square). A
#: small PNG can claim 40000 x 40000 pixels, 4.8 GB to decode at 8 bits, twice that at 16; the size is
#: read from the header and checked before anything is decoded.
MAX_PIXELS = 2 ** 25


def header_pixels(data):
    """width x height read from a PNG, JPEG or GIF header without decoding (int64); 0 for other
    formats, which `decode_image` bounds itself (BMP is stored uncompressed: its size is its file's)."""
    length = tf.strings.length(data)

    def big_endian(offset):  # a PNG header's uint32
        b = tf.cast(tf.io.decode_raw(tf.strings.substr(data, offset, 4), tf.uint8), tf.int64)
        return ((b[0] * 256 + b[1]) * 256 + b[2]) * 256 + b[3]

    def png():
        return big_endian(16) * big_endian(20)

    def gif():
        b = tf.cast(tf.io.decode_raw(tf.strings.substr(data, 6, 4), tf.uint8), tf.int64)
        return (b[0] + 256 * b[1]) * (b[2] + 256 * b[3])

    def jpeg():
        shape = tf.cast(tf.image.extract_jpeg_shape(data), tf.int64)
        return shape[0] * shape[1]

    is_png = tf.logical_and(length >= 24, tf.equal(tf.strings.substr(data, 0, len(_PNG_SIGNATURE)), _PNG_SIGNATURE))
    is_gif = tf.logical_and(length >= 10, tf.equal(tf.strings.substr(data, 0, 3), b"GIF"))
    zero = lambda: tf.constant(0, tf.int64)  # noqa: E731
    return tf.cond(tf.io.is_jpeg(data), jpeg, lambda: tf.cond(is_png, png, lambda: tf.cond(is_gif, gif, zero)))


def decode_rgb(data):
    """One encoded image (a scalar string tensor) -> (H, W, 3) uint8; an InvalidArgumentError, before
    decoding, for an image over MAX_PIXELS."""

    def png():
        wide = tf.io.decode_png(data, channels=3, dtype=tf.uint16)
        return tf.cast(tf.round(tf.cast(wide, tf.float32) / 257.0), tf.uint8)

    def other():
        image = tf.io.decode_image(data, channels=3, expand_animations=False)
        return tf.ensure_shape(image, (None, None, 3))

    def jpeg():
        return tf.io.decode_jpeg(data, channels=3, dct_method="INTEGER_ACCURATE")

    too_large = tf.debugging.assert_less_equal(
        header_pixels(data), tf.constant(MAX_PIXELS, tf.int64),
        message=f"the image is larger than {MAX_PIXELS} pixels (width x height, read from its header); send a "
                "smaller image")
    with tf.control_dependencies([too_large]):
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
