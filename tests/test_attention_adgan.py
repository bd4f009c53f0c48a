"""Attention network + ADGAN: Sec. 4.1's layers, the synthetic anomalies in the attention loss,
Eq. 1-5's terms and switches, stage 2 against a frozen stage 1, losses that go down."""

import keras
import numpy as np
import pytest
from keras import ops

from anomzoo.data import load_dataset
from anomzoo.models import AttentionADGAN, build_model
from anomzoo.models.attention_adgan import networks
from anomzoo.models.base import binary_cross_entropy


def _np(x):
    return np.asarray(ops.convert_to_numpy(x))


@pytest.fixture(scope="module")
def images():
    data = load_dataset("digits", normal_class=0, image_size=32)
    return data.train.images[:32].astype("float32") / 255.0


def _tiny(**overrides):
    keras.utils.set_random_seed(0)
    model = build_model("attention_adgan", "tiny", image_shape=(32, 32, 1), **overrides)
    model.compile()
    model.build_optimizers()
    return model


def test_sec41_layers_and_cavgas_networks_reused():
    model = build_model("attention_adgan", "cifar10")
    kinds = [type(layer).__name__ for layer in model.decoder.layers]
    assert kinds.count("Conv2DTranspose") == 4  # "four transposed convolution layers"
    for path in ("reconstruction", "attention"):  # "two paths with three convolution layers"
        assert len([l for l in model.decoder.layers if type(l).__name__ == "Conv2D" and l.name.startswith(path)]) == 3
    assert model.decoder.output["attention"].shape[1:] == (32, 32, 1)
    assert model.discriminator.input.shape[-1] == 4  # concat(image, attention)
    assert model.encoder.output.shape[1:] == (4, 4, 512)  # ResNet-18 convolutions, stride 8
    assert sorted(l.name for l in model.latent.layers[1:]) == ["log_var", "mu"]  # CAVGA's 1x1-conv heads
    assert len([l for l in model.feature_extractor.layers if type(l).__name__ == "Conv2D"]) == 2  # F_Img
    assert len([l for l in model.adgan_decoder.layers if type(l).__name__ == "Conv2DTranspose"]) == 4
    assert networks.upsampling_strides(32) == (4, 2, 2, 2) and networks.upsampling_strides(8) == (2, 2, 2, 1)
    keras.backend.clear_session()


def test_synthetic_anomalies_and_their_masks_reach_the_attention_loss(images, monkeypatch):
    model = _tiny()
    made = []
    original = model.synthesize

    def spy(batch):
        made.append(original(batch))
        return made[-1]

    monkeypatch.setattr(model, "synthesize", spy)
    terms = model.loss_terms({"image": images[:16]}, "attention", training=False)
    x_ano, a_ano = (_np(t) for t in made[0])
    assert np.any(a_ano < 1) and np.all((a_ano == 0) | (a_ano == 1))  # boxes / whole images marked anomalous
    # A_Ano = 1 - mask, and the mask is exactly where x_Ano differs from x.
    changed = np.any(np.abs(x_ano - images[:16]) > 0, axis=-1, keepdims=True)
    np.testing.assert_array_equal(a_ano == 0, changed)
    attention = _np(model.generate(x_ano)["attention"])
    # Eq. 4: the squared norm of each image's map difference (a sum over pixels), averaged over images.
    per_image_norm = np.sum((attention - a_ano) ** 2, axis=(1, 2, 3))
    np.testing.assert_allclose(_np(terms["g"]["att_ano"]), per_image_norm.mean(), rtol=1e-5)
    # A weak variant (targets all ones, i.e. the masks ignored) gives another value: the test can fail.
    assert abs(float(terms["g"]["att_ano"]) - np.sum((attention - 1.0) ** 2, axis=(1, 2, 3)).mean()) > 1e-2
    # Eq. 2 in the standard GAN form: (x_Ano, A_Ano) is D's "real" pair.
    pair = ops.concatenate([x_ano, a_ano], axis=-1)
    logits = model.discriminator(pair, training=False)["logits"]
    np.testing.assert_allclose(_np(terms["d"]["d_ano_real"]), _np(binary_cross_entropy(ops.ones_like(logits), logits)),
                               rtol=1e-5)


def test_table4_switches_change_the_totals(images):
    batch = {"image": images[:8]}
    full = _tiny().loss_terms(batch, "attention", training=False)
    g, d = full["g"], full["d"]
    np.testing.assert_allclose(_np(g["total"]), _np(g["adv"] + g["adv_ano"] + g["rec"] + g["kl"] + g["att_nor"]
                                                    + g["att_ano"]), rtol=1e-5)
    np.testing.assert_allclose(_np(d["total"]), _np(0.5 * (d["d_real"] + d["d_fake"] + d["d_ano_real"]
                                                           + d["d_ano_fake"])), rtol=1e-5)
    no_ano = _tiny(adversarial_anomaly=False).loss_terms(batch, "attention", training=False)
    np.testing.assert_allclose(_np(no_ano["d"]["total"]), _np(0.5 * (no_ano["d"]["d_real"] + no_ano["d"]["d_fake"])),
                               rtol=1e-5)
    no_att = _tiny(attention_loss=False).loss_terms(batch, "attention", training=False)["g"]
    np.testing.assert_allclose(_np(no_att["total"]), _np(no_att["adv"] + no_att["adv_ano"] + no_att["rec"]
                                                         + no_att["kl"]), rtol=1e-5)


def test_table1_and_table5_switches():
    rotate_only = build_model("attention_adgan", "tiny", operations=("rotation",))
    hard = rotate_only.synthesizer.hard
    assert (hard.rotation, hard.perm, hard.color_jitter) == (True, False, False)
    with pytest.raises(ValueError, match="operations"):
        build_model("attention_adgan", "tiny", operations=("cutout",))
    without = build_model("attention_adgan", "tiny", adgan=False, score="reconstruction")
    assert [s.name for s in without.stages] == ["attention"] and not hasattr(without, "adgan_discriminator")
    x = np.random.default_rng(0).random((2, 32, 32, 3)).astype("float32")
    out = without(x)
    np.testing.assert_allclose(_np(out["score"]), _np(out["reconstruction_score"]))
    np.testing.assert_allclose(_np(out["anomaly_map"]), 1.0 - _np(out["attention"]))
    with pytest.raises(ValueError, match="adgan=True"):
        build_model("attention_adgan", "tiny", adgan=False)
    keras.backend.clear_session()


def test_losses_go_down_and_stage_2_leaves_stage_1_unchanged(images):
    model = _tiny(learning_rate=1e-3)  # the preset's 2e-4 moves a tiny network too slowly for a short test
    first = model.fit(images, batch_size=16, epochs=10, verbose=0).history
    for key in ("loss", "d_loss", "adv", "adv_ano", "att_nor", "att_ano", "rec", "kl"):
        assert np.all(np.isfinite(first[key])), key
    # The adversarial terms go up and down as D learns; the reconstruction and both attention terms
    # (normal targets and synthetic anomalies' masks) must fall.
    for key in ("rec", "att_nor", "att_ano"):
        assert np.mean(first[key][-2:]) < 0.95 * np.mean(first[key][:2]), (key, first[key])
    stage1 = [getattr(model, n) for names in model.stages[0].players.values() for n in names]
    before = [v.numpy().copy() for net in stage1 for v in net.weights]  # BN statistics included
    attention_before = _np(model(images[:4])["attention"])
    d_iterations = int(model.player_optimizers["d"].iterations)
    model.set_stage("adgan")
    second = model.fit(images, batch_size=16, epochs=4, verbose=0).history
    assert np.all(np.isfinite(second["loss"])) and np.all(np.isfinite(second["adgan_d_loss"]))
    assert all(np.array_equal(b, v.numpy()) for b, v in zip(before, [v for net in stage1 for v in net.weights]))
    np.testing.assert_array_equal(_np(model(images[:4])["attention"]), attention_before)
    assert int(model.player_optimizers["d"].iterations) == d_iterations
    assert int(model.player_optimizers["adgan_d"].iterations) == 8


def test_adgan_scores_alocc_detector_and_d2_learns_synthetic_anomalies_as_fake(images):
    """The score is ALOCC's D(R(X)): -logit of D2 on G2(F_Nor); D2(F_Nor) is `adgan_features_score`.
    D2's loss has the synthetic anomalies' F_Nor as a third, fake kind (Table 1), unless switched off."""
    model = _tiny()
    x = images[:4]
    out = model(x)
    attention = model.generate(x)["attention"]
    features = model.normal_features(x, attention)
    reconstructed = model.adgan_decoder(model.adgan_encoder(features))
    np.testing.assert_allclose(_np(out["score"]), -_np(model.adgan_discriminator(reconstructed)["logits"]), rtol=1e-5)
    np.testing.assert_allclose(_np(out["adgan_features_score"]), -_np(model.adgan_discriminator(features)["logits"]),
                               rtol=1e-5)
    assert not np.allclose(_np(out["adgan_score"]), _np(out["adgan_features_score"]))
    terms = model.loss_terms({"image": x}, "adgan", training=False)["adgan_d"]
    assert "adgan_d_anomaly" in terms
    np.testing.assert_allclose(_np(terms["total"]), _np(terms["adgan_d_real"] + terms["adgan_d_fake"]
                                                      + terms["adgan_d_anomaly"]) / 3, rtol=1e-5)
    plain = _tiny(adgan_anomalies=False).loss_terms({"image": x}, "adgan", training=False)["adgan_d"]
    assert "adgan_d_anomaly" not in plain
    with_features = _tiny(score="adgan_features")
    np.testing.assert_allclose(_np(with_features(x)["score"]), _np(with_features(x)["adgan_features_score"]))
    keras.backend.clear_session()
