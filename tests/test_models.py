"""The standard tests every registered model gets for free: build `tiny`, fit every stage on the
built-in digits, the inference contract, `.keras` and config round trips, complete configurations.

A new model passes here by adding its folder and its registry line; nothing here names a model.
"""

import dataclasses
import math
import subprocess
import sys

import keras
import numpy as np
import pytest

import anomzoo
from anomzoo import training
from anomzoo.data import load_dataset
from anomzoo.models import MODELS, build_model
from anomzoo.validation import synthetic_validation_set


def trainable_count(network):
    return sum(math.prod(v.shape) for v in network.trainable_variables)


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits", normal_class=0, image_size=32)


@pytest.fixture(scope="module", params=sorted(MODELS))
def fitted(request, digits):
    """Each model's `tiny` configuration trained one epoch per stage, selecting on the synthetic validation
    set (each traced fit costs tens of seconds on 2 cores, so the tests below share it)."""
    model = build_model(request.param, "tiny", image_shape=digits.image_shape)
    result = training.train(model, digits, epochs=len(model.stages), batch_size=16, seed=0,
                            selection="val_syn_auroc", verbose=0)
    return request.param, model, result


def test_fit_trains_every_stage_and_logs_its_named_terms(fitted, digits):
    name, model, result = fitted
    history = result.history.history
    assert result.stage_epochs == [1] * len(model.stages)
    assert len(history["loss"]) == len(model.stages) and np.all(np.isfinite(history["loss"]))
    assert set(model._trackers) <= set(history), sorted(set(model._trackers) - set(history))
    assert {"val_syn_image_auroc", "val_syn_pixel_auroc", "val_loss"} <= set(history)
    assert list(result.selector.selected_epochs) == [s.name for s in model.stages]
    # selection is scored on anomalies made as the model makes its own (AnoSeg: visible changes only)
    expected = synthetic_validation_set(digits.validation.images, seed=0, **model.validation_synthesis())
    np.testing.assert_array_equal(result.selector.validation.masks, expected.masks)
    assert model.stage.name == model.stages[-1].name
    for optimizer in model.player_optimizers.values():
        assert int(optimizer.iterations) == math.ceil(len(load_dataset("digits").train) / 16)


def test_inference_contract(fitted, digits):
    _, model, _ = fitted
    images = digits.test.images[:5].astype("float32") / 255.0
    outputs = model.predict(images, verbose=0)
    assert outputs["score"].shape == (5,)
    assert outputs["anomaly_map"].shape == (5, 32, 32, 1)
    assert np.all(np.isfinite(outputs["score"])) and np.all(np.isfinite(outputs["anomaly_map"]))
    np.testing.assert_allclose(model(images)["score"], outputs["score"], rtol=1e-5, atol=1e-6)


def test_keras_round_trip_in_a_fresh_process_gives_identical_outputs(fitted, digits, tmp_path):
    name, model, _ = fitted
    path = tmp_path / "model.keras"
    model.save(path)
    images = digits.test.images[:6].astype("float32") / 255.0
    np.save(tmp_path / "x.npy", images)
    expected = model.predict(images, verbose=0)
    script = (
        "import sys, numpy as np, anomzoo\n"
        "m = anomzoo.load_model(sys.argv[1]); o = m.predict(np.load(sys.argv[2]), verbose=0)\n"
        "np.savez(sys.argv[3], stage=m.stage.name, **{k: np.asarray(v) for k, v in o.items()})\n"
    )
    subprocess.run([sys.executable, "-c", script, str(path), str(tmp_path / "x.npy"), str(tmp_path / "o.npz")],
                   check=True, capture_output=True)
    reloaded = np.load(tmp_path / "o.npz")
    assert str(reloaded["stage"]) == model.stage.name  # the finished stages stay finished
    for key, value in expected.items():
        # Bit-identical when the machine is quiet; under heavy load (other jobs on the 2 cores) a few
        # values were seen to differ by one float32 rounding step (1.2e-7), so allow a few of those.
        np.testing.assert_allclose(reloaded[key], value, rtol=0, atol=5e-7, err_msg=f"{name}: {key}")
    # Optimizer state comes back too, so training can go on where it stopped.
    again = anomzoo.load_model(path)
    for player, optimizer in model.player_optimizers.items():
        assert int(again.player_optimizers[player].iterations) == int(optimizer.iterations), player


def test_config_round_trip(fitted):
    _, model, _ = fitted
    clone = type(model).from_config(model.get_config())
    assert clone.get_config() == model.get_config()
    assert [tuple(v.shape) for v in clone.weights] == [tuple(v.shape) for v in model.weights]


def test_a_later_stage_leaves_the_earlier_stages_unchanged(fitted, digits):
    _, model, _ = fitted
    if len(model.stages) < 2:
        pytest.skip("a one-stage model")
    earlier = [getattr(model, n) for s in model.stages[:-1] for names in s.players.values() for n in names]
    before = [v.numpy().copy() for network in earlier for v in network.weights]  # BN statistics included
    later = [getattr(model, n) for names in model.stages[-1].players.values() for n in names]
    later_before = [v.numpy().copy() for network in later for v in network.trainable_variables]
    model.fit(digits.train.images[:32].astype("float32") / 255.0, batch_size=16, epochs=1, verbose=0)
    after = [v.numpy() for network in earlier for v in network.weights]
    assert all(np.array_equal(a, b) for a, b in zip(before, after))
    assert not all(np.array_equal(a, v.numpy()) for a, v in
                   zip(later_before, [v for network in later for v in network.trainable_variables]))
    assert all(not network.trainable for network in earlier)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_config_is_complete_and_its_parameter_count_is_right(name):
    cls = MODELS[name]
    assert "tiny" in cls.configs and "paper" in cls.configs
    for config, spec in cls.configs.items():
        metadata = spec["metadata"]
        assert set(metadata) >= {"paper", "description", "parameters", "image_size"}, config
        assert tuple(spec["config"]["image_shape"])[:2] == (metadata["image_size"],) * 2, config
        assert "learning_rate" in spec["config"], config
        model = build_model(name, config)
        assert trainable_count(model) == metadata["parameters"], (config, trainable_count(model))
        keras.backend.clear_session()


@pytest.mark.parametrize("name", sorted(MODELS))
def test_an_image_size_the_networks_cannot_take_is_an_error_that_names_the_model(name):
    """24 px: not a power of two (every model halves the image down to a few pixels)."""
    with pytest.raises(ValueError, match=f"{MODELS[name].__name__} needs square images.*24"):
        build_model(name, "tiny", image_shape=(24, 24, 3))


@pytest.mark.parametrize("image_shape", [(32, 32), (32, 32, 1.5), (32, 32, 0), "32"])
def test_an_image_shape_that_is_not_three_positive_ints_is_an_error(image_shape):
    with pytest.raises(ValueError, match=r"image_shape=\(height, width, channels\), three positive ints"):
        build_model("sagan", "tiny", image_shape=image_shape)
    with pytest.raises(ValueError, match=r"CAVGA takes image_shape=\(height, width, channels\)"):
        MODELS["cavga"](image_shape=image_shape)  # the constructor itself, not only the configurations


@pytest.mark.parametrize("name", sorted(MODELS))
def test_bad_stage_and_config_names_are_errors(name):
    model = build_model(name, "tiny")
    with pytest.raises(ValueError, match="unknown stage 'nope'"):
        model.set_stage("nope")
    with pytest.raises(ValueError, match="'nope'.*tiny"):
        build_model(name, "nope")
    with pytest.raises(ValueError, match="stage"):
        training.train(model, load_dataset("digits", image_size=32, channels=3), epochs=[1] * (len(model.stages) + 1))


@pytest.mark.parametrize("name", sorted(MODELS))
def test_bfloat16_precision_trains_every_stage_with_float32_weights_and_outputs(name, digits, tmp_path):
    model = build_model(name, "tiny", image_shape=digits.image_shape, precision="bfloat16")
    networks = {n for s in model.stages for names in s.players.values() for n in names}
    layers = [layer for n in networks for layer in getattr(model, n)._flatten_layers(include_self=False)]
    # Every layer computes in bfloat16 except the inputs and those that produce a network's outputs.
    assert sum(layer.compute_dtype == "bfloat16" for layer in layers) > 0.6 * len(layers)
    assert {v.dtype for v in model.weights} <= {"float32", "int32", "int64"}  # mixed: weights stay float32
    model.compile()
    images = digits.train.images[:32].astype("float32") / 255.0
    for stage in model.stages:
        model.set_stage(stage.name)
        history = model.fit(images, batch_size=16, epochs=1, verbose=0).history
        assert np.all(np.isfinite(history["loss"])), stage.name
    test_images = digits.test.images[:16].astype("float32") / 255.0
    outputs = model.predict(test_images, verbose=0)
    for key, value in outputs.items():
        assert value.dtype == np.float32 and np.all(np.isfinite(value)), key
    # The option survives a save; the same weights load into a float32 model, whose scores the
    # bfloat16 ones follow (8 bits of mantissa: close, not equal).
    model.save(tmp_path / "model.keras")
    reloaded = anomzoo.load_model(tmp_path / "model.keras")
    assert reloaded.precision == "bfloat16"
    np.testing.assert_allclose(reloaded.predict(test_images, verbose=0)["score"], outputs["score"], rtol=1e-5)
    float32 = build_model(name, "tiny", image_shape=digits.image_shape)
    float32.set_weights(model.get_weights())
    scores = float32.predict(test_images, verbose=0)["score"]
    # Within a few percent of the largest score (a near-constant score, as ADGAN's D2(G2(F)) after two
    # steps, has no spread for a correlation to measure).
    np.testing.assert_allclose(outputs["score"], scores, rtol=0, atol=0.03 * float(np.max(np.abs(scores))))


def test_an_unknown_precision_is_an_error():
    with pytest.raises(ValueError, match="precision must be one of.*'float16'"):
        build_model("sagan", "tiny", precision="float16")


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_stage_trains_on_batches_of_odd_sizes(name):
    """A last batch of 3, 5 or 7 images used to abort the whole process for the models with ResNet
    shortcuts: TensorFlow's own kernel gradient of a strided 1x1 convolution corrupts the heap at odd
    batch sizes (see `anomzoo.layers.patch_gradient`). Run in a child process, so an abort fails this test
    with its message instead of killing the test run."""
    script = (
        "import sys, numpy as np, keras, anomzoo\n"
        "keras.utils.set_random_seed(0)\n"
        "m = anomzoo.build_model(sys.argv[1], 'tiny', image_shape=(32, 32, 3)); m.compile()\n"
        "for stage in range(len(m.stages)):\n"
        "    m.set_stage(stage)\n"
        "    for batch in (3, 5, 7):\n"
        "        images = np.random.default_rng(batch).random((batch, 32, 32, 3), dtype='float32')\n"
        "        m.train_on_batch({'image': images})\n"
    )
    child = subprocess.run([sys.executable, "-c", script, name], capture_output=True, text=True)
    assert child.returncode == 0, f"{name} exited with {child.returncode}: {child.stderr[-2000:]}"


@pytest.mark.parametrize("name", sorted(MODELS))
def test_a_run_of_one_step_per_stage_trains(name, digits):
    """Five training images and a batch of 16: each stage is one step of an odd-sized batch (CAVGA's
    learning-rate schedule used to fail on a run too short for its first decay)."""
    data = dataclasses.replace(digits, train=digits.train.take(np.arange(5)))
    model = build_model(name, "tiny", image_shape=digits.image_shape)
    result = training.train(model, data, epochs=len(model.stages), batch_size=16, seed=0, verbose=0)
    assert result.stage_epochs == [1] * len(model.stages)
    assert np.all(np.isfinite(result.history.history["loss"]))



@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_discriminator_sees_real_and_fake_images_in_one_batch(name, digits, monkeypatch):
    """BatchNorm in a discriminator normalises real and fake images together in training, as its
    moving statistics do when it scores: every training call of a discriminator takes a batch of
    every kind at once (2 or 3 times the images), never a pure-real or pure-fake batch."""
    model = build_model(name, "tiny", image_shape=digits.image_shape)
    images = digits.train.images[:4].astype("float32") / 255.0
    discriminators = [getattr(model, n) for n in dir(model)
                      if n.endswith("discriminator") and isinstance(getattr(model, n), keras.Model)]
    assert discriminators
    calls = []
    original = keras.Model.__call__

    def spy(network, inputs, *args, **kwargs):
        if kwargs.get("training") and any(network is d for d in discriminators):
            calls.append(int(inputs.shape[0]))
        return original(network, inputs, *args, **kwargs)

    monkeypatch.setattr(keras.Model, "__call__", spy)
    for stage in model.stages:
        model.set_stage(stage.name)
        calls.clear()
        model.loss_terms({"image": images}, stage.name, training=True)
        assert calls and all(size in (8, 12) for size in calls), (stage.name, calls)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_numbers_out_of_range_and_names_of_the_wrong_type_are_clear_errors(name):
    """A negative learning rate trained by gradient ascent without a word; a list as config or None as
    the model were Python's own TypeError / AttributeError."""
    for bad in (-1, 0, "1e-3", float("nan")):
        with pytest.raises(ValueError, match="learning_rate must be a positive number"):
            build_model(name, "tiny", learning_rate=bad)
    weight = next(k for k in MODELS[name].configs["tiny"]["config"] if k.startswith("w_"))
    with pytest.raises(ValueError, match=f"loss weight {weight}"):
        build_model(name, "tiny", **{weight: -0.5})
    with pytest.raises(ValueError, match="config must be a name"):
        build_model(name, ["tiny"])
    with pytest.raises(ValueError, match="a model is named by a str"):
        build_model(None)
