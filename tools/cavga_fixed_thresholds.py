"""The paper's fixed thresholds for a finished CAVGA run, as a labelled alternative to the zoo's rule.

CAVGA thresholds its anomaly map at 0.5 for IoU and its (normalised) score at 0.5 for detection
accuracy (the mean of normal and anomalous accuracy). The zoo's thresholds come from normal
validation data; this reads the same run's model and dataset (as `run.json` records them) and reports
both numbers at 0.5. No test data chooses anything here: 0.5 is fixed in advance.

    python tools/cavga_fixed_thresholds.py RUN_DIR [RUN_DIR ...] [--out results.json]
"""

import argparse
import json
import pathlib

import numpy as np


def fixed_threshold_metrics(run_dir, batch_size=32):
    from anomzoo.models.loading import load_run_model
    from anomzoo.data import load_dataset

    run_dir = pathlib.Path(run_dir)
    request = json.loads((run_dir / "run.json").read_text())["request"]
    data = load_dataset(request["dataset"], seed=request["seed"], **request["dataset_options"])
    model, _ = load_run_model(run_dir)
    outputs = model.predict(data.test.images, batch_size=batch_size, verbose=0)
    labels, scores = data.test.labels, np.asarray(outputs["score"])
    flagged = scores >= 0.5
    result = {"run": str(run_dir), "request": request,
              "detection_accuracy_at_0.5": float(0.5 * (np.mean(~flagged[labels == 0]) + np.mean(flagged[labels == 1]))),
              "score_range": [float(scores.min()), float(scores.max())]}
    metrics = json.loads((run_dir / "metrics.json").read_text())
    if "iou_curve" in metrics:  # the evaluation's own mean IoU, read at the paper's map threshold 0.5
        curve = metrics["iou_curve"]
        result["iou_at_0.5"] = curve["iou"][curve["thresholds"].index(0.5)]
    return result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+")
    parser.add_argument("--out")
    args = parser.parse_args(argv)
    results = [fixed_threshold_metrics(r) for r in args.runs]
    text = json.dumps(results, indent=1)
    if args.out:
        pathlib.Path(args.out).write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
