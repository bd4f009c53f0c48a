"""Load one category of a dataset in the MVTec AD folder layout.

The layout (MVTec AD, MVTec 3D-AD's RGB part, and most industrial sets users bring)::

    <category>/train/good/*.png               defect-free training images
    <category>/validation/good/*.png          optional defect-free validation images
    <category>/test/good/*.png                defect-free test images
    <category>/test/<defect>/*.png            defective test images, one folder per defect type
    <category>/ground_truth/<defect>/<stem>_mask.png   one binary mask per defective test image

Image files end in one of IMAGE_EXTENSIONS; hidden files and folders (see `is_hidden`) are skipped.

This module also holds the small OpenCV helpers (decode, resize, channel conversion) that the
other image loaders share, so that every dataset is decoded the same way.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import os
import pathlib
import warnings

import cv2
import numpy as np

from anomzoo.data.errors import DatasetError
from anomzoo.data.protocols import split_off_validation
from anomzoo.data.types import AnomalyDataset, Split

# TIFF and WebP too: OpenCV decodes them, and industrial cameras often write TIFF.
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


def is_hidden(path: str | os.PathLike) -> bool:
    """Whether a file or folder is one that tools leave beside the data (never data itself): dot names
    (macOS' AppleDouble ``._x.png``, ``.DS_Store``, ``.ipynb_checkpoints``) and zip's ``__MACOSX``."""
    name = pathlib.Path(path).name
    return name.startswith(".") or name == "__MACOSX"


# --------------------------------------------------------------------------------------------
# Shared image helpers
# --------------------------------------------------------------------------------------------


def to_hwc_rgb(image: np.ndarray | None, source: str) -> np.ndarray:
    """Bring an OpenCV-decoded image to (H, W, C) uint8 RGB (C = 3) or gray (C = 1).

    Parameters
    ----------
    image : the array from ``cv2.imread``/``cv2.imdecode`` with IMREAD_UNCHANGED, or None
        when OpenCV could not decode the file.
    source : the file (or archive member) it came from, for error messages.
    """
    if image is None or image.size == 0:
        raise DatasetError(f"cannot decode image {source}: the file is unreadable or not an image "
                           f"({', '.join(IMAGE_EXTENSIONS)} expected)")
    if image.dtype == np.uint16:
        # 16-bit PNGs occur in some industrial sets; the models work on 8-bit intensities.
        image = np.round(image.astype(np.float32) / 257.0).astype(np.uint8)
    elif image.dtype != np.uint8:
        raise DatasetError(f"image {source} has pixel type {image.dtype}; 8- or 16-bit expected")
    if image.ndim == 2:
        return image[:, :, None]
    channels = image.shape[2]
    if channels == 1:
        return image
    if channels == 2:  # gray + alpha: the alpha channel carries no appearance
        return image[:, :, :1]
    if channels == 3:
        return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    if channels == 4:  # drop alpha: transparency is not part of the scene
        return cv2.cvtColor(image, cv2.COLOR_BGRA2RGB)
    raise DatasetError(f"image {source} has {channels} channels; 1, 3 or 4 expected")


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Read an image file to (H, W, C) uint8, C = 1 for gray files and 3 for colour files."""
    # cv2.imread cannot open non-ASCII paths on Windows; decoding the bytes always works.
    try:
        data = np.fromfile(str(path), dtype=np.uint8)
    except OSError as err:
        raise DatasetError(f"cannot read image {path}: {err}") from err
    return to_hwc_rgb(_decode(data, cv2.IMREAD_UNCHANGED, path), str(path))


def _decode(data, flags, path):
    """cv2.imdecode of a file's bytes (None when empty or not an image); a DatasetError naming the
    file where OpenCV refuses it: it checks the size in the header against its pixel limit (2^30,
    `CV_IO_MAX_IMAGE_PIXELS`) before it allocates, so a small file claiming a huge image costs nothing."""
    if not data.size:  # OpenCV asserts on 0 bytes
        return None
    try:
        return cv2.imdecode(data, flags)
    except cv2.error as error:
        reason = str(error).strip().splitlines()[-1] if str(error).strip() else type(error).__name__
        raise DatasetError(f"cannot decode {path}: the image is larger than OpenCV decodes (2^30 pixels) "
                           f"or damaged ({reason})") from None


def resize_image(image: np.ndarray, size: int, interpolation: int | None = None) -> np.ndarray:
    """Resize one (H, W, C) image to (size, size, C).

    INTER_AREA when shrinking (it averages, so no aliasing), INTER_LINEAR when enlarging;
    pass ``cv2.INTER_NEAREST`` for label images such as masks.
    """
    height, width, channels = image.shape
    if (height, width) == (size, size):
        return image
    if interpolation is None:
        interpolation = cv2.INTER_AREA if size <= min(height, width) else cv2.INTER_LINEAR
    resized = cv2.resize(image, (size, size), interpolation=interpolation)
    # OpenCV drops a trailing channel axis of length 1; put it back.
    return resized.reshape(size, size, channels)


def load_image(path: str | os.PathLike, image_size: int, channels: int) -> np.ndarray:
    """One file as a model of that size and channel count takes it: (size, size, channels) uint8,
    decoded, resized and converted exactly as the dataset loaders do (`anomzoo predict` uses it)."""
    return convert_channels(resize_image(read_image(path), image_size)[None], channels)[0]


def resize_images(images: np.ndarray, size: int | None) -> np.ndarray:
    """Resize a (N, H, W, C) uint8 batch to (N, size, size, C); None or the same size: unchanged."""
    if size is None or images.shape[1:3] == (size, size):
        return images
    out = np.empty((images.shape[0], size, size, images.shape[3]), dtype=images.dtype)
    for i, image in enumerate(images):
        out[i] = resize_image(image, size)
    return out


def convert_channels(images: np.ndarray, channels: int | None) -> np.ndarray:
    """Convert a (N, H, W, C) uint8 batch to ``channels`` (1 or 3); None: unchanged."""
    if channels is None or images.shape[-1] == channels:
        return images
    if channels == 3 and images.shape[-1] == 1:
        return np.repeat(images, 3, axis=-1)
    if channels == 1 and images.shape[-1] == 3:
        # ITU-R 601 luma, the weights OpenCV's RGB2GRAY uses, computed batch-wise.
        gray = images.astype(np.float32) @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
        return np.clip(np.round(gray), 0, 255).astype(np.uint8)[..., None]
    raise DatasetError(f"cannot convert {images.shape[-1]}-channel images to {channels} channels")


def check_image_options(image_size: int | None, channels: int | None) -> None:
    """Reject an ``image_size`` or ``channels`` value before any file is read."""
    if image_size is not None and (isinstance(image_size, bool) or not isinstance(image_size, (int, np.integer))
                                   or image_size < 1):
        raise DatasetError(f"image_size must be a positive int (square images) or None, got {image_size!r}")
    if channels not in (None, 1, 3):
        raise DatasetError(f"channels must be 1, 3 or None (keep as the files are), got {channels!r}")


# --------------------------------------------------------------------------------------------
# The MVTec layout
# --------------------------------------------------------------------------------------------


def list_images(folder: pathlib.Path) -> list[pathlib.Path]:
    """The image files of ``folder``, sorted by name so that the order is deterministic."""
    if not folder.is_dir():
        raise FileNotFoundError(f"folder not found: {folder}")
    files = sorted(p for p in folder.iterdir()
                   if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS and not is_hidden(p))
    if not files:
        raise DatasetError(f"no images in {folder} (files ending in {', '.join(IMAGE_EXTENSIONS)} expected)")
    return files


def find_mask(root: pathlib.Path, defect: str, image_path: pathlib.Path) -> pathlib.Path:
    """The mask file of a defective test image: ground_truth/<defect>/<stem>_mask.png."""
    expected = root / "ground_truth" / defect / f"{image_path.stem}_mask.png"
    if expected.is_file():
        return expected
    # Some datasets store masks as .bmp, .jpg or .tif; accept any image extension before giving up.
    for ext in IMAGE_EXTENSIONS:
        for candidate in (expected.with_suffix(ext), expected.with_suffix(ext.upper())):
            if candidate.is_file():
                return candidate
    raise FileNotFoundError(f"mask not found for defective test image {image_path}: expected {expected}")


def _read_all(paths: list[pathlib.Path]) -> list[np.ndarray]:
    # OpenCV releases the GIL while decoding, so a few threads overlap file reads and decodes.
    workers = min(8, os.cpu_count() or 1, len(paths)) or 1
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        return list(pool.map(read_image, paths))


def _read_mask(path: pathlib.Path, image_path: pathlib.Path, image_shape: tuple[int, ...]) -> np.ndarray:
    data = np.fromfile(str(path), dtype=np.uint8)
    mask = _decode(data, cv2.IMREAD_GRAYSCALE, path)
    if mask is None:
        raise DatasetError(f"cannot decode mask {path}: the file is unreadable or not an image")
    if mask.shape[:2] != tuple(image_shape[:2]):
        raise DatasetError(
            f"mask {path} is {mask.shape[1]}x{mask.shape[0]} (WxH) but its image {image_path} is "
            f"{image_shape[1]}x{image_shape[0]}; a mask must have its image's size")
    # Masks are stored as 0/255 (sometimes with JPEG noise); any non-zero pixel is defective.
    return (mask > 0).astype(np.uint8)[:, :, None]


def _finish(images: list[np.ndarray], sources: list[pathlib.Path], image_size: int | None,
            channels: int) -> np.ndarray:
    """Resize and convert decoded images and stack them into one (N, H, W, C) array."""
    out = []
    for image, source in zip(images, sources):
        if image_size is not None:
            image = resize_image(image, image_size)
        out.append(convert_channels(image[None], channels)[0])  # one gray file among colour ones is fine
        if out[-1].shape[:2] != out[0].shape[:2]:
            raise DatasetError(f"image {source} is {image.shape[1]}x{image.shape[0]} (WxH) but {sources[0]} is "
                               f"{out[0].shape[1]}x{out[0].shape[0]}; pass image_size to resize them to one size")
    return np.stack(out)


def _finish_masks(masks: list[np.ndarray], image_size: int | None) -> np.ndarray:
    if image_size is not None:
        resized = [resize_image(m, image_size, cv2.INTER_NEAREST) for m in masks]
        lost = sum(1 for before, after in zip(masks, resized) if before.any() and not after.any())
        if lost:  # thin defects fall between the sampled pixels: their images count as anomalous, unmapped
            warnings.warn(f"{lost} of {sum(1 for m in masks if m.any())} defect masks vanish at {image_size} px "
                          "(nearest-neighbour shrinking misses thin defects): pixel metrics leave those defects "
                          "out; a larger --image-size keeps them", stacklevel=3)
        masks = resized
    return np.stack(masks)


def _make_split(images: np.ndarray, labels, masks: np.ndarray, defect_types, paths) -> Split:
    return Split(images=images, labels=np.asarray(labels, dtype=np.int32), masks=masks,
                 defect_types=np.asarray(defect_types, dtype=str), paths=np.asarray([str(p) for p in paths], dtype=str))


def _subset(split: Split, index: np.ndarray) -> Split:
    return Split(images=split.images[index], labels=split.labels[index], masks=split.masks[index],
                 defect_types=split.defect_types[index], paths=split.paths[index])


@dataclasses.dataclass(frozen=True)
class MVTecFiles:
    """The files of an MVTec-layout category, listed and checked (`list_mvtec`)."""

    root: pathlib.Path
    train: list
    validation: list
    test: list
    test_types: list
    masks: list  # the mask file of each test image, None for test/good


def list_mvtec(root: pathlib.Path) -> MVTecFiles:
    """Every file of the category folder ``root``, checked before any image is decoded: a missing
    folder, mask or defect type is reported before minutes of decoding (`load_mvtec`, the streamed
    and TFRecord loaders)."""
    root = pathlib.Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"MVTec category folder not found: {root}")
    for sub in ("train/good", "test"):
        if not (root / sub).is_dir():
            raise FileNotFoundError(f"{root / sub} not found; an MVTec category folder holds train/good/, "
                                    "test/<type>/ and ground_truth/<type>/")
    val_dir = root / "validation" / "good"
    defect_dirs = sorted(p for p in (root / "test").iterdir() if p.is_dir() and not is_hidden(p))
    if not any(p.name != "good" for p in defect_dirs):
        raise DatasetError(f"{root / 'test'} holds no defect folder (test/good/ and at least one test/<defect>/ "
                           "expected): anomaly metrics need defective test images")
    if not any(p.name == "good" for p in defect_dirs):
        raise DatasetError(f"{root / 'test' / 'good'} not found: anomaly metrics need defect-free test images too")
    test, types, masks = [], [], []
    for folder in defect_dirs:
        for path in list_images(folder):
            test.append(path)
            types.append(folder.name)
            masks.append(None if folder.name == "good" else find_mask(root, folder.name, path))
    return MVTecFiles(root=root, train=list_images(root / "train" / "good"),
                      validation=list_images(val_dir) if val_dir.is_dir() else [], test=test, test_types=types,
                      masks=masks)


def load_mvtec(root: str | os.PathLike, *, image_size: int | None = 256, channels: int | None = None,
               validation_fraction: float = 0.1, seed: int = 0) -> AnomalyDataset:
    """Load one category folder in the MVTec AD layout.

    Parameters
    ----------
    root : the category folder (the one holding ``train/``, ``test/`` and ``ground_truth/``).
    image_size : side of the square output images; None keeps the files' size (they must then
        all have one size). Images shrink with INTER_AREA and grow with INTER_LINEAR; masks use
        INTER_NEAREST so they stay binary.
    channels : 1 or 3, or None to keep the files' channels (3 if any image is colour).
    validation_fraction, seed : used only when there is no ``validation/good`` folder: that
        fraction of train/good is moved, by a seeded permutation, into the validation split.

    Returns
    -------
    AnomalyDataset with name "mvtec", protocol "mvtec" and target = the category folder's name.
    Every split has masks (all zero for good images); test labels are 0 for ``test/good`` and
    1 for every other folder.

    Raises
    ------
    FileNotFoundError : a missing folder, or a defective test image without its mask.
    DatasetError : an empty folder, an unreadable image, a mask whose size differs from its image.
    """
    check_image_options(image_size, channels)
    files = list_mvtec(root)
    root, train_files, val_files = files.root, files.train, files.validation
    test_files, test_types, mask_files = files.test, files.test_types, files.masks

    decoded = _read_all(train_files + val_files + test_files)
    n_train, n_val = len(train_files), len(val_files)
    if channels is None:
        channels = 3 if any(im.shape[2] == 3 for im in decoded) else 1

    test_masks = []
    for image, path, mask_path in zip(decoded[n_train + n_val:], test_files, mask_files):
        if mask_path is None:
            test_masks.append(np.zeros(image.shape[:2] + (1,), dtype=np.uint8))
        else:
            test_masks.append(_read_mask(mask_path, path, image.shape))

    def normal_split(images, files):
        stacked = _finish(images, files, image_size, channels)
        masks = np.zeros(stacked.shape[:3] + (1,), dtype=np.uint8)
        return _make_split(stacked, np.zeros(len(files)), masks, ["good"] * len(files), files)

    train = normal_split(decoded[:n_train], train_files)
    if val_files:
        validation = normal_split(decoded[n_train:n_train + n_val], val_files)
    else:
        train_idx, val_idx = split_off_validation(len(train), validation_fraction, seed,
                                                  what=str(root / "train" / "good"))
        train, validation = _subset(train, train_idx), _subset(train, val_idx)

    test_images = _finish(decoded[n_train + n_val:], test_files, image_size, channels)
    test = _make_split(test_images, [int(t != "good") for t in test_types], _finish_masks(test_masks, image_size),
                       test_types, test_files)
    return AnomalyDataset(name="mvtec", protocol="mvtec", target=root.resolve().name,
                          train=train, validation=validation, test=test)
