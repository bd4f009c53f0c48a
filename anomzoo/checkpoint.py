"""Resumable training: the whole training state, written at the end of every epoch.

A checkpoint directory holds, for the last finished epoch, a folder `epoch-NNNN/` with the model's
weights, every optimizer's state and the stage (`weights.weights.h5`) and, under a selection rule,
the selector's best weights (`selector.npz`); `state.json` names that folder and holds the epoch
reached and the history so far. `training.train(checkpoint_dir=...)`
writes it and continues from it; together with the epoch-keyed data order of `make_pipeline`
a resumed run computes what an uninterrupted one would (tested). Every file is written to a
temporary name and renamed, and `state.json` is switched to a new epoch's folder only once that
folder is complete, so a run killed mid-write keeps the previous epoch's checkpoint whole.
"""

from __future__ import annotations

import json
import pathlib
import shutil

import keras
import numpy as np

from anomzoo.files import atomic_path, write_json

STATE_FILE = "state.json"
WEIGHTS_FILE = "weights.weights.h5"
SELECTOR_FILE = "selector.npz"
RANDOM_FILE = "random.npz"


def _seed_states(model):
    """The random generators' state variables (keras.random.SeedGenerator), which saved weights leave out."""
    weights = {id(w) for w in model.weights}
    return [v for v in model.variables if id(v) not in weights]


def read_checkpoint(directory):
    """The saved state dict of `directory`, or None when it holds no finished epoch."""
    state_file = pathlib.Path(directory) / STATE_FILE
    if not state_file.is_file():
        return None
    try:
        state = json.loads(state_file.read_text())
    except (OSError, ValueError) as error:
        raise ValueError(f"checkpoint {state_file} is unreadable ({error}); delete {directory} to start over") from error
    if not isinstance(state, dict) or not isinstance(state.get("epoch"), int) or "folder" not in state:
        raise ValueError(f"checkpoint {state_file} holds no epoch count; delete {directory} to start over")
    return state


def restore_checkpoint(model, directory, state, selector=None):
    """Load the weights (and optimizer state, stage) of `directory` into a compiled `model`; a
    ValueError naming the checkpoint when a file of it is missing, truncated or damaged."""
    root = pathlib.Path(directory)
    directory = root / str(state.get("folder", ""))
    try:
        model.load_weights(directory / WEIGHTS_FILE)
        with np.load(directory / RANDOM_FILE) as arrays:
            for index, variable in enumerate(_seed_states(model)):
                variable.assign(arrays[str(index)])
        if selector is not None and state.get("selector") is not None:
            with np.load(directory / SELECTOR_FILE) as arrays:
                selector.resume_from(state["selector"], dict(arrays))
    except Exception as error:  # h5py, numpy, zipfile and Keras each raise their own types
        first_line = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise ValueError(f"the checkpoint in {directory} cannot be read ({type(error).__name__}: {first_line}); "
                         f"delete {root} to start the run over from its first epoch") from error


class EpochCheckpoint(keras.callbacks.Callback):
    """Write the training state to `directory` after every epoch (place it after the selector and
    the stage schedule). `history` is the history of the epochs before this `fit` (a resumed run)."""

    def __init__(self, directory, selector=None, history=None):
        super().__init__()
        self.directory = pathlib.Path(directory)
        self.selector = selector
        self.history = {k: list(v) for k, v in (history or {}).items()}

    def on_epoch_end(self, epoch, logs=None):
        if not np.isfinite((logs or {}).get("loss", 0.0)):
            return  # a diverged epoch is not worth continuing from; the previous checkpoint stays
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(float(value))
        try:
            self._save(epoch)
        except (OSError, RuntimeError) as error:  # a full disk is a RuntimeError inside h5py
            raise OSError(f"cannot write the checkpoint of epoch {epoch + 1} in {self.directory} "
                          f"({type(error).__name__}: {error}); the previous epoch's checkpoint is kept: free "
                          "some space and run the same command again to continue from it") from error

    def _save(self, epoch):
        folder = f"epoch-{epoch + 1:04d}"
        (self.directory / folder).mkdir(parents=True, exist_ok=True)
        with atomic_path(self.directory / folder / WEIGHTS_FILE) as tmp:
            self.model.save_weights(tmp)
        # The in-step synthetic anomalies continue their random sequence, as in an uninterrupted run.
        self._save_arrays(folder, RANDOM_FILE, {str(i): np.asarray(v) for i, v in enumerate(_seed_states(self.model))})
        state = {"epoch": epoch + 1, "folder": folder, "history": self.history, "selector": None}
        if self.selector is not None:
            selector_state, arrays = self.selector.resume_state()
            self._save_arrays(folder, SELECTOR_FILE, arrays)
            state["selector"] = selector_state
        write_json(self.directory / STATE_FILE, state)
        for old in self.directory.glob("epoch-*"):  # earlier epochs' folders are no longer needed
            if old.name != folder:
                shutil.rmtree(old, ignore_errors=True)

    def _save_arrays(self, folder, name, arrays):
        with atomic_path(self.directory / folder / name) as tmp:
            with open(tmp, "wb") as handle:
                np.savez(handle, **arrays)
