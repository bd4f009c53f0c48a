"""SAGAN: the paper's parameter counts, shapes, the separable switch, one epoch of fit."""

import keras
import numpy as np
import pytest

from anomzoo.data import load_dataset
from anomzoo.layers.cbam import CBAM
from anomzoo.models import SkipAttentionGAN, build_model
from anomzoo.models.skip_attention_gan.param_count import table1_count, trainable_count


def test_table1_parameter_counts_are_reproduced_exactly():
    assert table1_count(separable=True) == 5_181_089
    assert table1_count(separable=False) == 18_498_481


def test_paper_preset_shapes_and_size():
    model = build_model("sagan", "paper")
    assert model.generator.output_shape == (None, 32, 32, 3)
    outputs = model.discriminator(np.zeros((1, 32, 32, 3), "float32"))
    assert tuple(outputs["features"].shape) == (1, 1, 1, 100) and tuple(outputs["probability"].shape) == (1,)
    assert trainable_count(model.discriminator) == 1_069_700
    # the CIFAR-10 (3-in, 3-out) network Table 1 describes, counted once per weight
    assert trainable_count(model.generator) == 4_032_335


def test_separable_flag_switches_the_convolutions():
    with_dsc = build_model("sagan", "paper")
    without = build_model("sagan", "paper", separable=False)
    kinds = lambda m: {type(layer).__name__ for layer in m.generator.layers}
    assert "DepthwiseConv2D" in kinds(with_dsc)
    assert "DepthwiseConv2D" not in kinds(without)
    assert trainable_count(without.generator) > 4 * trainable_count(with_dsc.generator)


def test_every_encoder_level_has_cbam_and_its_output_is_the_skip():
    generator = build_model("sagan", "paper").generator
    cbams = [layer for layer in generator.layers if isinstance(layer, CBAM)]
    assert len(cbams) == 5
    # the first input of every decoder concatenation is produced by an encoder level's CBAM
    config = generator.get_config()["layers"]
    concats = [layer for layer in config if layer["name"].endswith("_concat")]
    skip_sources = [layer["inbound_nodes"][0]["args"][0][0]["config"]["keras_history"][0] for layer in concats]
    assert skip_sources == ["enc3_cbam", "enc2_cbam", "enc1_cbam", "enc0_cbam"], skip_sources


def test_cbam_gates_and_config_round_trip():
    layer = CBAM(reduction=4, kernel_size=3)
    x = np.random.default_rng(0).random((2, 8, 8, 16)).astype("float32")
    y = keras.ops.convert_to_numpy(layer(x))
    assert y.shape == x.shape
    assert np.all(y <= x + 1e-6) and np.all(y >= 0)  # sigmoid gates only scale non-negative inputs down
    clone = CBAM.from_config(layer.get_config())
    assert (clone.reduction, clone.kernel_size) == (4, 3)


def test_one_epoch_of_fit_on_cifar10(shared_data):
    data = load_dataset("cifar10", anomalous_class="cat", data_dir=shared_data)
    images = data.train.images[:128].astype("float32") / 255.0
    model = build_model("sagan", "paper")
    model.compile()
    history = model.fit(images, batch_size=64, epochs=1, verbose=0)
    assert set(history.history) >= {"loss", "con", "lat", "adv", "d_loss", "d_real", "d_fake"}
    outputs = model.predict(images[:4], verbose=0)
    assert outputs["score"].shape == (4,) and outputs["anomaly_map"].shape == (4, 32, 32, 1)


def test_bad_sizes_are_rejected():
    with pytest.raises(ValueError, match="divisible by 2\\*\\*depth = 16"):
        SkipAttentionGAN(image_shape=(8, 8, 3))
    with pytest.raises(ValueError, match="power-of-two"):
        SkipAttentionGAN(image_shape=(48, 48, 3))


def test_a_depth_below_one_is_a_clear_error():
    with pytest.raises(ValueError, match="depth must be a positive int"):
        build_model("sagan", "tiny", depth=0)  # was "Cannot convert '(1, 1, 6, 4.0)' to a shape"
