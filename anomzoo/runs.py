"""A run directory: train a zoo model on a dataset, save it, evaluate it, write the report.

Both `anomzoo train` and the benchmarks go through `train_run`, so a recorded benchmark number and
a user's CLI run are produced by the same code.
"""

import json
import pathlib
import time

import keras

from anomzoo import evaluation, provenance, training
from anomzoo.data import load_dataset
from anomzoo.files import save_model
from anomzoo.models import build_model, canonical_name
from anomzoo.report import write_report

MODEL_FILE = "model.keras"


def dataset_facts(dataset, dataset_name):
    return {
        "dataset": str(dataset_name),
        "protocol": dataset.protocol,
        "target": dataset.target,
        "image_size": list(dataset.image_shape),
        "split_sizes": {"train": len(dataset.train), "validation": len(dataset.validation),
                        "test": len(dataset.test), "test_anomalous": int(dataset.test.labels.sum())},
    }


def train_run(model_name, out_dir, *, dataset="digits", preset="paper", epochs=15, batch_size=64, seed=0,
              selection="last", model_options=None, verbose="auto", **dataset_options):
    """Train, save, evaluate and report into `out_dir`; returns the metrics dict (with provenance).

    With a selection rule other than "last" the saved model holds the selected weights and the
    metrics of the last epoch's weights are reported beside them under "last", so that every run
    shows what selection changed.
    """
    started = time.time()
    name = canonical_name(model_name)
    data = load_dataset(dataset, seed=seed, **dataset_options)
    model = build_model(name, preset, **{**(model_options or {}), "image_shape": data.image_shape})
    trained = training.train(model, data, epochs=epochs, batch_size=batch_size, seed=seed, selection=selection,
                             verbose=verbose)
    train_seconds = time.time() - started
    out_dir = pathlib.Path(out_dir)
    save_model(model, out_dir / MODEL_FILE)
    results, predictions = evaluation.evaluate_model(model, data, batch_size)
    selection_facts = {"rule": selection, "description": trained.selection_rule}
    if trained.selector is not None:
        selected_weights = model.get_weights()
        model.set_weights(trained.selector.last_weights)
        last, _ = evaluation.evaluate_model(model, data, batch_size)
        model.set_weights(selected_weights)
        results["last"] = {k: v for k, v in last.items() if not isinstance(v, (list, dict))}
        selection_facts.update(selected_epochs=trained.selector.selected_epochs,
                               validation_history=trained.selector.history)
    history = trained.history.history
    facts = {
        "model": name,
        "preset": preset,
        "model_options": dict(model_options or {}),
        **dataset_facts(data, dataset),
        "epochs": sum(trained.stage_epochs),
        "stage_epochs": dict(zip([s.name for s in model.stages], trained.stage_epochs)),
        "batch_size": batch_size,
        "seed": seed,
        "selection_rule": trained.selection_rule,
        "selection": selection_facts,
        "threshold_rule": evaluation.THRESHOLD_RULE,
        "final_train_losses": {k: float(v[-1]) for k, v in history.items()},
        "train_seconds": round(train_seconds, 1),
        "wall_seconds": round(time.time() - started, 1),
        "commit": provenance.commit(),
        **provenance.environment(),
    }
    write_report(out_dir, results, facts, data, predictions)
    return {**results, "provenance": facts}


def load_run_model(path):
    """A model from a run directory or a `.keras` file, and the run's provenance (or {})."""
    path = pathlib.Path(path)
    model_file = path / MODEL_FILE if path.is_dir() else path
    if not model_file.is_file():
        raise FileNotFoundError(f"no trained model at {model_file}; expected a run directory holding "
                                f"{MODEL_FILE} or a .keras file")
    metrics_file = model_file.parent / "metrics.json"
    facts = json.loads(metrics_file.read_text()).get("provenance", {}) if metrics_file.is_file() else {}
    return keras.models.load_model(model_file), facts


def evaluate_run(model_path, out_dir, *, dataset, batch_size=64, seed=0, **dataset_options):
    """Evaluate a trained model on `dataset` and report into `out_dir`."""
    started = time.time()
    model, trained = load_run_model(model_path)
    size = int(model.image_shape[0])
    channels = int(model.image_shape[-1])
    data = load_dataset(dataset, seed=seed, image_size=size, channels=channels, **dataset_options)
    results, predictions = evaluation.evaluate_model(model, data, batch_size)
    facts = {
        "model": trained.get("model", type(model).__name__),
        "preset": trained.get("preset"),
        "model_path": str(model_path),
        "trained_on": {k: trained.get(k) for k in ("dataset", "protocol", "target", "epochs", "seed")},
        **dataset_facts(data, dataset),
        "threshold_rule": evaluation.THRESHOLD_RULE,
        "wall_seconds": round(time.time() - started, 1),
        "commit": provenance.commit(),
        **provenance.environment(),
    }
    write_report(pathlib.Path(out_dir), results, facts, data, predictions)
    return {**results, "provenance": facts}
