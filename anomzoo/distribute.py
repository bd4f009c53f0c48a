"""Training on several devices or machines with TensorFlow's own engine, `tf.distribute`.

`training.train(model, data, strategy=...)` (`anomzoo train --distribute mirrored|multi_worker`)
runs the zoo's step on every replica. A strategy alone runs it, but trains wrongly in three ways,
which this module mends (measured in ../shared/reviews/scaleout-2026-12-07.md):

- Keras sums the replicas' gradients, so each player's loss (a mean over its replica's images) is
  divided by the number of replicas (`per_replica_loss`): the sum is then the global batch's mean.
- BatchNorm would normalise each replica by its own images and keep replica 0's moving statistics
  (1/N of the data); under a strategy every BatchNorm layer is synchronised (`synchronized_batch_norms`).
- `keras.random` generators draw the same numbers on every replica, so N devices would see 1/N of
  the synthetic anomalies' variety; the replica id is folded into each drawn seed
  (`replica_aware_draws`), which leaves one-device draws bit-identical.

Keras' own `keras.distribution` is JAX / PyTorch only (on TensorFlow a silent no-op), hence tf.distribute.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import pathlib
import shutil
import tempfile
import types

import keras
import tensorflow as tf

STRATEGIES = ("mirrored", "multi_worker")


def make_strategy(name):
    """The `tf.distribute.Strategy` called `name`: "mirrored" (every GPU of this machine, else its
    logical CPUs), "multi_worker" (the cluster described by the TF_CONFIG environment variable);
    None for one device. (TPUs: build `tf.distribute.TPUStrategy` yourself and pass it to `train`.)"""
    if name is None:
        return None
    if name == "mirrored":
        devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
        return tf.distribute.MirroredStrategy(devices=[d.name for d in devices])
    if name == "multi_worker":
        if not os.environ.get("TF_CONFIG"):
            raise ValueError("--distribute multi_worker reads the cluster from the TF_CONFIG environment variable, "
                             'which is not set; e.g. TF_CONFIG=\'{"cluster": {"worker": ["host0:12345", '
                             '"host1:12345"]}, "task": {"type": "worker", "index": 0}}\' on the first worker')
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise ValueError(f"unknown distribution {name!r}; expected one of {', '.join(STRATEGIES)}")


def replicas_in_step():
    """How many replicas run the current step (1 outside a strategy)."""
    context = tf.distribute.get_replica_context()
    return 1 if context is None else context.num_replicas_in_sync


def per_replica_loss(loss):
    """`loss` (a mean over this replica's images) divided by the number of replicas, so that the
    gradients Keras sums over the replicas are those of the global batch's mean."""
    count = replicas_in_step()
    return loss if count == 1 else loss / tf.cast(count, loss.dtype)


def is_multi_worker(strategy):
    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)


def is_chief(strategy=None):
    """Whether this process writes files: always on one machine; under a multi-worker strategy only
    the chief (the task "chief", else worker 0), since every worker runs every callback (see `writable_path`)."""
    if strategy is None or not is_multi_worker(strategy):
        return True
    resolver = strategy.cluster_resolver
    if resolver.task_type == "chief":
        return True
    has_chief = "chief" in resolver.cluster_spec().as_dict()
    return not has_chief and resolver.task_type == "worker" and resolver.task_id == 0


def writable_path(strategy, path):
    """Where this process writes what belongs at `path`: `path` itself on the chief; on another worker
    a path of the same name in a temporary folder removed at exit. Every worker must still write:
    saving a model reads its variables with collective operations that all workers join."""
    if is_chief(strategy):
        return path
    scratch = pathlib.Path(tempfile.mkdtemp(prefix="anomzoo-worker-"))
    atexit.register(shutil.rmtree, scratch, True)
    return scratch / pathlib.Path(path).name


def check_built_in(model, strategy):
    """A ValueError unless `model`'s variables were created in `strategy.scope()` (a model built
    outside it would train on one device, or fail with Keras' "Mixing different tf.distribute.Strategy")."""
    if model.weights and not strategy.extended.variable_created_in_scope(model.weights[0].value):
        raise ValueError(f"the {type(model).__name__} was built outside the strategy's scope: build it inside, "
                         "`with strategy.scope(): model = build_model(...)`, then call train(model, ..., strategy=strategy)")


@contextlib.contextmanager
def synchronized_batch_norms(model):
    """While open, every BatchNorm layer of `model` normalises with the statistics of the global batch,
    all-reduced over the replicas (the zoo's fused layer too: it falls back to Keras' synchronised path)."""
    norms = [layer for layer in model._flatten_layers() if isinstance(layer, keras.layers.BatchNormalization)]
    saved = [layer.synchronized for layer in norms]
    for layer in norms:
        layer.synchronized = True
    try:
        yield
    finally:
        for layer, value in zip(norms, saved):
            layer.synchronized = value


def _replica_seed(generator, ordered=True):
    seed = type(generator).next(generator, ordered)
    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return seed
    replica = tf.cast(context.replica_id_in_sync_group, seed.dtype)
    # The first seed word moves by a large odd step per replica; the second (the generator's counter) is kept.
    return seed + tf.stack([replica * tf.constant(1_000_003, seed.dtype), tf.zeros_like(replica)])


def replica_aware_draws(model):
    """Make every `keras.random.SeedGenerator` of `model` and its layers draw different numbers on each
    replica (one device: unchanged, bit for bit). Returns how many generators it changed."""
    generators = {}
    for layer in model._flatten_layers(include_self=True):
        for generator in getattr(layer, "_seed_generators", ()):
            generators[id(generator)] = generator
    for generator in generators.values():
        generator.next = types.MethodType(_replica_seed, generator)
    return len(generators)


def distributed_dataset(strategy, make_pipeline, global_batch):
    """The training data of `strategy`, each input pipeline (worker) reading its own shard.

    `make_pipeline(batch_size, shard)` returns one worker's `tf.data.Dataset` of per-replica batches
    of `batch_size` from shard `shard` = (count, index), every pass cut to whole global batches:
    then the replicas of step k together hold exactly the images of one device's step k.
    """
    replicas = strategy.num_replicas_in_sync
    if global_batch % replicas:
        raise ValueError(f"batch_size {global_batch} must divide evenly among the {replicas} replicas "
                         f"(e.g. {global_batch - global_batch % replicas or replicas})")

    def one_worker(context):
        return make_pipeline(context.get_per_replica_batch_size(global_batch),
                             (context.num_input_pipelines, context.input_pipeline_id))

    return strategy.distribute_datasets_from_function(one_worker)


def tf_config(workers, index):
    """The TF_CONFIG value of worker `index` in a cluster of `workers` ("host:port" strings)."""
    return json.dumps({"cluster": {"worker": list(workers)}, "task": {"type": "worker", "index": int(index)}})
