"""Export every zoo entry to every format and record what each format costs and changes.

    python benchmarks/exports.py [--entries sagan_digits0 ...]

For each entry: the files' sizes, their largest deviation from the Keras model on real images
(the exporter's check), and the test metrics (image AUROC, detection accuracy with the exported
threshold, pixel AUROC where the data has masks) computed from each format's own outputs over the
whole test set, beside the Keras model's. Writes results/exports.{json,md}; the exports themselves
go to runs/benchmarks/exports/ (not committed). Timings are not taken here (see speed.py).
"""

import argparse
import json
import pathlib
import shutil
import sys
import time

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from anomzoo import metrics, provenance, zoo  # noqa: E402
from anomzoo.data import DATASETS, load_dataset  # noqa: E402
from anomzoo.export import export, load_export, trained_model  # noqa: E402
from anomzoo.files import write_json, write_text  # noqa: E402
from anomzoo.models.loading import load_zoo_entry  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
SHARED = ROOT.parent / "shared" / "data"


def test_metrics(data, outputs, threshold):
    found = {"image_auroc": metrics.image_auroc(data.test.labels, outputs["score"]),
             "detection_accuracy": metrics.detection_accuracy(data.test.labels, outputs["score"], threshold)}
    if data.test.masks is not None:
        found["pixel_auroc"] = metrics.pixel_auroc(data.test.masks, outputs["anomaly_map"])
    return found


def run_in_batches(runner, images, batch_size=32):
    parts = [runner(images[i:i + batch_size].astype("float32") / 255.0) for i in range(0, len(images), batch_size)]
    return {key: np.concatenate([p[key] for p in parts]) for key in ("score", "anomaly_map")}


def benchmark(name):
    entry = zoo.info(name)
    dataset = entry["dataset"] if entry["dataset"] in DATASETS else str(SHARED / entry["dataset"])
    data = load_dataset(dataset, seed=entry["seed"], image_size=entry["image_shape"][0],
                        channels=entry["image_shape"][-1], **entry["dataset_options"])
    model = load_zoo_entry(name)
    out = ROOT / "runs" / "benchmarks" / "exports" / name
    shutil.rmtree(out, ignore_errors=True)
    started = time.time()
    metadata = export(trained_model(model, data, thresholds=(entry["score_threshold"], entry["map_threshold"])), out)
    seconds = time.time() - started
    keras_outputs = run_in_batches(lambda x: model.predict(x, verbose=0), data.test.images)
    rows = {"keras": {"bytes": None, "deviation_from_keras": None,
                      **test_metrics(data, keras_outputs, entry["score_threshold"])}}
    for key, facts in metadata["files"].items():
        outputs = run_in_batches(load_export(out / facts["path"]), data.test.images)
        rows[key] = {"bytes": facts["bytes"], "deviation_from_keras": facts["deviation_from_keras"],
                     "test_max_score_deviation": float(np.max(np.abs(outputs["score"] - keras_outputs["score"]))),
                     **test_metrics(data, outputs, entry["score_threshold"])}
    return {"entry": name, "model": entry["model"], "dataset": entry["dataset"], "image_shape": entry["image_shape"],
            "test_images": len(data.test), "export_seconds": round(seconds, 1), "formats": rows}


def table(results):
    lines = ["# Exports of the zoo entries: size, deviation from Keras, test metrics per format", "",
             "Written by `python benchmarks/exports.py`. Deviation: the largest |export - Keras| over the",
             "exporter's check images (normal validation + test images); `test max |Δscore|` over the whole",
             "test set. Metrics are computed from each format's own outputs, thresholds from the entry.", ""]
    for result in results["entries"]:
        lines += [f"## {result['entry']} ({result['model']}, {result['dataset']}, {result['image_shape'][0]} px, "
                  f"{result['test_images']} test images; export took {result['export_seconds']} s)", "",
                  "| format | MB | max \\|Δscore\\| (check) | max \\|Δmap\\| (check) | test max \\|Δscore\\| | "
                  "image AUROC | detection acc. | pixel AUROC |", "|---|---|---|---|---|---|---|---|"]
        for key, row in result["formats"].items():
            dev = row["deviation_from_keras"] or {}
            size = f"{row['bytes'] / 1e6:.1f}" if row["bytes"] else "-"
            lines.append(f"| {key} | {size} | {dev.get('score', 0):.2e} | {dev.get('anomaly_map', 0):.2e} | "
                         f"{row.get('test_max_score_deviation', 0):.2e} | {row['image_auroc']:.4f} | "
                         f"{row['detection_accuracy']:.4f} | {row.get('pixel_auroc', float('nan')):.4f} |")
        lines.append("")
    facts = results["provenance"]
    lines.append(f"Commit {facts['commit']}, {facts['machine']}, TensorFlow {facts['tensorflow']}, "
                 f"Keras {facts['keras']}.")
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", nargs="+", default=sorted(zoo.ENTRIES))
    args = parser.parse_args(argv)
    results = {"provenance": {"commit": provenance.commit(), **provenance.environment(),
                              "command": "python benchmarks/exports.py " + " ".join(argv or sys.argv[1:])},
               "entries": [benchmark(name) for name in args.entries]}
    write_json(RESULTS / "exports.json", results)
    write_text(RESULTS / "exports.md", table(results))
    print(table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
