"""What learns nothing, scored like a model: the floor under every result.

A model is judged against maps that know nothing of anomalies, on the same data and metrics:
- "distance to the mean normal": map |x - mean of the normal training images| (averaged over
  channels), score its image mean;
- "brightness": map the grey level, score its image mean.
Only training images are used (no test label, no threshold). A model below the first row has
learned less than the mean image; on one-class MNIST that row already scores 0.87 on average.

The training images may be an array, a `Split` or a streamed split (`anomzoo.data.StreamedSplit`,
images left on disk): `anomzoo.data.mean_normal_image` streams the mean of at most
`anomzoo.data.streaming.STATISTICS_CAP` of those, evenly spaced (exact for every MVTec category).
"""

import numpy as np

from anomzoo import metrics
from anomzoo.data import mean_normal_image
from anomzoo.evaluation import as_float_images, object_region


def floor_maps(train_images, test_images):
    """{name: (N, H, W, 1) map} for uint8 or [0, 1] images; higher = more anomalous. `train_images`:
    an array, a `Split` or a `StreamedSplit` (see the module's docstring)."""
    test = as_float_images(test_images)
    mean = mean_normal_image(train_images)
    return {"distance to the mean normal": np.abs(test - mean).mean(axis=-1, keepdims=True),
            "brightness": test.mean(axis=-1, keepdims=True)}


def floor_metrics(dataset):
    """{name: metrics dict} of each floor map on `dataset.test` (image score = the map's mean), with
    the pixel metrics inside the object where the test set has masks (`evaluation.object_region`)."""
    maps = floor_maps(dataset.train, dataset.test.images)
    masks = dataset.test.masks
    region = object_region(dataset.train) if masks is not None else None
    return {name: metrics.evaluate(dataset.test.labels, anomaly_map.reshape(len(anomaly_map), -1).mean(axis=1),
                                   masks=masks, maps=anomaly_map if masks is not None else None, region=region)
            for name, anomaly_map in maps.items()}


def reconstruction_floor(train_images, images):
    """Mean per-pixel binary cross-entropy of emitting the mean normal training image for `images`:
    the reconstruction loss a reconstructor must beat to have learned anything. `train_images`: an
    array, a `Split` or a `StreamedSplit`."""
    return pixel_bce(images, mean_normal_image(train_images))


def pixel_bce(images, reconstructions):
    """Mean per-pixel binary cross-entropy of `reconstructions` (broadcast against `images`)."""
    x = as_float_images(images)
    p = np.clip(np.asarray(reconstructions, "float64"), 1e-7, 1 - 1e-7)
    return float(np.mean(-(x * np.log(p) + (1 - x) * np.log(1 - p))))
