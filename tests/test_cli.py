"""The `anomzoo` command end to end on the built-in digits, and its errors."""

import contextlib
import dataclasses
import io
import json

import numpy as np
import pytest

from anomzoo.cli import main
from anomzoo.models import build_model


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    """One `anomzoo train` (each traced fit costs ~25 s here), shared by the tests below."""
    run = tmp_path_factory.mktemp("cli") / "run"
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        code = main(["train", "sagan", "--epochs", "1", "--batch-size", "32", "--out", str(run)])
    return code, printed.getvalue(), run


def test_train_writes_a_complete_run_directory(digits_run):
    code, printed, run = digits_run
    assert code == 0 and "image_auroc=" in printed
    for name in ("model.keras", "metrics.json", "report.md", "roc.png", "scores.png", "anomaly_maps.png"):
        assert (run / name).is_file(), name
    metrics = json.loads((run / "metrics.json").read_text())
    assert 0.0 <= metrics["image_auroc"] <= 1.0
    facts = metrics["provenance"]
    for key in ("model", "preset", "dataset", "protocol", "target", "image_size", "epochs", "seed",
                "selection_rule", "commit", "wall_seconds"):
        assert key in facts, key
    assert facts["model"] == "skip_attention_gan" and facts["dataset"] == "digits"
    assert facts["split_sizes"] == {"train": 80, "validation": 9, "test": 899, "test_anomalous": 810}
    assert not list(run.glob(".*")), "temporary files left behind"


def test_evaluate_reproduces_the_training_metrics(digits_run, tmp_path):
    run = digits_run[2]
    assert main(["evaluate", str(run), "--dataset", "digits", "--out", str(tmp_path)]) == 0
    reevaluated = json.loads((tmp_path / "metrics.json").read_text())
    original = json.loads((run / "metrics.json").read_text())
    assert reevaluated["image_auroc"] == pytest.approx(original["image_auroc"])


def test_evaluate_on_an_mvtec_folder_reports_pixel_metrics(digits_run, tire_root, tmp_path):
    """The digits model evaluated on the tire category (converted to its 32x32 grey input): a
    meaningless model for tires, but every pixel-metric path runs on real masks."""
    assert main(["evaluate", str(digits_run[2]), "--dataset", str(tire_root), "--out", str(tmp_path)]) == 0
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    for key in ("image_auroc", "pixel_auroc", "iou", "pro"):
        assert 0.0 <= metrics[key] <= 1.0, key
    assert metrics["provenance"]["split_sizes"]["test"] == 112


@pytest.mark.parametrize(
    "argv, culprit",
    [
        (["train", "ganomalyy"], "ganomalyy"),
        (["train", "sagan", "--dataset", "/no/such/folder"], "/no/such/folder"),
        (["train", "sagan", "--normal-class", "11"], "11"),
        (["evaluate", "/no/such/run", "--dataset", "digits"], "/no/such/run"),
        (["evaluate", "/no/such/run"], "--dataset"),
        (["train", "sagan", "--selection", "val_real_auroc"], "--labelled-validation"),
    ],
)
def test_bad_input_is_a_clear_error(argv, culprit, capsys):
    assert main(argv) == 2
    error = capsys.readouterr().err
    assert error.startswith("anomzoo: error:") and culprit in error, error


def test_models_lists_the_registry(capsys):
    assert main(["models"]) == 0
    assert "skip_attention_gan (aliases: sagan)" in capsys.readouterr().out


def test_train_anoseg_both_stages_with_selection_on_the_tire(tire_root, tmp_path):
    """AnoSeg end to end on real defects (tiny configuration, 32 px): both stages, selection on synthetic
    validation anomalies, selected and last metrics side by side, pixel metrics and the IoU curve."""
    run = tmp_path / "run"
    argv = ["train", "anoseg", "--config", "tiny", "--dataset", str(tire_root), "--image-size", "32",
            "--stage-epochs", "1", "1", "--selection", "val_syn_auroc", "--out", str(run)]
    assert main(argv) == 0
    metrics = json.loads((run / "metrics.json").read_text())
    for key in ("image_auroc", "pixel_auroc", "pro", "iou", "iou_best", "diagnostic_auroc_map_max_score"):
        assert 0.0 <= metrics[key] <= 1.0, key
    assert set(metrics["last"]) >= {"image_auroc", "pixel_auroc"}
    assert len(metrics["iou_curve"]["iou"]) == len(metrics["iou_curve"]["thresholds"]) == 21
    facts = metrics["provenance"]
    assert facts["stage_epochs"] == {"segmentation": 1, "detector": 1} and facts["epochs"] == 2
    assert facts["selection"]["rule"] == "val_syn_auroc"
    assert set(facts["selection"]["selected_epochs"]) == {"segmentation", "detector"}
    assert "synthetic anomalies" in facts["selection_rule"]


def test_select_on_real_defects_held_out_of_the_test_split(tire_root, tmp_path):
    run = tmp_path / "run"
    argv = ["train", "sagan", "--config", "tiny", "--dataset", str(tire_root), "--image-size", "32", "--epochs", "2",
            "--selection", "val_real_auroc", "--labelled-validation", "0.25", "--out", str(run)]
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(argv) == 0
    metrics = json.loads((run / "metrics.json").read_text())
    facts = metrics["provenance"]
    assert facts["split_sizes"]["test"] == 84 and facts["split_sizes"]["labelled_validation"] == 28
    assert facts["selection"]["rule"] == "val_real_auroc" and "labelled validation" in facts["selection_rule"]
    (selected,) = facts["selection"]["selected_epochs"].values()  # SAGAN's one stage
    assert selected["epoch"] in (1, 2) and 0.0 <= selected["val_real_auroc"] <= 1.0
    assert "28 labelled validation images" in (run / "report.md").read_text()
    # evaluated again with the same fraction, the run is tested on the same 84 images
    again = tmp_path / "again"
    assert main(["evaluate", str(run), "--dataset", str(tire_root), "--labelled-validation", "0.25",
                 "--out", str(again)]) == 0
    assert json.loads((again / "metrics.json").read_text())["image_auroc"] == pytest.approx(metrics["image_auroc"])
    # ... and without it too: the images that chose the epoch are never scored as test images (were all 112)
    implied = tmp_path / "implied"
    with pytest.warns(UserWarning, match="the same images leave the test set"):
        assert main(["evaluate", str(run), "--dataset", str(tire_root), "--out", str(implied)]) == 0
    evaluated = json.loads((implied / "metrics.json").read_text())
    assert evaluated["provenance"]["split_sizes"]["test"] == 84
    assert evaluated["image_auroc"] == pytest.approx(metrics["image_auroc"])


def test_few_test_images_and_vanishing_masks_are_warned_about(tire_root, tmp_path):
    """A 2-image test set reported image_auroc=1.0000 without a word; thin defects whose masks vanish
    when shrunk left the pixel metrics without a word."""
    from anomzoo import evaluation
    from anomzoo.data import load_dataset

    with pytest.warns(UserWarning, match="defect masks vanish at 8 px"):
        data = load_dataset(tire_root, image_size=8)
    one_of_each = [int(np.argmax(data.test.labels == 0)), int(np.argmax(data.test.labels == 1))]
    two = data.test.__class__(**{f: getattr(data.test, f)[one_of_each] for f in
                                 ("images", "labels", "masks", "defect_types", "paths")})
    data = dataclasses.replace(data, test=two)
    with pytest.warns(UserWarning, match="the test set holds 1 normal and 1 anomalous images"):
        evaluation.evaluate_model(build_model("sagan", "tiny", image_shape=data.image_shape), data)


def test_wrong_stage_epochs_are_a_clear_error(capsys):
    assert main(["train", "anoseg", "--config", "tiny", "--stage-epochs", "1", "1", "1"]) == 2
    assert "2 stage(s)" in capsys.readouterr().err


def test_train_in_bfloat16_records_the_option_and_saves_a_bfloat16_model(tmp_path):
    import anomzoo

    run = tmp_path / "run"
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(["train", "sagan", "--config", "tiny", "--epochs", "1", "--precision", "bfloat16",
                     "--out", str(run)]) == 0
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["provenance"]["model_options"] == {"precision": "bfloat16"}
    assert json.loads((run / "run.json").read_text())["request"]["model_options"] == {"precision": "bfloat16"}
    assert anomzoo.load_model(run / "model.keras").precision == "bfloat16"


def test_evaluate_takes_a_zoo_entry_as_predict_does(tmp_path, capsys):
    from anomzoo import zoo

    recorded = zoo.info("sagan_digits0")["metrics"]["image_auroc"]
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(["evaluate", "sagan_digits0", "--dataset", "digits", "--out", str(tmp_path / "e")]) == 0
    metrics = json.loads((tmp_path / "e" / "metrics.json").read_text())
    assert metrics["image_auroc"] == pytest.approx(recorded, abs=1e-4)
    assert main(["evaluate", "sagan_digits9", "--dataset", "digits", "--out", str(tmp_path / "f")]) == 2
    error = capsys.readouterr().err
    assert "sagan_digits9" in error and "run directory, a .keras file or a zoo entry" in error, error
    assert not (tmp_path / "f").exists()


def test_train_with_no_configuration_uses_the_recommended_one_for_the_model_and_size():
    from anomzoo.cli import _image_side, build_parser, training_configuration

    def configuration(*argv):
        args = build_parser().parse_args(["train", *argv])
        return training_configuration(args, _image_side(args))

    assert configuration("cavga") == {"config": "paper_d", "epochs": 15, "selection": "last"}  # digits: 32 px
    assert configuration("cavga", "--image-size", "128")["config"] == "paper"
    assert configuration("cavga", "--dataset", "some/mvtec/folder")["config"] == "paper"  # 256 px by default
    assert configuration("anoseg", "--image-size", "64") == {"config": "lite", "epochs": [12, 3],
                                                              "selection": "val_syn_auroc"}
    # what is given wins, the rest is still recommended
    assert configuration("sagan", "--config", "tiny", "--epochs", "2") == {"config": "tiny", "epochs": 2,
                                                                          "selection": "last"}
    assert configuration("anoseg", "--stage-epochs", "3", "1", "--selection", "last")["epochs"] == [3, 1]
    help_text = build_parser()._subparsers._group_actions[0].choices["train"].format_help()
    assert "cavga, up to 64 px: --config paper_d --epochs 15 --selection last" in help_text


def test_epochs_beside_stage_epochs_and_a_trained_preset_as_config_are_refused(capsys):
    assert main(["train", "anoseg", "--epochs", "3", "--stage-epochs", "2", "1"]) == 2
    assert "not both" in capsys.readouterr().err
    assert main(["train", "sagan", "--config", "sagan_digits0", "--epochs", "1"]) == 2
    assert "is a trained preset" in capsys.readouterr().err
    # --preset, --config's old name, still runs the commands recorded with it
    assert main(["train", "anoseg", "--preset", "tiny", "--epochs", "3", "--stage-epochs", "2", "1"]) == 2


def test_export_takes_a_zoo_entry_by_name_and_names_moved_data(tmp_path, capsys):
    out = tmp_path / "export"
    assert main(["export", "sagan_digits0", "--format", "saved_model", "--out", str(out)]) == 0
    metadata = json.loads((out / "metadata.json").read_text())
    assert metadata["model"] == "skip_attention_gan" and (out / metadata["name"] / "1" / "saved_model.pb").is_file()
    assert main(["export", "sagan_tire64", "--format", "saved_model", "--out", str(tmp_path / "e2")]) == 2
    assert "--dataset PATH" in capsys.readouterr().err
