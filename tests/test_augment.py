"""Hard augmentation layers: shapes, THE MASK RULE, determinism, tf.data / model use, configs."""

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")
import keras  # noqa: E402

from anomzoo.augment import (  # noqa: E402
    AnomalySynthesizer,
    BlobPaste,
    BoxFill,
    CutPaste,
    HardAugment,
    HardColorJitter,
    RandomPatchPermutation,
    RandomRotate90,
    foreground_mask,
    permute_patches,
    rotate90,
)

FACTORIES = {
    "rotate": lambda s: RandomRotate90(seed=s),
    "perm": lambda s: RandomPatchPermutation(grid=4, seed=s),
    "jitter": lambda s: HardColorJitter(seed=s),
    "hard": lambda s: HardAugment(seed=s, force_one=True),
    "cutpaste": lambda s: CutPaste(seed=s, augment=HardAugment(seed=s + 100)),
    "boxfill": lambda s: BoxFill(seed=s, fill="mixed"),
    "synth_anoseg": lambda s: AnomalySynthesizer(seed=s, mode="anoseg"),
    "synth_attention": lambda s: AnomalySynthesizer(seed=s, mode="attention", full_image_prob=0.25),
    "blobpaste": lambda s: BlobPaste(seed=s, augment=HardAugment(seed=s + 100)),
    "synth_blob": lambda s: AnomalySynthesizer(seed=s, region="blob", min_change=0.05),
    "synth_fg": lambda s: AnomalySynthesizer(seed=s, foreground_threshold=0.03),
}
PAIRED = {"cutpaste", "boxfill", "synth_anoseg", "synth_attention", "blobpaste", "synth_blob", "synth_fg"}  # return (image, mask)


@pytest.fixture(scope="module")
def batch():
    return np.random.default_rng(0).random((4, 32, 32, 3)).astype("float32")


def _np(out):
    return tuple(np.asarray(t) for t in out) if isinstance(out, tuple) else np.asarray(out)


def _check_output(name, out, x):
    image = out[0] if name in PAIRED else out
    assert image.shape == x.shape and image.dtype == np.float32
    assert image.min() >= 0.0 and image.max() <= 1.0
    if name in PAIRED:
        mask = out[1]
        assert mask.shape == x.shape[:-1] + (1,) and mask.dtype == np.float32
        assert set(np.unique(mask)) <= {0.0, 1.0}
        # THE MASK RULE: 1 exactly where any channel changed
        changed = np.abs(image - x).max(axis=-1) > (0.05 if name == "synth_blob" else 0.0)
        np.testing.assert_array_equal(mask[..., 0] == 1, changed)


@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_shape_range_mask_and_determinism(name, batch):
    a = _np(FACTORIES[name](1)(batch))
    _check_output(name, a, batch)
    b = _np(FACTORIES[name](1)(batch))
    c = _np(FACTORIES[name](2)(batch))
    first = (lambda o: o[0]) if name in PAIRED else (lambda o: o)
    np.testing.assert_array_equal(first(a), first(b))  # same seed, same output
    assert not np.array_equal(first(a), first(c))  # different seed, different output
    assert not np.array_equal(first(a), batch)  # it did something


@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_tf_data_model_and_config(name, batch):
    layer = FACTORIES[name](3)
    # graph mode inside tf.data, on batches
    ds = tf.data.Dataset.from_tensor_slices(batch).batch(4).map(layer)
    got = next(iter(ds))
    got = tuple(t.numpy() for t in got) if name in PAIRED else got.numpy()
    _check_output(name, got, batch)
    # functional model (symbolic batch dimension), called eagerly on a batch
    inputs = keras.Input((32, 32, 3))
    model = keras.Model(inputs, FACTORIES[name](3)(inputs))
    _check_output(name, _np(model(batch)), batch)
    # config round trip: a layer rebuilt from the config reproduces the first call
    rebuilt = layer.__class__.from_config(layer.get_config())
    fresh = FACTORIES[name](3)
    x, y = _np(rebuilt(batch)), _np(fresh(batch))
    for u, v in zip(x, y) if name in PAIRED else [(x, y)]:
        np.testing.assert_array_equal(u, v)


def test_sequential_and_single_image(batch):
    model = keras.Sequential([keras.Input((32, 32, 3)), HardAugment(seed=0), RandomRotate90(seed=1)])
    assert model(batch).shape == batch.shape
    image, mask = AnomalySynthesizer(seed=0)(batch[0])  # one (H, W, C) image
    assert image.shape == (32, 32, 3) and mask.shape == (32, 32, 1)
    assert RandomPatchPermutation(seed=0)(batch[0]).shape == (32, 32, 3)


# ---------------------------------------------------------------- rotation


def test_rotate90_by_hand():
    x = np.array([[1, 2], [3, 4]], dtype="float32").reshape(1, 2, 2, 1)
    # counter-clockwise (numpy's rot90): [[1, 2], [3, 4]] -> [[2, 4], [1, 3]]
    np.testing.assert_array_equal(np.asarray(rotate90(x, 1))[0, ..., 0], [[2, 4], [1, 3]])
    twice = rotate90(rotate90(x, 2), 2)
    np.testing.assert_array_equal(np.asarray(twice), x)
    # per-image k as a tensor
    xs = np.concatenate([x, x])
    out = np.asarray(rotate90(xs, np.array([2, 0])))
    np.testing.assert_array_equal(out[0, ..., 0], [[4, 3], [2, 1]])
    np.testing.assert_array_equal(out[1], x[0])


def test_random_rotate90_is_a_nonzero_rotation(batch):
    out = np.asarray(RandomRotate90(seed=0)(batch))
    for x, y in zip(batch, out):
        matches = [k for k in range(4) if np.array_equal(np.rot90(x, k), y)]
        assert len(matches) == 1 and matches[0] in (1, 2, 3)
    with pytest.raises(ValueError, match="square"):
        RandomRotate90(seed=0)(np.zeros((2, 8, 6, 3), "float32"))


# ---------------------------------------------------------------- perm


def _patches(img, g):
    h, w = img.shape[0] // g, img.shape[1] // g
    return [img[i * h:(i + 1) * h, j * w:(j + 1) * w] for i in range(g) for j in range(g)]


def test_perm_preserves_patches_and_is_not_identity(batch):
    g = 4
    out = np.asarray(RandomPatchPermutation(grid=g, seed=0)(batch))
    for x, y in zip(batch, out):
        assert not np.array_equal(x, y)
        np.testing.assert_array_equal(np.sort(x, axis=None), np.sort(y, axis=None))
        src = [p.tobytes() for p in _patches(x, g)]
        assert sorted(src) == sorted(p.tobytes() for p in _patches(y, g))  # same multiset of patches


def test_permute_patches_by_hand():
    x = np.arange(16, dtype="float32").reshape(1, 4, 4, 1)
    # 2x2 grid, patches 0 1 / 2 3; perm [3, 2, 1, 0] swaps them diagonally
    out = np.asarray(permute_patches(x, np.array([[3, 2, 1, 0]]), 2))[0, ..., 0]
    np.testing.assert_array_equal(out, [[10, 11, 8, 9], [14, 15, 12, 13], [2, 3, 0, 1], [6, 7, 4, 5]])
    with pytest.raises(ValueError, match="divisible"):
        RandomPatchPermutation(grid=3, seed=0)(np.zeros((1, 8, 8, 3), "float32"))


# ---------------------------------------------------------------- hard augmentation


def test_hard_augment_probabilities(batch):
    np.testing.assert_array_equal(np.asarray(HardAugment(seed=0, p=0.0)(batch)), batch)
    # p = 1, only rotation: every image is a rotation by 90, 180 or 270 degrees
    out = np.asarray(HardAugment(seed=0, p=1.0, perm=False, color_jitter=False)(batch))
    for x, y in zip(batch, out):
        assert any(np.array_equal(np.rot90(x, k), y) for k in (1, 2, 3))
    # force_one: nothing comes out unchanged even with p = 0
    out = np.asarray(HardAugment(seed=0, p=0.0, force_one=True)(batch))
    assert all(not np.array_equal(x, y) for x, y in zip(batch, out))
    # grey images go through the colour jitter too
    grey = np.asarray(HardAugment(seed=0, p=1.0)(batch[..., :1]))
    assert grey.shape == (4, 32, 32, 1)


# ---------------------------------------------------------------- CutPaste / BoxFill / synthesizer


def test_cutpaste_mask_is_a_box_and_constant_image_gives_empty_mask(batch):
    image, mask = _np(CutPaste(seed=0, area_range=(0.1, 0.1), aspect_range=(1.0, 1.0))(batch))
    for m in mask[..., 0]:
        ys, xs = np.nonzero(m)
        # random pixels: the pasted box differs everywhere unless source == destination
        assert m.sum() == (ys.max() - ys.min() + 1) * (xs.max() - xs.min() + 1)
        assert m.sum() == round(np.sqrt(0.1 * 32 * 32)) ** 2  # 10 x 10
    flat = np.full((2, 16, 16, 3), 0.5, "float32")
    image, mask = _np(CutPaste(seed=0)(flat))
    np.testing.assert_array_equal(image, flat)
    assert mask.sum() == 0


def test_boxfill_zeros_and_already_zero_pixels(batch):
    x = batch.copy()
    x[:, :, :16] = 0.0  # left half already black: zero-filling it changes nothing there
    image, mask = _np(BoxFill(seed=0, fill="zeros", area_range=(0.3, 0.3))(x))
    changed = np.any(image != x, axis=-1)
    np.testing.assert_array_equal(mask[..., 0] == 1, changed)
    assert np.all(image[mask[..., 0] == 1] == 0.0)
    assert not mask[:, :, :16].any()


def test_blobpaste_area_opacity_and_texture_from_elsewhere():
    x = np.random.default_rng(1).random((8, 64, 64, 3)).astype("float32")
    image, mask = _np(BlobPaste(seed=0, area_range=(0.01, 0.01), opacity_range=(1.0, 1.0))(x))
    # random pixels: every pixel of the region changes, so the mask is the region, of the asked area
    # (up to ties in the noise: bilinear upsampling repeats values along the image's border)
    np.testing.assert_allclose(mask.reshape(8, -1).sum(axis=1), 0.01 * 64 * 64, rtol=0.15)
    inside = mask[..., 0] == 1
    np.testing.assert_array_equal(image[~inside], x[~inside])
    # opaque: each pasted pixel is a pixel of the same image taken from somewhere else
    for b in range(8):
        pasted = image[b][inside[b]]
        nearest = np.abs(pasted[:, None, :] - x[b].reshape(1, -1, 3)).max(axis=-1).min(axis=1)
        assert nearest.max() < 1e-6  # x + 1.0 * (texture - x) equals the texture up to rounding
        assert np.abs(pasted - x[b][inside[b]]).max(axis=-1).min() > 1e-3
    # faint: the change is opacity times the difference, never more
    faint, faint_mask = _np(BlobPaste(seed=0, area_range=(0.01, 0.01), opacity_range=(0.2, 0.2))(x))
    np.testing.assert_array_equal(faint_mask, mask)
    np.testing.assert_allclose(faint - x, 0.2 * (image - x), atol=1e-6)
    with pytest.raises(ValueError, match="opacity_range"):
        BlobPaste(opacity_range=(0.0, 1.5))
    with pytest.raises(ValueError, match="region"):
        AnomalySynthesizer(mode="attention", region="blob")


def test_synthesizer_on_real_image(tire_root):
    cv2 = pytest.importorskip("cv2")
    path = tire_root / "train" / "good" / "000.png"
    if not path.is_file():
        pytest.skip(f"{path} not found")
    img = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
    img = cv2.resize(img, (64, 64), interpolation=cv2.INTER_AREA).astype("float32") / 255.0
    x = np.stack([img] * 4)
    for options in ({"mode": "anoseg"}, {"mode": "attention"}, {"region": "blob"}):
        image, mask = _np(AnomalySynthesizer(seed=5, **options)(x))
        np.testing.assert_array_equal(mask[..., 0] == 1, np.any(image != x, axis=-1))
        assert mask.sum() > 0 and image.min() >= 0.0 and image.max() <= 1.0


def test_foreground_prior_puts_anomalies_on_the_object(tire_root):
    from anomzoo.data import load_dataset

    x = load_dataset(tire_root, image_size=64, seed=0).train.images[:16].astype("float32") / 255.0
    foreground = np.asarray(foreground_mask(x, 0.03))
    # the tire covers about a third of each image; the border, plain background, is never foreground
    assert np.all((foreground.mean(axis=(1, 2)) > 0.2) & (foreground.mean(axis=(1, 2)) < 0.5))
    assert not foreground[:, [0, -1]].any() and not foreground[:, :, [0, -1]].any()
    for region in ("box", "blob"):
        image, mask = _np(AnomalySynthesizer(seed=3, region=region, foreground_threshold=0.03)(x))
        changed = np.any(image != x, axis=-1)
        np.testing.assert_array_equal(mask[..., 0] == 1, changed)
        assert not changed[~foreground].any()  # nothing pasted on the background
        assert (mask.reshape(16, -1).sum(axis=1) > 0).mean() >= 0.75  # and most images got an anomaly
    # a plain image has no object to find: the whole image is then allowed, as without the prior
    plain = np.full((2, 32, 32, 3), 0.4, "float32")
    assert np.asarray(foreground_mask(plain, 0.03)).all()
    with pytest.raises(ValueError, match="foreground_threshold"):
        AnomalySynthesizer(mode="attention", foreground_threshold=0.03)
    with pytest.raises(ValueError, match="foreground_threshold"):
        AnomalySynthesizer(foreground_threshold=1.5)


def test_bad_arguments():
    with pytest.raises(ValueError, match="area_range"):
        CutPaste(area_range=(0.5, 0.1))
    with pytest.raises(ValueError, match="fill"):
        BoxFill(fill="noise")
    with pytest.raises(ValueError, match="mode"):
        AnomalySynthesizer(mode="cutmix")
    with pytest.raises(ValueError, match="min_change"):
        AnomalySynthesizer(min_change=1.0)
