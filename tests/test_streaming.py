"""Streaming training data from disk: image folders and TFRecord shards (`anomzoo.data.streaming`,
`anomzoo.data.tfrecord`), against the in-memory loaders and pipeline they must equal."""

import json
import pathlib

import cv2
import numpy as np
import pytest
import tensorflow as tf

from anomzoo.data import (DatasetError, Split, StreamedSplit, load_dataset, make_pipeline, mean_normal_image,
                          training_pipeline, write_tfrecords)
from anomzoo.data.tfrecord import MANIFEST

SIZE = 32  # the files are 40 px: streamed images shrink, where tf.io and OpenCV agree bit for bit


def write_mvtec(root: pathlib.Path, n_train=40, validation=False, gray=False, seed=0) -> pathlib.Path:
    """An MVTec-layout category of random 40 px PNGs (with a bright centre: an object to find)."""
    rng = np.random.default_rng(seed)

    def image():
        picture = rng.integers(0, 120, (40, 40) if gray else (40, 40, 3), dtype=np.uint8)
        picture[10:30, 10:30] += 120
        return picture

    def write(path, picture):
        path.parent.mkdir(parents=True, exist_ok=True)
        assert cv2.imwrite(str(path), picture)

    for i in range(n_train):
        write(root / "train" / "good" / f"{i:03d}.png", image())
    if validation:
        for i in range(4):
            write(root / "validation" / "good" / f"{i:03d}.png", image())
    for i in range(3):
        write(root / "test" / "good" / f"{i:03d}.png", image())
        write(root / "test" / "crack" / f"{i:03d}.png", image())
        mask = np.zeros((40, 40), np.uint8)
        mask[5:15, 5 + i:20] = 255
        write(root / "ground_truth" / "crack" / f"{i:03d}_mask.png", mask)
    return root


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return write_mvtec(tmp_path_factory.mktemp("data") / "widget")


@pytest.fixture(scope="module")
def records(folder, tmp_path_factory):
    """The folder as TFRecords in 4 shards (about 1/4 of the bytes each)."""
    out = tmp_path_factory.mktemp("records") / "widget-tfrecord"
    total = sum(p.stat().st_size for p in folder.rglob("*.png") if "train" in p.parts)
    write_tfrecords(folder, out, image_size=SIZE, shard_bytes=total // 4 + 1)
    return out


def codes(dataset, key="image"):
    """Each batch's images as uint8 rows (float [0, 1] -> x255), for comparing orders and contents."""
    return [np.round(batch[key].numpy() * 255).astype(np.uint8) for batch in dataset]


def identify(batches, images):
    """The index in ``images`` of every image of every batch."""
    table = {image.tobytes(): i for i, image in enumerate(images)}
    return [[table[image.tobytes()] for image in batch] for batch in batches]


# --------------------------------------------------------------------------------------------
# Folder streaming
# --------------------------------------------------------------------------------------------


def test_streamed_folder_holds_the_in_memory_datasets_images(folder):
    memory = load_dataset(folder, image_size=SIZE)
    streamed = load_dataset(folder, image_size=SIZE, streaming=True)
    assert isinstance(streamed.train, StreamedSplit) and isinstance(memory.train, Split)
    assert streamed.image_shape == memory.image_shape == (SIZE, SIZE, 3)
    assert len(streamed.train) == len(memory.train) == 36  # 4 of 40 carved off as validation, as in memory
    np.testing.assert_array_equal(streamed.train.paths, memory.train.paths)
    for split in ("validation", "test"):
        for key in ("images", "labels", "masks", "defect_types", "paths"):
            np.testing.assert_array_equal(getattr(getattr(streamed, split), key), getattr(getattr(memory, split), key))
    streamed_images = np.concatenate(list(streamed.train.batches(batch_size=16)))
    np.testing.assert_array_equal(streamed_images, memory.train.images)  # tf.io decodes as OpenCV does


def test_same_order_as_make_pipeline_and_resume_exact(folder):
    memory = load_dataset(folder, image_size=SIZE)
    train = load_dataset(folder, image_size=SIZE, streaming=True).train
    streamed = codes(train.pipeline(batch_size=8, seed=3, epochs=2))
    in_memory = codes(make_pipeline(memory.train.images, batch_size=8, shuffle=True, seed=3, epochs=2))
    assert len(streamed) == 10 and [b.shape[0] for b in streamed[:5]] == [8, 8, 8, 8, 4]  # batches within a pass
    for a, b in zip(streamed, in_memory):
        np.testing.assert_array_equal(a, b)
    again = codes(train.pipeline(batch_size=8, seed=3, epochs=2))
    assert all(np.array_equal(a, b) for a, b in zip(streamed, again))
    other = codes(train.pipeline(batch_size=8, seed=4, epochs=1))
    assert not all(np.array_equal(a, b) for a, b in zip(streamed, other))
    resumed = codes(train.pipeline(batch_size=8, seed=3, epochs=1, first_epoch=1))
    assert all(np.array_equal(a, b) for a, b in zip(resumed, streamed[5:])) and len(resumed) == 5


def test_shards_are_disjoint_complete_and_their_steps_make_the_unsharded_steps(folder):
    train = load_dataset(folder, image_size=SIZE, streaming=True).train
    images = np.concatenate(list(train.batches()))
    whole = identify(codes(train.pipeline(batch_size=8, seed=1, epochs=1)), images)
    parts = [identify(codes(train.pipeline(batch_size=4, seed=1, epochs=1, shard=(2, i))), images) for i in (0, 1)]
    flat = [sum(part, []) for part in parts]
    assert not set(flat[0]) & set(flat[1]) and sorted(flat[0] + flat[1]) == list(range(len(train)))
    for step, batch in enumerate(whole):
        assert sorted(parts[0][step] + parts[1][step]) == sorted(batch)
    # make_pipeline shards by the same rule, also with every pass cut to whole global batches (36 -> 32)
    memory = load_dataset(folder, image_size=SIZE).train.images
    for i in (0, 1):
        in_memory = codes(make_pipeline(memory, batch_size=4, shuffle=True, seed=1, epochs=1, shard=(2, i)))
        assert identify(in_memory, images) == parts[i]
        cut = dict(batch_size=4, seed=1, epochs=2, shard=(2, i), whole_batches_of=8)
        streamed = identify(codes(train.pipeline(**cut)), images)
        assert streamed == identify(codes(make_pipeline(memory, shuffle=True, **cut)), images)
        assert len(streamed) == 8 and all(len(batch) == 4 for batch in streamed)


def test_training_pipeline_dispatches_on_the_split_kind(folder):
    memory = load_dataset(folder, image_size=SIZE)
    streamed = load_dataset(folder, image_size=SIZE, streaming=True)
    a = codes(training_pipeline(memory.train, batch_size=8, seed=0, epochs=1))
    b = codes(training_pipeline(streamed.train, batch_size=8, seed=0, epochs=1))
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    labelled = StreamedSplit(image_shape=(SIZE, SIZE, 3), labels=np.arange(4) % 2, paths=streamed.train.paths[:4])
    batch = next(iter(labelled.pipeline(batch_size=4, seed=0, epochs=1)))
    assert set(batch) == {"image", "label"} and batch["label"].dtype == tf.int32


def test_streamed_statistics_equal_the_in_memory_ones(folder):
    from anomzoo.evaluation import object_region
    from anomzoo.floors import reconstruction_floor

    memory = load_dataset(folder, image_size=SIZE)
    train = load_dataset(folder, image_size=SIZE, streaming=True).train
    np.testing.assert_allclose(train.mean_image(), mean_normal_image(memory.train.images), atol=1e-6)
    np.testing.assert_array_equal(object_region(train), object_region(memory.train.images))
    assert object_region(memory.train.images).any()
    assert reconstruction_floor(train, memory.validation.images) == pytest.approx(
        reconstruction_floor(memory.train.images, memory.validation.images), rel=1e-6)
    capped = train.mean_image(limit=6)  # evenly spaced: positions 0, 6, 12, ...
    np.testing.assert_allclose(capped, memory.train.images[np.arange(6) * 36 // 6].mean(axis=0) / 255, atol=1e-6)


def test_grey_folder_streams_one_channel(tmp_path):
    root = write_mvtec(tmp_path / "grey", n_train=6, gray=True)
    memory = load_dataset(root, image_size=SIZE)
    streamed = load_dataset(root, image_size=SIZE, streaming=True)
    assert streamed.image_shape == memory.image_shape == (SIZE, SIZE, 1)
    np.testing.assert_array_equal(np.concatenate(list(streamed.train.batches())), memory.train.images)


# --------------------------------------------------------------------------------------------
# TFRecord shards
# --------------------------------------------------------------------------------------------


def test_tfrecords_hold_the_folders_dataset(folder, records):
    manifest = json.loads((records / MANIFEST).read_text())
    assert manifest["splits"]["train"]["count"] == 40 and len(manifest["splits"]["train"]["shards"]) == 4
    assert manifest["splits"]["test"]["anomalous"] == 3 and "validation" not in manifest["splits"]
    assert (manifest["image_size"], manifest["channels"]) == (SIZE, 3)
    memory = load_dataset(folder, image_size=SIZE)
    for streaming in (True, False):
        loaded = load_dataset(records, streaming=streaming)
        assert loaded.image_shape == memory.image_shape and loaded.target == memory.target == "widget"
        for split in ("validation", "test"):
            for key in ("images", "labels", "masks", "defect_types", "paths"):
                np.testing.assert_array_equal(getattr(getattr(loaded, split), key),
                                              getattr(getattr(memory, split), key))
        train = loaded.train
        images = np.concatenate(list(train.batches())) if streaming else train.images
        np.testing.assert_array_equal(images, memory.train.images)
    train = load_dataset(records, streaming=True).train
    assert len(train) == 36 and train.record_index is not None and train.mean_image().shape == (SIZE, SIZE, 3)


def test_tfrecord_order_is_seeded_resume_exact_and_every_record_once(folder, records):
    memory = load_dataset(folder, image_size=SIZE).train.images
    train = load_dataset(records, streaming=True).train
    train = StreamedSplit(**{**train.__dict__, "shuffle_window": 8})
    first = codes(train.pipeline(batch_size=8, seed=5, epochs=2))
    assert all(np.array_equal(a, b) for a, b in zip(first, codes(train.pipeline(batch_size=8, seed=5, epochs=2))))
    passes = [sum(identify(first[k * 5:(k + 1) * 5], memory), []) for k in (0, 1)]
    assert sorted(passes[0]) == sorted(passes[1]) == list(range(36)) and passes[0] != passes[1]
    resumed = codes(train.pipeline(batch_size=8, seed=5, epochs=1, first_epoch=1))
    assert all(np.array_equal(a, b) for a, b in zip(resumed, first[5:]))
    other = sum(identify(codes(train.pipeline(batch_size=8, seed=6, epochs=1)), memory), [])
    assert other != passes[0]


def test_tfrecord_shards_by_file_or_by_record(folder, records):
    memory = load_dataset(folder, image_size=SIZE, validation_fraction=0.0).train.images  # all 40
    carved = load_dataset(records, streaming=True).train  # 36 of 40 records: the shard files hold 9 + 9 / 8 + 10
    whole = load_dataset(records, streaming=True, validation_fraction=0.0).train  # 4 files of 10
    assert whole.shards_files(2) and whole.shards_files(4) and not whole.shards_files(3)
    for train, count in ((whole, 2), (whole, 4), (carved, 2), (whole, 3)):
        parts = [sum(identify(codes(train.pipeline(batch_size=4, seed=2, epochs=1, shard=(count, i))), memory), [])
                 for i in range(count)]
        flat = sum(parts, [])
        assert len(flat) == len(set(flat)) == len(train), (count, train.shards_files(count))
    assert not carved.shards_files(2)  # 17 / 19 records: by record, each step the unsharded step's images
    steps = identify(codes(carved.pipeline(batch_size=8, seed=2, epochs=1)), memory)
    parts = [identify(codes(carved.pipeline(batch_size=4, seed=2, epochs=1, shard=(2, i))), memory) for i in (0, 1)]
    for step, batch in enumerate(steps):
        assert sorted(parts[0][step] + parts[1][step]) == sorted(batch)


def test_validation_folder_is_written_as_its_own_records(tmp_path):
    root = write_mvtec(tmp_path / "widget", n_train=6, validation=True)
    write_tfrecords(root, tmp_path / "out", image_size=SIZE)
    loaded, memory = load_dataset(tmp_path / "out", streaming=True), load_dataset(root, image_size=SIZE)
    assert len(loaded.train) == 6 and loaded.train.record_index is None
    np.testing.assert_array_equal(loaded.validation.images, memory.validation.images)


def test_to_tfrecord_command(folder, tmp_path, capsys):
    from anomzoo.cli import main

    out = tmp_path / "cli-records"
    assert main(["data", "to-tfrecord", str(folder), str(out), "--image-size", str(SIZE), "--shard-mb", "1"]) == 0
    printed = capsys.readouterr().out
    assert MANIFEST in printed and "train" in printed and "--streaming" in printed
    assert sorted(p.name for p in out.iterdir()) == [MANIFEST, "test-00000-of-00001.tfrecord",
                                                     "train-00000-of-00001.tfrecord"]
    assert len(load_dataset(str(out), streaming=True).train) == 36
    assert main(["data", "to-tfrecord", str(folder), str(out)]) == 2  # not empty: refused
    assert "not empty" in capsys.readouterr().err


# --------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------


def test_unreadable_images_are_named(tmp_path):
    root = write_mvtec(tmp_path / "widget", n_train=4)
    bad = root / "train" / "good" / "002.png"
    bad.write_bytes(b"<html>not an image</html>")
    with pytest.raises(DatasetError, match="002.png"):
        load_dataset(root, image_size=SIZE, streaming=True)
    with pytest.raises(DatasetError, match="002.png"):
        write_tfrecords(root, tmp_path / "out", image_size=SIZE)
    assert not (tmp_path / "out").exists()  # nothing half-written
    assert not any(p.name.startswith(".out") for p in tmp_path.iterdir())
    tiff = root / "train" / "good" / "002.tif"
    bad.unlink()
    assert cv2.imwrite(str(tiff), np.zeros((40, 40, 3), np.uint8))
    with pytest.raises(DatasetError, match="002.tif.*TIFF"):
        load_dataset(root, image_size=SIZE, streaming=True)
    # in the graph too, for a file that turned bad after loading
    split = StreamedSplit(image_shape=(SIZE, SIZE, 3), labels=np.zeros(1), paths=[str(bad.with_name("x.png"))])
    bad.with_name("x.png").write_bytes(b"GARBAGE")
    with pytest.raises(tf.errors.InvalidArgumentError, match="x.png"):
        list(split.pipeline(batch_size=1, seed=0, epochs=1))


def test_tiff_images_are_stored_as_png_records(tmp_path):
    root = write_mvtec(tmp_path / "widget", n_train=4)
    picture = np.random.default_rng(1).integers(0, 256, (40, 40, 3), dtype=np.uint8)
    assert cv2.imwrite(str(root / "train" / "good" / "009.tif"), picture)
    manifest = write_tfrecords(root, tmp_path / "out", image_size=SIZE)
    assert manifest["reencoded_as_png"] == [str(root / "train" / "good" / "009.tif")]
    memory = load_dataset(root, image_size=SIZE, validation_fraction=0.0)
    streamed = load_dataset(tmp_path / "out", streaming=True, validation_fraction=0.0)
    np.testing.assert_array_equal(np.concatenate(list(streamed.train.batches())), memory.train.images)


def test_bad_requests_are_clear_errors(tmp_path, folder):
    with pytest.raises(DatasetError, match="streaming.*digits"):
        load_dataset("digits", streaming=True)
    with pytest.raises(DatasetError, match="weak_fraction.*streaming"):
        load_dataset(folder, streaming=True, weak_fraction=0.5)
    unfinished = tmp_path / "unfinished"
    unfinished.mkdir()
    (unfinished / "train-00000-of-00001.tfrecord").write_bytes(b"")
    with pytest.raises(DatasetError, match="no train/"):  # no manifest: not a TFRecord folder, nor an MVTec one
        load_dataset(unfinished, streaming=True)
    train = load_dataset(folder, image_size=SIZE, streaming=True).train
    for bad in ((2, 2), (0, 0), (2,), "ab"):
        with pytest.raises(ValueError, match="shard"):
            train.pipeline(batch_size=4, seed=0, epochs=1, shard=bad)
    with pytest.raises(ValueError, match="epochs"):
        train.pipeline(batch_size=4, seed=0, epochs=0)


# --------------------------------------------------------------------------------------------
# Training end to end
# --------------------------------------------------------------------------------------------


@pytest.mark.filterwarnings("ignore:the test set holds")
def test_a_tiny_model_trains_on_a_streamed_folder(folder):
    import keras

    from anomzoo import evaluation, training
    from anomzoo.models import build_model

    data = load_dataset(folder, image_size=SIZE, streaming=True)
    keras.utils.set_random_seed(0)
    model = build_model("skip_attention_gan", "tiny", image_shape=data.image_shape)
    result = training.train(model, data, epochs=1, batch_size=8, verbose=0)
    assert np.isfinite(result.history.history["loss"]).all()
    assert "val_rec_bce_floor" in result.history.history
    metrics, _ = evaluation.evaluate_model(model, data, batch_size=8)
    assert 0.0 <= metrics["image_auroc"] <= 1.0 and "pixel_auroc_object" in metrics


@pytest.mark.filterwarnings("ignore:the test set holds")
def test_train_command_streams_tfrecords(records, tmp_path, capsys):
    from anomzoo.cli import main

    run = tmp_path / "run"
    assert main(["train", "sagan", "--config", "tiny", "--epochs", "1", "--batch-size", "8", "--dataset",
                 str(records), "--streaming", "--out", str(run)]) == 0, capsys.readouterr().err
    request = json.loads((run / "run.json").read_text())["request"]
    assert request["dataset_options"] == {"streaming": True}
    assert (run / "report.md").is_file()
