"""`train()`: the one way the CLI and the benchmarks fit a zoo model on an `AnomalyDataset`.

It is plain `model.fit` with the model's own optimizers and schedule, its stages one after the
other (`StageSchedule`), seeded data order, and an optional checkpoint-selection rule scored on a
validation set of held-out normal images and synthetic anomalies (`SelectOnValidation`). Users in
a notebook can add the same callbacks to their own `model.fit`.
"""

from __future__ import annotations

import dataclasses

import keras
import numpy as np

from anomzoo import distribute
from anomzoo.callbacks import ReconstructionAgainstFloor, SelectOnValidation, StageSchedule
from anomzoo.checkpoint import EpochCheckpoint, read_checkpoint, restore_checkpoint
from anomzoo.data import make_pipeline, steps_per_epoch, training_pipeline
from anomzoo.validation import RULES, labelled_validation_set, synthetic_validation_set, uses_real_anomalies


@dataclasses.dataclass
class TrainingResult:
    """What `train` returns: the Keras history, the epochs of each stage, the selection rule and,
    when the rule is not "last", the callback that holds the selected epochs and the last weights."""

    history: keras.callbacks.History
    stage_epochs: list
    selection: str
    selector: SelectOnValidation | None = None

    @property
    def selection_rule(self):
        return RULES[self.selection]


def split_epochs(model, epochs):
    """Epochs per stage: a list (one per stage) as given, or an int split by `model.stage_fractions`."""
    count = len(model.stages)
    if isinstance(epochs, (list, tuple)):
        stage_epochs = [int(e) for e in epochs]
        if len(stage_epochs) != count or min(stage_epochs) < 1:
            raise ValueError(f"{type(model).__name__} trains {count} stage(s) "
                             f"({', '.join(s.name for s in model.stages)}): give one positive epoch count each, "
                             f"got {list(epochs)}")
        return stage_epochs
    if int(epochs) < count:
        raise ValueError(f"epochs={epochs}: {type(model).__name__} needs at least one epoch for each of its "
                         f"{count} stages")
    stage_epochs = [max(1, round(f * epochs)) for f in model.stage_fractions]
    stage_epochs[0] += int(epochs) - sum(stage_epochs)  # rounding: the first stage takes the difference
    return stage_epochs


def train(model, dataset, *, epochs, batch_size=64, seed=0, selection="last", callbacks=(), verbose="auto",
          checkpoint_dir=None, strategy=None):
    """Fit `model` on the normal training images of `dataset`, validating on its validation split.

    epochs: an int (split over the model's stages by its `stage_fractions`) or one count per stage.
    selection: "last", or a validation metric of `anomzoo.validation.RULES` whose best epoch of each
        stage is kept.
    checkpoint_dir: where the whole training state is written after every epoch; when it already
        holds a checkpoint, training continues from there (a model built with the same arguments
        and seed gives the same result as an uninterrupted run).
    strategy: a `tf.distribute.Strategy` (see `anomzoo.distribute`) in whose scope `model` was built:
        every replica trains on its share of each global batch of `batch_size` images (a multiple of
        the number of replicas; the last partial batch of an epoch is dropped), with losses scaled per
        replica, BatchNorm synchronised and synthetic anomalies drawn per replica, so that a step
        computes what one device computes on the whole batch. Under a multi-worker strategy only the
        chief writes the checkpoint.
    Returns a `TrainingResult`. Raises FloatingPointError if a loss became NaN or infinite,
    ValueError on a bad argument.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    if selection not in RULES:
        raise ValueError(f"unknown selection rule {selection!r}; expected one of {sorted(RULES)}")
    if dataset.image_shape != tuple(model.image_shape):
        raise ValueError(f"the model expects images of shape {tuple(model.image_shape)}, "
                         f"the dataset has {dataset.image_shape}; build the model with image_shape={dataset.image_shape}")
    if len(dataset.train) == 0:
        raise ValueError("the training split is empty")
    stage_epochs = split_epochs(model, epochs)
    if strategy is None:
        return _train(model, dataset, stage_epochs, batch_size, seed, selection, callbacks, verbose, checkpoint_dir)
    distribute.check_built_in(model, strategy)
    if distribute.is_multi_worker(strategy) and selection != "last":
        raise ValueError(f"selection {selection!r} under a multi-worker strategy is not supported: its validation "
                         "predictions are gathered across workers in an order not checked here; use selection 'last'")
    if len(dataset.train) < batch_size:
        raise ValueError(f"under a strategy every step takes a whole batch: {len(dataset.train)} training images "
                         f"are fewer than batch_size {batch_size}")
    distribute.replica_aware_draws(model)
    with strategy.scope(), distribute.synchronized_batch_norms(model):
        return _train(model, dataset, stage_epochs, batch_size, seed, selection, callbacks, verbose, checkpoint_dir,
                      strategy)


def _train(model, dataset, stage_epochs, batch_size, seed, selection, callbacks, verbose, checkpoint_dir,
           strategy=None):
    total_epochs = sum(stage_epochs)
    steps = steps_per_epoch(len(dataset.train), batch_size, drop_remainder=strategy is not None)
    model.compile(stage_steps={s.name: e * steps for s, e in zip(model.stages, stage_epochs)}, steps_per_epoch=steps)
    model.set_stage(0)
    model.build_optimizers()
    schedule = StageSchedule(stage_epochs)
    selector = None
    if selection != "last":
        validation = (labelled_validation_set(dataset) if uses_real_anomalies(selection) else
                      synthetic_validation_set(dataset.validation.images, seed=seed, **model.validation_synthesis()))
        selector = SelectOnValidation(validation, monitor=selection, schedule=schedule, batch_size=batch_size)
    state = read_checkpoint(checkpoint_dir) if checkpoint_dir is not None else None
    first_epoch = 0
    if state is not None:
        if state["epoch"] > total_epochs:
            raise ValueError(f"the checkpoint in {checkpoint_dir} is at epoch {state['epoch']}, "
                             f"beyond the {total_epochs} epochs asked for")
        restore_checkpoint(model, checkpoint_dir, state, selector)
        first_epoch = state["epoch"]
    keras.utils.set_random_seed(seed)
    # Each epoch's order depends only on (seed, epoch), so a resumed run sees the batches it would have seen.
    # In memory or streamed from disk (`training_pipeline`); labels reach the batches only when some
    # training image is anomalous (weak supervision, CAVGA_w).

    def training_data(batch, shard=(1, 0)):
        return training_pipeline(dataset.train, batch_size=batch, seed=seed,
                                 epochs=total_epochs - first_epoch, first_epoch=first_epoch,
                                 shard=shard, whole_batches_of=batch_size if strategy else None)

    train_data = (training_data(batch_size) if strategy is None else
                  distribute.distributed_dataset(strategy, training_data, batch_size))
    validation_data = None
    extra = []
    if len(dataset.validation):
        validation_data = make_pipeline(dataset.validation.images, batch_size=batch_size, shuffle=False)
        extra.append(ReconstructionAgainstFloor(dataset.validation.images, dataset.train, batch_size))
    if checkpoint_dir is not None:  # read by every worker, written by the chief
        extra.append(EpochCheckpoint(distribute.writable_path(strategy, checkpoint_dir), selector, history=state["history"] if state else None))
    history = keras.callbacks.History()
    if first_epoch < total_epochs:
        history = model.fit(
            train_data,
            validation_data=validation_data,
            epochs=total_epochs,
            initial_epoch=first_epoch,
            steps_per_epoch=steps,
            shuffle=False,  # the pipeline shuffles, by (seed, epoch)
            # The selector sits before the schedule: it restores a stage's best weights before the next
            # starts; the checkpoint comes after both, so it saves what they decided. (Weight averaging,
            # where a model has it, goes before them all: AnomalyModel.fit adds it.)
            callbacks=[keras.callbacks.TerminateOnNaN(), *([selector] if selector else []), schedule, *extra,
                       *callbacks],
            verbose=verbose,
        )
    elif selector is not None:  # killed after its last epoch was saved: only the selection is left to do
        selector.set_model(model)
        selector.on_train_begin()
        selector.on_train_end()
    if state is not None:  # the epochs trained before the interruption come first
        history.history = {key: state["history"].get(key, []) + list(history.history.get(key, []))
                           for key in {**state["history"], **history.history}}
    losses = history.history.get("loss", [])
    if not losses or not np.all(np.isfinite(losses)):
        raise FloatingPointError(
            f"training diverged: the loss became {losses[-1] if losses else 'undefined'} "
            f"after {len(losses)} epoch(s); try a lower learning rate or another seed"
        )
    return TrainingResult(history, stage_epochs, selection, selector)
