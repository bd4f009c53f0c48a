"""The function every export serves: the inference contract plus the decision.

`serving_model(model, score_threshold)` wraps a trained anomzoo model in a functional Keras model
with one input, `images` (B, H, W, C) float32 in [0, 1], and three outputs:

- `score` (B,): the model's image score, higher = more anomalous;
- `anomaly_map` (B, H, W, 1): the model's map, higher = more anomalous;
- `is_anomalous` (B,) bool: `score >= score_threshold` (or the score is NaN), the threshold chosen
  on normal validation images, held as a constant in the graph so that every format decides as the
  Python model does.

The model is called with training=False (BatchNorm uses its moving statistics). Each format
(SavedModel, LiteRT, ONNX) exports this one graph, so they cannot drift from each other.
"""

import keras
from keras import ops

OUTPUTS = ("score", "anomaly_map", "is_anomalous")


class Decision(keras.layers.Layer):
    """score >= threshold (and NaN scores anomalous), with the threshold a Python float (a constant in
    every exported graph; a tensor built in the functional API would become a second input of the
    ONNX model)."""

    def __init__(self, threshold, **kwargs):
        super().__init__(**kwargs)
        self.threshold = float(threshold)

    def call(self, score):
        # A NaN score (score != score) is flagged anomalous, never passed as normal. Not written as
        # not(score < threshold): LiteRT's converter turns that into score >= threshold, false for NaN.
        return ops.logical_or(ops.greater_equal(score, self.threshold), ops.not_equal(score, score))

    def compute_output_spec(self, score):
        return keras.KerasTensor(score.shape, dtype="bool")


class CheckedImages(keras.layers.Layer):
    """The images, checked against the inference contract inside the graph: a SavedModel served by
    TF Serving answers images outside [0, 1] (0-255 values, NaN) with an error, not a wrong score.
    LiteRT and ONNX drop the check when they convert (their Python runners check before running)."""

    def __init__(self, image_shape, owner, **kwargs):
        super().__init__(**kwargs)
        self.image_shape, self.owner = tuple(image_shape), owner

    def call(self, images):
        from anomzoo.contract import check_images_in_graph

        return check_images_in_graph(images, self.image_shape, self.owner)


def serving_model(model, score_threshold):
    images = keras.Input(tuple(model.image_shape), name="images", dtype="float32")
    outputs = model(CheckedImages(tuple(model.image_shape), type(model).__name__, name="checked_images")(images),
                    training=False)
    score = outputs["score"]
    decision = Decision(score_threshold, name="is_anomalous")(score)
    return keras.Model(images, {"score": score, "anomaly_map": outputs["anomaly_map"], "is_anomalous": decision},
                       name=f"{model.name}_serving")
