"""The adversarial training core: fit on real data, callbacks, saving, the inference contract."""

import keras
import numpy as np
import pytest

import anomzoo
from anomzoo import training
from anomzoo.data import load_dataset
from anomzoo.models import SkipAttentionGAN, build_model
from anomzoo.models.schedules import ConstantThenLinearDecay


def small_sagan(image_shape=(32, 32, 1), **overrides):
    """The paper's network at a quarter of the width: the same code paths, fast enough for tests."""
    return SkipAttentionGAN(image_shape=image_shape, base_filters=16, discriminator_filters=16, **overrides)


@pytest.fixture(scope="module")
def mnist_ones(shared_data):
    """128 real MNIST training images of the digit 1 at 32x32, as floats in [0, 1]."""
    data = load_dataset("mnist", normal_class=1, data_dir=shared_data)
    return data.train.images[:128].astype("float32") / 255.0


@pytest.fixture(scope="module")
def trained(mnist_ones, tmp_path_factory):
    """One traced fit (tracing costs ~25 s on 2 cores) shared by the tests below: 6 epochs with
    validation and the standard callbacks."""
    folder = tmp_path_factory.mktemp("trained")
    keras.utils.set_random_seed(0)
    model = small_sagan()
    model.compile()
    callbacks = [
        keras.callbacks.ModelCheckpoint(folder / "best.keras", monitor="val_con", mode="min", save_best_only=True),
        keras.callbacks.BackupAndRestore(folder / "backup"),
        keras.callbacks.TerminateOnNaN(),
        keras.callbacks.EarlyStopping(monitor="val_con", mode="min", patience=10),
        keras.callbacks.CSVLogger(folder / "history.csv"),
    ]
    history = model.fit(mnist_ones[:96], validation_data=(mnist_ones[96:],), batch_size=32, epochs=6,
                        verbose=0, shuffle=False, callbacks=callbacks)
    return model, history, folder


def test_losses_go_down_on_real_data(trained):
    _, history, _ = trained
    con, total = history.history["con"], history.history["loss"]
    assert con[-1] < 0.5 * con[0], con
    assert total[-1] < total[0], total
    assert all(np.isfinite(history.history["d_loss"]))
    assert history.history["val_con"][-1] < history.history["val_con"][0]


def test_standard_callbacks(trained):
    _, history, folder = trained
    assert len(history.history["loss"]) == 6
    assert (folder / "best.keras").is_file()
    assert "val_con" in (folder / "history.csv").read_text()
    assert isinstance(anomzoo.load_model(folder / "best.keras"), SkipAttentionGAN)
    assert not (folder / "backup").exists() or not any((folder / "backup").iterdir())  # removed on success


def test_compile_defaults_are_the_papers_optimizer():
    model = small_sagan()
    model.compile()
    optimizers = model.player_optimizers
    assert sorted(optimizers) == ["d", "g"]
    for optimizer in optimizers.values():
        assert float(optimizer.learning_rate) == pytest.approx(2e-3)
        assert optimizer.beta_1 == 0.5 and optimizer.beta_2 == 0.999
    assert optimizers["g"] is not optimizers["d"]


def test_sagan_schedule_is_sagans_own():
    """Given the run's length, SAGAN's optimizers decay linearly over its second half (the lambda rule)."""
    model = small_sagan()
    model.compile(stage_steps={"adversarial": 100})
    schedule = model.player_optimizers["g"]._learning_rate  # the schedule itself, not its current value
    assert isinstance(schedule, ConstantThenLinearDecay)
    assert float(schedule(0)) == pytest.approx(2e-3) and float(schedule(100)) < 1e-4


def test_inference_contract(mnist_ones):
    model = small_sagan()
    outputs = model.predict(mnist_ones[:5], verbose=0)
    assert outputs["score"].shape == (5,)
    assert outputs["anomaly_map"].shape == (5, 32, 32, 1)
    assert outputs["reconstruction"].shape == (5, 32, 32, 1)
    assert np.all(outputs["anomaly_map"] >= 0) and np.all(np.isfinite(outputs["score"]))


def test_nan_loss_stops_with_a_clear_error():
    data = load_dataset("digits", normal_class=3, image_size=8)
    # depth 1 at 8x8: the smallest network, since each traced fit costs time in proportion to its layers
    model = SkipAttentionGAN(image_shape=(8, 8, 1), base_filters=4, depth=1, discriminator_filters=4)
    model.w_con = float("nan")  # past the constructor's check, which refuses a NaN weight
    with pytest.raises(FloatingPointError, match="diverged"):
        training.train(model, data, epochs=3, batch_size=32, verbose=0)


def test_train_rejects_a_model_of_the_wrong_shape():
    data = load_dataset("digits")
    with pytest.raises(ValueError, match=r"expects images of shape \(32, 32, 3\)"):
        training.train(small_sagan(image_shape=(32, 32, 3)), data, epochs=1)


def test_unknown_model_and_config_are_named():
    with pytest.raises(ValueError, match="'ganomalyy'.*skip_attention_gan"):
        build_model("ganomalyy")
    with pytest.raises(ValueError, match="'tinyy'.*paper"):
        build_model("sagan", config="tinyy")


def test_adversarial_loss_keeps_its_gradient_when_the_discriminator_saturates():
    """BCE from probabilities is clipped at 1e-7 and has zero gradient past it; from logits it does
    not. A dead discriminator (every image "fake", logit -50) must still be pushed back."""
    import tensorflow as tf

    from anomzoo.models.base import binary_cross_entropy

    logits = tf.Variable([-50.0, -50.0])
    with tf.GradientTape() as tape:
        loss = binary_cross_entropy(tf.ones(2), logits)
    gradient = tape.gradient(loss, logits).numpy()
    assert float(loss) == pytest.approx(50.0, rel=1e-4)
    np.testing.assert_allclose(gradient, [-0.5, -0.5], rtol=1e-4)  # d/dlogit of mean BCE = (sigmoid - 1) / 2


@pytest.mark.parametrize("seed", [-1, 1.5, True, "0"])
def test_a_dataset_seed_that_is_not_a_non_negative_int_is_named(seed):
    with pytest.raises(ValueError, match="seed must be a non-negative int"):
        load_dataset("digits", seed=seed)
