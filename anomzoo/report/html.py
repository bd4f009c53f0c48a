"""HTML pages that open offline in any browser: a run's `report.html` (one self-contained file, its
pictures embedded) and `anomzoo predict`'s `report.html` (its overlays are the files beside it).
Every text that comes from a file name or the data is escaped."""

import base64
import html
import pathlib
import tempfile

import cv2
import numpy as np

from anomzoo.data.mvtec import find_mask, read_image
from anomzoo.report.overlay import inspection_figure, map_scale

#: images in each of the run report's two grids (the worst false positives / false negatives).
WORST = 4

_STYLE = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 24px auto; max-width: 1200px; padding: 0 16px; color: #222; }
table { border-collapse: collapse; margin: 8px 0 20px; }
th, td { border: 1px solid #ccc; padding: 3px 8px; text-align: left; vertical-align: top; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.anomalous { color: #b22222; font-weight: 600; }
figure { margin: 8px 0 18px; }
figcaption { color: #555; font-size: 13px; }
img { max-width: 100%; }
.plots img { max-width: 48%; margin-right: 1%; }
"""


def _page(title, body):
    return (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title>"
            f"<style>{_STYLE}</style></head>\n<body>\n<h1>{html.escape(title)}</h1>\n{body}\n</body></html>\n")


def _data_uri(png_bytes):
    return "data:image/png;base64," + base64.b64encode(png_bytes).decode("ascii")


def _table(rows, header=None):
    head = "<tr>" + "".join(f"<th>{html.escape(str(h))}</th>" for h in header) + "</tr>" if header else ""
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in row) + "</tr>" for row in rows)
    return f"<table>{head}{body}</table>"


def _full_resolution(split, index):
    """(image, mask or None) of a test image as its file holds it; array datasets (MNIST, CIFAR-10)
    have no file and are their own size already."""
    path = pathlib.Path(str(split.paths[index]))
    image, mask = split.images[index], None if split.masks is None else split.masks[index]
    if not path.is_file():
        return image, mask
    original = read_image(path)
    if mask is not None:
        try:  # the MVTec layout: <root>/test/<defect>/<file>, its mask under <root>/ground_truth/<defect>/
            mask = read_image(find_mask(path.parents[2], str(split.defect_types[index]), path))[..., 0] > 0
        except (FileNotFoundError, IndexError, OSError, ValueError):
            # no mask file (normal images), or another layout: the split's mask, enlarged
            mask = _enlarge(mask, original.shape)
    return original, mask


def _enlarge(mask, shape):
    return cv2.resize(np.asarray(mask, np.uint8).reshape(mask.shape[:2]), (shape[1], shape[0]),
                      interpolation=cv2.INTER_NEAREST) > 0


def _worst(labels, scores, label):
    """Indices of the `WORST` most wrongly scored images of one class: the highest-scored normals or
    the lowest-scored anomalies."""
    index = np.flatnonzero(labels == label)
    order = np.argsort(-scores[index] if label == 0 else scores[index], kind="stable")
    return index[order[:WORST]]


def _figure_uri(image, anomaly_map, **options):
    with tempfile.TemporaryDirectory() as folder:
        path = pathlib.Path(folder) / "figure.png"
        inspection_figure(path, image, anomaly_map, **options)
        return _data_uri(path.read_bytes())


def run_page(run_dir, results, provenance, dataset, predictions):
    """The run's report.html: metrics, ROC and score histogram, the worst false positives and false
    negatives at full resolution with their maps, and the provenance."""
    test = dataset.test
    labels, scores = np.asarray(test.labels), np.asarray(predictions["score"], dtype=np.float64)
    score_threshold, map_threshold = results.get("score_threshold"), results.get("map_threshold")
    scale = map_scale(map_threshold, predictions["anomaly_map"])
    metric_rows = [(k, f"{v:.4f}") for k, v in results.items() if isinstance(v, float)]
    sections = [f"<p>{len(test)} test images ({int(labels.sum())} anomalous); thresholds chosen on normal "
                f"validation images only. Colours: map values from {scale[0]:.4g} to {scale[1]:.4g}, the map "
                "threshold mid-scale; the outline marks the pixels above it.</p>",
                "<h2>Metrics</h2>", _table(metric_rows, ("metric", "value")),
                "<h2>Scores</h2><div class=\"plots\">"
                + "".join(f"<img alt=\"{alt}\" src=\"{_data_uri((run_dir / name).read_bytes())}\">"
                          for name, alt in (("roc.png", "ROC curve"), ("scores.png", "score histogram"))
                          if (run_dir / name).is_file()) + "</div>"]
    for label, heading, wrong in ((0, "Normal images scored highest", "false positive"),
                                  (1, "Anomalous images scored lowest", "false negative")):
        sections.append(f"<h2>{heading}</h2><p>The {wrong}s, where the threshold makes any.</p>")
        for i in _worst(labels, scores, label):
            image, mask = _full_resolution(test, i)
            missed = score_threshold is not None and (scores[i] >= score_threshold) != bool(label)
            caption = f"{test.paths[i]} ({test.defect_types[i]}){': ' + wrong if missed else ''}"
            uri = _figure_uri(image, predictions["anomaly_map"][i], map_threshold=map_threshold,
                              score=float(scores[i]), score_threshold=score_threshold,
                              mask=mask if label == 1 else None, title=str(test.paths[i]), scale=scale)
            sections.append(f"<figure><img alt=\"{html.escape(caption)}\" src=\"{uri}\">"
                            f"<figcaption>{html.escape(caption)}</figcaption></figure>")
    sections += ["<h2>Provenance</h2>", _table([(k, v) for k, v in provenance.items()])]
    title = f"{provenance.get('model')} on {provenance.get('dataset')} ({provenance.get('target')})"
    return _page(title, "\n".join(sections))


def predictions_page(rows, predictor):
    """`anomzoo predict`'s report.html: a summary and every image's row, most anomalous first, with
    its overlay (the files under maps/, beside the page)."""
    scored = sorted((r for r in rows if r["error"] is None), key=lambda r: -r["score"] if r["score"] == r["score"]
                    else -np.inf)
    failed = [r for r in rows if r["error"] is not None]
    anomalous = sum(1 for r in scored if r["verdict"] == "anomalous")
    thresholds = (f"score threshold {predictor.score_threshold:.6g}, map threshold {predictor.map_threshold:.6g} "
                  "(chosen on normal validation images)" if predictor.score_threshold is not None
                  and predictor.map_threshold is not None else "no thresholds recorded: no verdicts")
    parts = [f"<p>Model: {html.escape(predictor.source)}; {thresholds}.</p>",
             f"<p>{len(scored)} images scored, <span class=\"anomalous\">{anomalous} anomalous</span>"
             f"{f', {len(failed)} unreadable' if failed else ''}.</p>",
             "<table><tr><th>image</th><th>score</th><th>verdict</th><th>overlay</th></tr>"]
    for row in scored:
        verdict = row["verdict"] or ""
        overlay = (f"<a href=\"{html.escape(row['map'])}\"><img loading=\"lazy\" alt=\"overlay\" "
                   f"src=\"{html.escape(row['map'])}\"></a>" if row.get("map") else "")
        parts.append(f"<tr><td>{html.escape(row['path'])}</td><td class=\"num\">{row['score']:.6g}</td>"
                     f"<td class=\"{verdict}\">{verdict}</td><td>{overlay}</td></tr>")
    parts.append("</table>")
    if failed:
        parts += ["<h2>Unreadable files</h2>", _table([(r["path"], r["error"]) for r in failed], ("file", "error"))]
    return _page("anomzoo predict", "\n".join(parts))


__all__ = ["run_page", "predictions_page"]
