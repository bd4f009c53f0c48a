"""Quality and speed benchmarks of the zoo, one command each; results land in benchmarks/results/.

    python benchmarks/run.py anoseg tire --image-size 64 --config lite --seeds 0 1 2 --stage-epochs 8 4
    python benchmarks/run.py sagan tire --image-size 64 --epochs 10 --selection val_syn_auroc
    python benchmarks/run.py sagan cifar10 --targets frog --epochs 1
    python benchmarks/run.py anoseg mnist --targets 0 1 --epochs 3 --config lite
    python benchmarks/run.py anoseg throughput --sizes 128 256 --configs paper lite

Each run's metrics (with provenance: model, configuration, data, epochs per stage, seed, selection rule
and selected epochs, threshold rule, commit, machine, wall time) are written to
results/<model>_<benchmark>.json as soon as it finishes, and results/<model>_<benchmark>.md is
redrawn from that JSON, so an interrupted benchmark keeps what it measured. Data comes from
../shared/data (or --data-dir). The training options and their defaults are `anomzoo train`'s
(`anomzoo train --help`): with no --config, --epochs or --selection, the recommended configuration.
"""

import argparse
import json
import os
import pathlib
import resource
import shlex
import shutil
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np

from anomzoo import cli, provenance, rundir, runs
from anomzoo.data import load_dataset
from anomzoo.data.pipeline import make_pipeline
from anomzoo.floors import floor_metrics
from anomzoo.files import atomic_path, write_json, write_text
from anomzoo.models import build_model, canonical_name
from anomzoo.validation import RULES

HERE = pathlib.Path(__file__).resolve().parent
RESULTS = HERE / "results"
DEFAULT_DATA = HERE.parent.parent / "shared" / "data"
SHORT_NAMES = {"skip_attention_gan": "sagan"}  # results files keep the names they were first written under

# What the papers report, for the side-by-side tables.
PAPER = {
    # SAGAN Table 2: CIFAR-10 leave-one-class-out AUC.
    # CAVGA Table 2 (ECCV): one-class mean image AUROC of CAVGA-D_u over the 10 classes.
    "cavga_mnist": {"mean": 0.986}, "cavga_fashion_mnist": {"mean": 0.885}, "cavga_cifar10_oneclass": {"mean": 0.737},
    # Attention + ADGAN Table 2: CIFAR-10 one-class mean image AUROC (no per-class values; Table 1 is a DCGAN study).
    "attention_adgan_cifar10_oneclass": {"mean": 0.823},
    "sagan_cifar10": {"frog": 0.996, "bird": 0.957, "cat": 0.951, "deer": 0.998, "dog": 0.975,
                      "horse": 0.891, "ship": 0.990, "truck": 0.980, "mean": 0.967},
}

BENCHMARKS = {
    # name: (dataset, protocol keyword, default targets, default image size)
    "cifar10": ("cifar10", "anomalous_class", ["frog", "bird", "cat", "deer", "dog", "horse", "ship", "truck"], 32),
    "mnist": ("mnist", "normal_class", [str(k) for k in range(10)], 32),
    "digits": ("digits", "normal_class", [str(k) for k in range(10)], 32),
    # CAVGA-D_u's one-class protocol (one class normal, the other nine anomalous).
    "fashion_mnist": ("fashion_mnist", "normal_class", [str(k) for k in range(10)], 32),
    "cifar10_oneclass": ("cifar10", "normal_class", [str(k) for k in range(10)], 32),
    "tire": (None, None, ["tire"], 256),
}
METRICS = ["image_auroc", "pixel_auroc", "pro", "pixel_auroc_object", "pro_object", "iou", "iou_best", "detection_accuracy",
           "diagnostic_auroc_map_max_score", "diagnostic_auroc_map_top1_score",
           "diagnostic_auroc_reconstruction_score", "diagnostic_auroc_latent_score"]
FLOOR = "distance to the mean normal"  # the floor a model row is marked against (anomzoo.floors)
SHORT = {"pixel_auroc_object": "pixel AUROC in object", "pro_object": "PRO in object", "iou_best": "iou_best (oracle)", "diagnostic_auroc_map_max_score": "AUROC map max",
         "diagnostic_auroc_map_top1_score": "AUROC map top-1%", "diagnostic_auroc_reconstruction_score":
         "diag. AUROC of R", "diagnostic_auroc_latent_score": "diag. AUROC of L"}


def options_suffix(options):
    """`--set` options as they appear in result keys and labels: "+precision=bfloat16"."""
    return "".join(f"+{k}={v}" for k, v in options.items())


def results_name(model, benchmark):
    return f"{SHORT_NAMES.get(model, model)}_{benchmark}"


def _record(name, command, entry):
    """Add or replace one entry in results/<name>.json and redraw its markdown (and IoU curves)."""
    path = RESULTS / f"{name}.json"
    record = json.loads(path.read_text()) if path.is_file() else {"benchmark": name, "entries": []}
    record["entries"] = [e for e in record["entries"] if e.get("key") != entry["key"]] + [entry]
    record["command"] = command
    write_json(path, record)
    redraw(name)


def _fmt(values):
    values = [v for v in values if v is not None]
    if not values:
        return "-"
    if len(values) == 1:
        return f"{values[0]:.3f}"
    return f"{np.mean(values):.3f} ± {np.std(values):.3f}"


def _group(entry):
    p = entry["metrics"]["provenance"]
    variant = options_suffix(p.get("model_options", {}))
    return (p.get("target"), tuple(p.get("image_size", []))[:1], f"{p.get('preset')}{variant}",
            json.dumps(p.get("stage_epochs", p.get("epochs"))), p.get("selection", {}).get("rule", "last"))


def _quality_markdown(record):
    entries = sorted(record["entries"], key=lambda e: e["key"])
    present = [k for k in METRICS if any(k in e["metrics"] for e in entries)]
    lines = [f"# {record['benchmark']}", "", f"Last command: `{record['command']}` (each entry records its own).", ""]
    # One row per configuration: the mean ± std over its seeds, selected and last weights side by side.
    lines += ["## By configuration (mean ± std over seeds)", "",
              "| target | size | config | epochs per stage | selection | seeds | "
              + " | ".join(SHORT.get(k, k) for k in present) + " | last: image AUROC | last: pixel AUROC |",
              "|" + "---|" * (len(present) + 8)]
    groups = {}
    for e in entries:
        groups.setdefault(_group(e), []).append(e)
    for (target, size, preset, epochs, rule), members in groups.items():
        m = [e["metrics"] for e in members]
        floors = members[0].get("floors", {})
        row = [str(target), f"{size[0] if size else '-'}", str(preset), epochs, rule,
               ", ".join(str(x["provenance"]["seed"]) for x in m)]
        row += [_fmt([x.get(k) for x in m]) + _below(floors, k, [x.get(k) for x in m]) for k in present]
        row += [_fmt([x.get("last", {}).get(k) for x in m]) for k in ("image_auroc", "pixel_auroc")]
        lines.append("| " + " | ".join(row) + " |")
    lines += _floor_tables(groups, present)
    lines += ["", "## Every run", "", "| key | image AUROC | pixel AUROC | PRO | selected epochs | train s | commit |",
              "|---|---|---|---|---|---|---|"]
    for e in entries:
        m, p = e["metrics"], e["metrics"]["provenance"]
        chosen = p.get("selection", {}).get("selected_epochs") or "-"
        if isinstance(chosen, dict):
            chosen = ", ".join(f"{stage} {v['epoch']}" for stage, v in chosen.items())
        lines.append(f"| {e['key']} | {_fmt([m.get('image_auroc')])} | {_fmt([m.get('pixel_auroc')])} | "
                     f"{_fmt([m.get('pro')])} | {chosen} | {p['train_seconds']:.0f} | {p['commit'][:10]} |")
    paper = PAPER.get(record["benchmark"])
    if paper:
        lines += ["", "Paper: " + ", ".join(f"{k} {v:.3f}" for k, v in paper.items())]
    p = entries[0]["metrics"]["provenance"]
    lines += ["", f"Protocol: {p['protocol']}; thresholds: {p['threshold_rule']}.",
              "Selection rules: " + "; ".join(f"`{k}`: {v}" for k, v in RULES.items()) + ".",
              "\"last\" columns: the same run evaluated with the last epoch's weights of every stage. AUROC map "
              "max / top-1%: image scores taken from the anomaly map (labelled alternatives to the model's score); "
              "diag. R / L: SAGAN's score parts alone. iou uses the map threshold from validation normals; "
              "iou_best is an oracle threshold (test masks), as AnoSeg reports it.",
              f"Machine: {p['machine']}, TensorFlow {p['tensorflow']}, Keras {p['keras']}."]
    return "\n".join(lines) + "\n"


def _below(floors, key, values):
    """" **below floor**" where the mean of `values` is under the FLOOR map's value of `key`."""
    floor = floors.get(FLOOR, {}).get(key)
    values = [v for v in values if v is not None]
    return " **below floor**" if floor is not None and values and np.mean(values) < floor else ""


def _floor_tables(groups, present):
    """The no-learning rows of each target (anomzoo.floors), then, per configuration run on several
    targets, its per-target means beside the floor and their mean over targets."""
    floors = {}
    for (target, size, *_), members in groups.items():
        if members[0].get("floors"):
            floors[(target, size)] = members[0]["floors"]
    if not floors:
        return []
    lines = ["", "## No-learning floors (`anomzoo.floors`: nothing trained, same test set and metrics)", "",
             "| target | size | map | " + " | ".join(SHORT.get(k, k) for k in present) + " |",
             "|" + "---|" * (len(present) + 3)]
    for (target, size), maps in floors.items():
        for name, values in maps.items():
            lines.append(f"| {target} | {size[0] if size else '-'} | {name} | "
                         + " | ".join(_fmt([values.get(k)]) for k in present) + " |")
    configurations = {}
    for (target, size, preset, epochs, rule), members in groups.items():
        if (target, size) in floors:
            configurations.setdefault((size, preset, epochs, rule), []).append((target, members))
    for (size, preset, epochs, rule), targets in configurations.items():
        if len(targets) < 2:
            continue
        lines += ["", f"### {preset}, epochs {epochs}, selection {rule}: image AUROC by target", "",
                  "| target | floor (distance to mean) | brightness | model (mean ± std over seeds) | seeds |",
                  "|---|---|---|---|---|"]
        model_means, floor_values = [], []
        for target, members in targets:
            values = [e["metrics"]["image_auroc"] for e in members]
            floor = floors[(target, size)][FLOOR]["image_auroc"]
            model_means.append(np.mean(values))
            floor_values.append(floor)
            lines.append(f"| {target} | {floor:.3f} | {floors[(target, size)]['brightness']['image_auroc']:.3f} | "
                         f"{_fmt(values)}{' **below floor**' if np.mean(values) < floor else ''} | {len(values)} |")
        lines.append(f"| **mean of {len(targets)}** | {np.mean(floor_values):.3f} | - | {np.mean(model_means):.3f} | - |")
    return lines


def _iou_curves_png(record, path):
    curves = [e for e in record["entries"] if "iou_curve" in e["metrics"]]
    if not curves:
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for e in sorted(curves, key=lambda e: e["key"]):
        curve = e["metrics"]["iou_curve"]
        ax.plot(curve["thresholds"], curve["iou"], label=e["key"], lw=1)
    ax.set_xlabel("map threshold")
    ax.set_ylabel("mean IoU (anomalous test images)")
    ax.set_title(f"{record['benchmark']}: IoU vs threshold (AnoSeg Fig. 6b)")
    ax.legend(fontsize=6)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120)
    plt.close(fig)


def _throughput_markdown(record):
    lines = [f"# {record['benchmark']}", "", f"Re-run: `{record['command']}`.", "",
             "| model | config | image size | batch | stage | images/s | peak RSS (GB) | machine | commit |",
             "|---|---|---|---|---|---|---|---|---|"]
    for e in sorted(record["entries"], key=lambda e: e["key"]):
        preset = e["preset"] + "".join(f" {k}={v}" for k, v in e.get("options", {}).items())
        lines.append(f"| {e.get('model', 'skip_attention_gan')} | {preset} | {e['image_size']} | "
                     f"{e['batch_size']} | {e.get('stage', '-')} | {e['images_per_second']:.2f} | "
                     f"{e['peak_rss_gb']:.1f} | {e['machine']} | {e['commit'][:10]} |")
    lines += ["", "Training images per second on random images (speed only), after one traced warm-up epoch; "
              "measured with nothing else running. Peak RSS is the process's maximum so far (it includes "
              "the rows measured before it)."]
    return "\n".join(lines) + "\n"


def redraw(name):
    """Regenerate results/<name>.md (and the IoU-curve plot) from results/<name>.json."""
    record = json.loads((RESULTS / f"{name}.json").read_text())
    if name.endswith("throughput"):
        write_text(RESULTS / f"{name}.md", _throughput_markdown(record))
        return
    write_text(RESULTS / f"{name}.md", _quality_markdown(record))
    _iou_curves_png(record, RESULTS / f"{name}_iou_curve.png")


def command_for_run(command, target, seed):
    """`command` narrowed to one target and one seed, every other option kept."""
    words = shlex.split(command)
    for flag, value in (("--targets", target), ("--seeds", str(seed))):
        if flag in words:
            start = end = words.index(flag) + 1
            while end < len(words) and not words[end].startswith("--"):
                end += 1
            words = words[:start] + [value] + words[end:]
    return shlex.join(words)


def quality(model, benchmark, args, command):
    dataset, protocol_key, default_targets, default_size = BENCHMARKS[benchmark]
    size = args.image_size or default_size
    configuration = cli.training_configuration(args, size)
    config, epochs, selection = configuration["config"], configuration["epochs"], configuration["selection"]
    for target in args.targets or default_targets:
        for seed in args.seeds:
            options = {"image_size": size}
            if dataset is None:  # MVTec layout: the target is the category folder
                data = pathlib.Path(args.data_dir) / "mvtec3d_tire_rgb" / target
            else:
                data = dataset
                options[protocol_key] = int(target) if target.isdigit() else target
                if dataset != "digits":
                    options["data_dir"] = args.data_dir
            if getattr(args, "streaming", False):  # MVTec-layout data read from disk (array datasets refuse it)
                options["streaming"] = True
            if args.weak_fraction:  # CAVGA_w: anomalous test images moved into training (anomzoo.data.weak)
                options["weak_fraction"] = args.weak_fraction
            if args.labelled_validation:  # real defects to select on, out of the test split (anomzoo.data.labelled_validation)
                options["labelled_validation_fraction"] = args.labelled_validation
            variant = options_suffix(args.model_options)
            variant += f"+weak={args.weak_fraction}" if args.weak_fraction else ""
            variant += f"+labelled={args.labelled_validation}" if args.labelled_validation else ""
            key = f"{target}@{size}px/{config}{variant}/e{'-'.join(map(str, np.atleast_1d(epochs)))}/{selection}/seed{seed}"
            out = pathlib.Path(args.runs_dir) / results_name(model, benchmark) / key.replace("/", "_").replace("@", "_")
            print(f"== {model} {benchmark} {key} -> {out}", flush=True)
            if (rundir.read_run_record(out) or {}).get("status") == "finished":
                shutil.rmtree(out)  # a re-run replaces the entry; an unfinished run (killed) is continued instead
            metrics = runs.train_run(model, out, dataset=data, config=config, epochs=epochs,
                                     batch_size=args.batch_size, seed=seed, selection=selection,
                                     model_options=args.model_options, verbose=2,
                                     **options)
            print({k: v for k, v in metrics.items() if k not in ("provenance", "iou_curve")}, flush=True)
            floors = floor_metrics(load_dataset(data, seed=seed, **options))
            _record(results_name(model, benchmark), command,
                    {"key": key, "command": command_for_run(command, target, seed), "metrics": metrics,
                     "floors": floors})


def throughput(model, args, command):
    """Training images/s of each stage at each size (random images: speed only)."""
    import keras

    variant = options_suffix(args.model_options)
    for config in args.configs:
        for size in args.sizes:
            batch = args.batch_size
            net = build_model(model, config, image_shape=(size, size, 3), **args.model_options)
            net.compile()
            images = np.random.default_rng(0).integers(0, 256, (batch * args.steps, size, size, 3), dtype=np.uint8)
            for stage in net.stages:
                net.set_stage(stage.name)
                # The zoo's pipeline, not NumPy arrays: Keras' own pipeline for arrays can idle for
                # seconds at the end of a call (tf.data autotuning), which 3 steps cannot hide.
                net.fit(make_pipeline(images[:batch], batch_size=batch, shuffle=True), verbose=0)  # trace, warm up
                started = time.time()
                net.fit(make_pipeline(images, batch_size=batch, shuffle=True), verbose=0)
                rate = len(images) / (time.time() - started)
                print(f"{model} {config} {size} px {stage.name}: {rate:.2f} images/s", flush=True)
                env = provenance.environment()
                _record(results_name(model, "throughput"), command, {
                    "key": f"{config}{variant}-{size}px-{stage.name}", "model": model, "preset": config, "image_size": size,
                    "options": args.model_options,
                    "batch_size": batch, "stage": stage.name, "images_per_second": rate,
                    "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6,
                    "machine": env["machine"], "tensorflow": env["tensorflow"], "commit": provenance.commit(),
                    "measured": time.strftime("%Y-%m-%d %H:%M"),
                })
            keras.backend.clear_session()


def _option_value(text):
    """A --set value: JSON (true, 0.5, ["rotation"]), else the plain string (precision=bfloat16)."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def build_parser():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", help="registry name or alias (e.g. anoseg, sagan)")
    parser.add_argument("benchmark", choices=[*BENCHMARKS, "throughput"])
    parser.add_argument("--targets", nargs="+", help="classes / categories (default: all of the benchmark's)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    cli.add_training_options(parser)  # as `anomzoo train` takes them, with its defaults
    cli.add_data_options(parser)
    parser.add_argument("--set", nargs="+", action="extend", default=[], metavar="KEY=VALUE",
                        help="model options on top of the configuration, e.g. balanced_segmentation=true (repeatable)")
    parser.add_argument("--configs", nargs="+", default=["paper"], help="throughput: configurations to time")
    parser.add_argument("--presets", nargs="+", dest="configs", help=argparse.SUPPRESS)  # --configs' old name
    parser.add_argument("--sizes", type=int, nargs="+", default=[128, 256], help="throughput: image sizes")
    parser.add_argument("--steps", type=int, default=3, help="throughput: timed steps per stage")
    parser.add_argument("--runs-dir", default=str(HERE.parent / "runs" / "benchmarks"))
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    args.data_dir = args.data_dir or os.environ.get("ANOMZOO_DATA_DIR") or str(DEFAULT_DATA)
    args.model_options = {k: _option_value(v) for k, v in (item.split("=", 1) for item in args.set)}
    if args.precision != "float32":  # the same key as --set precision=bfloat16
        args.model_options.setdefault("precision", args.precision)
    model = canonical_name(args.model)
    provenance.commit()  # pin the commit of the code this process runs, before any later edit
    command = "python benchmarks/run.py " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:]))
    if args.benchmark == "throughput":
        throughput(model, args, command)
    else:
        quality(model, args.benchmark, args, command)


if __name__ == "__main__":
    main()
