"""Input checks shared by the metrics: every public metric validates its arguments here.

Conventions (the whole package): scores and maps are "higher = more anomalous"; labels are 0 for
normal and 1 for anomalous; masks are (N, H, W) or (N, H, W, 1) arrays in {0, 1} and maps have the
same shape as the masks (a trailing channel of size 1 on either side is tolerated and dropped).
"""

from __future__ import annotations

import numpy as np


def as_labels(labels, *, name: str = "labels", both_classes: bool = True) -> np.ndarray:
    """A 1-D int array in {0, 1}; with both_classes, both 0 and 1 must occur."""
    arr = np.asarray(labels)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name} is empty")
    values = np.unique(arr)
    if not np.all(np.isin(values, (0, 1))):
        raise ValueError(f"{name} must contain only 0 (normal) and 1 (anomalous), got {values.tolist()}")
    arr = arr.astype(np.int64)
    if both_classes and values.size < 2:
        raise ValueError(
            f"{name} contain only class {int(values[0])}: the metric needs both normal (0) and "
            "anomalous (1) samples"
        )
    return arr


def as_scores(scores, n: int | None = None, *, name: str = "scores") -> np.ndarray:
    """A 1-D finite float64 array, of length n when n is given."""
    arr = np.asarray(scores, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {arr.shape}")
    if n is not None and arr.shape[0] != n:
        raise ValueError(f"labels and {name} lengths differ: labels shape ({n},), {name} shape {arr.shape}")
    check_finite(arr, name)
    return arr


def check_finite(arr: np.ndarray, name: str) -> None:
    if not np.all(np.isfinite(arr)):
        bad = int(np.size(arr) - np.count_nonzero(np.isfinite(arr)))
        raise ValueError(f"{name} contains {bad} NaN or infinite value(s)")


def _drop_channel(arr: np.ndarray) -> np.ndarray:
    if arr.ndim == 4 and arr.shape[-1] == 1:
        return arr[..., 0]
    return arr


def as_masks_maps(masks, maps) -> tuple[np.ndarray, np.ndarray]:
    """(masks, maps) as (N, H, W) bool and float64 arrays, after checking shapes and values."""
    m = np.asarray(masks)
    a = np.asarray(maps)
    m3, a3 = _drop_channel(m), _drop_channel(a)
    if m3.ndim != 3:
        raise ValueError(f"masks must be (N, H, W) or (N, H, W, 1), got shape {m.shape}")
    if m3.shape != a3.shape:
        raise ValueError(f"masks shape {m.shape} and maps shape {a.shape} do not match")
    if m3.size == 0:
        raise ValueError(f"masks are empty (shape {m.shape})")
    if m3.dtype != bool:
        bad = (m3 != 0) & (m3 != 1)
        if bad.any():
            examples = np.unique(m3[bad])[:5].tolist()
            raise ValueError(f"masks must contain only 0 and 1, got values such as {examples}")
    a3 = a3.astype(np.float64, copy=False)
    check_finite(a3, "maps")
    return m3.astype(bool), a3


def as_region(region, masks: np.ndarray) -> np.ndarray:
    """`region` ((H, W) or (N, H, W), optionally with a channel axis; True = scored) as an (N, H, W)
    bool array broadcast over `masks`; None scores every pixel."""
    if region is None:
        return np.ones(masks.shape, dtype=bool)
    r = _drop_channel(np.asarray(region)).astype(bool)
    if r.shape not in (masks.shape, masks.shape[1:]):
        raise ValueError(f"region shape {np.shape(region)} fits neither the masks {masks.shape} nor one image "
                         f"{masks.shape[1:]}")
    if not r.any():
        raise ValueError("region holds no pixel: nothing to score")
    return np.broadcast_to(r, masks.shape)


def anomalous_images(masks: np.ndarray) -> np.ndarray:
    """Indices of the images whose mask has at least one anomalous pixel."""
    return np.flatnonzero(masks.reshape(masks.shape[0], -1).any(axis=1))
