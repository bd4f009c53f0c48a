"""AnoSeg: Table 6's layers, coordinate channels, the synthetic training pairs, losses, switches."""

import keras
import numpy as np
import pytest
from keras import ops

from anomzoo import training
from anomzoo.augment import foreground_mask
from anomzoo.data import load_dataset
from anomzoo.layers.coords import CoordinateChannels
from anomzoo.models import AnoSeg, build_model
from anomzoo.models.base import masked_mean_per_image
from anomzoo.validation import synthetic_validation_set

# Table 6, decoder: (height, channels) of Conv 1, ConvTr 1, Conv 2, ..., ConvTr 5, Conv 6, Conv 7.
TABLE6_DECODER = [(8, 512), (16, 512), (16, 256), (32, 256), (32, 128), (64, 128), (64, 128), (128, 128),
                  (128, 128), (256, 128), (256, 128)]
TABLE6_DISCRIMINATOR = [(128, 64), (64, 128), (32, 256), (16, 512), (8, 512), (4, 512), (2, 128), (1, 1)]


def _shapes(network, prefix, kinds=("Conv2D", "Conv2DTranspose")):
    return [(layer.output.shape[1], layer.output.shape[-1]) for layer in network.layers
            if type(layer).__name__ in kinds and layer.name.startswith(prefix)]


@pytest.fixture(scope="module")
def paper():
    return build_model("anoseg", "paper")


def test_table6_at_256_px(paper):
    segmenter = paper.segmenter
    assert segmenter.get_layer("segmenter_encoder").output.shape[1:] == (8, 8, 512)
    for decoder in ("map_decoder", "image_decoder"):
        hidden = _shapes(segmenter, decoder)[:-1]
        assert hidden == TABLE6_DECODER, (decoder, hidden)
    assert _shapes(segmenter, "map_decoder_out") == [(256, 1)]
    assert _shapes(segmenter, "image_decoder_out") == [(256, 3)]
    assert _shapes(paper.discriminator, "conv_") == TABLE6_DISCRIMINATOR
    assert paper.discriminator.input.shape[-1] == 4  # concat(image, map)
    # the detector: AnoSeg's structure without the map decoder, its discriminator on concat(image, map)
    assert _shapes(paper.detector_generator, "image_decoder")[:-1] == TABLE6_DECODER
    assert _shapes(paper.detector_discriminator, "conv_") == TABLE6_DISCRIMINATOR


@pytest.mark.parametrize("size, stride", [(64, 8), (128, 16), (256, 32), (512, 32)])
def test_smaller_images_keep_table6s_8x8_feature_map(size, stride):
    model = build_model("anoseg", "tiny", image_shape=(size, size, 3))
    encoder = model.segmenter.get_layer("segmenter_encoder")
    assert encoder.output.shape[1] == size // stride
    assert model.segmenter.output["map"].shape[1:] == (size, size, 1)
    keras.backend.clear_session()


def test_coordinate_channels():
    out = keras.ops.convert_to_numpy(CoordinateChannels()(np.zeros((2, 4, 5, 3), "float32")))
    assert out.shape == (2, 4, 5, 5)
    np.testing.assert_allclose(out[0, :, 0, 3], [-1, -1 / 3, 1 / 3, 1], atol=1e-6)  # rows
    np.testing.assert_allclose(out[0, 0, :, 4], [-1, -0.5, 0, 0.5, 1], atol=1e-6)  # columns
    with_coords = build_model("anoseg", "tiny")
    without = build_model("anoseg", "tiny", coordinate_channels=False)
    assert with_coords.segmenter.get_layer("segmenter_encoder").input.shape[-1] == 5
    assert without.segmenter.get_layer("segmenter_encoder").input.shape[-1] == 3


def _digit_batch():
    """64 built-in digits as RGB floats in [0, 1], the batch the synthesis tests turn into anomalies."""
    return load_dataset("digits", image_size=32, channels=3).train.images[:64].astype("float32") / 255.0


def test_segmentation_batch_targets_follow_the_masks():
    model = build_model("anoseg", "tiny")
    images = _digit_batch()
    x, target = (ops.convert_to_numpy(t) for t in model._segmentation_batch(images))
    changed = np.any(x != images, axis=(1, 2, 3))
    assert 0.25 < changed.mean() < 0.75  # about half the batch becomes synthetic anomalies
    for i in range(len(images)):
        if changed[i]:  # 0 exactly on the pixels the synthesiser changed, 1 elsewhere
            np.testing.assert_array_equal(target[i, ..., 0] == 0, np.any(x[i] != images[i], axis=-1))
        else:  # normal images: masks all ones
            assert np.all(target[i] == 1)


def test_synthesis_area_range_sets_the_size_of_the_synthetic_anomalies():
    images = _digit_batch()
    small = build_model("anoseg", "tiny", synthesis_area_range=(0.01, 0.02))
    assert small.get_config()["synthesis_area_range"] == (0.01, 0.02)
    assert AnoSeg.from_config(small.get_config()).synthesizer.area_range == (0.01, 0.02)
    _, target = (ops.convert_to_numpy(t) for t in small._segmentation_batch(images))
    area = (1.0 - target).mean(axis=(1, 2, 3))
    changed = area > 0
    assert changed.any() and np.all(area[changed] <= 0.03)  # <= 2% of 32 x 32 px, rounded up to whole pixels
    default = build_model("anoseg", "tiny")
    _, target = (ops.convert_to_numpy(t) for t in default._segmentation_batch(images))
    assert (1.0 - target).mean(axis=(1, 2, 3)).max() > 0.03
    with pytest.raises(ValueError, match="area_range"):
        build_model("anoseg", "tiny", synthesis_area_range=(0.2, 0.1))


def test_synthesis_min_change_keeps_only_visible_changes_as_targets():
    images = _digit_batch()
    model = build_model("anoseg", "tiny", synthesis_min_change=0.2)
    synthetic, target, changed = (ops.convert_to_numpy(t) for t in model._synthesize(images))
    visible = np.abs(synthetic - images).max(axis=-1, keepdims=True) > 0.2
    anomalous = target == 0
    assert anomalous.any() and np.all(visible[anomalous])  # every target pixel changed visibly
    np.testing.assert_array_equal(changed, anomalous.any(axis=(1, 2, 3)))
    with pytest.raises(ValueError, match="synthesis_min_change"):
        build_model("anoseg", "tiny", synthesis_min_change=-0.1)


def test_blob_synthesis_makes_blob_targets_and_a_blob_selection_set():
    model = build_model("anoseg", "tiny", synthesis_region="blob", synthesis_area_range=(0.01, 0.05),
                        synthesis_opacity_range=(0.5, 0.5), synthesis_min_change=0.05)
    rebuilt = AnoSeg.from_config(model.get_config())
    assert rebuilt.synthesizer.region == "blob" and rebuilt.synthesizer.opacity_range == (0.5, 0.5)
    images = _digit_batch()
    synthetic, target, _ = (ops.convert_to_numpy(t) for t in model._synthesize(images))
    anomalous = target[..., 0] == 0
    # every target pixel changed visibly, and the targets cover at most the largest blob asked for
    assert anomalous.any() and np.all(np.abs(synthetic - images).max(axis=-1)[anomalous] > 0.05)
    assert anomalous.mean(axis=(1, 2)).max() <= 0.05 * 1.15  # (up to ties in the noise)
    selection = synthetic_validation_set((images * 255).astype("uint8"), seed=0, **model.validation_synthesis())
    assert selection.labels.sum() > 0 and selection.masks.mean(axis=(1, 2, 3)).max() <= 0.05 * 1.15


def test_foreground_synthesis_reaches_the_synthesiser_and_the_selection_set():
    model = build_model("anoseg", "tiny", synthesis_foreground=0.1)
    rebuilt = AnoSeg.from_config(model.get_config())
    assert rebuilt.synthesis_foreground == 0.1 and rebuilt.synthesizer.foreground_threshold == 0.1
    assert model.validation_synthesis()["foreground_threshold"] == 0.1
    images = _digit_batch()  # white digits on black: the digit is the object
    synthetic, target, _ = (ops.convert_to_numpy(t) for t in model._synthesize(images))
    on_object = ops.convert_to_numpy(foreground_mask(images, 0.1))
    assert (target[..., 0] == 0).any() and not np.any(synthetic != images, axis=-1)[~on_object].any()


def test_the_selection_set_marks_only_the_changes_the_model_learns_as_anomalous():
    images = (_digit_batch()[:32] * 255).astype("uint8")
    model = build_model("anoseg", "tiny", synthesis_min_change=0.2)
    assert model.validation_synthesis() == {"area_range": (0.02, 0.15), "min_change": 0.2, "region": "box",
                                            "opacity_range": (0.3, 1.0), "foreground_threshold": None}
    every_change = synthetic_validation_set(images, seed=0)
    visible = synthetic_validation_set(images, seed=0, **model.validation_synthesis())
    assert len(every_change) == 64  # every digit got an anomaly: anomaly j was made from normal image j
    normal, anomalies, masks = every_change.images[:32], every_change.images[32:], every_change.masks[32:]
    assert 32 < len(visible) <= 64 and visible.labels[32:].all()
    for image, mask in zip(visible.images[32:], visible.masks[32:]):
        j = next(j for j in range(32) if np.array_equal(anomalies[j], image))  # the same anomalies, re-marked
        expected = masks[j] * (np.abs(image - normal[j]).max(axis=-1, keepdims=True) > 0.2)
        np.testing.assert_array_equal(mask, expected)
        assert mask.any()
    assert visible.masks.sum() < every_change.masks.sum()


def test_masked_reconstruction_ignores_the_anomalous_region():
    values = np.zeros((2, 4, 4, 3), "float32")
    values[0, :2] = 5.0  # a large error, but only inside the anomalous half
    weights = np.ones((2, 4, 4, 1), "float32")
    weights[0, :2] = 0.0
    np.testing.assert_allclose(ops.convert_to_numpy(masked_mean_per_image(values, weights)), [0.0, 0.0])
    np.testing.assert_allclose(ops.convert_to_numpy(masked_mean_per_image(values + 1.0, weights)), [1.0, 1.0])


def test_anomaly_map_is_the_complement_of_the_normal_map_and_scores_are_labelled():
    model = build_model("anoseg", "tiny")
    out = model.predict(np.random.default_rng(0).random((3, 32, 32, 3), dtype=np.float32), verbose=0)
    np.testing.assert_allclose(out["anomaly_map"], 1.0 - out["normal_map"], atol=1e-6)
    np.testing.assert_allclose(out["map_max_score"], out["anomaly_map"].reshape(3, -1).max(axis=1), atol=1e-6)
    np.testing.assert_array_equal(out["score"], out["detector_score"])
    by_map = build_model("anoseg", "tiny", score="map_top1")
    out = by_map.predict(np.zeros((2, 32, 32, 3), "float32"), verbose=0)
    np.testing.assert_array_equal(out["score"], out["map_top1_score"])


def test_each_stage_is_selected_by_what_it_trains():
    model = build_model("anoseg", "tiny")
    assert [s.selection_metric for s in model.stages] == ["val_syn_pixel_auroc", "val_syn_image_auroc"]
    # on real labelled defects the same metrics judge the stages
    from anomzoo.callbacks import SelectOnValidation
    from anomzoo.validation import ValidationSet

    real = ValidationSet(images=None, labels=None, masks=None, kind="real")
    selector = SelectOnValidation(real, monitor="val_real_auroc")
    selector.set_model(model)
    judged = []
    for stage in ("segmentation", "detector"):
        model.set_stage(stage)
        judged.append(selector._monitor())
    assert judged == ["val_real_pixel_auroc", "val_real_image_auroc"]


def test_ablation_switches():
    single = build_model("anoseg", "tiny", detector=False, score="map_max")
    assert [s.name for s in single.stages] == ["segmentation"] and single.stage_fractions == (1.0,)
    assert not hasattr(single, "detector_generator")
    image_only = build_model("anoseg", "tiny", detector_map_input=False)
    assert image_only.detector_discriminator.input.shape[-1] == 3
    assert build_model("anoseg", "tiny", hard_augmentation=False).synthesizer.p == 0.0
    with pytest.raises(ValueError, match="score='detector' needs detector=True"):
        build_model("anoseg", "tiny", detector=False)


@pytest.mark.parametrize("shape", [(48, 48, 3), (64, 32, 3), (4, 4, 3)])
def test_bad_image_sizes_are_named(shape):
    with pytest.raises(ValueError, match="power-of-two size"):
        AnoSeg(image_shape=shape, encoder_filters=(8, 8, 8, 8), encoder_blocks=(1, 1, 1, 1))


def test_segmentation_losses_go_down_on_real_digits():
    data = load_dataset("digits", normal_class=1, image_size=32)
    model = build_model("anoseg", "tiny", image_shape=data.image_shape, detector=False, score="map_max",
                        learning_rate=1e-3)
    history = training.train(model, data, epochs=6, batch_size=16, seed=0, verbose=0).history.history
    assert history["seg"][-1] < history["seg"][0] and history["re"][-1] < 0.8 * history["re"][0], history


def test_weight_averaging_swaps_the_average_in_at_every_epoch_end():
    data = load_dataset("digits", normal_class=1, image_size=32)
    model = build_model("anoseg", "tiny", image_shape=data.image_shape, weight_averaging=0.9)
    seen = []

    class Spy(keras.callbacks.Callback):  # runs after AverageWeights and the selector
        def on_epoch_end(self, epoch, logs=None):
            for player in self.model.stage.players:
                optimizer = self.model.player_optimizers[player]
                if not optimizer.use_ema:
                    seen.append((player, False, None))
                    continue
                weights = [np.array(v) for v in self.model.player_variables(player)]
                averages = [np.array(v) for v in optimizer._model_variables_moving_average]
                seen.append((player, True, all(np.array_equal(w, a) for w, a in zip(weights, averages))))

    result = training.train(model, data, epochs=[2, 1], batch_size=16, seed=0, selection="last",
                            callbacks=[Spy()], verbose=0)
    # model.fit (inside training.train) added AverageWeights: the generators hold their averages after
    # every epoch; the discriminators do not average
    assert len(seen) == 6 and set(seen) == {("g", True, True), ("d", False, None), ("detector_g", True, True),
                                            ("detector_d", False, None)}
    assert result.history.history["seg"]
    with pytest.raises(ValueError, match="weight_averaging"):
        build_model("anoseg", "tiny", weight_averaging=1.0)
