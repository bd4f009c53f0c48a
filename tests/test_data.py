"""Tests of anomzoo.data: the real datasets (skipped without ../shared/data) and bad input."""

import gzip
import pathlib
import pickle

import cv2
import numpy as np
import pytest

from anomzoo.data import (DATASETS, AnomalyDataset, DatasetError, leave_one_class_out, load_dataset, load_mvtec,
                          make_pipeline, one_class)
from anomzoo.data import cifar10, idx
from anomzoo.data.protocols import split_off_validation

from conftest import huge_png

TIRE_TEST_COUNTS = {"good": 25, "combined": 5, "contamination": 28, "cut": 27, "hole": 27}


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------


def write_image(path: pathlib.Path, image: np.ndarray) -> pathlib.Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), image)
    return path


def fake_mvtec(root: pathlib.Path, *, size=(24, 32), gray=False, validation=False, n_train=5) -> pathlib.Path:
    """A tiny MVTec-layout category: train/good, test/good, test/scratch with masks."""
    rng = np.random.default_rng(0)
    shape = size + (() if gray else (3,))

    def image():
        return rng.integers(0, 256, shape, dtype=np.uint8)

    for i in range(n_train):
        write_image(root / "train" / "good" / f"{i:03d}.png", image())
    if validation:
        for i in range(2):
            write_image(root / "validation" / "good" / f"{i:03d}.png", image())
    for i in range(2):
        write_image(root / "test" / "good" / f"{i:03d}.png", image())
    for i in range(3):
        write_image(root / "test" / "scratch" / f"{i:03d}.png", image())
        mask = np.zeros(size, np.uint8)
        mask[2:6, 3 + i:9] = 255
        write_image(root / "ground_truth" / "scratch" / f"{i:03d}_mask.png", mask)
    return root


def arrays(n_per_class=(6, 4, 5), test_per_class=(3, 2, 4)):
    """Tiny labelled arrays with three classes for the protocol tests."""
    y_train = np.repeat(np.arange(len(n_per_class)), n_per_class)
    y_test = np.repeat(np.arange(len(test_per_class)), test_per_class)
    x_train = np.arange(len(y_train), dtype=np.uint8)[:, None, None, None] * np.ones((1, 4, 4, 1), np.uint8)
    x_test = (100 + np.arange(len(y_test), dtype=np.uint8))[:, None, None, None] * np.ones((1, 4, 4, 1), np.uint8)
    return x_train, y_train, x_test, y_test, ("a", "b", "c")


# --------------------------------------------------------------------------------------------
# Real data
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tire(tire_root):
    return load_dataset(tire_root, image_size=256)


def test_tire_counts_and_labels(tire):
    assert isinstance(tire, AnomalyDataset)
    assert (tire.name, tire.protocol, tire.target) == ("mvtec", "mvtec", "tire")
    assert (len(tire.train), len(tire.validation), len(tire.test)) == (210, 29, 112)
    types, counts = np.unique(tire.test.defect_types, return_counts=True)
    assert dict(zip(types.tolist(), counts.tolist())) == TIRE_TEST_COUNTS
    assert tire.test.labels.sum() == 87
    np.testing.assert_array_equal(tire.test.labels, tire.test.defect_types != "good")
    assert tire.image_shape == (256, 256, 3)
    for split in (tire.train, tire.validation):
        assert split.labels.sum() == 0 and set(split.defect_types) == {"good"}
        assert split.masks.shape == split.images.shape[:3] + (1,) and split.masks.max() == 0


def test_tire_masks(tire):
    test = tire.test
    assert test.images.dtype == np.uint8 and test.masks.dtype == np.uint8
    assert test.masks.shape == test.images.shape[:3] + (1,)
    assert set(np.unique(test.masks)) <= {0, 1}
    per_image = test.masks.reshape(len(test), -1).sum(axis=1)
    assert np.all(per_image[test.labels == 0] == 0)
    assert np.all(per_image[test.labels == 1] > 0)
    assert all(pathlib.Path(p).is_file() for p in test.paths)


def test_labelled_validation_takes_the_same_share_of_each_defect_type_out_of_the_test_split(tire_root):
    full = load_dataset(tire_root, image_size=32)
    held = load_dataset(tire_root, image_size=32, labelled_validation_fraction=0.25)
    labelled, test = held.labelled_validation, held.test
    assert len(labelled) + len(test) == len(full.test) == 112
    assert not set(labelled.paths) & set(test.paths)  # no image is both validated and tested on
    types, counts = np.unique(labelled.defect_types, return_counts=True)
    assert dict(zip(types.tolist(), counts.tolist())) == {k: round(v / 4) for k, v in TIRE_TEST_COUNTS.items()}
    for path, mask in zip(labelled.paths, labelled.masks):  # masks travel with their images
        np.testing.assert_array_equal(mask, full.test.masks[list(full.test.paths).index(path)])
    # the draw does not follow the training seed: every run is tested on the same images
    other_seed = load_dataset(tire_root, image_size=32, labelled_validation_fraction=0.25, seed=3)
    np.testing.assert_array_equal(other_seed.test.paths, test.paths)
    assert full.labelled_validation is None
    with pytest.raises(DatasetError, match="fraction"):
        load_dataset(tire_root, image_size=32, labelled_validation_fraction=1.0)
    with pytest.raises(DatasetError, match="masks"):
        load_dataset("digits", labelled_validation_fraction=0.25)


def test_tire_gray_small_via_root_and_category(tire_root):
    ds = load_dataset(tire_root.parent, category="tire", image_size=64, channels=1)
    assert ds.image_shape == (64, 64, 1) and ds.test.masks.shape == (112, 64, 64, 1)


def test_mnist_one_class(shared_data):
    ds = load_dataset("mnist", normal_class=0, data_dir=shared_data)
    assert (ds.protocol, ds.target, ds.image_shape) == ("one_class", "0", (32, 32, 1))
    assert len(ds.train) + len(ds.validation) == 5923
    assert len(ds.validation) == 592
    assert len(ds.test) == 10000 and int((ds.test.labels == 0).sum()) == 980
    assert ds.test.masks is None and ds.train.paths[0].startswith("mnist:train:")


def test_fashion_mnist_loads(shared_data, monkeypatch):
    monkeypatch.setenv("ANOMZOO_DATA_DIR", str(shared_data))  # data_dir from the environment
    ds = load_dataset("fashion_mnist", normal_class="trouser", image_size=28)
    assert ds.target == "Trouser" and ds.image_shape == (28, 28, 1)
    assert len(ds.train) + len(ds.validation) == 6000 and len(ds.test) == 10000
    assert int((ds.test.labels == 0).sum()) == 1000


@pytest.fixture(scope="module")
def cifar_arrays(shared_data):
    # Reading the 60,000-image archive takes about 5 s: once per module.
    return cifar10.load_cifar10_archive(shared_data / "cifar10_jpg.tar.gz")


def test_cifar10_archive(cifar_arrays):
    x_train, y_train, x_test, y_test, names = cifar_arrays
    assert names[0] == "airplane" and names[-1] == "truck"
    assert x_train.shape == (50000, 32, 32, 3) and x_test.shape == (10000, 32, 32, 3)
    assert np.bincount(y_train).tolist() == [5000] * 10 and np.bincount(y_test).tolist() == [1000] * 10


def test_cifar10_leave_one_class_out(cifar_arrays):
    ds = leave_one_class_out(*cifar_arrays, "cat", dataset="cifar10")
    assert (ds.protocol, ds.target) == ("leave_one_class_out", "cat")
    assert len(ds.train) + len(ds.validation) == 45000 and len(ds.validation) == 4500
    assert len(ds.test) == 15000 and ds.test.labels.sum() == 6000
    assert sum(p.startswith("cifar10:train:") for p in ds.test.paths) == 5000
    assert set(ds.test.defect_types[ds.test.labels == 1]) == {"cat"}


def test_cifar10_load_dataset_from_data_dir(shared_data, cifar_arrays, monkeypatch):
    # Through load_dataset, reusing the module's arrays instead of reading the archive again.
    monkeypatch.setattr(cifar10, "load_cifar10_arrays", lambda source: cifar_arrays)
    ds = load_dataset("cifar10", anomalous_class=3, data_dir=shared_data, channels=1)
    assert ds.target == "cat" and ds.image_shape == (32, 32, 1) and len(ds.test) == 15000


def test_digits_one_class():
    ds = load_dataset("digits", normal_class=3)
    assert (ds.name, ds.target, ds.image_shape) == ("digits", "3", (32, 32, 1))
    assert len(ds.train) + len(ds.validation) in (91, 92)  # 183 images of "3", halved
    assert len(ds.test) in (898, 899) and ds.train.images.max() > 200


def test_validation_split_deterministic_and_disjoint():
    a = load_dataset("digits", seed=1)
    b = load_dataset("digits", seed=1)
    c = load_dataset("digits", seed=2)
    np.testing.assert_array_equal(a.validation.paths, b.validation.paths)
    np.testing.assert_array_equal(a.train.images, b.train.images)
    assert not set(a.validation.paths) & set(a.train.paths)
    assert list(a.validation.paths) != list(c.validation.paths)
    np.testing.assert_array_equal(a.test.paths, c.test.paths)  # the test set never depends on seed


def test_dataset_names():
    assert DATASETS == ("digits", "mnist", "fashion_mnist", "cifar10")


# --------------------------------------------------------------------------------------------
# Protocols on small arrays
# --------------------------------------------------------------------------------------------


def test_one_class_protocol():
    ds = one_class(*arrays(), "b", dataset="toy", validation_fraction=0.25)
    assert len(ds.train) == 3 and len(ds.validation) == 1
    assert ds.test.labels.tolist() == [1, 1, 1, 0, 0, 1, 1, 1, 1]
    assert ds.test.defect_types.tolist()[:4] == ["a", "a", "a", "good"]
    assert ds.test.paths[0] == "toy:test:0"


def test_leave_one_class_out_protocol():
    ds = leave_one_class_out(*arrays(), 0, dataset="toy", validation_fraction=0.0)
    assert len(ds.train) == 9 and len(ds.validation) == 0
    assert len(ds.test) == 6 + 3 + 6 and ds.test.labels.sum() == 9
    assert ds.test.paths[-1] == "toy:train:5"


def test_unknown_class_lists_valid_ones():
    with pytest.raises(DatasetError, match=r"unknown normal_class 'dog'.*'a'.*'b'.*'c'"):
        one_class(*arrays(), "dog")
    with pytest.raises(DatasetError, match=r"unknown anomalous_class 7"):
        leave_one_class_out(*arrays(), 7)
    with pytest.raises(DatasetError, match=r"unknown normal_class 'plane'.*0='0'.*9='9'"):
        load_dataset("digits", normal_class="plane")


def test_empty_class_is_an_error():
    x_train, y_train, x_test, y_test, names = arrays(n_per_class=(6, 0, 5))
    with pytest.raises(DatasetError, match=r"normal_class 'b' has no training images"):
        one_class(x_train, y_train, x_test, y_test, names, "b")


def test_split_off_validation_rules():
    train, val = split_off_validation(10, 0.3, seed=0)
    assert len(val) == 3 and len(train) == 7 and not set(train) & set(val)
    with pytest.raises(DatasetError, match="validation_fraction"):
        split_off_validation(10, 1.0, seed=0)
    with pytest.raises(DatasetError, match="too few"):
        split_off_validation(2, 0.9, seed=0)


# --------------------------------------------------------------------------------------------
# MVTec layout on tiny fake folders
# --------------------------------------------------------------------------------------------


def test_fake_mvtec_carves_validation(tmp_path):
    root = fake_mvtec(tmp_path / "widget", n_train=10)
    ds = load_mvtec(root, image_size=16, validation_fraction=0.2, seed=3)
    assert (len(ds.train), len(ds.validation), len(ds.test)) == (8, 2, 5)
    assert ds.target == "widget" and ds.image_shape == (16, 16, 3)
    assert not set(ds.train.paths) & set(ds.validation.paths)
    np.testing.assert_array_equal(load_mvtec(root, image_size=16, validation_fraction=0.2, seed=3).validation.paths,
                                  ds.validation.paths)
    assert ds.test.labels.tolist() == [0, 0, 1, 1, 1]
    assert set(np.unique(ds.test.masks)) == {0, 1}


def test_fake_mvtec_gray_native_size(tmp_path):
    root = fake_mvtec(tmp_path / "gray", gray=True, validation=True)
    ds = load_mvtec(root, image_size=None)
    assert ds.image_shape == (24, 32, 1) and len(ds.validation) == 2
    assert load_mvtec(root, image_size=8, channels=3).image_shape == (8, 8, 3)


def test_missing_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match=str(tmp_path / "nowhere")):
        load_dataset(tmp_path / "nowhere")
    (tmp_path / "flat").mkdir()
    with pytest.raises(DatasetError, match=r"flat.*no train/"):
        load_dataset(tmp_path / "flat")


def test_root_folder_needs_category(tmp_path):
    fake_mvtec(tmp_path / "widget")
    with pytest.raises(DatasetError, match="category= one of widget"):
        load_dataset(tmp_path)
    with pytest.raises(FileNotFoundError, match="categories in .*: widget"):
        load_dataset(tmp_path, category="bolt")


def test_empty_train_folder(tmp_path):
    root = fake_mvtec(tmp_path / "widget")
    for f in (root / "train" / "good").iterdir():
        f.unlink()
    with pytest.raises(DatasetError, match=r"no images in .*train/good"):
        load_mvtec(root)


def test_unreadable_image(tmp_path):
    root = fake_mvtec(tmp_path / "widget")
    bad = root / "train" / "good" / "002.png"
    bad.write_bytes(b"this is not a png")
    with pytest.raises(DatasetError, match=f"cannot decode image {bad}"):
        load_mvtec(root)
    huge_png(bad)  # a small file whose header claims 40000x40000 pixels: was a cv2 traceback naming no file
    with pytest.raises(DatasetError, match=f"cannot decode {bad}: the image is larger than OpenCV decodes"):
        load_mvtec(root)


def test_mask_of_wrong_size(tmp_path):
    root = fake_mvtec(tmp_path / "widget")
    mask = root / "ground_truth" / "scratch" / "001_mask.png"
    write_image(mask, np.zeros((10, 10), np.uint8))
    with pytest.raises(DatasetError, match=rf"mask {mask} is 10x10 .* image .*scratch/001.png is 32x24"):
        load_mvtec(root)


def test_missing_mask(tmp_path):
    root = fake_mvtec(tmp_path / "widget")
    mask = root / "ground_truth" / "scratch" / "002_mask.png"
    mask.unlink()
    with pytest.raises(FileNotFoundError, match=f"expected {mask}"):
        load_mvtec(root)


# --------------------------------------------------------------------------------------------
# Names, arguments, other sources
# --------------------------------------------------------------------------------------------


def test_unknown_dataset_name():
    with pytest.raises(DatasetError, match=r"unknown dataset 'mnits'.*digits, mnist, fashion_mnist, cifar10"):
        load_dataset("mnits")


def test_bad_arguments():
    with pytest.raises(DatasetError, match="not both"):
        load_dataset("digits", normal_class=0, anomalous_class=1)
    with pytest.raises(DatasetError, match="channels must be 1, 3"):
        load_dataset("digits", channels=2)
    with pytest.raises(DatasetError, match="image_size"):
        load_dataset("digits", image_size=0)


def test_keras_fallback_failure_names_the_fix(monkeypatch):
    import keras

    def offline():
        raise OSError("no network")

    monkeypatch.delenv("ANOMZOO_DATA_DIR", raising=False)
    monkeypatch.setattr(keras.datasets.mnist, "load_data", offline)
    with pytest.raises(DatasetError, match=r"keras.datasets.mnist.load_data\(\) failed.*data_dir.*ANOMZOO_DATA_DIR"):
        load_dataset("mnist")


def test_keras_fallback_success(monkeypatch):
    import keras

    x, y = arrays(n_per_class=(3, 3, 3))[:2]
    fake = lambda: ((x[..., 0], y), (x[..., 0], y))  # noqa: E731 - keras gives (N, 28, 28) arrays
    monkeypatch.delenv("ANOMZOO_DATA_DIR", raising=False)
    monkeypatch.setattr(keras.datasets.fashion_mnist, "load_data", fake)
    ds = load_dataset("fashion_mnist", anomalous_class="Trouser", image_size=8, validation_fraction=0)
    assert ds.image_shape == (8, 8, 1) and len(ds.train) == 6 and ds.test.labels.sum() == 6


def test_idx_bad_magic_and_truncation(tmp_path):
    bad = tmp_path / "train-images-idx3-ubyte.gz"
    with gzip.open(bad, "wb") as f:
        f.write((2049).to_bytes(4, "big") + (0).to_bytes(4, "big"))
    with pytest.raises(DatasetError, match=f"{bad} has magic number 0x00000801, expected 0x00000803"):
        idx.read_idx(bad, idx.IMAGES_MAGIC)
    short = tmp_path / "labels"
    short.write_bytes((2049).to_bytes(4, "big") + (5).to_bytes(4, "big") + bytes(3))
    with pytest.raises(DatasetError, match=f"{short} holds 3 data bytes"):
        idx.read_idx(short, idx.LABELS_MAGIC)
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match=f"idx file not found: {tmp_path / 'empty'}/train-images"):
        idx.load_idx_folder(tmp_path / "empty")


def test_cifar10_folder_and_pickles(tmp_path):
    rng = np.random.default_rng(0)
    for split in ("train", "test"):
        for name in cifar10.CLASS_NAMES:
            write_image(tmp_path / "cifar10" / split / name / "0000.png", rng.integers(0, 256, (32, 32, 3), np.uint8))
    # What other tools leave beside the data is not data: a notebook's checkpoints, macOS' AppleDouble files.
    write_image(tmp_path / "cifar10" / "train" / ".ipynb_checkpoints" / "0000.png", np.zeros((32, 32, 3), np.uint8))
    (tmp_path / "cifar10" / "train" / "cat" / "._0000.png").write_bytes(b"\x00\x05\x16\x07")
    x_train, y_train, x_test, y_test, _ = cifar10.load_cifar10_arrays(tmp_path / "cifar10")
    assert x_train.shape == (10, 32, 32, 3) and y_test.tolist() == list(range(10))

    batches = tmp_path / "cifar-10-batches-py"
    batches.mkdir()
    rgb = x_train.transpose(0, 3, 1, 2).reshape(10, -1)  # the pickles store planes R, G, B
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        with open(batches / name, "wb") as f:
            pickle.dump({b"data": rgb, b"labels": y_train.tolist()}, f)
    px_train, _, px_test, _, _ = cifar10.load_cifar10_arrays(batches)
    assert px_train.shape == (50, 32, 32, 3) and np.array_equal(px_test, x_train)

    (tmp_path / "cifar10" / "train" / "unicorn").mkdir()
    with pytest.raises(DatasetError, match="unknown CIFAR-10 class folder 'unicorn'"):
        cifar10.load_cifar10_folder(tmp_path / "cifar10")


def test_data_dir_without_the_dataset(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"cifar10 not found in data_dir.*cifar10_jpg.tar.gz"):
        load_dataset("cifar10", data_dir=tmp_path)
    with pytest.raises(FileNotFoundError, match="data_dir not found"):
        load_dataset("mnist", data_dir=tmp_path / "nope")


# --------------------------------------------------------------------------------------------
# tf.data pipeline
# --------------------------------------------------------------------------------------------


def test_make_pipeline_images_only():
    images = np.random.default_rng(0).integers(0, 256, (10, 8, 8, 3), dtype=np.uint8)
    images[0] = 255
    batches = list(make_pipeline(images, batch_size=4, shuffle=False))
    assert [b["image"].shape[0] for b in batches] == [4, 4, 2]
    assert set(batches[0]) == {"image"}
    first = batches[0]["image"].numpy()
    assert first.dtype == np.float32 and first.min() >= 0 and first.max() == 1.0
    np.testing.assert_allclose(first, images[:4] / 255.0, atol=1e-6)


def test_make_pipeline_shuffle_masks_labels_augment():
    images = np.arange(10, dtype=np.uint8)[:, None, None, None] * np.ones((1, 4, 4, 1), np.uint8)
    masks = (np.arange(10) % 2).astype(np.uint8)[:, None, None, None] * np.ones((1, 4, 4, 1), np.uint8)
    labels = np.arange(10) % 2

    def order(seed):
        ds = make_pipeline(images, batch_size=3, shuffle=True, seed=seed, drop_remainder=True,
                           masks=masks, labels=labels)
        return [tuple(np.round(b["image"].numpy()[:, 0, 0, 0] * 255).astype(int)) for b in ds]

    first_epoch = order(1)
    assert first_epoch == order(1) and len(first_epoch) == 3
    assert first_epoch != order(2)
    # the mask and label travel with their own image through the shuffle
    for batch in make_pipeline(images, batch_size=4, shuffle=True, seed=3, masks=masks, labels=labels):
        index = np.round(batch["image"].numpy()[:, 0, 0, 0] * 255).astype(int)
        np.testing.assert_array_equal(batch["label"].numpy(), index % 2)
        np.testing.assert_array_equal(batch["mask"].numpy()[:, 0, 0, 0], index % 2)
    ds = make_pipeline(images, batch_size=5, shuffle=False, masks=masks, labels=labels,
                       augment=lambda b: {**b, "image": 1.0 - b["image"]})
    batch = next(iter(ds))
    assert batch["image"].shape == (5, 4, 4, 1) and batch["mask"].dtype.name == "float32"
    assert batch["label"].dtype.name == "int32"
    np.testing.assert_allclose(batch["image"].numpy()[:, 0, 0, 0], 1.0 - np.arange(5) / 255.0, atol=1e-6)
    with pytest.raises(ValueError, match="uint8"):
        make_pipeline(images.astype(np.float32), batch_size=2, shuffle=False)
