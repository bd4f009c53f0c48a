"""Load an exported model and run it: the same call for every format.

    runner = load_export("exports/sagan/skip_attention_gan/1")   # SavedModel, .tflite or .onnx
    outputs = runner(images)          # {"score", "anomaly_map", "is_anomalous"} as numpy arrays
    outputs = runner.from_bytes([open("a.png", "rb").read()])      # SavedModel only

Each runtime is imported only when its format is used (onnxruntime and ai-edge-litert are the
`export` extra).
"""

import pathlib

import numpy as np

from anomzoo import contract
from anomzoo.export.serving_model import OUTPUTS


class SavedModelRunner:
    def __init__(self, path):
        import tensorflow as tf

        self._tf = tf
        self._loaded = tf.saved_model.load(str(path))
        self._float = self._loaded.signatures["serving_default"]
        self._bytes = self._loaded.signatures.get("serve_bytes")
        self.image_shape = tuple(self._float.structured_input_signature[1]["images"].shape[1:])

    def __call__(self, images):
        images = contract.check_images(images, self.image_shape, "the export")
        return _numpy(self._float(images=self._tf.constant(images, self._tf.float32)))

    def from_bytes(self, encoded):
        if self._bytes is None:
            raise ValueError("this SavedModel has no serve_bytes signature")
        return _numpy(self._bytes(image_bytes=self._tf.constant(list(encoded), self._tf.string)))


class LiteRTRunner:
    def __init__(self, path):
        from ai_edge_litert.interpreter import Interpreter

        self._interpreter = Interpreter(model_path=str(path))
        self._runner = self._interpreter.get_signature_runner("serving_default")
        details = self._runner.get_input_details()["images"]
        self.image_shape = tuple(int(n) for n in details["shape_signature"][1:])

    def __call__(self, images):
        # The graph's batch axis is dynamic: the signature runner resizes its buffers to the batch.
        return _numpy(self._runner(images=contract.check_images(images, self.image_shape, "the export")))


class OnnxRunner:
    def __init__(self, path):
        import onnxruntime

        self._session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        self._names = [output.name for output in self._session.get_outputs()]
        self.image_shape = tuple(self._session.get_inputs()[0].shape[1:])

    def __call__(self, images):
        values = self._session.run(None, {"images": contract.check_images(images, self.image_shape, "the export")})
        return dict(zip(self._names, values))


def _numpy(outputs):
    return {name: np.asarray(outputs[name]) for name in OUTPUTS}


def load_export(path):
    """A runner for the export at `path`: a SavedModel directory, a `.tflite` or an `.onnx` file."""
    path = pathlib.Path(path)
    if path.is_dir() and (path / "saved_model.pb").is_file():
        return SavedModelRunner(path)
    if path.is_file() and path.suffix == ".tflite":
        return LiteRTRunner(path)
    if path.is_file() and path.suffix == ".onnx":
        return OnnxRunner(path)
    raise ValueError(f"{path} is not an export: expected a SavedModel directory (with saved_model.pb), "
                     "a .tflite file or an .onnx file")
