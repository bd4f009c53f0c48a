"""A trained model with everything its exports and predictions need, from wherever it lives.

`open_trained(source)` accepts a run directory (as `anomzoo train` writes it) or a `.keras` file, and
returns the model, its decision thresholds (chosen on normal validation images only), the data it
was trained on (to check exports on real images) and its provenance.
"""

import dataclasses
import json
import pathlib

from anomzoo import evaluation
from anomzoo.data import load_dataset
from anomzoo.models.loading import load_run_model, load_zoo_entry
from anomzoo.rundir import read_run_record


@dataclasses.dataclass
class TrainedModel:
    model: object
    name: str  # registry name
    score_threshold: float
    map_threshold: float
    threshold_rule: str
    data: object  # the AnomalyDataset the thresholds come from
    provenance: dict
    metrics: dict  # the recorded test metrics (scalars), {} when unknown


def _recorded_metrics(run_dir):
    try:
        recorded = json.loads((run_dir / "metrics.json").read_text())
    except (OSError, ValueError):
        return {}
    return {k: v for k, v in recorded.items() if isinstance(v, (int, float))} if isinstance(recorded, dict) else {}


def open_trained(source, dataset=None, batch_size=64, **dataset_options):
    """The model at `source` (run directory or `.keras` file) with its thresholds and data.

    Data: `dataset` (+ options) when given, else the dataset recorded in the run directory's
    run.json. Thresholds: those recorded in the run's metrics.json when present (they were computed
    from the same validation images), else computed from the data's validation split.
    """
    if not pathlib.Path(source).exists():
        from anomzoo import zoo

        if zoo.is_entry(str(source)):
            return _zoo_entry(str(source), dataset, batch_size, dataset_options)
    source = pathlib.Path(source)
    model, provenance = load_run_model(source)
    run_dir = source if source.is_dir() else source.parent
    size, channels = int(model.image_shape[0]), int(model.image_shape[-1])
    if dataset is None:
        record = read_run_record(run_dir)
        if record is None:
            raise ValueError(f"{source} has no run record (run.json) naming its data: pass the dataset its "
                             "thresholds should come from (--dataset)")
        request = record["request"]
        dataset, seed = request["dataset"], request["seed"]
        dataset_options = {**request["dataset_options"]}
    else:
        seed = provenance.get("seed", 0)
    dataset_options.update(image_size=size, channels=channels)
    try:
        data = load_dataset(dataset, seed=seed, **dataset_options)
    except (OSError, ValueError) as error:
        raise ValueError(f"{source}: its data ({dataset}) cannot be loaded: {error}; if it has moved, give its "
                         "new place with --dataset NEW_PATH") from error
    recorded = _recorded_metrics(run_dir) if source.is_dir() else {}
    thresholds = None
    if "score_threshold" in recorded and "map_threshold" in recorded:
        thresholds = recorded["score_threshold"], recorded["map_threshold"]
    return trained_model(model, data, provenance=provenance, metrics=recorded, thresholds=thresholds,
                         batch_size=batch_size)


def trained_model(model, data, provenance=None, metrics=None, thresholds=None, batch_size=64):
    """A `TrainedModel` for a model in memory (e.g. after `model.fit` in a notebook) and its data:
    thresholds from the data's validation (normal) images unless given as (score, map)."""
    from anomzoo.models import MODELS

    if thresholds is None:
        thresholds = evaluation.validation_thresholds(model, data, batch_size)
        if thresholds[0] is None:
            raise ValueError(f"the data of {type(model).__name__} ({data.name}, {len(data.train)} training image(s)) "
                             "has no validation images to choose a decision threshold from: train on at least "
                             "two normal images, or give --dataset with a validation split")
    name = next((key for key, cls in MODELS.items() if isinstance(model, cls)), type(model).__name__)
    return TrainedModel(model=model, name=name, score_threshold=float(thresholds[0]),
                        map_threshold=float(thresholds[1]), threshold_rule=evaluation.THRESHOLD_RULE, data=data,
                        provenance=dict(provenance or {}), metrics=dict(metrics or {}))


def _zoo_entry(name, dataset, batch_size, dataset_options):
    """A zoo entry as a `TrainedModel`: its thresholds, and the data it was evaluated on (a registry
    dataset by name; a folder dataset must be given, since the entry cannot know where it is here)."""
    from anomzoo import zoo
    from anomzoo.data import DATASETS

    entry = zoo.info(name)
    model, score_threshold, map_threshold = load_zoo_entry(name, with_thresholds=True)
    if dataset is None:
        if entry["dataset"] not in DATASETS:
            raise ValueError(f"zoo entry {name} was evaluated on the folder {entry['dataset']}: give its place "
                             "here with --dataset PATH")
        dataset = entry["dataset"]
    options = {**entry["dataset_options"], **dataset_options, "image_size": entry["image_shape"][0],
               "channels": entry["image_shape"][-1]}
    data = load_dataset(dataset, seed=entry["seed"], **options)
    return trained_model(model, data, provenance={"zoo_entry": name, **entry.get("training", {})},
                         metrics=entry["metrics"], thresholds=(score_threshold, map_threshold),
                         batch_size=batch_size)
