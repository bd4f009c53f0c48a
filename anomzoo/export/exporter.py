"""`export(trained, out)`: every format of one trained model, checked against Keras, in one folder.

    <out>/metadata.json                  thresholds, provenance, metrics, each file's deviation from Keras
    <out>/<name>/<version>/              SavedModel (TF Serving's layout; base path <out>/<name>)
        assets.extra/anomzoo.json        the same metadata, travelling with the SavedModel
    <out>/litert/<name>_<variant>.tflite float32, float16, int8_dynamic
    <out>/onnx/<name>.onnx

Everything is written into a temporary folder beside `out` and renamed onto it at the end, so a
failed export leaves nothing behind. Each file is loaded back and run on real images (normal
validation images and test images) and its largest deviation from the Keras model is recorded.
"""

import os
import pathlib
import re
import shutil
import time

import numpy as np

from anomzoo import provenance
from anomzoo.export import litert
from anomzoo.export.runtime import load_export
from anomzoo.export.saved_model import write_saved_model
from anomzoo.export.serving_model import OUTPUTS, serving_model
from anomzoo.files import atomic_directory, write_json
from anomzoo.models.precision import float32_copy

FORMATS = ("saved_model", "litert", "onnx")
CHECK_IMAGES = 32


def sample_images(data, count=CHECK_IMAGES):
    """Real images to compare formats on: validation (normal) images and test images, as floats."""
    half = count // 2
    test = data.test.images[np.linspace(0, len(data.test) - 1, min(half, len(data.test))).astype(int)]
    images = np.concatenate([data.validation.images[:count - len(test)], test])
    return images.astype("float32") / 255.0


def deviation(reference, outputs):
    """Largest absolute difference per float output, and the count of differing decisions."""
    facts = {name: float(np.max(np.abs(np.asarray(reference[name], np.float64) - outputs[name])))
             for name in ("score", "anomaly_map")}
    facts["is_anomalous_disagreements"] = int(np.sum(np.asarray(reference["is_anomalous"]) != outputs["is_anomalous"]))
    return facts


def check_name(name):
    """`name` when it can name a folder inside the export (TF Serving's model name), else a ValueError:
    a name holding '/' or '..' would write outside --out, over another export."""
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", str(name)) or ".." in str(name):
        raise ValueError(f"--name {name!r}: the model name must be a plain name (letters, digits, '.', '_', '-', "
                         "no '..'): it names a folder inside --out")
    return name


def export(trained, out, formats=FORMATS, name=None, version=1):
    """Write `trained` (an `export.source.TrainedModel`) to `out` in `formats`; returns the metadata."""
    unknown = sorted(set(formats) - set(FORMATS))
    if unknown or not formats:
        raise ValueError(f"unknown export format(s) {unknown}; expected some of {list(FORMATS)}")
    name = check_name(name or trained.name)
    started = time.time()
    # LiteRT and ONNX have no bfloat16 kernels: a bfloat16 model is exported as its float32 copy.
    serving = serving_model(float32_copy(trained.model), trained.score_threshold)
    images = sample_images(trained.data)
    reference = {key: np.asarray(value) for key, value in serving(images).items()}
    files = {}
    with atomic_directory(out) as tmp:
        saved_model = tmp / name / str(version)
        write_saved_model(serving, saved_model)  # LiteRT converts from it, so it is always written
        if "saved_model" in formats:
            files["saved_model"] = {"path": str(saved_model.relative_to(tmp)), "signatures": ["serving_default", "serve_bytes"]}
        if "litert" in formats:
            for variant, description in litert.VARIANTS.items():
                path = tmp / "litert" / f"{name}_{variant}.tflite"
                path.parent.mkdir(exist_ok=True)
                path.write_bytes(litert.convert(saved_model, variant))
                files[f"litert_{variant}"] = {"path": str(path.relative_to(tmp)), "stores": description}
        if "onnx" in formats:
            path = tmp / "onnx" / f"{name}.onnx"
            path.parent.mkdir()
            serving.export(str(path), format="onnx", verbose=False)
            files["onnx"] = {"path": str(path.relative_to(tmp))}
        for facts in files.values():
            facts["bytes"] = _size(tmp / facts["path"])
            facts["deviation_from_keras"] = deviation(reference, load_export(tmp / facts["path"])(images))
        if "saved_model" not in formats:
            shutil.rmtree(tmp / name)
        metadata = _metadata(trained, name, version, files, len(images), time.time() - started)
        write_json(tmp / "metadata.json", metadata)
        if "saved_model" in formats:
            write_json(saved_model / "assets.extra" / "anomzoo.json", metadata)
    return metadata


def _metadata(trained, name, version, files, checked_on, seconds):
    model = trained.model
    return {
        "name": name,
        "version": version,
        "model": trained.name,
        "image_shape": list(model.image_shape),
        "inputs": {"images": f"float32 (B, {', '.join(map(str, model.image_shape))}) in [0, 1]",
                   "image_bytes": "(B,) encoded PNG / JPEG / BMP / GIF files of any size (SavedModel serve_bytes)"},
        "outputs": {"score": "(B,) higher = more anomalous",
                    "anomaly_map": f"(B, {model.image_shape[0]}, {model.image_shape[1]}, 1) higher = more anomalous",
                    "is_anomalous": "(B,) bool, score >= score_threshold"},
        "score_threshold": trained.score_threshold,
        "map_threshold": trained.map_threshold,
        "threshold_rule": trained.threshold_rule,
        "files": files,
        "checked_on": f"{checked_on} real images of {trained.data.name}: validation (normal) and test images",
        "training": trained.provenance,
        "metrics": trained.metrics,
        "exported_with": {"commit": provenance.commit(), **provenance.environment(), "seconds": round(seconds, 1)},
    }


def _size(path):
    path = pathlib.Path(path)
    if path.is_file():
        return path.stat().st_size
    return sum(os.path.getsize(os.path.join(root, f)) for root, _, names in os.walk(path) for f in names)
