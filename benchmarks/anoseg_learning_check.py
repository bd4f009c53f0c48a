"""Why is AnoSeg's map weak on the tire? Two checks on synthetic anomalies (no test data is read).

BatchNorm: train the segmentation stage briefly, then score the synthetic validation set's pixel
AUROC with the moving statistics (inference, what users get), with the set's own batch statistics,
and again after re-estimating the moving statistics:

    python benchmarks/anoseg_learning_check.py                 # the zoo's fused BatchNorm
    python benchmarks/anoseg_learning_check.py --layers plain  # Keras' own BatchNormalization

Memorising: score a finished run's segmenter on synthetic anomalies of training images (the first
64) and of the held-out validation images; a large gap would mean it learned the 210 normals by heart:

    python benchmarks/anoseg_learning_check.py --run runs/benchmarks/anoseg_tire/RUN_DIR

BatchNorm check: tire, 64 px, `lite`, seed 0, batch 8; the first 32 training images are held out as
the validation set (with one synthetic anomaly each), the rest train. Prints its numbers; results
are quoted in the AnoSeg README.
"""

import argparse
import contextlib
import pathlib
import time

import keras
import numpy as np

from baselines import TIRE  # noqa: E402

from anomzoo.data import load_dataset  # noqa: E402
from anomzoo.layers import nn  # noqa: E402
from anomzoo.metrics import pixel_auroc  # noqa: E402
from anomzoo.models.anoseg import AnoSeg  # noqa: E402
from anomzoo.validation import synthetic_validation_set  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=120)
    parser.add_argument("--layers", choices=("fused", "plain"), default="fused")
    parser.add_argument("--run", help="a finished AnoSeg run directory: run the memorising check on it")
    args = parser.parse_args(argv)
    if args.run:
        memorising_check(args.run)
    else:
        batchnorm_check(args.steps, args.layers)


def batchnorm_check(steps, layers):
    keras.utils.set_random_seed(0)
    data = load_dataset(str(TIRE), image_size=64)
    validation = synthetic_validation_set(data.train.images[:32], seed=0)
    train = data.train.images[32:].astype(np.float32) / 255.0
    with nn.keras_layers() if layers == "plain" else contextlib.nullcontext():
        model = AnoSeg.configured("lite", image_shape=(64, 64, 3))
    model.compile()
    model.set_stage(0)
    model.build_optimizers()
    rng = np.random.default_rng(0)
    started = time.time()
    for _ in range(steps):
        model.train_on_batch({"image": train[rng.choice(len(train), 8, replace=False)]})
    print(f"{steps} steps in {time.time() - started:.0f} s", flush=True)
    norms = [layer for layer in model.segmenter._flatten_layers() if isinstance(layer, keras.layers.BatchNormalization)]

    def pixel(training):
        return pixel_auroc(validation.masks, 1.0 - np.asarray(model.segmenter(validation.images, training=training)["map"]))

    saved = [(n.moving_mean.numpy(), n.moving_variance.numpy()) for n in norms]
    inference = pixel(False)
    batch_statistics = pixel(True)  # this call also moves the statistics: put them back
    for norm, (mean, variance) in zip(norms, saved):
        norm.moving_mean.assign(mean)
        norm.moving_variance.assign(variance)
    for _ in range(60):  # re-estimate the moving statistics on training-like batches, weights fixed
        images, _ = model._segmentation_batch(train[rng.choice(len(train), 8, replace=False)])
        model.segmenter(images, training=True)
    print({"layers": layers, "steps": steps, "pixel_auroc_inference": round(inference, 3),
           "pixel_auroc_batch_statistics": round(batch_statistics, 3),
           "pixel_auroc_after_reestimation": round(pixel(False), 3)})


def memorising_check(run):
    import anomzoo

    model = anomzoo.load_model(str(pathlib.Path(run) / "model.keras"))
    data = load_dataset(str(TIRE), image_size=model.image_shape[0])
    for name, images in (("training", data.train.images[:64]), ("validation", data.validation.images)):
        synthetic = synthetic_validation_set(images, seed=0)
        maps = model.predict(synthetic.images, batch_size=32, verbose=0)["anomaly_map"]
        print({"images": name, "synthetic_pixel_auroc": round(pixel_auroc(synthetic.masks, np.asarray(maps)), 3)})


if __name__ == "__main__":
    main()
