"""`anomzoo predict`: files, folders and globs scored by a .keras file, a run directory, an export or
a zoo entry, with the scores `evaluate` computes on the same files."""

import csv
import json
import pathlib

import cv2
import keras
import numpy as np
import pytest

import anomzoo
from anomzoo import cli, evaluation, zoo
from anomzoo.data import load_dataset
from anomzoo.export import export, open_trained
from anomzoo.models import build_model
from anomzoo.predict import collect_images

from conftest import huge_png


@pytest.fixture(scope="module")
def tire_run(tire_root, tmp_path_factory):
    """A run directory (model.keras + metrics.json with thresholds) of a tiny 64 px colour model."""
    keras.utils.set_random_seed(0)
    model = build_model("sagan", "tiny", image_shape=(64, 64, 3))
    run = tmp_path_factory.mktemp("run")
    model.save(run / "model.keras")
    data = load_dataset(tire_root, image_size=64)
    score, pixel = evaluation.validation_thresholds(model, data)
    (run / "metrics.json").write_text(json.dumps({"score_threshold": score, "map_threshold": pixel}))
    return run, model, data


def read_table(out):
    with open(out / "predictions.csv") as handle:
        return list(csv.DictReader(handle))


def test_predict_a_folder_gives_the_scores_evaluate_computes(tire_run, tire_root, tmp_path):
    run, model, data = tire_run
    assert cli.main(["predict", str(run), str(tire_root / "test" / "cut"), "--out", str(tmp_path / "p")]) == 0
    rows = read_table(tmp_path / "p")
    wanted = data.test.defect_types == "cut"
    expected = evaluation.predict(model, data.test.images[wanted])["score"]
    assert [r["path"] for r in rows] == sorted(data.test.paths[wanted])
    order = np.argsort(data.test.paths[wanted])
    np.testing.assert_allclose([float(r["score"]) for r in rows], expected[order], rtol=1e-6, atol=1e-6)
    threshold = json.loads((run / "metrics.json").read_text())["score_threshold"]
    assert all(r["verdict"] == ("anomalous" if float(r["score"]) >= threshold else "normal") for r in rows)
    maps = sorted((tmp_path / "p" / "maps").iterdir())
    original = cv2.imread(str(tire_root / "test" / "cut" / pathlib.Path(rows[0]["path"]).name))
    figure = cv2.imread(str(maps[0]))  # image and overlay side by side, each at the file's own size
    assert len(maps) == len(rows) and figure.shape[0] > original.shape[0] and figure.shape[1] > 2 * original.shape[1]
    saved = json.loads((tmp_path / "p" / "predictions.json").read_text())
    assert saved["score_threshold"] == threshold and len(saved["predictions"]) == len(rows)


def test_an_unreadable_file_gets_an_error_row_and_the_others_are_scored(tire_run, tire_root, tmp_path, capsys):
    run, *_ = tire_run
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a png")
    huge = huge_png(tmp_path / "huge.png")  # aborted the whole command with a cv2 traceback
    good = sorted((tire_root / "test" / "good").glob("00*.png"))[:2]
    code = cli.main(["predict", str(run / "model.keras"), str(broken), str(huge), *map(str, good),
                     str(tmp_path / "gone.png"), "--out", str(tmp_path / "p"), "--no-maps"])
    assert code == 1
    rows = {r["path"]: r for r in read_table(tmp_path / "p")}
    assert "cannot decode image" in rows[str(broken)]["error"] and rows[str(broken)]["score"] == ""
    assert "larger than OpenCV decodes" in rows[str(huge)]["error"] and rows[str(huge)]["score"] == ""
    assert "cannot read image" in rows[str(tmp_path / "gone.png")]["error"]
    assert all(rows[str(p)]["score"] and not rows[str(p)]["error"] for p in good)
    assert "cannot score" in capsys.readouterr().err
    assert not (tmp_path / "p" / "maps").exists()


def test_predict_with_an_export_and_a_glob(tire_run, tire_root, tmp_path):
    run, model, data = tire_run
    trained = open_trained(run / "model.keras", dataset=str(tire_root))
    export(trained, tmp_path / "export", formats=["saved_model", "onnx"])
    pattern = str(tire_root / "test" / "hole" / "00[0-3].png")
    # the export folder, one exported file, and the TF Serving model base path that `anomzoo serve` takes
    sources = (tmp_path / "export", tmp_path / "export" / "onnx" / "skip_attention_gan.onnx",
               tmp_path / "export" / "skip_attention_gan")
    for source in sources:
        out = tmp_path / f"p_{source.name}"
        assert cli.main(["predict", str(source), pattern, "--out", str(out)]) == 0
        rows = read_table(out)
        paths = sorted(str(p) for p in (tire_root / "test" / "hole").glob("00[0-3].png"))
        assert [r["path"] for r in rows] == paths
        index = [list(data.test.paths).index(p) for p in paths]
        expected = evaluation.predict(model, data.test.images[index])["score"]
        np.testing.assert_allclose([float(r["score"]) for r in rows], expected, rtol=1e-5, atol=1e-5)
        assert {r["verdict"] for r in rows} <= {"normal", "anomalous"}


def test_predict_with_a_zoo_entry(tmp_path):
    name, entry = next(iter(zoo.ENTRIES.items()))
    size, channels = entry["image_shape"][0], entry["image_shape"][-1]
    image = np.full((size, size, channels), 128, np.uint8)
    cv2.imwrite(str(tmp_path / "grey.png"), image)
    assert cli.main(["predict", name, str(tmp_path / "grey.png"), "--out", str(tmp_path / "p")]) == 0
    row = read_table(tmp_path / "p")[0]
    model = anomzoo.from_preset(name)
    expected = model.predict(image[None], verbose=0)["score"][0]
    assert float(row["score"]) == pytest.approx(float(expected), rel=1e-5, abs=1e-6)


def test_predict_errors(tmp_path, capsys):
    assert cli.main(["predict", "no_such_model", str(tmp_path), "--out", str(tmp_path / "p")]) == 2
    assert "no image files in" in capsys.readouterr().err
    (tmp_path / "a.png").write_bytes(b"x")
    assert cli.main(["predict", "no_such_model", str(tmp_path / "a.png"), "--out", str(tmp_path / "p")]) == 2
    assert "not a zoo entry" in capsys.readouterr().err


def write_grey(path, size=8):
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), np.full((size, size, 3), 128, np.uint8)), path
    return path


@pytest.mark.parametrize("where", ["a file", "under a file", "an earlier predictions folder"])
def test_a_bad_out_is_refused_before_the_model_is_loaded(where, tmp_path, capsys):
    """No model is loaded (the name is no model at all): --out is the first thing checked."""
    (tmp_path / "taken").write_text("precious")
    earlier = tmp_path / "earlier"
    write_grey(earlier / "maps" / "old_000.png")
    out = {"a file": tmp_path / "taken", "under a file": tmp_path / "taken" / "sub",
           "an earlier predictions folder": earlier}[where]
    image = write_grey(tmp_path / "a.png")
    assert cli.main(["predict", "no_such_model", str(image), "--out", str(out)]) == 2
    error = capsys.readouterr().err
    assert error.startswith(f"anomzoo: error: --out {out}") and error.count("\n") == 1, error
    if where == "an earlier predictions folder":
        assert "choose a new folder" in error
    assert (tmp_path / "taken").read_text() == "precious"
    assert [p.name for p in earlier.rglob("*")] == ["maps", "old_000.png"]


def test_predict_writes_into_an_empty_folder_and_reads_tiff_and_webp(tire_run, tire_root, tmp_path):
    run, *_ = tire_run
    image = cv2.imread(str(tire_root / "test" / "good" / "000.png"))
    photos = tmp_path / "photos"
    photos.mkdir()
    for extension in (".png", ".tif", ".webp"):
        assert cv2.imwrite(str(photos / f"000{extension}"), image, [cv2.IMWRITE_WEBP_QUALITY, 101])  # lossless
    out = tmp_path / "out"
    out.mkdir()
    assert cli.main(["predict", str(run), str(photos), "--out", str(out), "--no-maps"]) == 0
    rows = read_table(out)
    assert [pathlib.Path(r["path"]).name for r in rows] == ["000.png", "000.tif", "000.webp"]
    assert len({r["score"] for r in rows}) == 1, "the same pixels give the same score in every format"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "photos"], "no temporary folder left behind"


def test_a_folder_search_skips_hidden_files_folders_and_folders_named_as_images(tmp_path):
    photos = tmp_path / "photos"
    for name in ("a.png", "b.tif", "c.tiff", "d.webp", "sub/e.TIF", "._a.png", ".ipynb_checkpoints/a-checkpoint.png",
                 "__MACOSX/photos/a.png", ".hidden/f.png"):
        write_grey(photos / name)
    (photos / "dir.png").mkdir()
    wanted = [photos / n for n in ("a.png", "b.tif", "c.tiff", "d.webp", "sub/e.TIF")]
    assert collect_images([str(photos)]) == wanted
    assert collect_images([str(photos / "*.png")]) == [photos / "a.png"]  # not the folder dir.png
    assert collect_images([str(photos / "._a.png")]) == [photos / "._a.png"], "a file named is read, hidden or not"


def test_a_pattern_that_matches_nothing_is_an_error_beside_others(tmp_path, capsys):
    image = write_grey(tmp_path / "a.png")
    empty = tmp_path / "empty"
    empty.mkdir()
    for missing in (str(tmp_path / "*.tif"), str(empty)):
        assert cli.main(["predict", "no_such_model", missing, str(image), "--out", str(tmp_path / "p")]) == 2
        error = capsys.readouterr().err
        assert error.startswith("anomzoo: error:") and missing in error, error


def test_damaged_exports_and_metadata_are_named_before_any_image_is_scored(tire_run, tire_root, tmp_path, capsys):
    """A truncated .onnx / .tflite, a metadata.json that is not JSON or holds a threshold that is
    not a number: one line naming the file (were tracebacks, or a TypeError after every image)."""
    run, _, _ = tire_run
    out = tmp_path / "export"
    export(open_trained(run / "model.keras", dataset=str(tire_root)), out, formats=["onnx"])
    image = str(next(tire_root.glob("test/good/*.png")))
    onnx = next(out.glob("onnx/*.onnx"))
    truncated = tmp_path / "truncated.onnx"
    truncated.write_bytes(onnx.read_bytes()[:1000])
    assert cli.main(["predict", str(truncated), image, "--out", str(tmp_path / "p1")]) == 2
    assert f"cannot load the exported model {truncated}" in capsys.readouterr().err
    metadata = json.loads((out / "metadata.json").read_text())
    (out / "metadata.json").write_text(json.dumps({**metadata, "score_threshold": "high"}))
    assert cli.main(["predict", str(out), image, "--out", str(tmp_path / "p2")]) == 2
    assert "score_threshold must be a number" in capsys.readouterr().err
    (out / "metadata.json").write_text("{not json")
    assert cli.main(["predict", str(out), image, "--out", str(tmp_path / "p3")]) == 2
    assert f"{out / 'metadata.json'} is not the JSON" in capsys.readouterr().err


def test_load_model_names_a_corrupt_file(tire_run, tmp_path):
    run, _, _ = tire_run
    damaged = tmp_path / "damaged.keras"
    damaged.write_bytes((run / "model.keras").read_bytes()[:5000])
    with pytest.raises(ValueError, match="truncated or corrupt"):
        anomzoo.load_model(damaged)
    with pytest.raises(FileNotFoundError, match="no trained model"):
        anomzoo.load_model(tmp_path / "missing.keras")
    assert isinstance(anomzoo.load_model(run / "model.keras"), keras.Model)
