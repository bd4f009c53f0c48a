"""CAVGA beyond the shared model tests: Grad-CAM's closed form against the tape, the attention loss
reaching the encoder through second-order gradients, per-image maps, weak supervision end to end
(data, fit, `.keras` round trip in a fresh process) and keras-hub's ResNet-18 encoder offline."""

import math
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from anomzoo import training
from anomzoo.data import DatasetError, load_dataset, moved_anomalies, weakly_supervised
from anomzoo.layers import gradcam
from anomzoo.layers.cpu_kernels import FusedBatchNormalization
from anomzoo.layers.patch_gradient import PatchGradientConv2D
from anomzoo.models import build_model
from anomzoo.models.cavga import CAVGA

RNG = np.random.default_rng(0)
IMAGES = RNG.random((4, 32, 32, 3)).astype("float32")


def _tape_maps(model, images):
    """Grad-CAM maps from a tape (z = mu, as at inference): the reference for the closed form."""
    features = model.encoder(images, training=False)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(features)
        mu = model.latent(features, training=False)["mu"]
        targets = {"mu": tf.reduce_sum(mu)}
        if model.weakly_supervised:
            logits = model.classifier(mu, training=False)
            targets = {"normal": tf.reduce_sum(logits[:, 0]), "anomalous": tf.reduce_sum(logits[:, 1])}
    return {k: gradcam.attention_map(features, tape.gradient(t, features), model.image_shape[:2]).numpy()
            for k, t in targets.items()}


@pytest.mark.parametrize("overrides", [{}, {"flat_latent": 12}, {"weakly_supervised": True},
                                       {"weakly_supervised": True, "flat_latent": 12}])
def test_closed_form_gradcam_equals_the_tape(overrides):
    model = build_model("cavga", "tiny", **overrides)
    outputs = model(IMAGES)
    maps = _tape_maps(model, IMAGES)
    if model.weakly_supervised:
        np.testing.assert_allclose(outputs["attention"], maps["normal"], atol=1e-5)
        np.testing.assert_allclose(outputs["anomalous_attention"], maps["anomalous"], atol=1e-5)
        np.testing.assert_allclose(outputs["anomaly_map"], maps["anomalous"], atol=1e-5)
    else:
        np.testing.assert_allclose(outputs["attention"], maps["mu"], atol=1e-5)
        np.testing.assert_allclose(outputs["anomaly_map"], 1.0 - maps["mu"], atol=1e-5)
    peaks = outputs["attention"].numpy().max(axis=(1, 2, 3))  # normalised: each image's peak is 1 (0 if ReLU left none)
    assert np.all((np.abs(peaks - 1.0) < 1e-5) | (peaks == 0.0)), peaks


def test_maps_are_normalised_per_image_not_per_batch():
    model = build_model("cavga", "tiny")
    # Random weights can leave ReLU nothing (every map zero, which proves nothing): with a positive mu
    # kernel every channel weight is positive, and the encoder's features are post-ReLU, so maps are not zero.
    mu_kernel = model.latent.get_layer("mu").kernel
    mu_kernel.assign(np.abs(mu_kernel.numpy()))
    together = model(IMAGES)["attention"].numpy()
    alone = np.concatenate([model(IMAGES[i:i + 1])["attention"].numpy() for i in range(len(IMAGES))])
    np.testing.assert_allclose(together, alone, atol=1e-6)
    peaks = together.max(axis=(1, 2, 3))
    assert np.all((np.abs(peaks - 1.0) < 1e-5) | (peaks == 0.0)) and np.any(peaks > 0), peaks


def test_attention_loss_reaches_the_encoder_through_the_second_order_path():
    model = build_model("cavga", "tiny")
    batch = {"image": tf.constant(IMAGES)}
    mu_kernel = model.latent.get_layer("mu").kernel
    with tf.GradientTape() as tape:
        ae = model.loss_terms(batch, "train", training=True)["g"]["ae"]
    gradients = tape.gradient(ae, [mu_kernel, *model.encoder.trainable_variables])
    # mu enters A only through the inner gradient d sum(mu) / dF: a gradient on its kernel is second order.
    assert gradients[0] is not None and float(tf.reduce_max(tf.abs(gradients[0]))) > 0
    assert any(g is not None and float(tf.reduce_max(tf.abs(g))) > 0 for g in gradients[1:])
    # And a training step on L_ae alone moves the encoder and the mu head.
    only_ae = build_model("cavga", "tiny", w_r=0.0, w_ae=1.0, adversarial=False)
    only_ae.compile()
    before = [v.numpy().copy() for v in [only_ae.latent.get_layer("mu").kernel, *only_ae.encoder.trainable_variables]]
    discriminator = [v.numpy().copy() for v in only_ae.discriminator.trainable_variables]
    only_ae.train_on_batch(IMAGES)
    # The "without L_adv" ablation leaves D where it was.
    assert all(np.array_equal(b, v.numpy()) for b, v in zip(discriminator, only_ae.discriminator.trainable_variables))
    after = [v.numpy() for v in [only_ae.latent.get_layer("mu").kernel, *only_ae.encoder.trainable_variables]]
    assert not np.array_equal(before[0], after[0])
    assert sum(not np.array_equal(b, a) for b, a in zip(before[1:], after[1:])) > len(before) // 2


def test_weak_supervision_moves_two_percent_of_the_anomalies_out_of_the_test_set():
    digits = load_dataset("digits", normal_class=0, image_size=32)
    weak = weakly_supervised(digits, fraction=0.02, seed=3)
    anomalous = int(np.sum(digits.test.labels == 1))
    moved = moved_anomalies(weak)
    assert len(moved) == round(0.02 * anomalous) and len(weak.test) == len(digits.test) - len(moved)
    assert not set(moved) & set(weak.test.paths) and set(moved) <= set(digits.test.paths)
    assert moved == moved_anomalies(weakly_supervised(digits, fraction=0.02, seed=3))
    assert moved != moved_anomalies(weakly_supervised(digits, fraction=0.02, seed=4))
    with pytest.raises(DatasetError, match="fraction"):
        weakly_supervised(digits, fraction=0.0)


def test_weakly_supervised_model_fits_and_round_trips_in_a_fresh_process(tmp_path):
    weak = weakly_supervised(load_dataset("digits", normal_class=0, image_size=32), fraction=0.05, seed=0)
    assert int(np.sum(weak.train.labels)) == len(moved_anomalies(weak)) > 0
    model = build_model("cavga", "tiny", weakly_supervised=True, image_shape=weak.image_shape)
    classifier_before = model.classifier.get_layer("logits").kernel.numpy().copy()
    result = training.train(model, weak, epochs=1, batch_size=16, seed=0, verbose=0)
    history = result.history.history
    assert {"cls", "cga", "rec", "kl", "adv"} <= set(history) and np.isfinite(history["cls"][0])
    assert not np.array_equal(classifier_before, model.classifier.get_layer("logits").kernel.numpy())
    images = weak.test.images[:6].astype("float32") / 255.0
    expected = model.predict(images, verbose=0)
    assert {"anomalous_attention", "classifier_score", "attention", "reconstruction"} <= set(expected)
    path = tmp_path / "weak.keras"
    model.save(path)
    np.save(tmp_path / "x.npy", images)
    script = ("import sys, numpy as np, anomzoo\n"
              "m = anomzoo.load_model(sys.argv[1]); o = m.predict(np.load(sys.argv[2]), verbose=0)\n"
              "np.savez(sys.argv[3], **{k: np.asarray(v) for k, v in o.items()})\n")
    subprocess.run([sys.executable, "-c", script, str(path), str(tmp_path / "x.npy"), str(tmp_path / "o.npz")],
                   check=True, capture_output=True)
    reloaded = np.load(tmp_path / "o.npz")
    for key, value in expected.items():
        np.testing.assert_allclose(reloaded[key], value, rtol=0, atol=5e-7, err_msg=key)


def test_keras_hub_resnet18_encoder_offline_and_in_a_fresh_process(tmp_path):
    pytest.importorskip("keras_hub")
    paper = build_model("cavga", "paper")
    backbone = [layer for layer in paper.encoder.layers if type(layer).__name__ == "ResNetBackbone"]
    assert len(backbone) == 1 and sum(math.prod(v.shape) for v in backbone[0].weights) == 11_186_112
    # keras-hub builds Keras' layers by name; the zoo has it build its drop-in ones, then puts Keras' back.
    convolutions = [layer for layer in backbone[0].layers if isinstance(layer, keras.layers.Conv2D)]
    assert len(convolutions) == 20 and all(isinstance(layer, PatchGradientConv2D) for layer in convolutions)
    norms = [layer for layer in backbone[0].layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert len(norms) == 20 and all(isinstance(layer, FusedBatchNormalization) for layer in norms)
    assert keras.layers.Conv2D.__module__.startswith("keras.")
    assert keras.layers.BatchNormalization.__module__.startswith("keras.")
    assert tuple(paper.encoder.output.shape[1:]) == (8, 8, 512)
    small = CAVGA(image_shape=(64, 64, 3), encoder="resnet18_hub", latent_channels=8, decoder_filters=(8, 8, 8, 8),
                  discriminator_filters=8)
    path = tmp_path / "hub.keras"
    small.save(path)
    x = RNG.random((2, 64, 64, 3)).astype("float32")
    np.save(tmp_path / "x.npy", x)
    script = ("import sys, numpy as np, anomzoo\n"
              "m = anomzoo.load_model(sys.argv[1]); np.save(sys.argv[3], m.predict(np.load(sys.argv[2]), verbose=0)['score'])\n")
    subprocess.run([sys.executable, "-c", script, str(path), str(tmp_path / "x.npy"), str(tmp_path / "s.npy")],
                   check=True, capture_output=True)
    np.testing.assert_allclose(np.load(tmp_path / "s.npy"), small.predict(x, verbose=0)["score"], atol=5e-7)


def test_bad_configurations_are_clear_errors():
    with pytest.raises(ValueError, match="decoder_filters"):
        build_model("cavga", "tiny", decoder_filters=(16,))
    with pytest.raises(ValueError, match="encoder must be"):
        build_model("cavga", "tiny", encoder="vgg")
    with pytest.raises(ValueError, match="stride 32"):
        build_model("cavga", "tiny", encoder="resnet18_hub")


def test_l_r_is_the_papers_per_image_sum_and_the_rate_decays_every_30_epochs():
    """Eq. 1: N is the number of images, so L_R is a per-image sum over pixels (and KL over latent
    units), against which L_adv and L_ae keep the paper's weights; A.1: x0.1 every 30 epochs,
    counted in epochs whatever the run's length (a 2-epoch run trains at 1e-4 throughout)."""
    model = build_model("cavga", "tiny")
    terms = model.loss_terms({"image": IMAGES}, "train", training=False)["g"]
    out = model(IMAGES)
    bce = keras.ops.convert_to_numpy(keras.ops.binary_crossentropy(IMAGES, out["reconstruction"]))
    np.testing.assert_allclose(float(terms["rec"]), bce.reshape(4, -1).sum(1).mean(), rtol=1e-4)
    mean_model = build_model("cavga", "tiny", loss_reduction="mean")
    mean_model.set_weights(model.get_weights())
    mean_terms = mean_model.loss_terms({"image": IMAGES}, "train", training=False)["g"]
    np.testing.assert_allclose(float(mean_terms["rec"]), bce.mean(), rtol=1e-4)

    def rate_at(optimizers, step):
        rate = optimizers["g"]._learning_rate  # the schedule (the public property is its current value)
        return float(rate(step)) if callable(rate) else float(rate)

    optimizers = model.default_optimizers({"train": 150 * 10}, steps_per_epoch=10)
    assert [rate_at(optimizers, 30 * 10 * k + 1) for k in range(5)] == pytest.approx([1e-4, 1e-5, 1e-6, 1e-7, 1e-8])
    assert rate_at(optimizers, 299) == pytest.approx(1e-4)
    short = model.default_optimizers({"train": 2 * 10}, steps_per_epoch=10)
    assert rate_at(short, 19) == pytest.approx(1e-4)
    with pytest.raises(ValueError, match="loss_reduction"):
        build_model("cavga", "tiny", loss_reduction="median")


def test_the_decoder_keeps_the_moving_statistics_of_the_mean_latent():
    """The VAE decoder is trained on sampled z but decodes z = mu at inference: its BatchNorm moving
    statistics come from mu alone (a pass on sampled, mostly-noise latents leaves them unchanged)."""
    from anomzoo.models.base import decode_sample

    inputs = keras.Input((4, 4, 8))
    norm = FusedBatchNormalization(momentum=0.5)
    decoder = keras.Model(inputs, norm(keras.layers.Conv2D(8, 1, kernel_initializer="ones")(inputs)))
    z = tf.random.normal((16, 4, 4, 8), seed=1) * 10.0 + 100.0
    mu = tf.ones((16, 4, 4, 8))
    output = tf.function(lambda: decode_sample(decoder, z, mu, True))()
    np.testing.assert_allclose(norm.moving_mean.numpy(), 0.5 * 8.0, rtol=1e-5)  # from mu only: 0.5 * 0 + 0.5 * 8
    assert abs(float(tf.reduce_mean(output))) < 1e-3  # the sampled pass is normalised by its own batch


def test_augmentation_of_a1_trains_and_leaves_inference_unchanged():
    """augment (random centre crops and +-15 degree rotations, A.1) acts in training only."""
    keras.utils.set_random_seed(0)
    model = build_model("cavga", "tiny", augment=True)
    model.compile()
    history = model.fit(IMAGES, batch_size=4, epochs=2, verbose=0).history
    assert np.all(np.isfinite(history["loss"]))
    np.testing.assert_array_equal(model.predict(IMAGES, verbose=0)["score"], model.predict(IMAGES, verbose=0)["score"])
    augmented = model.augmentation(IMAGES, training=True)
    assert augmented.shape == IMAGES.shape and not np.allclose(augmented, IMAGES)
    assert build_model("cavga", "paper").augment and not build_model("cavga", "paper_d").augment
