"""Add a trained run to the zoo: `python tools/publish_zoo.py RUN_DIR NAME [--dataset ...]`.

The weights are stored without optimizer state, rounded to float16 precision (kept as float32, so
every layer and export works unchanged) and deflated, which halves the file; the metrics recorded
in the entry are re-computed with exactly these weights, on the run's own data and protocol, and
the run's original metrics are kept beside them to show what the rounding changed.
"""

import argparse
import json
import pathlib
import sys
import zipfile

import numpy as np

from anomzoo import evaluation
from anomzoo.data import load_dataset
from anomzoo.files import atomic_path, write_json
from anomzoo.models.loading import load_run_model
from anomzoo.rundir import read_run_record
from anomzoo.zoo import HERE, sha256

HEADLINE = ("image_auroc", "pixel_auroc", "pro", "iou", "detection_accuracy", "score_threshold", "map_threshold")


def rounded_copy(model):
    """A fresh, uncompiled float32 copy of `model` (no optimizer state) with float16-rounded weights.
    A run trained in bfloat16 ships as float32: its weights are float32 anyway, and float32 inference
    gives the same numbers on CPUs with and without bfloat16 instructions."""
    copy = type(model).from_config({**model.get_config(), "precision": "float32"})  # a copy even when float32
    copy.set_weights([w.astype(np.float16).astype(w.dtype) if w.dtype == np.float32 else w
                      for w in model.get_weights()])
    copy.set_stage(model.stage.name)
    return copy


def save_deflated(model, path):
    """`model.save`, then the archive rewritten with deflate (Keras stores it uncompressed)."""
    with atomic_path(path.with_suffix(".stored.keras")) as stored:
        model.save(stored)
        with atomic_path(path) as tmp:
            with zipfile.ZipFile(stored) as source, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as out:
                for item in source.infolist():
                    out.writestr(item.filename, source.read(item.filename))
    path.with_suffix(".stored.keras").unlink(missing_ok=True)


def publish(run_dir, name, dataset=None, note=None, **dataset_options):
    run_dir = pathlib.Path(run_dir)
    model, trained = load_run_model(run_dir)
    record = read_run_record(run_dir)
    if dataset is None:
        if record is None:
            raise ValueError(f"{run_dir} has no run.json: give --dataset")
        dataset, dataset_options = record["request"]["dataset"], dict(record["request"]["dataset_options"])
    seed = trained.get("seed", 0)
    dataset_options.update(image_size=int(model.image_shape[0]), channels=int(model.image_shape[-1]))
    data = load_dataset(dataset, seed=seed, **dataset_options)
    copy = rounded_copy(model)
    results, _ = evaluation.evaluate_model(copy, data)
    weights = HERE / "weights" / f"{name}.keras"
    save_deflated(copy, weights)
    original = json.loads((run_dir / "metrics.json").read_text())
    entry = {
        "model": trained.get("model"), "preset": trained.get("preset"),
        # A folder is named by its last two parts (e.g. mvtec3d_tire_rgb/tire, as under ../shared/data).
        "dataset": str(dataset) if not pathlib.Path(str(dataset)).exists() else
        "/".join(pathlib.Path(dataset).resolve().parts[-2:]),
        # data_dir is where this machine keeps the data, not part of what the entry was evaluated on.
        "dataset_options": {k: v for k, v in dataset_options.items() if k not in ("image_size", "channels", "data_dir")},
        "protocol": data.protocol, "target": data.target, "image_shape": list(model.image_shape), "seed": seed,
        "metrics": {k: results[k] for k in HEADLINE if k in results},
        "score_threshold": results["score_threshold"], "map_threshold": results["map_threshold"],
        "threshold_rule": evaluation.threshold_rule(data),
        "weights": {"location": f"package:weights/{weights.name}", "sha256": sha256(weights),
                    "bytes": weights.stat().st_size,
                    "storage": "float16-rounded float32 weights, no optimizer state, deflated .keras"},
        "training": {"metrics_before_rounding": {k: original[k] for k in HEADLINE if k in original},
                     **{k: trained.get(k) for k in ("epochs", "batch_size", "selection_rule", "commit",
                                                    "train_seconds", "machine")}},
    }
    if note:
        entry["note"] = note
    entries = json.loads((HERE / "entries.json").read_text())
    entries[name] = entry
    write_json(HERE / "entries.json", dict(sorted(entries.items())))
    return entry


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python tools/publish_zoo.py", description=__doc__.splitlines()[0])
    parser.add_argument("run_dir")
    parser.add_argument("name")
    parser.add_argument("--dataset", help="the data the run used, when its directory has no run.json")
    parser.add_argument("--note", help="how this run was chosen, and anything a user should know")
    parser.add_argument("--category")
    parser.add_argument("--normal-class", type=lambda v: int(v) if v.isdigit() else v)
    args = parser.parse_args(argv)
    options = {k: v for k, v in (("category", args.category), ("normal_class", args.normal_class)) if v is not None}
    entry = publish(args.run_dir, args.name, dataset=args.dataset, note=args.note, **options)
    print(json.dumps(entry, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
