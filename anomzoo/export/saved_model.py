"""SavedModel for TF Serving: `serving_default` (float images) and `serve_bytes` (encoded files)."""

import keras
import tensorflow as tf

from anomzoo.data.tf_decode import images_from_bytes


def write_saved_model(serving, path):
    """Write `serving` (see `serving_model`) as a SavedModel at `path` with two signatures:

    - `serving_default`: `images` (B, H, W, C) float32 in [0, 1];
    - `serve_bytes`: `image_bytes` (B,) encoded PNG / JPEG / BMP / GIF files of any size, decoded,
      resized and converted inside the graph exactly as `anomzoo.data` loads files.

    Both return `score`, `anomaly_map` and `is_anomalous`.
    """
    shape = tuple(serving.input_shape[1:])
    archive = keras.export.ExportArchive()
    archive.track(serving)
    archive.add_endpoint(
        name="serving_default",
        fn=lambda images: serving(images, training=False),
        input_signature=[tf.TensorSpec((None, *shape), tf.float32, name="images")],
    )
    archive.add_endpoint(
        name="serve_bytes",
        fn=lambda image_bytes: serving(images_from_bytes(image_bytes, shape), training=False),
        input_signature=[tf.TensorSpec((None,), tf.string, name="image_bytes")],
    )
    archive.write_out(str(path), verbose=False)
