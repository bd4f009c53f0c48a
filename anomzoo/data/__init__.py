"""Datasets for anomaly detection: loaders that return `AnomalyDataset`s and tf.data pipelines.

    from anomzoo.data import load_dataset, make_pipeline
    ds = load_dataset("cifar10", anomalous_class="cat")   # GANomaly protocol
    ds = load_dataset("path/to/mvtec/bottle")             # MVTec AD folder layout
    train = make_pipeline(ds.train.images, batch_size=64, shuffle=True)

Data larger than memory streams: ``load_dataset(folder, streaming=True)`` leaves the training images
on disk (a `StreamedSplit`), and ``write_tfrecords(folder, out)`` writes ~100 MB TFRecord shards that
``load_dataset(out, streaming=True)`` reads, locally or from gs://. ``training_pipeline(ds.train, ...)``
gives either kind of split's training batches.
"""

from anomzoo.data.errors import DatasetError
from anomzoo.data.mvtec import load_image, load_mvtec
from anomzoo.data.pipeline import decode_image_file, make_pipeline, steps_per_epoch
from anomzoo.data.protocols import leave_one_class_out, one_class
from anomzoo.data.registry import DATASETS, load_dataset
from anomzoo.data.streaming import StreamedSplit, mean_normal_image, normal_batches, training_pipeline
from anomzoo.data.tfrecord import write_tfrecords
from anomzoo.data.types import AnomalyDataset, Split
from anomzoo.data.weak import moved_anomalies, weakly_supervised

__all__ = [
    "DATASETS",
    "AnomalyDataset",
    "DatasetError",
    "Split",
    "StreamedSplit",
    "decode_image_file",
    "leave_one_class_out",
    "load_image",
    "load_dataset",
    "load_mvtec",
    "make_pipeline",
    "mean_normal_image",
    "normal_batches",
    "steps_per_epoch",
    "moved_anomalies",
    "one_class",
    "training_pipeline",
    "weakly_supervised",
    "write_tfrecords",
]
