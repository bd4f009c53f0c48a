"""Loading the `.keras` files anomzoo writes (run directories, model files, zoo entries): every
class Keras must know is registered first, and a damaged file is an error that names it."""

import importlib
import json
import pathlib
import warnings
import zipfile

import keras

from anomzoo import zoo
from anomzoo.models.base import AnomalyModel

MODEL_FILE = "model.keras"  # a run directory's trained model


def register_classes():
    """Import the modules whose classes Keras must know to load a `.keras` file."""
    for name in ("augment", "layers", "models", "models.schedules"):
        importlib.import_module(f"anomzoo.{name}")


def load_run_model(path):
    """A model from a run directory or a `.keras` file, and the run's provenance (or {})."""
    path = pathlib.Path(path)
    model_file = path / MODEL_FILE if path.is_dir() else path
    if not model_file.is_file():
        raise FileNotFoundError(f"no trained model at {model_file}; expected a run directory holding "
                                f"{MODEL_FILE} or a .keras file")
    if not zipfile.is_zipfile(model_file):
        raise ValueError(f"{model_file} is not a .keras file (a zip archive written by model.save); "
                         "it may be truncated or corrupt")
    try:
        model = keras.models.load_model(model_file)
    except Exception as error:  # Keras raises many types for a damaged archive; name the file in all
        raise ValueError(f"cannot load the model in {model_file}: {type(error).__name__}: {error}") from error
    if not isinstance(model, AnomalyModel):
        raise ValueError(f"{model_file} holds a {type(model).__name__}, not an anomzoo model; anomzoo "
                         "evaluates models it trained (anomzoo train ...)")
    return model, _read_provenance(model_file.parent / "metrics.json")


def _read_provenance(metrics_file):
    """The training provenance beside a model; {} (with a warning) when it is absent or unreadable."""
    if not metrics_file.is_file():
        return {}
    try:
        facts = json.loads(metrics_file.read_text()).get("provenance", {})
        if isinstance(facts, dict):
            return facts
    except (ValueError, AttributeError):
        pass
    warnings.warn(f"{metrics_file} is not a metrics file written by anomzoo; the training facts are left out")
    return {}


def load_zoo_entry(name, with_thresholds=False):
    """The trained model of zoo entry `name` (and its score and map thresholds when asked)."""
    register_classes()
    model = keras.models.load_model(zoo.fetch(name), safe_mode=True)
    if with_thresholds:
        entry = zoo.info(name)
        return model, entry["score_threshold"], entry["map_threshold"]
    return model
