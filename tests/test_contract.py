"""The inference contract in `model.predict` beyond numpy arrays: the zoo's own pipelines, `tf.data`
datasets (checked batch by batch inside the predict step), empty batches and no input at all."""

import numpy as np
import pytest
import tensorflow as tf

from anomzoo.data import make_pipeline
from anomzoo.models import build_model


@pytest.fixture(scope="module")
def model_and_images():
    model = build_model("sagan", "tiny", image_shape=(32, 32, 1))
    images = np.random.default_rng(0).integers(0, 256, (6, 32, 32, 1), dtype=np.uint8)
    return model, images, model.predict(images, verbose=0)["score"]


def _batches(images):
    return tf.data.Dataset.from_tensor_slices(images).batch(4)


@pytest.mark.parametrize("source", [
    lambda images: make_pipeline(images, batch_size=4, shuffle=False),  # {"image": ...} batches
    lambda images: _batches(images),  # uint8: divided by 255, as for arrays
    lambda images: _batches(images.astype(np.float32) / 255.0),
    lambda images: ((batch,) for batch in np.split(images, [4])),  # a generator of uint8 batches
])
def test_datasets_and_generators_score_as_arrays_do(model_and_images, source):
    model, images, expected = model_and_images
    np.testing.assert_allclose(model.predict(source(images), verbose=0)["score"], expected, rtol=1e-5, atol=1e-6)


def test_predict_on_batch_and_a_dict_call_score_as_predict_does(model_and_images):
    model, images, expected = model_and_images
    floats = images.astype(np.float32) / 255.0
    np.testing.assert_allclose(model.predict_on_batch(floats)["score"], expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(model({"image": floats})["score"], expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("images, message", [
    (np.full((4, 32, 32, 1), 200.0, np.float32), r"\[0, 1\].*divide 0-255 images by 255"),
    (np.full((4, 32, 32, 1), np.nan, np.float32), "without NaN"),
    (np.zeros((4, 16, 16, 1), np.float32), r"\(N, 32, 32, 1\)"),
])
def test_a_dataset_outside_the_contract_is_an_error_naming_it(model_and_images, images, message):
    model = model_and_images[0]
    with pytest.raises((tf.errors.InvalidArgumentError, ValueError), match=message):
        model.predict(_batches(images), verbose=0)


def test_a_dataset_of_integers_other_than_uint8_is_refused(model_and_images):
    with pytest.raises(ValueError, match="dtype int64"):
        model_and_images[0].predict(_batches(np.zeros((4, 32, 32, 1), np.int64)), verbose=0)


def test_no_images_give_empty_outputs_and_none_is_an_error(model_and_images):
    model = model_and_images[0]
    outputs = model.predict(np.zeros((0, 32, 32, 1), np.uint8), verbose=0)
    assert outputs["score"].shape == (0,) and outputs["anomaly_map"].shape == (0, 32, 32, 1)
    with pytest.raises(ValueError, match="takes images, got None"):
        model.predict(None)
