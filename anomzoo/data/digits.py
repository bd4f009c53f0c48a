"""scikit-learn's 8x8 handwritten digits: a tiny dataset that ships with scikit-learn.

It needs no download, so it is the dataset for quick checks and offline examples. It has no
train/test split of its own; we make a stratified 50/50 one with a fixed seed.
"""

from __future__ import annotations

import numpy as np

CLASS_NAMES = tuple(str(d) for d in range(10))


def load_digits_arrays(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, tuple[str, ...]]:
    """The 1,797 digit images as (x_train, y_train, x_test, y_test, class_names).

    Images are (N, 8, 8, 1) uint8, scaled from scikit-learn's 0..16 to 0..255. The split is
    stratified (each class halved) and depends only on ``seed``.
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    bunch = load_digits()
    images = np.round(bunch.images * (255.0 / 16.0)).astype(np.uint8)[..., None]
    labels = bunch.target.astype(np.int64)
    x_train, x_test, y_train, y_test = train_test_split(images, labels, test_size=0.5, stratify=labels,
                                                        random_state=seed)
    return x_train, y_train, x_test, y_test, CLASS_NAMES
