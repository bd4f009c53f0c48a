"""Callbacks that `training.train` adds and `model.fit` users can add themselves."""

from __future__ import annotations

import keras
import numpy as np

from anomzoo.validation import validation_metrics


class StageSchedule(keras.callbacks.Callback):
    """Train a model's stages one after the other inside one `fit`: `stage_epochs[k]` epochs of
    stage k. At each stage's first epoch the model switches stage (its earlier networks frozen).

        model.fit(data, epochs=sum(epochs), callbacks=[StageSchedule(epochs)])
    """

    def __init__(self, stage_epochs):
        super().__init__()
        self.stage_epochs = [int(e) for e in stage_epochs]
        if not self.stage_epochs or min(self.stage_epochs) < 1:
            raise ValueError(f"every stage needs at least one epoch, got {self.stage_epochs}")

    def stage_at(self, epoch):
        return int(np.searchsorted(np.cumsum(self.stage_epochs), epoch, side="right"))

    def on_train_begin(self, logs=None):
        if len(self.stage_epochs) != len(self.model.stages):
            raise ValueError(f"{type(self.model).__name__} has {len(self.model.stages)} stage(s) "
                             f"({', '.join(s.name for s in self.model.stages)}), got epochs for {len(self.stage_epochs)}")

    def on_epoch_begin(self, epoch, logs=None):
        stage = min(self.stage_at(epoch), len(self.stage_epochs) - 1)
        if stage != self.model._stage_index:
            self.model.set_stage(stage)


class AverageWeights(keras.callbacks.Callback):
    """At the end of every epoch, replace the weights of each player of the current stage whose
    optimizer keeps a moving average (`use_ema=True`) with that average, so that what the epoch's
    selection scores, checkpoints save and the next epoch starts from are the averaged weights
    (Keras itself swaps the average in only once, at the end of `fit`, and only for
    `model.optimizer`). `AnomalyModel.fit` puts it first in the callbacks of any model that needs it.
    The epoch's validation losses, computed by `fit` before callbacks run, are the raw weights'.
    """

    def on_epoch_end(self, epoch, logs=None):
        for player in self.model.stage.players:
            optimizer = self.model.player_optimizers[player]
            if optimizer.use_ema and optimizer.built:
                optimizer.finalize_variable_values(self.model.player_variables(player))


class SelectOnValidation(keras.callbacks.Callback):
    """Score the model on a `ValidationSet` after every epoch, log the scores (as
    `val_syn_image_auroc`, `val_syn_pixel_auroc`, `val_syn_auroc`, or `val_real_...` on real
    anomalies, visible to ModelCheckpoint,
    EarlyStopping and CSVLogger), and keep the weights of the best epoch of each stage by `monitor`.

    With a `StageSchedule` (given here, and placed after this callback), the best weights of a
    stage are restored before the next stage starts, so a later stage builds on the selected
    networks; at the end of training the model holds the selected weights of every stage, and
    `last_weights` the weights it had at the very end (every stage's last epoch).
    """

    def __init__(self, validation, monitor="val_syn_auroc", schedule=None, batch_size=32):
        super().__init__()
        self.validation = validation
        self.monitor = monitor
        self.schedule = schedule
        self.batch_size = batch_size
        self.selected_epochs = {}
        self.history = []
        self._resumed = None

    def on_train_begin(self, logs=None):
        self._best = None
        self._last_of_stages = {}
        self.last_weights = None
        if self._resumed is not None:
            self._apply_resumed(*self._resumed)

    # -- resuming (anomzoo.checkpoint) ------------------------------------------------------------

    def resume_state(self):
        """(JSON-able state, {name: array}) that `resume_from` takes back in a new process."""
        position = {id(v): i for i, v in enumerate(self.model.weights)}
        arrays = {f"last_{position[i]}": w for i, w in self._last_of_stages.items()}
        best = None
        if self._best is not None:
            best = {k: v for k, v in self._best.items() if k != "weights"}
            arrays.update({f"best_{i}": w for i, w in enumerate(self._best["weights"])})
        return {"history": self.history, "selected_epochs": self.selected_epochs, "best": best}, arrays

    def resume_from(self, state, arrays):
        """Continue from `resume_state`'s output (applied when training begins)."""
        self._resumed = (state, arrays)

    def _apply_resumed(self, state, arrays):
        weights = self.model.weights
        self.history = list(state["history"])
        self.selected_epochs = dict(state["selected_epochs"])
        self._last_of_stages = {id(weights[int(k[5:])]): v for k, v in arrays.items() if k.startswith("last_")}
        if state["best"] is not None:
            self._best = {**state["best"], "weights": [arrays[f"best_{i}"] for i in range(len(weights))]}

    def _stage_name(self):
        return self.model.stage.name

    def on_epoch_begin(self, epoch, logs=None):
        if self.schedule is not None and self.schedule.stage_at(epoch) != self.model._stage_index:
            self._restore_best()

    def on_epoch_end(self, epoch, logs=None):
        scores = validation_metrics(self.model, self.validation, self.batch_size)
        if logs is not None:
            logs.update(scores)
        self.history.append({"epoch": epoch + 1, "stage": self._stage_name(), **scores})
        value = scores[self._monitor()]
        if self._best is None or self._best["stage"] != self._stage_name() or value > self._best["value"]:
            self._best = {"stage": self._stage_name(), "epoch": epoch + 1, "value": value,
                          "weights": self.model.get_weights()}

    def _monitor(self):
        """The metric judging the current stage: the stage's own under the combined rule (a stage
        names it on synthetic anomalies, "val_syn_..."; on a real set the same metric is "val_real_...")."""
        combined = f"val_{self.validation.kind}_auroc"
        if self.monitor == combined and self.model.stage.selection_metric:
            return self.model.stage.selection_metric.replace("val_syn_", f"val_{self.validation.kind}_")
        return self.monitor

    def _stage_weight_ids(self):
        stage = self.model.stage
        return {id(v) for networks in stage.players.values() for network in networks
                for v in getattr(self.model, network).weights}

    def _restore_best(self):
        """Put the current stage's networks back to their best epoch, remembering their last weights."""
        if self._best is None:
            return
        self.selected_epochs[self._best["stage"]] = {"epoch": self._best["epoch"], self._monitor(): self._best["value"]}
        ids = self._stage_weight_ids()
        current = self.model.get_weights()
        self._last_of_stages.update({i: c for v, c in zip(self.model.weights, current) if (i := id(v)) in ids})
        # Only the stage's own networks go back; everything else (later stages, random generator
        # and optimizer state) stays as it is.
        self.model.set_weights([b if id(v) in ids else c
                                for v, b, c in zip(self.model.weights, self._best["weights"], current)])
        self._best = None

    def on_train_end(self, logs=None):
        self._restore_best()
        selected = self.model.get_weights()
        self.last_weights = [self._last_of_stages.get(id(v), w) for v, w in zip(self.model.weights, selected)]


class ReconstructionAgainstFloor(keras.callbacks.Callback):
    """After every epoch, log the per-pixel binary cross-entropy of the model's reconstruction of
    the validation images ("val_rec_bce") beside that of emitting the mean normal training image
    ("val_rec_bce_floor", `floors.reconstruction_floor`). A reconstructor still above its floor has
    learned less than the mean image, whatever its AUROC. Models without a "reconstruction" output
    log nothing."""

    def __init__(self, images, train_images, batch_size=64):
        super().__init__()
        from anomzoo.evaluation import as_float_images
        from anomzoo.floors import reconstruction_floor  # floors imports evaluation, which imports metrics

        self.images = as_float_images(images)
        self.floor = reconstruction_floor(train_images, self.images)
        self.batch_size = batch_size

    def on_epoch_end(self, epoch, logs=None):
        from anomzoo.floors import pixel_bce

        if logs is None:
            return
        outputs = self.model.predict(self.images, batch_size=self.batch_size, verbose=0)
        if "reconstruction" not in outputs:
            return
        logs["val_rec_bce"] = pixel_bce(self.images, outputs["reconstruction"])
        logs["val_rec_bce_floor"] = self.floor
