"""`anomzoo predict`: files, folders and globs scored by a .keras file, a run directory, an export or
a zoo entry, with the scores `evaluate` computes on the same files."""

import csv
import json

import cv2
import keras
import numpy as np
import pytest

from anomzoo import cli, evaluation, zoo
from anomzoo.data import load_dataset
from anomzoo.export import export, open_trained
from anomzoo.models import build_model


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
    assert len(maps) == len(rows) and cv2.imread(str(maps[0])).shape == (64, 64, 3)
    saved = json.loads((tmp_path / "p" / "predictions.json").read_text())
    assert saved["score_threshold"] == threshold and len(saved["predictions"]) == len(rows)


def test_an_unreadable_file_gets_an_error_row_and_the_others_are_scored(tire_run, tire_root, tmp_path, capsys):
    run, *_ = tire_run
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a png")
    good = sorted((tire_root / "test" / "good").glob("00*.png"))[:2]
    code = cli.main(["predict", str(run / "model.keras"), str(broken), *map(str, good), str(tmp_path / "gone.png"),
                     "--out", str(tmp_path / "p"), "--no-maps"])
    assert code == 1
    rows = {r["path"]: r for r in read_table(tmp_path / "p")}
    assert "cannot decode image" in rows[str(broken)]["error"] and rows[str(broken)]["score"] == ""
    assert "cannot read image" in rows[str(tmp_path / "gone.png")]["error"]
    assert all(rows[str(p)]["score"] and not rows[str(p)]["error"] for p in good)
    assert "cannot score" in capsys.readouterr().err
    assert not (tmp_path / "p" / "maps").exists()


def test_predict_with_an_export_and_a_glob(tire_run, tire_root, tmp_path):
    run, model, data = tire_run
    trained = open_trained(run / "model.keras", dataset=str(tire_root))
    export(trained, tmp_path / "export", formats=["saved_model", "onnx"])
    pattern = str(tire_root / "test" / "hole" / "00[0-3].png")
    for source in (tmp_path / "export", tmp_path / "export" / "onnx" / "skip_attention_gan.onnx"):
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
    model = zoo.load(name)
    expected = model.predict(image[None], verbose=0)["score"][0]
    assert float(row["score"]) == pytest.approx(float(expected), rel=1e-5, abs=1e-6)


def test_predict_errors(tmp_path, capsys):
    assert cli.main(["predict", "no_such_model", str(tmp_path), "--out", str(tmp_path / "p")]) == 2
    assert "no image files in" in capsys.readouterr().err
    (tmp_path / "a.png").write_bytes(b"x")
    assert cli.main(["predict", "no_such_model", str(tmp_path / "a.png"), "--out", str(tmp_path / "p")]) == 2
    assert "not a zoo entry" in capsys.readouterr().err
