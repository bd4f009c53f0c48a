"""A run: train a zoo model on a dataset into a run directory, save it, evaluate it, write the report.

Both `anomzoo train` and the benchmarks go through `train_run`, so a recorded benchmark number and
a user's CLI run are produced by the same code.
"""

import contextlib
import pathlib
import shutil
import time
import warnings

import keras

from anomzoo import evaluation, provenance, training
from anomzoo.checkpoint import read_checkpoint
from anomzoo.data import load_dataset
from anomzoo.distribute import is_chief, make_strategy, writable_path
from anomzoo.files import save_model, write_json
from anomzoo.models import build_model, canonical_name
from anomzoo.models.loading import MODEL_FILE, load_run_model
from anomzoo.report import write_report
from anomzoo.rundir import CHECKPOINT_DIR, RUN_FILE, open_run_dir, read_run_record, run_lock

def dataset_facts(dataset, dataset_name):
    return {
        "dataset": str(dataset_name),
        "protocol": dataset.protocol,
        "target": dataset.target,
        "image_size": list(dataset.image_shape),
        "split_sizes": {"train": len(dataset.train), "validation": len(dataset.validation),
                        "test": len(dataset.test), "test_anomalous": int(dataset.test.labels.sum()),
                        **labelled_validation_sizes(dataset)},
    }


def labelled_validation_sizes(dataset):
    """The labelled validation split's counts, when there is one (its images left the test split)."""
    labelled = dataset.labelled_validation
    if labelled is None:
        return {}
    return {"labelled_validation": len(labelled), "labelled_validation_anomalous": int(labelled.labels.sum())}


def _dataset_key(dataset):
    """A dataset as a run records it: a registry name as given, a folder as its absolute path."""
    is_path = not isinstance(dataset, str) or pathlib.Path(dataset).exists()
    return str(pathlib.Path(dataset).resolve()) if is_path else dataset


def train_request(model_name, *, dataset="digits", config="paper", epochs=15, batch_size=64, seed=0,
                  selection="last", model_options=None, **dataset_options):
    """What a training run is asked to do, as recorded in its run directory (JSON-able)."""
    return {
        "model": canonical_name(model_name), "preset": config,  # the key run.json always had
        "dataset": _dataset_key(dataset),
        "epochs": list(epochs) if isinstance(epochs, (list, tuple)) else int(epochs),
        "batch_size": int(batch_size), "seed": int(seed), "selection": selection,
        "model_options": dict(model_options or {}),
        "dataset_options": {k: v for k, v in dataset_options.items() if v is not None},
    }


def train_run(model_name, out_dir, *, dataset="digits", config="paper", epochs=15, batch_size=64, seed=0,
              selection="last", model_options=None, verbose="auto", distribute=None, **dataset_options):
    """Train, save, evaluate and report into `out_dir`; returns the metrics dict (with provenance).

    The directory is checked (and created) before any data is loaded. After every epoch the whole
    training state is saved in `out_dir/checkpoint/`; calling this again with the same arguments
    continues an interrupted run from its last finished epoch, with the result an uninterrupted
    run gives. With a selection rule other than "last" the saved model holds the selected weights
    and the metrics of the last epoch's weights are reported beside them under "last", so that
    every run shows what selection changed.

    distribute: None (one device), "mirrored" or "multi_worker" (`anomzoo.distribute`): the model is
    built and trained under that strategy, and evaluated on one device from the saved file. Under
    "multi_worker" every worker calls this with the same arguments; only the chief writes `out_dir`
    (the others read its checkpoint to resume, so `out_dir` must be on storage they all see).
    """
    started = time.time()
    strategy = make_strategy(distribute)
    request = train_request(model_name, dataset=dataset, config=config, epochs=epochs, batch_size=batch_size,
                            seed=seed, selection=selection, model_options=model_options, **dataset_options)
    out_dir = pathlib.Path(out_dir)
    if not is_chief(strategy):
        return _train_as_worker(model_name, out_dir, strategy, dataset=dataset, config=config, epochs=epochs,
                                batch_size=batch_size, seed=seed, selection=selection,
                                model_options=model_options, **dataset_options)
    existed = out_dir.exists()
    resuming = open_run_dir(out_dir, request)
    with run_lock(out_dir):  # one live process per run directory
        name = request["model"]
        checkpoint = out_dir / CHECKPOINT_DIR
        state = read_checkpoint(checkpoint) if resuming else None
        resumed_at = state["epoch"] if state else None
        try:
            data, model = _data_and_model(name, config, model_options, strategy, dataset, seed, dataset_options)
            if dataset_options.get("weak_fraction") and not getattr(model, "weakly_supervised", False):
                raise ValueError(f"--weak-fraction moves anomalous test images into training with their labels, "
                                 f"but {type(model).__name__} ({config}) reads no labels and would learn them as "
                                 "normal; use a weakly supervised configuration (cavga --config paper_weak)")
            trained = training.train(model, data, epochs=epochs, batch_size=batch_size, seed=seed,
                                     selection=selection, verbose=verbose, checkpoint_dir=checkpoint, strategy=strategy)
        except BaseException:
            if not resuming and not checkpoint.exists():  # nothing worth keeping: leave no half-made run behind
                (out_dir / RUN_FILE).unlink(missing_ok=True)
                if not existed:
                    shutil.rmtree(out_dir, ignore_errors=True)
            raise
        train_seconds = time.time() - started
        save_model(model, out_dir / MODEL_FILE)
        if strategy is not None:  # thresholds and metrics over the whole split, on one device, as without one
            model, _ = load_run_model(out_dir / MODEL_FILE)
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
            "preset": config,  # the configuration (provenance keeps the key it always had)
            "model_options": dict(model_options or {}),
            **dataset_facts(data, dataset),
            "epochs": sum(trained.stage_epochs),
            "stage_epochs": dict(zip([s.name for s in model.stages], trained.stage_epochs)),
            "batch_size": batch_size,
            "seed": seed,
            "selection_rule": trained.selection_rule,
            "selection": selection_facts,
            "distribute": {"strategy": distribute, "replicas": strategy.num_replicas_in_sync} if strategy else None,
            "threshold_rule": evaluation.threshold_rule(data),
            "final_train_losses": {k: float(v[-1]) for k, v in history.items()},
            # With a resumed run, the seconds of this process only (the epochs before were timed elsewhere).
            "resumed_at_epoch": resumed_at,
            "train_seconds": round(train_seconds, 1),
            "wall_seconds": round(time.time() - started, 1),
            "commit": provenance.commit(),
            **provenance.environment(),
        }
        write_report(out_dir, results, facts, data, predictions)
        write_json(out_dir / RUN_FILE, {"status": "finished", "request": request})
        shutil.rmtree(checkpoint, ignore_errors=True)  # the saved model supersedes it
        return {**results, "provenance": facts}


def _data_and_model(name, config, model_options, strategy, dataset, seed, dataset_options):
    """The run's dataset and its freshly built model (in `strategy`'s scope where there is one)."""
    data = load_dataset(dataset, seed=seed, **dataset_options)
    keras.utils.set_random_seed(seed)  # before the networks are built: their initial weights are random
    with strategy.scope() if strategy else contextlib.nullcontext():
        model = build_model(name, config, **{**(model_options or {}), "image_shape": data.image_shape})
    return data, model


def _train_as_worker(model_name, out_dir, strategy, *, dataset, config, epochs, batch_size, seed, selection,
                     model_options, **dataset_options):
    """A multi-worker run's part on a worker that is not the chief: the same data, model and steps
    (every worker takes part in every all-reduce and every save), resumed from the chief's checkpoint,
    writing into a temporary folder only."""
    data, model = _data_and_model(canonical_name(model_name), config, model_options, strategy, dataset, seed,
                                  dataset_options)
    checkpoint = out_dir / CHECKPOINT_DIR
    training.train(model, data, epochs=epochs, batch_size=batch_size, seed=seed, selection=selection, verbose=0,
                   checkpoint_dir=checkpoint, strategy=strategy)
    save_model(model, writable_path(strategy, out_dir / MODEL_FILE))
    return None


def _held_out_as_trained(model_path, dataset, dataset_options, seed):
    """(dataset_options, seed) for evaluating a run on its own data: where the run chose its epochs on a
    labelled validation split of the test images, the same split (fraction and seed) leaves the test
    set again unless asked otherwise, so that no image that chose the weights is scored as a test image."""
    path = pathlib.Path(model_path)
    record = read_run_record(path if path.is_dir() else path.parent)
    fraction = (record or {}).get("request", {}).get("dataset_options", {}).get("labelled_validation_fraction")
    same_data = record is not None and _dataset_key(dataset) == record["request"]["dataset"]
    if not fraction or not same_data or "labelled_validation_fraction" in dataset_options:
        return dataset_options, seed
    warnings.warn(f"the run chose its weights on a labelled validation split ({fraction} of the test images, seed "
                  f"{record['request']['seed']}); the same images leave the test set here", stacklevel=3)
    return {**dataset_options, "labelled_validation_fraction": fraction}, record["request"]["seed"]


def evaluate_run(model_path, out_dir, *, dataset, batch_size=64, seed=0, **dataset_options):
    """Evaluate a trained model on `dataset` and report into `out_dir`."""
    started = time.time()
    out_dir = pathlib.Path(out_dir)
    existed = out_dir.exists()
    open_run_dir(out_dir)
    try:
        model, trained = load_run_model(model_path)
        dataset_options, seed = _held_out_as_trained(model_path, dataset, dataset_options, seed)
        size = int(model.image_shape[0])
        channels = int(model.image_shape[-1])
        asked = dataset_options.pop("image_size", None)
        if asked is not None and asked != size:
            raise ValueError(f"--image-size {asked}: the model was trained on {size} px images and is evaluated "
                             f"at that size (leave --image-size out)")
        data = load_dataset(dataset, seed=seed, image_size=size, channels=channels, **dataset_options)
        results, predictions = evaluation.evaluate_model(model, data, batch_size)
    except BaseException:
        if not existed:  # nothing was written yet: leave no empty evaluation directory behind
            shutil.rmtree(out_dir, ignore_errors=True)
        raise
    facts = {
        "model": trained.get("model", type(model).__name__),
        "preset": trained.get("preset"),
        "model_path": str(model_path),
        "trained_on": {k: trained.get(k) for k in ("dataset", "protocol", "target", "epochs", "seed")},
        **dataset_facts(data, dataset),
        "threshold_rule": evaluation.threshold_rule(data),
        "wall_seconds": round(time.time() - started, 1),
        "commit": provenance.commit(),
        **provenance.environment(),
    }
    write_report(out_dir, results, facts, data, predictions)
    return {**results, "provenance": facts}
