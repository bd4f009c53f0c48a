"""Choose a variant on validation data, epoch by epoch, for a one-class benchmark.

    python benchmarks/one_class_probe.py cavga --dataset mnist --normal-class 0 --epochs 10 \
        --set precision=bfloat16 latent_channels=1

Trains like `anomzoo train` (the configuration's optimizers, batch 24, the last epoch) and prints after
every epoch:
- val_bce: the per-pixel BCE of the reconstruction of the held-out normal validation images, beside
  the mean normal image's (`floors.reconstruction_floor`);
- val_auroc: image AUROC of held-out normal validation images against 1,000 images of the OTHER
  classes drawn from the TRAINING split (seeded). No test image is used, so a variant chosen on it
  is chosen honestly;
- test_auroc: the test AUROC, reported for the record, never to choose.
"""

import argparse
import json
import os
import pathlib
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np

from anomzoo import training
from anomzoo.data import load_dataset
from anomzoo.data.registry import _load_arrays
from anomzoo.floors import floor_maps, pixel_bce, reconstruction_floor
from anomzoo.metrics import image_auroc
from anomzoo.models import build_model

HERE = pathlib.Path(__file__).resolve().parent
DEFAULT_DATA = HERE.parent.parent / "shared" / "data"


def other_class_images(name, data_dir, normal_class, dataset, count=1000, seed=123):
    """`count` training-split images of the other classes, in the dataset's size and channels."""
    import cv2

    x_train, y_train = _load_arrays(name, pathlib.Path(data_dir))[:2]
    chosen = np.random.default_rng(seed).choice(np.flatnonzero(y_train != normal_class), count, replace=False)
    height, width, channels = dataset.image_shape
    images = [cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA) for image in x_train[chosen]]
    images = np.stack(images).reshape(count, height, width, -1)
    if images.shape[-1] != channels:
        raise ValueError(f"{name} has {images.shape[-1]} channel(s), the dataset {channels}")
    return images


class Probe(keras.callbacks.Callback):
    def __init__(self, dataset, anomalies):
        super().__init__()
        self.dataset, self.anomalies = dataset, anomalies
        self.labels = np.r_[np.zeros(len(dataset.validation)), np.ones(len(anomalies))]
        self.floor = reconstruction_floor(dataset.train.images, dataset.validation.images)
        self.started = time.time()

    def _outputs(self, images):
        return self.model.predict(images.astype("float32") / 255.0, batch_size=256, verbose=0)

    def on_epoch_end(self, epoch, logs=None):
        normal, anomalous, test = (self._outputs(x) for x in (self.dataset.validation.images, self.anomalies,
                                                               self.dataset.test.images))
        bce = pixel_bce(self.dataset.validation.images, normal["reconstruction"])
        print(f"epoch {epoch + 1} {time.time() - self.started:.0f}s val_bce {bce:.4f} (floor {self.floor:.4f}) "
              f"val_auroc {image_auroc(self.labels, np.r_[normal['score'], anomalous['score']]):.3f} "
              f"test_auroc {image_auroc(self.dataset.test.labels, test['score']):.3f}", flush=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model")
    parser.add_argument("--dataset", default="mnist", choices=["mnist", "fashion_mnist", "cifar10"])
    parser.add_argument("--normal-class", type=int, default=0)
    parser.add_argument("--config", default="paper_d")
    parser.add_argument("--preset", dest="config", help=argparse.SUPPRESS)  # --config\'s old name
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=24)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--set", nargs="+", default=[], metavar="KEY=VALUE", help="model options (JSON values)")
    parser.add_argument("--data-dir", default=os.environ.get("ANOMZOO_DATA_DIR", str(DEFAULT_DATA)))
    args = parser.parse_args(argv)
    options = {}
    for item in args.set:
        key, value = item.split("=", 1)
        try:
            options[key] = json.loads(value)
        except json.JSONDecodeError:
            options[key] = value
    dataset = load_dataset(args.dataset, normal_class=args.normal_class, data_dir=args.data_dir, seed=args.seed)
    anomalies = other_class_images(args.dataset, args.data_dir, args.normal_class, dataset)
    floor = floor_maps(dataset.train.images, np.r_[dataset.validation.images, anomalies])["distance to the mean normal"]
    labels = np.r_[np.zeros(len(dataset.validation)), np.ones(len(anomalies))]
    print(f"floor (distance to the mean normal): val_auroc {image_auroc(labels, floor.mean(axis=(1, 2, 3))):.3f}")
    keras.utils.set_random_seed(args.seed)
    model = build_model(args.model, args.config, image_shape=dataset.image_shape, **options)
    training.train(model, dataset, epochs=args.epochs, batch_size=args.batch_size, seed=args.seed,
                   callbacks=[Probe(dataset, anomalies)], verbose=0)


if __name__ == "__main__":
    main()
