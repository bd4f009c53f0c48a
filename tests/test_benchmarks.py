import json
import subprocess
import sys

from conftest import REPO


def test_baselines_score_the_tire_without_learning(tire_root, tmp_path):
    """The floor the models' tire metrics are read against: a map of |x - mean normal image| marks
    the tire, where every defect lies, and so scores a high pixel AUROC with no model at all."""
    subprocess.run([sys.executable, str(REPO / "benchmarks" / "baselines.py"), "--category", str(tire_root),
                    "--sizes", "32", "--out", str(tmp_path)], check=True, capture_output=True)
    record = json.loads((tmp_path / "tire_baselines.json").read_text())
    rows = {row["map"]: row for row in record["rows"]}
    assert sorted(rows) == ["brightness", "distance to the mean normal", "per-pixel z-score"]
    for row in rows.values():
        assert all(0.0 <= row[k] <= 1.0 for k in ("pixel_auroc", "pro", "iou_best", "image_auroc_map_max"))
    assert rows["distance to the mean normal"]["pixel_auroc"] > 0.8
    assert "| distance to the mean normal | 32 | 112 |" in (tmp_path / "tire_baselines.md").read_text()


def test_the_benchmark_runner_takes_anomzoo_trains_options_and_defaults():
    sys.path.insert(0, str(REPO / "benchmarks"))
    import run

    from anomzoo.cli import build_parser, training_configuration

    bench = run.build_parser().parse_args(["cavga", "mnist", "--precision", "bfloat16"])
    train = build_parser().parse_args(["train", "cavga", "--precision", "bfloat16"])
    for option in ("config", "epochs", "stage_epochs", "selection", "batch_size", "precision", "image_size"):
        assert getattr(bench, option) == getattr(train, option), option
    assert training_configuration(bench, 32) == {"config": "paper_d", "epochs": 15, "selection": "last"}
