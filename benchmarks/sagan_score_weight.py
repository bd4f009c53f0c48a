"""Which share w of the reconstruction term would validation give SAGAN's score A = w R + (1 - w) L?

    python benchmarks/sagan_score_weight.py RUN_DIR [RUN_DIR ...]

Each RUN_DIR is a finished `anomzoo train sagan ...` run (one seed each). For w in WEIGHTS, with R and L
raw (the paper's A at w = 0.2) and each divided by its spread over the validation normals, it scores
the run's validation split plus synthetic anomalies made from it (the set checkpoint selection uses,
`anomzoo.validation.synthetic_validation_set`) and, for the record only, the test split. The weight
is chosen on the validation AUROC alone; the test AUROC of that choice is reported beside the
paper's score and the run's no-learning floor. Writes results/sagan_score_weight.{json,md}.
"""

import json
import pathlib
import sys

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from anomzoo import floors, metrics, provenance, validation  # noqa: E402
from anomzoo.data import load_dataset  # noqa: E402
from anomzoo.files import write_json, write_text  # noqa: E402
from anomzoo.models.loading import load_run_model  # noqa: E402

WEIGHTS = (0.0, 0.2, 0.5, 0.8, 1.0)
RESULTS = ROOT / "benchmarks" / "results"


def study(run_dir):
    model, _ = load_run_model(run_dir)
    request = json.loads((pathlib.Path(run_dir) / "run.json").read_text())["request"]
    data = load_dataset(request["dataset"], seed=request["seed"], **request["dataset_options"])
    held_out = validation.synthetic_validation_set(data.validation.images, seed=request["seed"],
                                                   **model.validation_synthesis())

    def terms(images):
        out = model.predict(images, batch_size=256, verbose=0)
        return np.asarray(out["reconstruction_score"]), np.asarray(out["latent_score"])

    (val_r, val_l), (test_r, test_l) = terms(held_out.images), terms(data.test.images)
    normal = held_out.labels == 0
    spreads = {"raw": (1.0, 1.0), "standardised": (val_r[normal].std(), val_l[normal].std())}
    rows = []
    for scale, (sr, sl) in spreads.items():
        for w in WEIGHTS:
            rows.append({"w": w, "scale": scale,
                         "validation_auroc": metrics.image_auroc(held_out.labels, w * val_r / sr + (1 - w) * val_l / sl),
                         "test_auroc": metrics.image_auroc(data.test.labels, w * test_r / sr + (1 - w) * test_l / sl)})
    chosen = max(rows, key=lambda r: r["validation_auroc"])
    paper = next(r for r in rows if r["w"] == 0.2 and r["scale"] == "raw")
    return {"run": str(run_dir), "request": request, "rows": rows, "chosen": chosen, "paper": paper,
            "floor": floors.floor_metrics(data)["distance to the mean normal"]["image_auroc"]}


def main(run_dirs):
    studies = [study(r) for r in run_dirs]
    write_json(RESULTS / "sagan_score_weight.json",
               {"command": "python benchmarks/sagan_score_weight.py " + " ".join(run_dirs), "studies": studies,
                "commit": provenance.commit(), **provenance.environment()})
    lines = ["# SAGAN: the score's weight chosen on validation", "",
             f"`python benchmarks/sagan_score_weight.py {' '.join(run_dirs)}`; commit {provenance.commit()}.", "",
             "Validation: the run's validation normals plus synthetic anomalies made from them (no test image). "
             "Test AUROC of every weight is shown for the record; only the validation column chooses.", "",
             "| run (seed) | chosen on validation | its validation AUROC | its test AUROC | paper's A (w 0.2) test | floor |",
             "|---|---|---|---|---|---|"]
    for s in studies:
        c, p = s["chosen"], s["paper"]
        lines.append(f"| {s['request']['seed']} | w {c['w']}, {c['scale']} | {c['validation_auroc']:.3f} | "
                     f"{c['test_auroc']:.3f} | {p['test_auroc']:.3f} | {s['floor']:.3f} |")
    lines += ["", "## Every weight", "", "| seed | scale | w | validation AUROC | test AUROC |", "|---|---|---|---|---|"]
    lines += [f"| {s['request']['seed']} | {r['scale']} | {r['w']} | {r['validation_auroc']:.3f} | {r['test_auroc']:.3f} |"
              for s in studies for r in s["rows"]]
    write_text(RESULTS / "sagan_score_weight.md", "\n".join(lines) + "\n")
    print("\n".join(lines[:8 + len(studies)]))


if __name__ == "__main__":
    main(sys.argv[1:])
