"""Maps that know nothing of defects, scored like the models: the floor under a category's metrics.

    python benchmarks/baselines.py                       # the tire at 64 and 128 px
    python benchmarks/baselines.py --category PATH --sizes 256
    python benchmarks/baselines.py --labelled-validation 0.25   # on the test images the val_real_* runs are tested on

On the tire, defects lie on the tire and never on the background, so any map that marks the tire
scores a high pixel AUROC and PRO without seeing a defect. A model's pixel metrics mean something only
above these rows. Maps (higher = more anomalous):
- `brightness`: the test image's grey level (no training at all);
- `distance to the mean normal`: |x - mean of the training images|, summed over channels;
- `per-pixel z-score`: the same divided by the training images' per-pixel standard deviation.
Only training images are used (no test data, no threshold).

Results go to results/<category>_baselines.{json,md} (with --labelled-validation F:
results/<category>_baselines_labelled<F>.{json,md}).
"""

import argparse
import os
import pathlib
import sys
import time

import numpy as np

from anomzoo import provenance
from anomzoo.data import load_dataset
from anomzoo.files import write_json, write_text
from anomzoo.metrics import best_iou, image_auroc, pixel_auroc, pro_auc

HERE = pathlib.Path(__file__).resolve().parent
TIRE = HERE.parent.parent / "shared" / "data" / "mvtec3d_tire_rgb" / "tire"


def baseline_maps(train, test):
    """{name: (N, H, W, 1) map} for float images in [0, 1]."""
    mean, std = train.mean(0), train.std(0) + 1e-3
    return {
        "brightness": test.mean(-1, keepdims=True),
        "distance to the mean normal": np.abs(test - mean).sum(-1, keepdims=True),
        "per-pixel z-score": (np.abs(test - mean) / std).sum(-1, keepdims=True),
    }


def scores(masks, labels, anomaly_map):
    flat = anomaly_map.reshape(len(anomaly_map), -1)
    top = max(1, flat.shape[1] // 100)
    return {
        "pixel_auroc": pixel_auroc(masks, anomaly_map),
        "pro": pro_auc(masks, anomaly_map),
        "iou_best": best_iou(masks, anomaly_map)[0],
        "image_auroc_map_max": image_auroc(labels, flat.max(1)),
        "image_auroc_map_top1": image_auroc(labels, np.sort(flat, 1)[:, -top:].mean(1)),
    }


def markdown(record):
    lines = [f"# {record['category']}: no-learning baselines", "", f"Re-run: `{record['command']}` "
             f"(commit {record['commit'][:10]}, {record['measured']}).", "",
             "| map | size | test images | pixel AUROC | PRO | iou_best (oracle) | image AUROC, map max "
             "| image AUROC, map top-1% |",
             "|---|---|---|---|---|---|---|---|"]
    for row in record["rows"]:
        lines.append(f"| {row['map']} | {row['image_size']} | {row['test_images']} | {row['pixel_auroc']:.3f} | "
                     f"{row['pro']:.3f} | "
                     f"{row['iou_best']:.3f} | {row['image_auroc_map_max']:.3f} | {row['image_auroc_map_top1']:.3f} |")
    lines += ["", __doc__.split("\n\n")[2].strip()]
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--category", default=str(TIRE), help="an MVTec-layout category folder")
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 128])
    parser.add_argument("--labelled-validation", type=float, metavar="F",
                        help="score only the test images left after this labelled validation fraction moves out")
    parser.add_argument("--out", default=None, help="results folder (default: benchmarks/results)")
    args = parser.parse_args(argv)
    rows = []
    for size in args.sizes:
        data = load_dataset(args.category, image_size=size, labelled_validation_fraction=args.labelled_validation)
        train = data.train.images.astype(np.float32) / 255.0
        test = data.test.images.astype(np.float32) / 255.0
        for name, anomaly_map in baseline_maps(train, test).items():
            rows.append({"map": name, "image_size": size, "test_images": len(data.test),
                         **scores(data.test.masks, data.test.labels, anomaly_map)})
            print(rows[-1], flush=True)
    category = pathlib.Path(args.category).name
    name = f"{category}_baselines" + (f"_labelled{args.labelled_validation:g}" if args.labelled_validation else "")
    record = {"category": category, "data": str(args.category), "rows": rows,
              "command": " ".join(["python benchmarks/baselines.py", *(argv if argv is not None else sys.argv[1:])]),
              "commit": provenance.commit(), "measured": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    out = pathlib.Path(args.out or HERE / "results")
    write_json(os.path.join(out, f"{name}.json"), record)
    write_text(os.path.join(out, f"{name}.md"), markdown(record))


if __name__ == "__main__":
    main()
