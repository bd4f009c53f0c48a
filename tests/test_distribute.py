"""Training under tf.distribute: MirroredStrategy on two logical CPUs (in a fresh process, see
tests/distributed/mirrored_checks.py) computes what one device computes on the whole batch."""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import REPO

from anomzoo import distribute
from anomzoo.models import MODELS

ROOT = str(REPO)


@pytest.fixture(scope="module")
def mirrored(tmp_path_factory):
    out = tmp_path_factory.mktemp("mirrored") / "report.json"
    names = ["skip_attention_gan", "cavga", "anoseg", "attention_adgan"]
    subprocess.run([sys.executable, os.path.join(ROOT, "tests", "distributed", "mirrored_checks.py"), str(out),
                    *names], check=True, cwd=ROOT, timeout=900,
                   env={**os.environ, "PYTHONPATH": ROOT, "TF_CPP_MIN_LOG_LEVEL": "2"})
    report = json.loads(out.read_text())
    assert report["replicas"] == 2 and sorted(report["models"]) == sorted(names)
    return report


@pytest.mark.parametrize("name", ["skip_attention_gan", "cavga", "anoseg", "attention_adgan"])
def test_a_mirrored_step_equals_one_device_on_the_global_batch(mirrored, name):
    entry = mirrored["models"][name]
    # float32 summation order moves weights by ~1e-5 of the step (measured 3e-6 to 8e-5); gradients
    # summed over replicas without per-replica loss scaling move them by the whole step (0.93).
    assert entry["relative_difference"] < 1e-3
    assert entry["replica_spread"] == 0.0  # every copy of every variable, BatchNorm statistics included


def test_the_equality_check_catches_unscaled_replica_losses(mirrored):
    assert mirrored["models"]["skip_attention_gan"]["relative_difference_unscaled"] > 0.5


@pytest.mark.parametrize("name", ["skip_attention_gan", "cavga", "anoseg", "attention_adgan"])
def test_a_model_saved_under_the_strategy_scores_without_it(mirrored, name):
    assert mirrored["models"][name]["loaded_score_difference"] < 1e-4
    assert mirrored["models"][name]["selection_metrics_difference"] < 1e-6  # selection sees what one device sees


def test_replicas_draw_different_anomalies_and_one_device_draws_are_unchanged(mirrored):
    assert mirrored["masks"] == {"replicas_differ": True, "one_device_unchanged": True}


def test_a_run_interrupted_under_the_strategy_resumes_to_the_same_weights(mirrored):
    assert mirrored["resumed_difference"] == 0.0


def test_a_model_built_outside_the_scope_is_refused():
    from anomzoo import training
    from anomzoo.data import load_dataset

    model = MODELS["skip_attention_gan"].configured("tiny", image_shape=(32, 32, 1))
    strategy = tf.distribute.MirroredStrategy(devices=["/cpu:0"])
    with pytest.raises(ValueError, match="built outside the strategy's scope"):
        training.train(model, load_dataset("digits", image_size=32), epochs=1, strategy=strategy)


def test_strategy_names_and_errors(monkeypatch):
    assert distribute.make_strategy(None) is None
    assert isinstance(distribute.make_strategy("mirrored"), tf.distribute.MirroredStrategy)
    with pytest.raises(ValueError, match="unknown distribution 'tpu'"):
        distribute.make_strategy("tpu")
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(ValueError, match="TF_CONFIG"):
        distribute.make_strategy("multi_worker")
    assert json.loads(distribute.tf_config(["localhost:1", "localhost:2"], 1))["task"] == {"type": "worker", "index": 1}


def test_sharded_batches_together_are_the_global_batch():
    """Two shards of per-replica batches of 4, cut to whole global batches of 8: step k of the shards
    together holds one device's step k, and each shard has the same number of steps."""
    from anomzoo.data import make_pipeline

    images = np.arange(21, dtype=np.uint8).reshape(21, 1, 1, 1)

    def ids(pipeline):
        return [np.round(b["image"].numpy().ravel() * 255).astype(int).tolist() for b in pipeline]

    whole = ids(make_pipeline(images, batch_size=8, shuffle=True, seed=3, epochs=2, drop_remainder=True))
    shards = [ids(make_pipeline(images, batch_size=4, shuffle=True, seed=3, epochs=2, shard=(2, i),
                                whole_batches_of=8, drop_remainder=True)) for i in range(2)]
    assert len(shards[0]) == len(shards[1]) == len(whole) == 4
    for step, batch in enumerate(whole):
        assert sorted(shards[0][step] + shards[1][step]) == sorted(batch)


def test_the_command_line_offers_the_strategies_distribute_builds():
    from anomzoo import cli

    assert cli.STRATEGIES == distribute.STRATEGIES
    assert cli.build_parser().parse_args(["train", "sagan", "--distribute", "mirrored"]).distribute == "mirrored"


def _free_port():
    import socket

    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def _two_workers(command, tmp_path):
    """Run `command` as worker 0 and worker 1 of a localhost cluster; their outputs."""
    workers = [f"localhost:{_free_port()}", f"localhost:{_free_port()}"]
    processes = [subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                  env={**os.environ, "PYTHONPATH": ROOT, "TF_CONFIG": distribute.tf_config(workers, i),
                                       "TF_NUM_INTRAOP_THREADS": "1", "TF_NUM_INTEROP_THREADS": "1"})
                 for i in range(2)]
    logs = [p.communicate(timeout=600)[0] for p in processes]
    assert [p.returncode for p in processes] == [0, 0], logs[0][-3000:] + logs[1][-3000:]
    return logs


def test_a_step_of_two_localhost_workers_equals_one_device(tmp_path):
    """AnoSeg (two stages, synthetic anomalies, BatchNorm everywhere): each worker reads its own half of
    every global batch (disjoint shards); the step is one device's, and both workers hold the same weights."""
    name = "anoseg"
    script = os.path.join(ROOT, "tests", "distributed", "multi_worker_step.py")
    _two_workers([sys.executable, script, name, str(tmp_path / "worker")], tmp_path)
    single = subprocess.run([sys.executable, "-c", SINGLE_STEP, name, str(tmp_path / "single.npz")], cwd=ROOT,
                            env={**os.environ, "PYTHONPATH": ROOT}, capture_output=True, text=True, timeout=600)
    assert single.returncode == 0, single.stderr[-3000:]
    workers = [np.load(tmp_path / f"worker{i}.npz") for i in range(2)]
    reference = np.load(tmp_path / "single.npz")
    count = int(workers[0]["count"])
    before = [reference[f"arr_{i}"] for i in range(count)]
    expected = [reference[f"arr_{count + i}"] for i in range(count)]
    for worker in workers:
        after = [worker[f"arr_{count + i}"] for i in range(count)]
        step = np.sqrt(sum(np.sum((e - b) ** 2) for e, b in zip(expected, before)))
        difference = np.sqrt(sum(np.sum((a - e) ** 2) for a, e in zip(after, expected)))
        assert difference < 1e-3 * step
    for a, b in zip(*([w[f"arr_{count + i}"] for i in range(count)] for w in workers)):
        np.testing.assert_array_equal(a, b)


SINGLE_STEP = """
import sys
import numpy as np
sys.path.insert(0, "tests/distributed")
from mirrored_checks import constant_draws, one_step, tiny_data
with constant_draws():
    _, before, after, _ = one_step(sys.argv[1], tiny_data(), None)
np.savez(sys.argv[2], *before, *after)
"""


def test_two_localhost_workers_train_one_model_and_only_the_chief_writes(tmp_path):
    """`anomzoo train --distribute multi_worker` in two processes (TF_CONFIG): the run directory is the
    chief's, with 2 replicas recorded, and the model is the one-device model's up to summation order
    amplified over 10 Adam steps of a GAN (measured 1.9% of the weights' change)."""
    from anomzoo import training
    from anomzoo.data import load_dataset
    from anomzoo.models import build_model
    from anomzoo.models.loading import load_run_model

    out = tmp_path / "run"
    command = [sys.executable, "-m", "anomzoo.cli", "train", "sagan", "--config", "tiny", "--epochs", "2",
               "--batch-size", "16", "--dataset", "digits", "--out", str(out), "--distribute", "multi_worker"]
    logs = _two_workers(command, tmp_path)
    assert "report:" in logs[0] and "report:" not in logs[1]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["provenance"]["distribute"] == {"strategy": "multi_worker", "replicas": 2}
    assert sorted(p.name for p in out.iterdir() if p.name.startswith(".")) == []  # no temporary leftovers

    data = load_dataset("digits", seed=0)
    keras.utils.set_random_seed(0)
    strategy = tf.distribute.OneDeviceStrategy("/cpu:0")
    with strategy.scope():
        model = build_model("skip_attention_gan", "tiny", image_shape=data.image_shape)
    before = model.get_weights()
    training.train(model, data, epochs=2, batch_size=16, seed=0, verbose=0, strategy=strategy)
    trained, _ = load_run_model(out)
    change = np.sqrt(sum(np.sum((a - b) ** 2) for a, b in zip(model.get_weights(), before)))
    difference = np.sqrt(sum(np.sum((a - b) ** 2) for a, b in zip(model.get_weights(), trained.get_weights())))
    assert difference < 0.05 * change
