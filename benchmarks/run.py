"""Quality and speed benchmarks of the zoo, one command each; results land in benchmarks/results/.

    python benchmarks/run.py sagan_cifar10 --targets frog bird --epochs 1
    python benchmarks/run.py sagan_mnist --targets 0 1 --epochs 3
    python benchmarks/run.py sagan_tire --image-size 128 --epochs 10
    python benchmarks/run.py throughput

Each target's metrics (with provenance) are written to results/<benchmark>.json as soon as it
finishes, and results/<benchmark>.md is regenerated from that JSON, so an interrupted run keeps
what it measured. Data comes from ../shared/data (or --data-dir).
"""

import argparse
import json
import os
import pathlib
import resource
import shlex
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np

from anomzoo import provenance, runs
from anomzoo.files import write_json, write_text
from anomzoo.models import build_model

HERE = pathlib.Path(__file__).resolve().parent
RESULTS = HERE / "results"
DEFAULT_DATA = HERE.parent.parent / "shared" / "data"

# What the paper reports, for the side-by-side tables (SAGAN Table 2: CIFAR-10 leave-one-class-out AUC).
PAPER = {
    "sagan_cifar10": {"frog": 0.996, "bird": 0.957, "cat": 0.951, "deer": 0.998, "dog": 0.975,
                      "horse": 0.891, "ship": 0.990, "truck": 0.980, "mean": 0.967},
}

QUALITY = {
    # name: (dataset, protocol keyword, default targets, default image size)
    "sagan_cifar10": ("cifar10", "anomalous_class", ["frog", "bird", "cat", "deer", "dog", "horse", "ship", "truck"], 32),
    "sagan_mnist": ("mnist", "normal_class", [str(k) for k in range(10)], 32),
    "sagan_tire": (None, None, ["tire"], 256),
}


def _record(name, command, entry):
    """Add or replace one target's entry in results/<name>.json and redraw the markdown table."""
    path = RESULTS / f"{name}.json"
    record = json.loads(path.read_text()) if path.is_file() else {"benchmark": name, "entries": []}
    record["entries"] = [e for e in record["entries"] if e.get("key") != entry["key"]] + [entry]
    record["command"] = command
    write_json(path, record)
    write_text(RESULTS / f"{name}.md", _markdown(record))


def _markdown(record):
    name = record["benchmark"]
    lines = [f"# {name}", "", f"Re-run: `{record['command']}` (each entry also records its own command).", ""]
    if name == "throughput":
        lines += ["| preset | image size | batch | separable | images/s | peak RSS (GB) | machine | commit |",
                  "|---|---|---|---|---|---|---|---|"]
        for e in record["entries"]:
            lines.append(f"| {e['preset']} | {e['image_size']} | {e['batch_size']} | {e['separable']} | "
                         f"{e['images_per_second']:.1f} | {e['peak_rss_gb']:.1f} | {e['machine']} | {e['commit'][:10]} |")
        return "\n".join(lines) + "\n"
    paper = PAPER.get(name, {})
    metric_keys = ["image_auroc", "pixel_auroc", "iou", "iou_best", "pro", "detection_accuracy",
                   "diagnostic_auroc_reconstruction_score", "diagnostic_auroc_latent_score"]
    short = {"diagnostic_auroc_reconstruction_score": "diag. AUROC of R", "diagnostic_auroc_latent_score":
             "diag. AUROC of L", "iou_best": "iou_best (oracle)"}
    present = [k for k in metric_keys if any(k in e["metrics"] for e in record["entries"])]
    header = ["target", *[short.get(k, k) for k in present]] + (["paper AUROC"] if paper else []) + ["epochs", "seed", "train s", "commit"]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for e in sorted(record["entries"], key=lambda e: e["key"]):
        m, p = e["metrics"], e["metrics"]["provenance"]
        row = [e["key"], *[f"{m[k]:.3f}" if k in m else "-" for k in present]]
        row += [f"{paper[e['key']]:.3f}" if e["key"] in paper else "-"] if paper else []
        row += [str(p["epochs"]), str(p["seed"]), f"{p['train_seconds']:.0f}", p["commit"][:10]]
        lines.append("| " + " | ".join(row) + " |")
    entries = record["entries"]
    if len(entries) > 1:
        mean = np.mean([e["metrics"]["image_auroc"] for e in entries])
        lines += ["", f"Mean image AUROC over the {len(entries)} targets run: {mean:.3f}"
                  + (f" (paper, all its classes: {paper['mean']:.3f})." if "mean" in paper else ".")]
    p = entries[0]["metrics"]["provenance"]
    lines += ["", f"Protocol: {p['protocol']}; selection: {p['selection_rule']}; thresholds: {p['threshold_rule']}.",
              "diag.: AUROC of the score's parts R(x) and L(x) alone, on the test set; diagnostics only, "
              "never used to choose the score. iou_best uses an oracle threshold (test masks), as AnoSeg reports it.",
              f"Machine: {p['machine']}, TensorFlow {p['tensorflow']}, Keras {p['keras']}."]
    return "\n".join(lines) + "\n"


def command_for_target(command, target):
    """`command` with its --targets list narrowed to `target`, every other option kept."""
    words = shlex.split(command)
    if "--targets" not in words:
        return command
    start = end = words.index("--targets") + 1
    while end < len(words) and not words[end].startswith("--"):
        end += 1
    return shlex.join(words[:start] + [target] + words[end:])


def quality(name, args, command):
    dataset, protocol_key, default_targets, default_size = QUALITY[name]
    for target in args.targets or default_targets:
        options = {"image_size": args.image_size or default_size}
        if dataset is None:  # MVTec layout: the target is the category folder
            data = pathlib.Path(args.data_dir) / "mvtec3d_tire_rgb" / target
        else:
            data = dataset
            options.update({protocol_key: int(target) if target.isdigit() else target, "data_dir": args.data_dir})
        out = pathlib.Path(args.runs_dir) / name / target
        print(f"== {name} {target}: {args.epochs} epochs -> {out}", flush=True)
        metrics = runs.train_run("skip_attention_gan", out, dataset=data, preset=args.preset, epochs=args.epochs,
                                 batch_size=args.batch_size, seed=args.seed, verbose=2, **options)
        print({k: v for k, v in metrics.items() if k != "provenance"}, flush=True)
        _record(name, command, {"key": target, "command": command_for_target(command, target), "metrics": metrics})


def throughput(args, command):
    """Training images/s of the paper network at 32 px and 256 px (random images: speed only)."""
    import keras

    for size, batch in ((32, 64), (256, 4)):
        for separable in (True, False):
            model = build_model("skip_attention_gan", args.preset, image_shape=(size, size, 3), separable=separable)
            model.compile()
            images = np.random.default_rng(0).random((batch * (6 if size <= 64 else 3), size, size, 3), dtype=np.float32)
            model.fit(images[:batch], batch_size=batch, epochs=1, verbose=0)  # trace and warm up
            started = time.time()
            model.fit(images, batch_size=batch, epochs=1, verbose=0)
            rate = len(images) / (time.time() - started)
            print(f"{size} px separable={separable}: {rate:.1f} images/s", flush=True)
            env = provenance.environment()
            _record("throughput", command, {
                "key": f"{size}px-{'dsc' if separable else 'conv'}", "preset": args.preset, "image_size": size,
                "batch_size": batch, "separable": separable, "images_per_second": rate,
                "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6,
                "machine": env["machine"], "tensorflow": env["tensorflow"], "commit": provenance.commit(),
                "measured": time.strftime("%Y-%m-%d %H:%M"),
            })
            keras.backend.clear_session()


def redraw(name):
    """Regenerate results/<name>.md from results/<name>.json (after a change to the table)."""
    write_text(RESULTS / f"{name}.md", _markdown(json.loads((RESULTS / f"{name}.json").read_text())))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("benchmark", choices=[*QUALITY, "throughput"])
    parser.add_argument("--targets", nargs="+", help="classes / categories (default: all of the benchmark's)")
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--image-size", type=int)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--preset", default="paper")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data-dir", default=os.environ.get("ANOMZOO_DATA_DIR", str(DEFAULT_DATA)))
    parser.add_argument("--runs-dir", default=str(HERE.parent / "runs" / "benchmarks"))
    args = parser.parse_args(argv)
    provenance.commit()  # pin the commit of the code this process runs, before any later edit
    command = "python benchmarks/run.py " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:]))
    if args.benchmark == "throughput":
        throughput(args, command)
    else:
        quality(args.benchmark, args, command)


if __name__ == "__main__":
    main()
