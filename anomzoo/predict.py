"""`anomzoo predict MODEL IMAGES...`: score image files with a trained model or an export.

MODEL is a run directory, a `.keras` file, an export folder (as `anomzoo export` writes it), its
TF Serving model base path `<name>/` (latest version), one exported file (SavedModel directory,
`.tflite`, `.onnx`) or a zoo entry name. IMAGES are files, folders (searched recursively, hidden
files and folders skipped) or glob patterns. Files are read exactly as the dataset loaders read
them (`anomzoo.data.load_image`), so the scores equal those `anomzoo evaluate` computes.

Writes `<out>/predictions.csv` and `<out>/predictions.json` (path, score, verdict, error), per image
`<out>/maps/<name>.png` (`anomzoo.report.overlay`: the image at its own resolution beside its
anomaly map as a heat overlay with a colour bar, the pixels above the map threshold outlined, the
verdict and score in the title) and `<out>/report.html`, every image's row and overlay on one page,
the most anomalous first. An unreadable file gets an error row; the others are still scored.
"""

import csv
import dataclasses
import glob
import io
import json
import pathlib

import numpy as np

from anomzoo.data import DatasetError
from anomzoo.data.mvtec import IMAGE_EXTENSIONS, convert_channels, is_hidden, read_image, resize_image
from anomzoo.files import write_json, write_text
from anomzoo.report.html import predictions_page
from anomzoo.report.overlay import inspection_figure


@dataclasses.dataclass
class Predictor:
    """A callable model (float images -> {"score", "anomaly_map", ...}) and its thresholds."""

    run: object
    image_shape: tuple
    score_threshold: float | None
    map_threshold: float | None
    source: str


def _export_metadata(path):
    """The anomzoo metadata of an exported file or folder, or None; a ValueError naming the file when
    it is not JSON, or its thresholds are not numbers (checked before any image is scored)."""
    for candidate in (path / "metadata.json", path / "assets.extra" / "anomzoo.json",
                      path.parent.parent / "metadata.json"):
        if candidate.is_file():
            try:
                metadata = json.loads(candidate.read_text())
            except ValueError as error:
                raise ValueError(f"{candidate} is not the JSON anomzoo export writes ({error}); re-export the "
                                 "model or restore the file") from None
            if not isinstance(metadata, dict):
                raise ValueError(f"{candidate} holds a {type(metadata).__name__}, not an export's metadata object")
            for key in ("score_threshold", "map_threshold"):
                value = metadata.get(key)
                if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
                    raise ValueError(f"{candidate}: {key} must be a number (or null), got {value!r}")
            return metadata
    return None


def open_predictor(source):
    """A `Predictor` for `source` (see the module docstring)."""
    from anomzoo.export import load_export
    from anomzoo.export.server import find_saved_model
    from anomzoo.models.loading import load_run_model, load_zoo_entry

    path = pathlib.Path(source)
    if not path.exists():
        from anomzoo import zoo

        if zoo.is_entry(str(source)):
            return _keras_predictor(*load_zoo_entry(str(source), with_thresholds=True), f"zoo:{source}")
        raise FileNotFoundError(f"{source}: no such run directory, model file or export, and not a zoo entry "
                                f"(anomzoo zoo list shows them)")
    if path.is_dir() and any(p.name.isdigit() and (p / "saved_model.pb").is_file() for p in path.iterdir()):
        path = find_saved_model(path)[2]  # a TF Serving model base path: its latest version, as serve takes it
    metadata = _export_metadata(path)
    if (path / "metadata.json").is_file():  # an export folder: its SavedModel (else its first file)
        files = metadata["files"]
        path = path / files.get("saved_model", next(iter(files.values())))["path"]
    if path.suffix in (".tflite", ".onnx") or (path / "saved_model.pb").is_file():
        try:
            runner = load_export(path)
        except Exception as error:  # each runtime has its own errors for a damaged file; name the file in all
            first_line = (str(error).strip().splitlines() or [type(error).__name__])[0]
            raise ValueError(f"cannot load the exported model {path}: {first_line}; it may be truncated or "
                             "corrupt (export it again)") from error
        thresholds = (metadata or {}).get("score_threshold"), (metadata or {}).get("map_threshold")
        return Predictor(runner, tuple(runner.image_shape), *thresholds, str(path))
    model, _ = load_run_model(path)
    recorded = {}
    metrics_file = (path if path.is_dir() else path.parent) / "metrics.json"
    if metrics_file.is_file():
        try:
            recorded = json.loads(metrics_file.read_text())
        except ValueError:
            recorded = {}
    return _keras_predictor(model, recorded.get("score_threshold"), recorded.get("map_threshold"), str(path))


def _keras_predictor(model, score_threshold, map_threshold, source):
    def run(images):
        return {k: np.asarray(v) for k, v in model.predict(images, batch_size=len(images), verbose=0).items()}

    return Predictor(run, tuple(model.image_shape), score_threshold, map_threshold, source)


def collect_images(patterns):
    """Image files named by `patterns` (files, folders searched recursively, globs), in order, once each.

    A folder or glob that yields no file is an error naming it, even beside others that do: it is
    most often a typo, and a table silently missing those images would look complete.
    """
    found = []
    for pattern in patterns:
        path = pathlib.Path(pattern)
        if path.is_dir():
            # Hidden files and folders (AppleDouble ._x.png, .ipynb_checkpoints, __MACOSX) are not data.
            files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS
                           and not any(is_hidden(part) for part in p.relative_to(path).parts))
            if not files:
                raise FileNotFoundError(f"no image files in {path} (searched recursively for "
                                        f"{', '.join(IMAGE_EXTENSIONS)})")
        elif path.exists():
            files = [path]  # named explicitly: read whatever its name, hidden or not
        elif glob.has_magic(str(pattern)):
            files = sorted(p for p in map(pathlib.Path, glob.glob(str(pattern), recursive=True)) if p.is_file())
            if not files:
                raise FileNotFoundError(f"no files match {pattern!r}")
        else:
            files = [path]  # reported as an error row, as any unreadable file
        found += files
    return list(dict.fromkeys(found))


def predict_files(predictor, files, out_dir, batch_size=32, maps=True, progress=True):
    """Score `files`, write the table (and overlays) into `out_dir`; returns the rows."""
    import keras

    out_dir = pathlib.Path(out_dir)
    size, channels = int(predictor.image_shape[0]), int(predictor.image_shape[-1])
    bar = keras.utils.Progbar(len(files), unit_name="image") if progress else None
    rows, done = [], 0
    names = _map_names(files)
    for start in range(0, len(files), batch_size):
        chunk = files[start:start + batch_size]
        images, originals, readable = [], [], []
        for path in chunk:
            try:
                original = read_image(path)  # then resized and converted exactly as `load_image` does
                images.append(convert_channels(resize_image(original, size)[None], channels)[0])
                originals.append(original if maps else None)
                readable.append(path)
            except (DatasetError, OSError) as error:
                rows.append({"path": str(path), "score": None, "verdict": None, "error": str(error)})
        if images:
            batch = np.stack(images)
            outputs = predictor.run(batch.astype("float32") / 255.0)
            for index, path in enumerate(readable):
                score = float(outputs["score"][index])
                verdict = None if predictor.score_threshold is None else (
                    "anomalous" if score >= predictor.score_threshold or score != score else "normal")
                row = {"path": str(path), "score": score, "verdict": verdict, "error": None}
                if maps:
                    row["map"] = f"maps/{names[path]}"
                    inspection_figure(out_dir / row["map"], originals[index], outputs["anomaly_map"][index],
                                      map_threshold=predictor.map_threshold, score=score,
                                      score_threshold=predictor.score_threshold, title=str(path))
                rows.append(row)
        done += len(chunk)
        if bar is not None:
            bar.update(done)
    order = {str(p): i for i, p in enumerate(files)}
    rows.sort(key=lambda row: order[row["path"]])
    _write_table(out_dir, rows, predictor)
    write_text(out_dir / "report.html", predictions_page(rows, predictor))
    return rows


def _map_names(files):
    """A unique overlay file name per image (parent folder + stem, numbered if still repeated)."""
    names, used = {}, set()
    for path in files:
        base = f"{path.parent.name}_{path.stem}" if path.parent.name else path.stem
        name, count = f"{base}.png", 1
        while name in used:
            count += 1
            name = f"{base}_{count}.png"
        used.add(name)
        names[path] = name
    return names


def _write_table(out_dir, rows, predictor):
    out_dir.mkdir(parents=True, exist_ok=True)
    write_json(out_dir / "predictions.json", {
        "model": predictor.source, "score_threshold": predictor.score_threshold,
        "map_threshold": predictor.map_threshold, "predictions": rows})
    lines = [["path", "score", "verdict", "error"]]
    lines += [[r["path"], "" if r["score"] is None else repr(r["score"]), r["verdict"] or "", r["error"] or ""]
              for r in rows]
    buffer = io.StringIO()
    csv.writer(buffer).writerows(lines)
    write_text(out_dir / "predictions.csv", buffer.getvalue())
