"""Pretrained keras-hub backbones (CAVGA-R, the attention network's encoder): `backbone_weights` loads
a keras-hub preset into the ResNet-18 the model builds. Offline: the preset is a keras-hub ResNet-18
with known weights, saved here with `save_to_preset`, as a user copies ImageNet weights to a machine
without the internet."""

import json
import shutil

import keras
import numpy as np
import pytest

keras_hub = pytest.importorskip("keras_hub")

from anomzoo.cli import build_parser, main  # noqa: E402
from anomzoo.layers import pretrained  # noqa: E402
from anomzoo.models import AttentionADGAN, CAVGA, build_model  # noqa: E402
from anomzoo.models.cavga import networks  # noqa: E402

SMALL_CAVGA = dict(image_shape=(64, 64, 3), latent_channels=8, decoder_filters=(8, 8, 8, 8), discriminator_filters=8)
SMALL_ATTENTION = dict(image_shape=(64, 64, 3), encoder_filters=(8, 8, 8, 8), encoder_blocks=(1, 1, 1, 1),
                       latent_channels=8, decoder_filters=(8, 8, 8, 8), path_filters=(8, 8), discriminator_filters=8,
                       discriminator_latent=8, feature_filters=(8, 8), adgan_decoder_filters=(8, 8, 8))


def layer_weights(backbone):
    """{"<layer name>/<index>": array} of a ResNet backbone (the zoo's and Keras' layers share the names)."""
    return {f"{layer.name}/{i}": np.asarray(w) for layer in backbone.layers for i, w in enumerate(layer.get_weights())}


def hub_backbone(model):
    (backbone,) = [layer for layer in model.encoder.layers if isinstance(layer, keras_hub.models.ResNetBackbone)]
    return backbone


def networks_weights(model, skip=("encoder",)):
    return [np.asarray(w) for name in sorted({n for s in model.stages for p in s.players.values() for n in p})
            if name not in skip for w in getattr(model, name).get_weights()]


def build(cls, seed=0, **options):
    keras.utils.set_random_seed(seed)
    return cls(**options)


def save_preset(folder, seed, **arguments):
    """A keras-hub ResNetBackbone (ResNet-18 unless `arguments` say otherwise) with known weights, saved
    as a preset folder; returns its weights by layer."""
    backbone = keras_hub.models.ResNetBackbone(**{**networks.HUB_RESNET18, **arguments})
    rng = np.random.default_rng(seed)
    backbone.set_weights([rng.uniform(0.5, 1.5, v.shape).astype("float32") if "variance" in v.path
                          else rng.normal(0.0, 0.1, v.shape).astype("float32") for v in backbone.weights])
    backbone.save_to_preset(str(folder))
    return layer_weights(backbone)


@pytest.fixture(scope="module")
def preset(tmp_path_factory):
    """(folder, weights by layer) of a ResNet-18 preset shaped as `resnet_18_imagenet` (any image size, RGB)."""
    folder = tmp_path_factory.mktemp("presets") / "resnet_18"
    return folder, save_preset(folder, seed=7)


def assert_same(found, expected):
    assert sorted(found) == sorted(expected)
    for key, value in expected.items():
        np.testing.assert_array_equal(found[key], value, err_msg=key)


def test_cavga_starts_from_the_preset_weights(preset):
    folder, saved = preset
    model = build(CAVGA, backbone_weights=str(folder), **SMALL_CAVGA)
    assert len(saved) == 100  # every variable of ResNet-18: 20 convolutions, 20 BatchNorms x 4
    assert_same(layer_weights(hub_backbone(model)), saved)
    normalization = model.encoder.get_layer("imagenet_normalization")
    np.testing.assert_allclose(np.ravel(normalization.mean), pretrained.IMAGENET_MEAN, rtol=1e-6)
    np.testing.assert_allclose(np.sqrt(np.ravel(normalization.variance)), pretrained.IMAGENET_STD, rtol=1e-6)
    assert model.get_config()["backbone_weights"] == str(folder)
    # Loading draws no random numbers: the other networks start as without weights.
    plain = build(CAVGA, **SMALL_CAVGA)
    for found, expected in zip(networks_weights(model), networks_weights(plain), strict=True):
        np.testing.assert_array_equal(found, expected)
    assert np.isfinite(model.predict(np.full((2, 64, 64, 3), 0.5, "float32"), verbose=0)["score"]).all()


def test_the_attention_network_starts_from_the_preset_weights(preset):
    folder, saved = preset
    model = build(AttentionADGAN, backbone_weights=str(folder), **SMALL_ATTENTION)
    assert_same(layer_weights(hub_backbone(model)), saved)
    plain = build(AttentionADGAN, **SMALL_ATTENTION)  # ADGAN's encoder (the zoo's ResNet-18) takes no weights
    for found, expected in zip(networks_weights(model), networks_weights(plain), strict=True):
        np.testing.assert_array_equal(found, expected)


def test_no_weights_is_random_initialisation_as_before(preset):
    _, saved = preset
    default = build(CAVGA, **SMALL_CAVGA)
    explicit = build(CAVGA, backbone_weights=None, **SMALL_CAVGA)
    assert default.get_config()["backbone_weights"] is None
    assert [type(layer).__name__ for layer in default.encoder.layers] == ["InputLayer", "ResNetBackbone", "ReLU"]
    for found, expected in zip(default.get_weights(), explicit.get_weights(), strict=True):
        np.testing.assert_array_equal(found, expected)
    random = layer_weights(hub_backbone(default))
    assert not np.array_equal(random["conv1_conv/0"], saved["conv1_conv/0"])


def test_a_saved_model_keeps_the_weights_without_the_preset(preset, tmp_path, monkeypatch):
    folder = shutil.copytree(preset[0], tmp_path / "resnet_18")
    model = build(AttentionADGAN, backbone_weights=str(folder), **SMALL_ATTENTION)
    images = np.random.default_rng(0).random((2, 64, 64, 3), dtype=np.float32)
    expected = model.predict(images, verbose=0)
    model.save(tmp_path / "model.keras")
    shutil.rmtree(folder)

    def fetch(*args):
        raise AssertionError("a saved model must not fetch its backbone weights again")

    monkeypatch.setattr(pretrained, "preset_folder", fetch)
    loaded = keras.models.load_model(tmp_path / "model.keras")
    assert loaded.backbone_weights == str(folder)  # the record of where the weights came from
    assert_same(layer_weights(hub_backbone(loaded)), preset[1])
    for found, weights in zip(loaded.get_weights(), model.get_weights(), strict=True):
        np.testing.assert_array_equal(found, weights)
    outputs = loaded.predict(images, verbose=0)
    for key in ("score", "anomaly_map"):
        np.testing.assert_allclose(outputs[key], expected[key], rtol=1e-5, atol=1e-6)


def test_grey_images_take_the_first_kernel_summed_over_the_colours(preset):
    folder, saved = preset
    model = build(CAVGA, backbone_weights=str(folder), **{**SMALL_CAVGA, "image_shape": (64, 64, 1)})
    found = layer_weights(hub_backbone(model))
    np.testing.assert_allclose(found.pop("conv1_conv/0"), saved["conv1_conv/0"].sum(axis=2, keepdims=True),
                               rtol=1e-6)
    assert_same(found, {k: v for k, v in saved.items() if k != "conv1_conv/0"})
    normalization = model.encoder.get_layer("imagenet_normalization")
    np.testing.assert_allclose(np.ravel(normalization.mean), [np.mean(pretrained.IMAGENET_MEAN)], rtol=1e-6)


def test_a_missing_or_empty_folder_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist.*save_to_preset"):
        CAVGA(backbone_weights=str(tmp_path / "nowhere"), **SMALL_CAVGA)
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no config.json"):
        CAVGA(backbone_weights=str(tmp_path / "empty"), **SMALL_CAVGA)


@pytest.mark.filterwarnings("ignore:Skipping nested container")  # Keras, on the wrong weights
def test_a_preset_of_another_network_is_refused(preset, tmp_path):
    resnet10 = tmp_path / "resnet_10"
    save_preset(resnet10, seed=1, stackwise_num_blocks=[1, 1, 1, 1])
    with pytest.raises(ValueError, match=r"is not a ResNet-18 .*stackwise_num_blocks"):
        CAVGA(backbone_weights=str(resnet10), **SMALL_CAVGA)
    other = shutil.copytree(preset[0], tmp_path / "other")
    config = json.loads((other / "config.json").read_text())
    (other / "config.json").write_text(json.dumps({**config, "class_name": "VGGBackbone"}))
    with pytest.raises(ValueError, match="preset of VGGBackbone, not a keras-hub ResNetBackbone"):
        AttentionADGAN(backbone_weights=str(other), **SMALL_ATTENTION)
    # a ResNet-18 configuration beside weights that are not ResNet-18's
    shutil.copy(resnet10 / "model.weights.h5", tmp_path / "other" / "model.weights.h5")
    (other / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="do not fit a ResNet-18"):
        CAVGA(backbone_weights=str(other), **SMALL_CAVGA)


def test_imagenet_offline_names_the_cause_and_the_local_folder(monkeypatch):
    import kagglehub

    def offline(handle, *args, **kwargs):
        raise ConnectionError(f"Failed to resolve 'api.kaggle.com' ({handle})")

    monkeypatch.setattr(kagglehub, "model_download", offline)
    with pytest.raises(OSError) as error:
        CAVGA(backbone_weights="imagenet", **SMALL_CAVGA)
    message = str(error.value)
    for part in ("'resnet_18_imagenet'", "ConnectionError", "api.kaggle.com", "save_to_preset",
                 "backbone_weights='/path/to/resnet_18_imagenet'", "--set backbone_weights="):
        assert part in message, message


def test_weights_where_they_do_not_fit_are_refused(preset):
    folder = str(preset[0])
    with pytest.raises(ValueError, match="needs encoder='resnet18_hub'"):
        CAVGA.configured("tiny", backbone_weights=folder)  # the zoo's own ResNet-18
    with pytest.raises(ValueError, match="not 4 channels"):
        CAVGA(backbone_weights=folder, **{**SMALL_CAVGA, "image_shape": (64, 64, 4)})
    with pytest.raises(ValueError, match="backbone_weights must be None"):
        CAVGA(backbone_weights=3, **SMALL_CAVGA)


def test_the_option_s_old_name_still_loads():
    config = CAVGA.configured("tiny").get_config()
    old = {**{k: v for k, v in config.items() if k != "backbone_weights"}, "backbone_preset": None}
    assert CAVGA.from_config(old).backbone_weights is None  # files saved before the option was renamed
    assert networks.backbone_weights_option(None, {"backbone_preset": "resnet_18_imagenet"}, "CAVGA") == "imagenet"
    with pytest.raises(ValueError, match="backbone_weights only"):
        networks.backbone_weights_option("imagenet", {"backbone_preset": "x"}, "CAVGA")


def test_train_takes_backbone_weights_from_the_command_line(preset, tmp_path, monkeypatch):
    from anomzoo import runs

    folder = str(preset[0])
    argv = ["train", "cavga", "--config", "paper", "--set", f"backbone_weights={folder}", "--out", str(tmp_path / "r")]
    assert build_parser().parse_args(argv).set == [("backbone_weights", folder)]
    asked = {}

    def train_run(model, out_dir, **options):  # what `anomzoo train` asks for, without the training
        asked.update(options, model=model)
        return {}

    monkeypatch.setattr(runs, "train_run", train_run)
    assert main(argv) == 0
    assert asked["model"] == "cavga" and asked["config"] == "paper"
    assert asked["model_options"] == {"backbone_weights": folder}
    # runs.train_run builds it so, at the data's image size
    model = build_model("cavga", asked["config"], **{**asked["model_options"], "image_shape": (64, 64, 3)})
    assert_same(layer_weights(hub_backbone(model)), preset[1])
    # JSON values are read as JSON, other values as strings; KEY=VALUE is required
    args = build_parser().parse_args(["train", "cavga", "--set", "backbone_weights=imagenet", "augment=false"])
    assert args.set == [("backbone_weights", "imagenet"), ("augment", False)]
    with pytest.raises(SystemExit):
        build_parser().parse_args(["train", "cavga", "--set", "backbone_weights"])
