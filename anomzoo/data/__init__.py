"""Datasets for anomaly detection: loaders that return `AnomalyDataset`s and tf.data pipelines.

    from anomzoo.data import load_dataset, make_pipeline
    ds = load_dataset("cifar10", anomalous_class="cat")   # GANomaly protocol
    ds = load_dataset("path/to/mvtec/bottle")             # MVTec AD folder layout
    train = make_pipeline(ds.train.images, batch_size=64, shuffle=True)
"""

from anomzoo.data.errors import DatasetError
from anomzoo.data.mvtec import load_image, load_mvtec
from anomzoo.data.pipeline import decode_image_file, make_pipeline, steps_per_epoch
from anomzoo.data.protocols import leave_one_class_out, one_class
from anomzoo.data.registry import DATASETS, load_dataset
from anomzoo.data.types import AnomalyDataset, Split
from anomzoo.data.weak import moved_anomalies, weakly_supervised

__all__ = [
    "DATASETS",
    "AnomalyDataset",
    "DatasetError",
    "Split",
    "decode_image_file",
    "leave_one_class_out",
    "load_image",
    "load_dataset",
    "load_mvtec",
    "make_pipeline",
    "steps_per_epoch",
    "moved_anomalies",
    "one_class",
    "weakly_supervised",
]
