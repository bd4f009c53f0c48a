"""A run directory: train a zoo model on a dataset, save it, evaluate it, write the report.

Both `anomzoo train` and the benchmarks go through `train_run`, so a recorded benchmark number and
a user's CLI run are produced by the same code.
"""

import contextlib
import json
import os
import pathlib
import shutil
import time
import warnings
import zipfile

import keras

from anomzoo import evaluation, provenance, training
from anomzoo.checkpoint import read_checkpoint
from anomzoo.data import load_dataset
from anomzoo.files import save_model, write_json
from anomzoo.models import build_model, canonical_name
from anomzoo.models.base import AnomalyModel
from anomzoo.report import write_report

MODEL_FILE = "model.keras"
RUN_FILE = "run.json"  # what was asked for, and whether the run has finished
CHECKPOINT_DIR = "checkpoint"  # the training state after the last finished epoch, until the run ends
LOCK_FILE = "run.lock"  # the pid of the process training in the directory (`run_lock`)


class RunDirectoryError(ValueError):
    """A run directory that cannot be used for the run asked for."""


def _differences(recorded, request):
    keys = sorted(set(recorded) | set(request))
    return ", ".join(f"{k}: {recorded.get(k)!r} there, {request.get(k)!r} now" for k in keys
                     if recorded.get(k) != request.get(k))


def open_run_dir(out_dir, request=None):
    """Make `out_dir` ready for a run before any data is loaded; True when it continues an unfinished run.

    A new or empty directory is created (and shown writable) and records `request`. A directory
    holding an unfinished training run with the same request is continued; anything else (a file,
    a finished run, another request, foreign files, any non-empty directory for an evaluation with
    `request=None`) is refused, so that two runs never mix in one directory.
    """
    out_dir = pathlib.Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise RunDirectoryError(f"--out {out_dir} is a file; give a directory for the run")
    if out_dir.is_dir() and any(p.name != LOCK_FILE for p in out_dir.iterdir()):
        recorded = read_run_record(out_dir) if request is not None else None
        if recorded is None:
            raise RunDirectoryError(f"{out_dir} is not empty; give a new or empty directory with --out "
                                    "(results of different runs are never mixed)")
        if recorded.get("status") == "finished":
            raise RunDirectoryError(f"{out_dir} holds a finished run; give a new directory with --out "
                                    "(or delete this one to train it again)")
        if recorded["request"] != request:
            raise RunDirectoryError(f"{out_dir} holds an unfinished run of another command "
                                    f"({_differences(recorded['request'], request)}); run that command "
                                    "again to continue it, or give a new directory with --out")
        return True
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        if request is not None:
            write_json(out_dir / RUN_FILE, {"status": "training", "request": request})
        else:  # show the directory is writable now, not after the evaluation
            (out_dir / ".write-test").touch()
            (out_dir / ".write-test").unlink()
    except OSError as error:
        raise RunDirectoryError(f"cannot write the run directory {out_dir}: {error.strerror or error}") from error
    return False


@contextlib.contextmanager
def run_lock(out_dir):
    """Hold `out_dir` for this process: a lock file holding its pid, removed when the block ends. A
    second process (a --resume of a run still going, or only stopped with kill -STOP) is refused, since
    both would write the same checkpoint and model; a lock whose process is gone is stale and taken over."""
    lock = pathlib.Path(out_dir) / LOCK_FILE
    for _ in range(2):
        try:
            handle = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            break
        except FileExistsError:
            try:
                owner = int(lock.read_text().strip() or 0)
            except (OSError, ValueError):
                owner = 0
            if owner and owner != os.getpid() and _process_alive(owner):
                raise RunDirectoryError(f"{out_dir} is in use by process {owner} (a run still training, or "
                                        f"stopped); wait for it or end it (kill {owner}) before continuing this run")
            lock.unlink(missing_ok=True)  # stale: its process is gone
    else:
        raise RunDirectoryError(f"cannot take the lock {lock}: another process keeps taking it")
    try:
        os.write(handle, str(os.getpid()).encode())
        os.close(handle)
        yield
    finally:
        lock.unlink(missing_ok=True)


def _process_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


def find_unfinished_run(runs_root, request):
    """The newest directory under `runs_root` holding an unfinished run of `request`, or None."""
    candidates = []
    for run_file in pathlib.Path(runs_root).glob(f"*/{RUN_FILE}"):
        recorded = read_run_record(run_file.parent)
        if recorded is not None and recorded.get("status") != "finished" and recorded["request"] == request:
            candidates.append(run_file.parent)
    return max(candidates, key=lambda p: p.stat().st_mtime, default=None)


def read_run_record(run_dir):
    """The run.json of `run_dir` ({"status", "request"}), or None when it has none or it is unreadable."""
    try:
        recorded = json.loads((pathlib.Path(run_dir) / RUN_FILE).read_text())
    except (OSError, ValueError):
        return None
    return recorded if isinstance(recorded, dict) and "request" in recorded else None


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


def train_request(model_name, *, dataset="digits", preset="paper", epochs=15, batch_size=64, seed=0,
                  selection="last", model_options=None, **dataset_options):
    """What a training run is asked to do, as recorded in its run directory (JSON-able)."""
    return {
        "model": canonical_name(model_name), "preset": preset,
        "dataset": _dataset_key(dataset),
        "epochs": list(epochs) if isinstance(epochs, (list, tuple)) else int(epochs),
        "batch_size": int(batch_size), "seed": int(seed), "selection": selection,
        "model_options": dict(model_options or {}),
        "dataset_options": {k: v for k, v in dataset_options.items() if v is not None},
    }


def train_run(model_name, out_dir, *, dataset="digits", preset="paper", epochs=15, batch_size=64, seed=0,
              selection="last", model_options=None, verbose="auto", **dataset_options):
    """Train, save, evaluate and report into `out_dir`; returns the metrics dict (with provenance).

    The directory is checked (and created) before any data is loaded. After every epoch the whole
    training state is saved in `out_dir/checkpoint/`; calling this again with the same arguments
    continues an interrupted run from its last finished epoch, with the result an uninterrupted
    run gives. With a selection rule other than "last" the saved model holds the selected weights
    and the metrics of the last epoch's weights are reported beside them under "last", so that
    every run shows what selection changed.
    """
    started = time.time()
    request = train_request(model_name, dataset=dataset, preset=preset, epochs=epochs, batch_size=batch_size,
                            seed=seed, selection=selection, model_options=model_options, **dataset_options)
    out_dir = pathlib.Path(out_dir)
    existed = out_dir.exists()
    resuming = open_run_dir(out_dir, request)
    with run_lock(out_dir):  # one live process per run directory
        name = request["model"]
        checkpoint = out_dir / CHECKPOINT_DIR
        state = read_checkpoint(checkpoint) if resuming else None
        resumed_at = state["epoch"] if state else None
        try:
            data = load_dataset(dataset, seed=seed, **dataset_options)
            keras.utils.set_random_seed(seed)  # before the networks are built: their initial weights are random
            model = build_model(name, preset, **{**(model_options or {}), "image_shape": data.image_shape})
            if dataset_options.get("weak_fraction") and not getattr(model, "weakly_supervised", False):
                raise ValueError(f"--weak-fraction moves anomalous test images into training with their labels, "
                                 f"but {type(model).__name__} ({preset}) reads no labels and would learn them as "
                                 "normal; use a weakly supervised configuration (cavga --preset paper_weak)")
            trained = training.train(model, data, epochs=epochs, batch_size=batch_size, seed=seed,
                                     selection=selection, verbose=verbose, checkpoint_dir=checkpoint)
        except BaseException:
            if not resuming and not checkpoint.exists():  # nothing worth keeping: leave no half-made run behind
                (out_dir / RUN_FILE).unlink(missing_ok=True)
                if not existed:
                    shutil.rmtree(out_dir, ignore_errors=True)
            raise
        train_seconds = time.time() - started
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
