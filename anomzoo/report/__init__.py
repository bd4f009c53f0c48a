"""A run directory's readable report: metrics.json, report.md with its pictures, and report.html."""

import numpy as np

from anomzoo.files import write_json, write_text
from anomzoo.report.html import run_page
from anomzoo.report.plots import overlay_grid, roc_plot, score_histogram


def write_report(run_dir, results, provenance, dataset, predictions):
    """Write metrics.json (results + provenance), report.md with its three PNGs, and report.html (the
    same with the worst-scored images at full resolution, one self-contained file) into `run_dir`."""
    write_json(run_dir / "metrics.json", {**results, "provenance": provenance})
    test = dataset.test
    roc_plot(test.labels, predictions["score"], run_dir / "roc.png")
    score_histogram(test.labels, predictions["score"], run_dir / "scores.png", results.get("score_threshold"))
    overlay_grid(test.images, predictions["anomaly_map"], test.labels, predictions["score"],
                 run_dir / "anomaly_maps.png", masks=test.masks)
    rows = "\n".join(f"| {k} | {v:.4f} |" for k, v in results.items() if isinstance(v, float))
    facts = "\n".join(f"- **{k}**: {v}" for k, v in provenance.items())
    counts = f"{len(dataset.train)} train, {len(dataset.validation)} validation, {len(test)} test " \
             f"({int(np.sum(test.labels))} anomalous)"
    if dataset.labelled_validation is not None:
        counts += f"; {len(dataset.labelled_validation)} labelled validation images taken out of the test split"
    write_text(run_dir / "report.md", f"""# {provenance.get('model')} on {provenance.get('dataset')} ({provenance.get('target')})

Images: {counts}. `report.html` shows the worst-scored images at full resolution with their maps.

| metric | value |
|---|---|
{rows}

![ROC](roc.png)

![score histogram](scores.png)

![anomaly maps: top row images (title: class and score), middle the map overlaid{', bottom the ground truth' if test.masks is not None else ''}](anomaly_maps.png)

## Provenance
{facts}
""")
    write_text(run_dir / "report.html", run_page(run_dir, results, provenance, dataset, predictions))


__all__ = ["write_report", "roc_plot", "score_histogram", "overlay_grid"]
