"""Read MNIST / Fashion-MNIST from their original idx files, with numpy and gzip only.

The idx format: a 4-byte magic number (two zero bytes, a type code, the number of dimensions),
one big-endian uint32 per dimension, then the data. MNIST images have magic 2051 (uint8, 3 dims),
labels 2049 (uint8, 1 dim). Both datasets ship the same four file names.
"""

from __future__ import annotations

import gzip
import os
import pathlib

import numpy as np

from anomzoo.data.errors import DatasetError

IMAGES_MAGIC = 0x00000803  # uint8, 3 dimensions (N, rows, cols)
LABELS_MAGIC = 0x00000801  # uint8, 1 dimension (N,)
FILES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}


def read_idx(path: str | os.PathLike, expected_magic: int) -> np.ndarray:
    """Read one idx file (gzipped if its name ends in .gz) holding unsigned bytes.

    Raises DatasetError naming the file when the magic number, the header or the data size is
    not what the format and ``expected_magic`` say.
    """
    path = pathlib.Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as err:  # gzip raises these for truncated or non-gzip files
        raise DatasetError(f"cannot read idx file {path}: {err}") from err
    if len(raw) < 4:
        raise DatasetError(f"idx file {path} is {len(raw)} bytes long, too short for a header")
    magic = int.from_bytes(raw[:4], "big")
    if magic != expected_magic:
        raise DatasetError(f"idx file {path} has magic number {magic:#010x}, expected {expected_magic:#010x}")
    ndim = magic & 0xFF
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DatasetError(f"idx file {path} is truncated inside its header")
    shape = tuple(int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim))
    expected = int(np.prod(shape))
    if len(raw) - header != expected:
        raise DatasetError(f"idx file {path} holds {len(raw) - header} data bytes; its header "
                           f"(shape {shape}) says {expected}")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)


def _find(folder: pathlib.Path, stem: str) -> pathlib.Path:
    # The downloads are gzipped; accept unpacked copies too.
    for name in (stem + ".gz", stem):
        if (folder / name).is_file():
            return folder / name
    raise FileNotFoundError(f"idx file not found: {folder / (stem + '.gz')} (or unpacked {stem})")


def load_idx_folder(folder: str | os.PathLike) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Load the four MNIST-style idx files of ``folder``.

    Returns
    -------
    x_train, y_train, x_test, y_test : images as (N, 28, 28, 1) uint8, labels as (N,) int64.
    """
    folder = pathlib.Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"idx folder not found: {folder}")
    out = {}
    for key, stem in FILES.items():
        path = _find(folder, stem)
        out[key] = (path, read_idx(path, IMAGES_MAGIC if key.startswith("x") else LABELS_MAGIC))
    for split in ("train", "test"):
        (x_path, x), (y_path, y) = out[f"x_{split}"], out[f"y_{split}"]
        if x.shape[0] != y.shape[0]:
            raise DatasetError(f"{x_path} holds {x.shape[0]} images but {y_path} holds {y.shape[0]} labels")
    return (out["x_train"][1][..., None], out["y_train"][1].astype(np.int64),
            out["x_test"][1][..., None], out["y_test"][1].astype(np.int64))
