"""Checks of training under MirroredStrategy on two logical CPUs, run in a fresh process (logical
devices must be made before TensorFlow starts); `tests/test_distribute.py` runs it and reads its
JSON. Usage: python tests/distributed/mirrored_checks.py OUT.json MODEL [MODEL ...]
(`multi_worker_step.py` takes its one-step comparison for two worker processes.)

For each model's `tiny` configuration, one SGD step per stage on one global batch of 8 images:
- under the strategy and on one device (BatchNorm synchronised on both, so both use Keras'
  formula for the statistics), with every random draw replaced by a constant: the draws then
  agree image by image however the batch is split, and only the step's arithmetic is compared;
- every replica's copy of every variable, BatchNorm statistics included;
- a `.keras` saved under the strategy, loaded without it (largest score difference / largest score),
  and the validation metrics checkpoint selection reads, under the strategy and without it;
and, with the real draws, the synthetic anomalies of the two replicas, and a run interrupted under
the strategy and resumed in a new model against an uninterrupted one (AnoSeg: two stages, checkpoint
selection on synthetic anomalies).
"""

import contextlib
import json
import os
import sys

import keras
import numpy as np
import tensorflow as tf
from keras import ops
from keras.src.backend.tensorflow import random as backend_random

from anomzoo import distribute, training, validation
from anomzoo.data import load_dataset
from anomzoo.data.types import AnomalyDataset
from anomzoo.layers import nn
from anomzoo.models import build_model

BATCH = 8


@contextlib.contextmanager
def constant_draws():
    """keras.random (and the backend functions Keras' own random layers call) returning constants."""
    def uniform(shape, minval=0.0, maxval=1.0, dtype=None, seed=None):
        return ops.full(shape, minval + 0.37 * (maxval - minval), dtype=dtype or "float32")

    def normal(shape, mean=0.0, stddev=1.0, dtype=None, seed=None):
        return ops.full(shape, mean + 0.3 * stddev, dtype=dtype or "float32")

    def randint(shape, minval, maxval, dtype="int32", seed=None):
        return ops.full(shape, minval, dtype=dtype)

    def categorical(logits, num_samples, dtype="int32", seed=None):
        return ops.zeros((ops.shape(logits)[0], num_samples), dtype=dtype)

    names = ("uniform", "normal", "randint", "categorical")
    saved = [(module, name, getattr(module, name)) for module in (keras.random, backend_random) for name in names]
    for module, name, _ in saved:
        setattr(module, name, locals()[name])
    try:
        yield
    finally:
        for module, name, function in saved:
            setattr(module, name, function)


def tiny_data():
    data = load_dataset("digits", image_size=32)
    train = data.train.take(np.arange(BATCH))
    return AnomalyDataset(data.name, data.protocol, data.target, train, data.validation.take(np.arange(0)),
                          data.test.take(np.arange(16)))


def values(model, strategy):
    """Every variable's value (replica 0's copy under a strategy) and the largest replica spread."""
    result, spread = [], 0.0
    for weight in model.weights:
        copies = ([np.asarray(c) for c in strategy.experimental_local_results(weight.value)] if strategy
                  else [np.asarray(weight.value)])
        spread = max(spread, *(float(np.max(np.abs(c - copies[0]))) for c in copies))
        result.append(copies[0])
    return result, spread


def one_step(name, data, strategy, scale_losses=True):
    keras.utils.set_random_seed(0)
    with (strategy.scope() if strategy else contextlib.nullcontext()), nn.keras_layers():
        model = build_model(name, "tiny", image_shape=data.image_shape)
    players = [p for s in model.stages for p in s.players]
    model.default_optimizers = lambda *a, **k: {p: keras.optimizers.SGD(0.05) for p in players}
    before, _ = values(model, strategy)
    unscaled = contextlib.nullcontext()
    if not scale_losses:  # the defect the check must catch: Keras sums the replicas' gradients
        unscaled = _patched(distribute, "per_replica_loss", lambda loss: loss)
    with unscaled, (distribute.synchronized_batch_norms(model) if strategy is None else contextlib.nullcontext()):
        training.train(model, data, epochs=[1] * len(model.stages), batch_size=BATCH, seed=0, verbose=0,
                       strategy=strategy)
    after, spread = values(model, strategy)
    return model, before, after, spread


@contextlib.contextmanager
def _patched(owner, name, value):
    saved = getattr(owner, name)
    setattr(owner, name, value)
    try:
        yield
    finally:
        setattr(owner, name, saved)


def relative_difference(single, mirrored):
    """||W_mirrored - W_single|| / ||W_single - W_before|| over every variable: the difference as a
    fraction of the step (float32 summation order changes the result in proportion to the step;
    gradients twice too large give 1)."""
    _, before, after_single, _ = single
    _, _, after_mirrored, _ = mirrored
    difference = sum(float(np.sum(np.square(m - s))) for s, m in zip(after_single, after_mirrored))
    step = sum(float(np.sum(np.square(s - b))) for b, s in zip(before, after_single))
    return float(np.sqrt(difference / step))


def replica_masks(strategy):
    """The masks an AnomalySynthesizer draws on each replica, and on one device twice."""
    from anomzoo.augment.synth import AnomalySynthesizer

    images = tf.random.stateless_uniform((4, 32, 32, 3), seed=(1, 2))
    one_device = [np.asarray(AnomalySynthesizer(seed=3)(images)[1]) for _ in range(2)]
    with strategy.scope():
        synthesizer = AnomalySynthesizer(seed=3)
        distribute.replica_aware_draws(synthesizer)
    masks = strategy.run(tf.function(lambda: synthesizer(images)[1]))
    per_replica = [np.asarray(m) for m in strategy.experimental_local_results(masks)]
    unchanged = AnomalySynthesizer(seed=3)
    distribute.replica_aware_draws(unchanged)
    return {"replicas_differ": bool(np.any(per_replica[0] != per_replica[1])),
            "one_device_unchanged": bool(np.array_equal(np.asarray(unchanged(images)[1]), one_device[0]))}


def resumed_difference(strategy, checkpoint_dir):
    """Largest weight difference between an uninterrupted 3-epoch run and one interrupted after epoch
    2 (inside AnoSeg's second stage) and continued from its checkpoint by a freshly built model."""
    data = load_dataset("digits", seed=0)

    def build():
        keras.utils.set_random_seed(0)
        with strategy.scope():
            return build_model("anoseg", "tiny", image_shape=data.image_shape)

    class Interrupt(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:
                raise KeyboardInterrupt

    run = dict(epochs=3, batch_size=32, seed=0, selection="val_syn_auroc", verbose=0, strategy=strategy)
    whole = build()
    training.train(whole, data, **run)
    try:
        training.train(build(), data, **run, checkpoint_dir=checkpoint_dir, callbacks=[Interrupt()])
    except KeyboardInterrupt:
        pass
    resumed = build()
    training.train(resumed, data, **run, checkpoint_dir=checkpoint_dir)
    return max(float(np.max(np.abs(a - b))) for a, b in zip(whole.get_weights(), resumed.get_weights()))


def main(out, names):
    data = tiny_data()
    strategy = distribute.make_strategy("mirrored")
    report = {"replicas": strategy.num_replicas_in_sync, "masks": replica_masks(strategy), "models": {},
              "resumed_difference": resumed_difference(strategy, os.path.join(os.path.dirname(out), "checkpoint"))}
    for name in names:
        with constant_draws():
            single = one_step(name, data, None)
            mirrored = one_step(name, data, strategy)
        entry = {"relative_difference": relative_difference(single, mirrored), "replica_spread": mirrored[3]}
        if name == names[0]:
            with constant_draws():
                entry["relative_difference_unscaled"] = relative_difference(single, one_step(name, data, strategy, False))
        model = mirrored[0]
        path = os.path.join(os.path.dirname(out), f"{name}.keras")
        model.save(path)
        scores = np.asarray(model.predict(data.test.images, verbose=0)["score"])
        with tf.distribute.OneDeviceStrategy("/cpu:0").scope():
            loaded = keras.models.load_model(path)
        loaded_scores = np.asarray(loaded.predict(data.test.images, verbose=0)["score"])
        # What checkpoint selection sees under the strategy (predict split over the replicas, gathered
        # in order) against one device.
        held_out = validation.synthetic_validation_set(load_dataset("digits", image_size=32).validation.images,
                                                       seed=0, **model.validation_synthesis())
        mirrored_metrics = validation.validation_metrics(model, held_out)
        entry["selection_metrics_difference"] = max(
            abs(mirrored_metrics[k] - v) for k, v in validation.validation_metrics(loaded, held_out).items())
        entry["loaded_score_difference"] = float(np.max(np.abs(loaded_scores - scores)) / np.max(np.abs(scores)))
        report["models"][name] = entry
    with open(out, "w") as handle:
        json.dump(report, handle)


if __name__ == "__main__":
    # Two logical CPUs, made before TensorFlow runs its first op.
    tf.config.set_logical_device_configuration(tf.config.list_physical_devices("CPU")[0],
                                               [tf.config.LogicalDeviceConfiguration()] * 2)
    main(sys.argv[1], sys.argv[2:])
