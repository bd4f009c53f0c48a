"""Choose a model option on validation data only: train variants and record their per-epoch scores on
the synthetic validation set (held-out normal images + seeded synthetic anomalies). No test image is
loaded into the model or scored, so the choice cannot leak test data.

    python benchmarks/validation_sweep.py anoseg --config lite --image-size 64 --epochs 6 \\
        --variant '{"balanced_segmentation": true, "learning_rate": 1e-3, "w_adv": 0.0}' \\
        --variant '{"balanced_segmentation": true, "learning_rate": 1e-3, "w_adv": 0.01}'

`--extra-validation LO HI` also scores every epoch on a validation set whose synthetic anomalies cover
LO..HI of the image area (each held-out normal image used `--extra-repeats` times, each time with
another anomaly): how a variant does on anomalies smaller or larger than those it is selected on.
`--extra-region blob` makes those sets' anomalies with AnomalySynthesizer's "blob" regions instead of
CutPaste boxes (labels then start with "blob_"): how a variant does on a kind of anomaly it was not
trained on. `--extra-min-change` marks only the pixels of those anomalies that changed visibly.
`--extra-foreground T` puts them on the object (`foreground_mask(images, T)`; labels end with "_fg").

Results: results/<model>_validation_sweep.json (one entry per variant, with provenance).
"""

import argparse
import json
import os
import pathlib
import shlex
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from anomzoo import provenance, training
from anomzoo.augment.synth import REGIONS
from anomzoo.data import load_dataset
from anomzoo.files import write_json
from anomzoo.models import build_model, canonical_name
from anomzoo.validation import synthetic_validation_set, validation_metrics
from baselines import TIRE  # noqa: E402  (benchmarks/ is the script's directory)

HERE = pathlib.Path(__file__).resolve().parent


class ExtraValidation(keras.callbacks.Callback):
    """Scores the model on each of `sets` ({label: ValidationSet}) after every epoch, and the share
    of the held-out normal images' pixels (`normals`, float32 in [0, 1]) its map flags."""

    def __init__(self, sets, normals, batch_size):
        super().__init__()
        self.sets, self.normals, self.batch_size, self.history = sets, normals, batch_size, []

    def on_epoch_end(self, epoch, logs=None):
        if not self.sets:
            return
        row = {"epoch": epoch + 1}
        for label, validation in self.sets.items():
            row.update({f"{label}/{key}": value
                        for key, value in validation_metrics(self.model, validation, self.batch_size).items()})
        # How much of a held-out normal image the map flags (> 0.5): false alarms the AUROCs can hide.
        maps = self.model.predict(self.normals, batch_size=self.batch_size, verbose=0)
        row["normal_area_flagged"] = float(np.mean(np.asarray(maps["anomaly_map"]) > 0.5))
        self.history.append(row)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model")
    parser.add_argument("--variant", action="append", required=True, help="JSON dict of model options")
    parser.add_argument("--dataset", default=str(TIRE))
    parser.add_argument("--config", default="paper")
    parser.add_argument("--preset", dest="config", help=argparse.SUPPRESS)  # --config\'s old name
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=6, help="epochs of the first stage (the only one trained)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--extra-validation", nargs=2, type=float, action="append", default=[], metavar=("LO", "HI"),
                        help="area range of an extra synthetic validation set scored every epoch")
    parser.add_argument("--extra-repeats", type=int, default=4)
    parser.add_argument("--extra-region", action="append", choices=REGIONS, default=[],
                        help="synthesiser region of the extra sets (repeatable; default box)")
    parser.add_argument("--extra-min-change", type=float, default=0.0,
                        help="the extra sets mark only pixels changed by more than this (AnoSeg's synthesis_min_change)")
    parser.add_argument("--extra-foreground", type=float, default=None,
                        help="the extra sets' anomalies lie on the object (AnoSeg's synthesis_foreground)")
    args = parser.parse_args(argv)
    name = canonical_name(args.model)
    command = "python benchmarks/validation_sweep.py " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:]))
    path = HERE / "results" / f"{name}_validation_sweep.json"
    data = load_dataset(args.dataset, image_size=args.image_size, seed=args.seed)
    repeated = np.repeat(data.validation.images, args.extra_repeats, axis=0)
    on_object = "" if args.extra_foreground is None else "_fg"
    extra_sets = {f"{'' if region == 'box' else region + '_'}area_{lo:g}_{hi:g}{on_object}":
                  synthetic_validation_set(repeated, seed=args.seed, area_range=(lo, hi), max_normal=len(repeated),
                                           region=region, min_change=args.extra_min_change,
                                           foreground_threshold=args.extra_foreground)
                  for lo, hi in args.extra_validation for region in (args.extra_region or ["box"])}
    for variant in args.variant:
        options = json.loads(variant)
        keras.utils.set_random_seed(args.seed)  # the same initial weights for every variant: seeds alone move results
        model = build_model(name, args.config, image_shape=data.image_shape, **options)
        started = time.time()
        epochs = [args.epochs] + [1] * (len(model.stages) - 1)
        # Only the first stage's epochs are read below; a later stage, if any, gets one epoch.
        extra = ExtraValidation(extra_sets, data.validation.images.astype("float32") / 255.0, args.batch_size)
        result = training.train(model, data, epochs=epochs, batch_size=args.batch_size, seed=args.seed,
                                selection="val_syn_auroc", callbacks=[extra], verbose=2)
        record = json.loads(path.read_text()) if path.is_file() else {"benchmark": path.stem, "entries": []}
        record["entries"].append({
            "options": options, "preset": args.config, "dataset": args.dataset, "image_size": args.image_size,
            "stage_epochs": epochs, "batch_size": args.batch_size, "seed": args.seed, "command": command,
            "validation_history": result.selector.history, "extra_validation_history": extra.history,
            "extra_repeats": args.extra_repeats, "seconds": round(time.time() - started, 1),
            "commit": provenance.commit(), **provenance.environment(),
        })
        write_json(path, record)


if __name__ == "__main__":
    main()
