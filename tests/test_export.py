"""Exports of every registered model: SavedModel (both signatures), LiteRT (three precisions), ONNX.

Each model's `tiny` preset is exported once (module fixture) with thresholds from the digits'
validation images, then every file is loaded in a fresh Python process and run on real images; its
outputs must equal the Keras model's (float32 formats: <= 1e-4). Nothing here names a model.
"""

import json
import pathlib
import shutil
import subprocess
import sys

import cv2
import keras
import numpy as np
import pytest

from anomzoo import evaluation
from anomzoo.data import load_dataset, load_image
from anomzoo.export import export, open_trained
from anomzoo.export.exporter import sample_images
from anomzoo.export.serving_model import serving_model
from anomzoo.models import MODELS, build_model

FLOAT32_FILES = ("saved_model", "litert_float32", "onnx")
# The reduced precisions are bounded relative to the largest score / map value seen; they exist for
# size, not parity (benchmarks/results/exports.md records their deviation on trained models).
REDUCED_BOUNDS = {"litert_float16": 0.01, "litert_int8_dynamic": 0.15}

FRESH_PROCESS = """
import json, sys, numpy as np
from anomzoo.export import load_export
files, images_file, bytes_files, out = json.loads(sys.argv[1])
images = np.load(images_file)["images"]
results = {}
for key, path in files.items():
    runner = load_export(path)
    for name, value in runner(images).items():
        results[f"{key}/{name}"] = value
    if key == "saved_model":
        for name, value in runner.from_bytes([open(f, "rb").read() for f in bytes_files]).items():
            results[f"bytes/{name}"] = value
np.savez(out, **results)
"""


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits", normal_class=0, image_size=32)


@pytest.fixture(scope="module", params=sorted(MODELS))
def exported(request, digits, tmp_path_factory):
    """(model, metadata, export folder, reference outputs, outputs of every file in a fresh process)."""
    keras.utils.set_random_seed(0)
    model = build_model(request.param, "tiny", image_shape=digits.image_shape)
    root = tmp_path_factory.mktemp(request.param)
    model.save(root / "model.keras")
    trained = open_trained(root / "model.keras", dataset="digits", normal_class=0)
    out = root / "export"
    metadata = export(trained, out)
    images = sample_images(digits)
    np.savez(root / "images.npz", images=images)
    # Real files, written as PNG at their native 8x8 (the graph enlarges them as the loaders do).
    byte_files = []
    for index, image in enumerate(digits.test.images[:6, ::4, ::4]):
        byte_files.append(str(root / f"digit{index}.png"))
        cv2.imwrite(byte_files[-1], image)
    files = {key: str(out / facts["path"]) for key, facts in metadata["files"].items()}
    subprocess.run([sys.executable, "-c", FRESH_PROCESS,
                    json.dumps([files, str(root / "images.npz"), byte_files, str(root / "fresh.npz")])],
                   check=True, timeout=600)
    reference = {k: np.asarray(v) for k, v in serving_model(trained.model, trained.score_threshold)(images).items()}
    return trained, metadata, out, reference, dict(np.load(root / "fresh.npz")), byte_files


def test_every_format_is_written_with_its_metadata(exported):
    trained, metadata, out, *_ = exported
    name = metadata["name"]
    assert (out / name / "1" / "saved_model.pb").is_file()
    assert sorted(metadata["files"]) == sorted(["saved_model", "litert_float32", "litert_float16",
                                                "litert_int8_dynamic", "onnx"])
    assert json.loads((out / name / "1" / "assets.extra" / "anomzoo.json").read_text()) == metadata
    assert metadata["score_threshold"] == pytest.approx(trained.score_threshold)
    assert metadata["image_shape"] == [32, 32, 1]
    sizes = {key: facts["bytes"] for key, facts in metadata["files"].items()}
    assert sizes["litert_float16"] < sizes["litert_float32"] and sizes["litert_int8_dynamic"] < sizes["litert_float16"]
    assert not list(out.parent.glob(".export.*"))  # the temporary folder was renamed, nothing left beside


def test_float32_formats_match_keras_in_a_fresh_process(exported):
    _, metadata, _, reference, fresh, _ = exported
    for key in FLOAT32_FILES:
        for name in ("score", "anomaly_map"):
            np.testing.assert_allclose(fresh[f"{key}/{name}"], reference[name], rtol=0, atol=1e-4, err_msg=key)
        np.testing.assert_array_equal(fresh[f"{key}/is_anomalous"], reference["is_anomalous"], err_msg=key)
        assert metadata["files"][key]["deviation_from_keras"]["score"] <= 1e-4


def test_reduced_precision_deviation_is_bounded(exported):
    _, metadata, _, reference, fresh, _ = exported
    for key, bound in REDUCED_BOUNDS.items():
        for name in ("score", "anomaly_map"):
            scale = float(np.max(np.abs(reference[name]))) or 1.0
            worst = float(np.max(np.abs(fresh[f"{key}/{name}"] - reference[name])))
            assert worst <= bound * scale, (key, name, worst, scale)
            assert metadata["files"][key]["deviation_from_keras"][name] == pytest.approx(worst, rel=1e-5, abs=1e-7)


def test_bytes_signature_scores_files_as_the_loaders_and_model_do(exported):
    trained, _, _, _, fresh, byte_files = exported
    images = np.stack([load_image(f, 32, 1) for f in byte_files]).astype("float32") / 255.0
    expected = trained.model.predict(images, verbose=0)
    # Enlarging 8 -> 32 px: OpenCV's fixed-point bilinear differs from TensorFlow's by one grey
    # level on a few pixels (see anomzoo.data.tf_decode); shrinking is exact (tested below).
    scale = float(np.max(np.abs(expected["score"]))) or 1.0
    np.testing.assert_allclose(fresh["bytes/score"], expected["score"], rtol=0, atol=0.02 * scale)


def test_bytes_signature_is_exact_when_shrinking_real_colour_files(exported, tire_root, tmp_path):
    """Tire photographs (400x300 PNG, and JPEG copies) shrunk to 32 px and turned grey in the graph
    give the same model input, hence the same scores, as the OpenCV loaders."""
    import tensorflow as tf

    trained, _, out, _, _, _ = exported
    files = sorted(tire_root.glob("test/*/00[0-2].png"))[:4]
    for path in files[:2]:
        jpeg = tmp_path / f"{path.parent.name}_{path.stem}.jpg"
        cv2.imwrite(str(jpeg), cv2.imread(str(path)))
        files.append(jpeg)
    images = np.stack([load_image(f, 32, 1) for f in files]).astype("float32") / 255.0
    expected = trained.model.predict(images, verbose=0)
    served = tf.saved_model.load(str(out / trained.name / "1")).signatures["serve_bytes"]
    got = served(image_bytes=tf.constant([f.read_bytes() for f in files]))
    np.testing.assert_allclose(got["score"].numpy(), expected["score"], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(got["anomaly_map"].numpy(), expected["anomaly_map"], rtol=1e-5, atol=1e-5)


def test_saved_model_cli_shows_both_signatures(exported):
    _, metadata, out, *_ = exported
    cli = shutil.which("saved_model_cli") or pytest.fail("saved_model_cli (installed with TensorFlow) not found")
    shown = subprocess.run([cli, "show", "--dir", str(out / metadata["name"] / "1"), "--all"],
                           capture_output=True, text=True, check=True, timeout=300).stdout
    default = shown.split("signature_def['serving_default']")[1]
    assert "inputs['images'] tensor_info:\n        dtype: DT_FLOAT\n        shape: (-1, 32, 32, 1)" in default
    for name, dtype in (("score", "DT_FLOAT"), ("anomaly_map", "DT_FLOAT"), ("is_anomalous", "DT_BOOL")):
        assert f"outputs['{name}'] tensor_info:\n        dtype: {dtype}" in default
    assert "inputs['image_bytes'] tensor_info:\n        dtype: DT_STRING\n        shape: (-1)" in shown


def test_export_refuses_a_used_folder_and_leaves_it_untouched(exported):
    trained, _, out, *_ = exported
    before = sorted(p.name for p in out.iterdir())
    with pytest.raises(FileExistsError, match="not an empty directory"):
        export(trained, out)
    with pytest.raises(ValueError, match="unknown export format"):
        export(trained, out.parent / "other", formats=["tflite"])
    assert sorted(p.name for p in out.iterdir()) == before and not (out.parent / "other").exists()
    # A name holding '/' or '..' would put the SavedModel outside --out, over another export's.
    for name in ("../escaped", "a/b", "..", ".hidden"):
        with pytest.raises(ValueError, match="plain name"):
            export(trained, out.parent / "named", formats=["saved_model"], name=name)
    assert not (out.parent / "named").exists() and not (out.parent.parent / "escaped").exists()


def test_thresholds_come_from_validation_images(exported, digits):
    trained, *_ = exported
    score, pixel = evaluation.validation_thresholds(trained.model, digits)
    assert (trained.score_threshold, trained.map_threshold) == (pytest.approx(score), pytest.approx(pixel))


def test_cli_export_of_a_keras_file_needs_data(tmp_path, capsys):
    from anomzoo import cli

    model = build_model(sorted(MODELS)[0], "tiny", image_shape=(32, 32, 1))
    model.save(tmp_path / "m.keras")
    assert cli.main(["export", str(tmp_path / "m.keras"), "--out", str(tmp_path / "e")]) == 2
    assert "has no run record (run.json) naming its data" in capsys.readouterr().err
    assert not (tmp_path / "e").exists()
    assert cli.main(["export", str(tmp_path / "missing"), "--out", str(tmp_path / "e")]) == 2
    assert "no trained model at" in capsys.readouterr().err


def test_cli_exports_a_run_directory_with_its_recorded_thresholds(tmp_path, capsys):
    from anomzoo import cli

    keras.utils.set_random_seed(0)
    run = tmp_path / "run"
    run.mkdir()
    build_model(sorted(MODELS)[0], "tiny", image_shape=(32, 32, 1)).save(run / "model.keras")
    (run / "run.json").write_text(json.dumps({"status": "finished", "request": {
        "dataset": "digits", "seed": 0, "dataset_options": {"normal_class": 0}}}))
    (run / "metrics.json").write_text(json.dumps({"image_auroc": 0.5, "score_threshold": 0.25, "map_threshold": 0.5}))
    assert cli.main(["export", str(run), "--format", "onnx", "--out", str(tmp_path / "e"), "--name", "m",
                     "--version", "3"]) == 0
    shown = capsys.readouterr().out
    assert "onnx" in shown and "thresholds: score 0.25, map 0.5" in shown
    metadata = json.loads((tmp_path / "e" / "metadata.json").read_text())
    assert sorted(metadata["files"]) == ["onnx"] and not (tmp_path / "e" / "m").exists()
    assert (metadata["version"], metadata["metrics"]["image_auroc"], metadata["score_threshold"]) == (3, 0.5, 0.25)


@pytest.mark.parametrize("value, message", [(200.0, r"\[0, 1\].*divide 0-255 images by 255"), (np.nan, "without NaN")])
def test_the_saved_model_refuses_images_outside_the_contract(exported, value, message):
    """TF Serving runs the SavedModel's graph as it is: the check must be in it, or 0-255 values score
    silently (tens of thousands) and NaN images pass as normal."""
    import tensorflow as tf

    trained, metadata, out, *_ = exported
    signature = tf.saved_model.load(str(out / metadata["name"] / "1")).signatures["serving_default"]
    with pytest.raises(tf.errors.InvalidArgumentError, match=message):
        signature(images=tf.fill((2, *trained.model.image_shape), value))


def test_a_nan_image_is_anomalous_in_every_format(exported):
    """Run the files themselves (the zoo's runners refuse NaN before running): NaN scores must not pass
    as normal. Written as not(score < threshold), LiteRT's converter turned it into score >= threshold."""
    import onnxruntime
    from ai_edge_litert.interpreter import Interpreter

    trained, metadata, out, *_ = exported
    images = np.full((1, *trained.model.image_shape), np.nan, np.float32)
    interpreter = Interpreter(model_path=str(out / metadata["files"]["litert_float32"]["path"]))
    interpreter.allocate_tensors()
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], images)
    interpreter.invoke()
    decisions = [interpreter.get_tensor(d["index"]) for d in interpreter.get_output_details() if d["dtype"] == np.bool_]
    session = onnxruntime.InferenceSession(str(out / metadata["files"]["onnx"]["path"]))
    decisions += [o for o in session.run(None, {session.get_inputs()[0].name: images}) if o.dtype == np.bool_]
    assert len(decisions) == 2 and all(d.tolist() == [True] for d in decisions), decisions


@pytest.mark.parametrize("name", sorted(MODELS))
def test_a_bfloat16_model_exports_as_its_float32_copy(name, digits, tmp_path):
    """LiteRT and ONNX have no bfloat16 kernels (the conversions failed with 1,473- and 240-line
    tracebacks): the export is the float32 copy of the same weights, matching it to float32 accuracy
    and the bfloat16 model itself to bfloat16's."""
    from anomzoo.export import load_export
    from anomzoo.models.precision import float32_copy

    keras.utils.set_random_seed(0)
    model = build_model(name, "tiny", image_shape=digits.image_shape, precision="bfloat16")
    model.save(tmp_path / "model.keras")
    trained = open_trained(tmp_path / "model.keras", dataset="digits", normal_class=0)
    metadata = export(trained, tmp_path / "export", formats=["litert", "onnx"])
    images = sample_images(digits)[:8]
    copy = float32_copy(trained.model)
    assert copy.precision == "float32" and float32_copy(copy) is copy
    expected = {k: np.asarray(v) for k, v in copy(images).items()}
    own = np.asarray(trained.model(images)["score"])
    for key in ("litert_float32", "onnx"):
        outputs = load_export(tmp_path / "export" / metadata["files"][key]["path"])(images)
        np.testing.assert_allclose(outputs["score"], expected["score"], rtol=0, atol=1e-4, err_msg=key)
        np.testing.assert_allclose(outputs["score"], own, rtol=0.05, atol=0.05 * float(np.max(np.abs(own))), err_msg=key)
