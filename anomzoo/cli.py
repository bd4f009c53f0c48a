"""The `anomzoo` command: train | evaluate | export | predict | serve | zoo | models | data."""

import argparse
import json
import os
import pathlib
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's start-up chatter out of the way

# anomzoo.distribute.STRATEGIES, written out so that --help needs no TensorFlow (a test keeps them equal)
STRATEGIES = ("mirrored", "multi_worker")
HEADLINE = ("image_auroc", "pixel_auroc", "iou", "pro", "detection_accuracy")


def _class(value):
    return int(value) if value.isdigit() else value


def _fraction(value):
    try:
        number = float(value)
    except ValueError:
        number = None
    if number is None or not 0.0 < number < 1.0:
        raise argparse.ArgumentTypeError(f"expected a fraction strictly between 0 and 1, got {value!r}")
    return number


def _positive_int(value):
    number = _int(value)
    if number < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value!r}")
    return number


def _non_negative_int(value):
    number = _int(value)
    if number < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {value!r}")
    return number


def _port(value):
    number = _int(value)
    if not 1 <= number <= 65535:
        raise argparse.ArgumentTypeError(f"expected a TCP port, 1 to 65535, got {value!r}")
    return number


def _int(value):
    try:
        return int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {value!r}") from None


def _add_dataset_options(parser, default_dataset):
    parser.add_argument("--dataset", default=default_dataset,
                        help="digits | mnist | fashion_mnist | cifar10 | PATH to an MVTec-layout category "
                             f"(default: {default_dataset})")
    parser.add_argument("--category", help="category folder, when --dataset is an MVTec root")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--normal-class", type=_class, help="one-class protocol: this class is normal")
    group.add_argument("--anomalous-class", type=_class,
                       help="leave-one-class-out protocol: this class is anomalous, the rest normal")
    add_data_options(parser)
    parser.add_argument("--seed", type=_non_negative_int, default=0)
    parser.add_argument("--out", help="where to write: the run directory (default: runs/<model>-<dataset>-<time>), "
                                      "or the export folder (default: exports/<run name>)")


def add_data_options(parser):
    """How the images are read and batched (`benchmarks/run.py` takes these too)."""
    parser.add_argument("--image-size", type=_positive_int, help="square side to resize to (default: 32, MVTec 256)")
    parser.add_argument("--data-dir", help="where local MNIST / Fashion-MNIST / CIFAR-10 copies live "
                                           "(default: $ANOMZOO_DATA_DIR; else keras.datasets, online)")
    parser.add_argument("--labelled-validation", type=_fraction, metavar="F",
                        help="this fraction of each test defect type (and of the good test images; a fixed draw) "
                             "moves, with its masks, into a labelled validation split for the val_real_* selection "
                             "rules; the test metrics are on the rest (give the same F to evaluate a run on that rest)")
    # 16, not the paper's 64: on datasets of a few hundred images (digits, an MVTec category) a
    # batch of 64 leaves too few steps for BatchNorm's running statistics to settle.
    parser.add_argument("--batch-size", type=_positive_int, default=16)
    parser.add_argument("--streaming", action="store_true",
                        help="MVTec-layout and TFRecord folders: leave the training images on disk and stream them "
                             "(data larger than memory); validation and test still load into memory")


def _dataset_options(args):
    options = {"category": args.category, "normal_class": args.normal_class,
               "anomalous_class": args.anomalous_class, "image_size": args.image_size, "data_dir": args.data_dir,
               "weak_fraction": getattr(args, "weak_fraction", None),  # train only
               "labelled_validation_fraction": getattr(args, "labelled_validation", None),
               "streaming": getattr(args, "streaming", False) or None}  # absent unless asked: requests as they were
    return {k: v for k, v in options.items() if v is not None}


def _image_side(args):
    """The side of the images a command will load: --image-size, else the loaders' default."""
    from anomzoo.data.registry import DATASETS

    return args.image_size or (32 if str(args.dataset).lower() in DATASETS else 256)


def training_configuration(args, image_side):
    """{"config", "epochs", "selection"}: each as given, else as the model recommends for images of
    `image_side` (`AnomalyModel.recommended`)."""
    from anomzoo.models import MODELS, canonical_name

    if args.epochs and args.stage_epochs:
        raise ValueError("give --epochs (split over the stages) or --stage-epochs (one count a stage), not both")
    recommended = MODELS[canonical_name(args.model)].recommended(image_side)
    return {"config": args.config or recommended["config"],
            "epochs": args.stage_epochs or args.epochs or recommended["epochs"],
            "selection": args.selection or recommended["selection"]}


def _model_option(text):
    """A --set KEY=VALUE: (key, value), the value read as JSON (true, 0.5, ["rotation"]) or else kept as
    the plain string (backbone_weights=imagenet), as benchmarks/run.py reads them."""
    key, equals, value = text.partition("=")
    if not key or not equals:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value


def _recommendations():
    """{registry name: RECOMMENDED} read from each model folder's presets.py (plain constants) without
    importing the models, so that --help answers without loading TensorFlow."""
    import importlib.util

    found = {}
    for path in sorted((pathlib.Path(__file__).parent / "models").glob("*/presets.py")):
        spec = importlib.util.spec_from_file_location(f"_anomzoo_presets_{path.parent.name}", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        found[path.parent.name] = getattr(module, "RECOMMENDED", ())
    return found


def _recommendations_text():
    lines = ["with no --config, --epochs or --selection, `train` uses what the zoo's results recommend "
             "for the model and image size:"]
    for name, recommendations in _recommendations().items():
        for largest, c in recommendations:
            size = f"up to {largest} px" if largest else ("larger" if len(recommendations) > 1 else "any size")
            epochs = (f"--stage-epochs {' '.join(map(str, c['epochs']))}" if isinstance(c["epochs"], list)
                      else f"--epochs {c['epochs']}")
            lines.append(f"  {name}, {size}: --config {c['config']} {epochs} --selection {c['selection']}")
    return "\n".join(lines)


def add_training_options(parser):
    """How a model is trained: configuration, epochs, selection, precision (`benchmarks/run.py` takes
    these too, with the same defaults)."""
    from anomzoo.validation import RULES

    parser.add_argument("--config", help="a named configuration of the model (`anomzoo models` lists them); "
                                         "default: the one recommended for the model and image size (below)")
    parser.add_argument("--preset", dest="config", help=argparse.SUPPRESS)  # --config's old name: recorded commands still run
    parser.add_argument("--epochs", type=_positive_int,
                        help="epochs in all; a two-stage model splits them over its stages (AnoSeg: 2/3 "
                             "segmentation, 1/3 detector) unless --stage-epochs is given (default: recommended)")
    parser.add_argument("--stage-epochs", type=_positive_int, nargs="+", metavar="N",
                        help="epochs of each stage, in order (e.g. AnoSeg: --stage-epochs 20 10)")
    parser.add_argument("--selection", choices=sorted(RULES),
                        help="which epoch's weights to keep: 'last', or the best epoch of each stage by a metric "
                             "on held-out normal images + synthetic anomalies (val_syn_*), or + the real anomalies "
                             "of --labelled-validation (val_real_*); never the test set; default: recommended")
    parser.add_argument("--weak-fraction", type=float, metavar="F",
                        help="weakly supervised (CAVGA_w, e.g. --config paper_weak): this seeded fraction of the "
                             "anomalous test images (the paper: 0.02) moves into training with its label")
    parser.add_argument("--precision", default="float32", choices=["float32", "bfloat16"],
                        help="bfloat16: mixed precision (float32 weights); on CPUs with AMX / AVX-512 BF16 1.3-2.0x as "
                             "fast as float32 training (measured for every model: benchmarks/README.md); no faster "
                             "elsewhere; results close to, not equal to, float32 ones")


def build_parser():
    parser = argparse.ArgumentParser(prog="anomzoo", description="Visual anomaly detection model zoo (Keras 3).")
    commands = parser.add_subparsers(dest="command", required=True)
    train = commands.add_parser("train", help="train a model and report its test metrics",
                                epilog=_recommendations_text(), formatter_class=argparse.RawDescriptionHelpFormatter)
    train.add_argument("model", help="registry name, e.g. skip_attention_gan (alias sagan)")
    add_training_options(train)
    train.add_argument("--set", type=_model_option, nargs="+", action="extend", default=[], metavar="KEY=VALUE",
                       help="model options on top of the configuration, e.g. backbone_weights=imagenet (repeatable)")
    train.add_argument("--distribute", choices=STRATEGIES,
                       help="train on several devices with tf.distribute: mirrored (this machine's GPUs, else its "
                            "logical CPUs) or multi_worker (the cluster in TF_CONFIG; run the same command on every "
                            "worker, the chief writes); --batch-size is the global batch (README: Scaling out)")
    train.add_argument("--resume", action="store_true",
                       help="continue the newest unfinished run of this same command under runs/ (with --out, "
                            "the same command continues that directory's run anyway)")
    _add_dataset_options(train, "digits")
    evaluate = commands.add_parser("evaluate", help="evaluate a trained model (run directory, .keras file or "
                                                    "zoo entry)")
    evaluate.add_argument("model_path", help="run directory, .keras file or zoo entry")
    _add_dataset_options(evaluate, None)
    export = commands.add_parser("export", help="export a trained model: SavedModel (TF Serving), LiteRT, ONNX")
    export.add_argument("model_path", help="run directory or .keras file")
    export.add_argument("--format", nargs="+", default=["saved_model", "litert", "onnx"],
                        choices=["saved_model", "litert", "onnx"], help="default: all three")
    export.add_argument("--name", help="model name in the TF Serving layout <out>/<name>/<version>/ "
                                       "(default: the registry name)")
    export.add_argument("--version", type=_positive_int, default=1)
    _add_dataset_options(export, None)
    predict = commands.add_parser("predict", help="score image files: a table (CSV, JSON) and anomaly-map overlays")
    predict.add_argument("model", help="run directory, .keras file, export folder (or its <name>/ folder) or "
                                       "exported file, or zoo entry")
    predict.add_argument("images", nargs="+", help="image files, folders (searched recursively, hidden files "
                                                   "skipped) or glob patterns; each must yield a file")
    predict.add_argument("--out", help="a new or empty folder to write predictions.csv / .json and maps/ into "
                                       "(default: predictions/<time>)")
    predict.add_argument("--batch-size", type=_positive_int, default=32)
    predict.add_argument("--no-maps", action="store_true", help="write the table only")
    serve = commands.add_parser("serve", help="answer TF Serving's REST predict API from an export (local testing)")
    serve.add_argument("export_path", help="export folder (anomzoo export), <name>/ or <name>/<version>/")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=_port, default=8501)
    zoo = commands.add_parser("zoo", help="trained models: list | info NAME | get NAME")
    zoo.add_argument("action", choices=["list", "info", "get"])
    zoo.add_argument("name", nargs="?", help="entry name (info, get)")
    commands.add_parser("models", help="list the models and their configurations")
    data = commands.add_parser("data", help="prepare data: to-tfrecord SRC OUT")
    data_commands = data.add_subparsers(dest="data_command", required=True)
    to_tfrecord = data_commands.add_parser("to-tfrecord", help="write an MVTec-layout category as ~100 MB TFRecord "
                                                               "shards and a manifest (train with --dataset OUT "
                                                               "--streaming, locally or from gs://)")
    to_tfrecord.add_argument("source", help="MVTec-layout category folder (or root folder, with --category)")
    to_tfrecord.add_argument("out", help="a new or empty folder, local or gs://")
    to_tfrecord.add_argument("--category", help="category folder, when SOURCE is an MVTec root")
    to_tfrecord.add_argument("--image-size", type=_positive_int, default=256,
                             help="the square side the records decode to by default (they keep the files' own "
                                  "bytes; --image-size when loading overrides it); default 256")
    to_tfrecord.add_argument("--shard-mb", type=_positive_int, default=100,
                             help="about this many MB a shard (default 100)")
    return parser


def _summary(results, out_dir):
    shown = "  ".join(f"{k}={results[k]:.4f}" for k in HEADLINE if k in results)
    return f"{shown}\nreport: {out_dir / 'report.md'}"


def _export(args):
    from anomzoo.export import export, open_trained
    from anomzoo.export.exporter import check_name
    from anomzoo.files import check_new_directory

    source = pathlib.Path(args.model_path)
    out = pathlib.Path(args.out or f"exports/{source.resolve().name if source.is_dir() else source.stem}")
    check_new_directory(out)  # before the model and its data load and the formats convert (minutes)
    if args.name is not None:
        check_name(args.name)
    trained = open_trained(source, dataset=args.dataset, batch_size=args.batch_size, **_dataset_options(args))
    metadata = export(trained, out, formats=args.format, name=args.name, version=args.version)
    for key, facts in metadata["files"].items():
        worst = facts["deviation_from_keras"]
        print(f"{key:20s} {facts['bytes'] / 1e6:8.1f} MB  max |score - keras| {worst['score']:.2e}  "
              f"max |map - keras| {worst['anomaly_map']:.2e}  {out / facts['path']}")
    print(f"thresholds: score {metadata['score_threshold']:.6g}, map {metadata['map_threshold']:.6g}; "
          f"metadata: {out / 'metadata.json'}")
    return 0


def _evaluated_model(source):
    """A run directory or .keras file as given, or the weights file of the zoo entry so named (as
    predict takes it); anything else is an error naming the three that are expected."""
    from anomzoo import zoo

    if pathlib.Path(source).exists():
        return source
    if zoo.is_entry(source):
        return zoo.fetch(source)
    raise FileNotFoundError(f"no trained model at {source}: expected a run directory, a .keras file or a zoo "
                            "entry name (anomzoo zoo list shows them)")


def _predict(args):
    from anomzoo.files import atomic_directory, check_new_directory
    from anomzoo.predict import collect_images, open_predictor, predict_files

    out = pathlib.Path(args.out or f"predictions/{time.strftime('%Y%m%d-%H%M%S')}")
    check_new_directory(out)  # before minutes of scoring; a non-empty one would mix two tables' overlays
    files = collect_images(args.images)
    predictor = open_predictor(args.model)
    with atomic_directory(out) as tmp:  # the table and its maps appear together, or nothing does
        rows = predict_files(predictor, files, tmp, batch_size=args.batch_size, maps=not args.no_maps,
                             progress=sys.stdout.isatty())
    failed = [row for row in rows if row["error"]]
    flagged = sum(row["verdict"] == "anomalous" for row in rows)
    verdicts = (f", {flagged} anomalous (score >= {predictor.score_threshold:.6g})"
                if predictor.score_threshold is not None else ", no threshold known: scores only")
    print(f"{len(rows) - len(failed)} images scored{verdicts}; table: {out / 'predictions.csv'}")
    for row in failed:
        print(f"anomzoo: cannot score {row['path']}: {row['error']}", file=sys.stderr)
    return 1 if failed else 0


def _serve(args):
    from anomzoo.export.server import make_server

    server = make_server(args.export_path, args.host, args.port)
    served = server.served
    print(f"serving {served.name} version {served.version} (signatures {', '.join(served.signatures)}) at "
          f"http://{args.host}:{server.server_address[1]}/v1/models/{served.name}:predict; Ctrl-C stops")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


def _zoo(args):
    import json

    from anomzoo import zoo

    if args.action == "list":
        print(f"{'name':18s} {'model':20s} {'config':8s} {'data':24s} {'size':>4s} {'image AUROC':>11s} {'MB':>6s}")
        for name, entry in zoo.ENTRIES.items():
            data = f"{entry['dataset']} {entry['protocol']} {entry['target']}"
            print(f"{name:18s} {entry['model']:20s} {entry['preset']:8s} {data:24s} {entry['image_shape'][0]:4d} "
                  f"{entry['metrics'].get('image_auroc', float('nan')):11.4f} {entry['weights']['bytes'] / 1e6:6.1f}")
        return 0
    if args.name is None:
        raise ValueError(f"zoo {args.action} needs an entry name (anomzoo zoo list shows them)")
    if args.action == "info":
        print(json.dumps(zoo.info(args.name), indent=2))
    else:
        print(zoo.fetch(args.name))
    return 0


def _data(args):
    from anomzoo.data.tfrecord import MANIFEST, join, write_tfrecords

    manifest = write_tfrecords(args.source, args.out, image_size=args.image_size, category=args.category,
                               shard_bytes=args.shard_mb * 1_000_000)
    for split, facts in manifest["splits"].items():
        print(f"{split:10s} {facts['count']:8d} images ({facts['anomalous']} anomalous) in "
              f"{len(facts['shards'])} shard(s): {join(args.out, facts['shards'][0]['file'])} ...")
    if manifest["reencoded_as_png"]:
        print(f"{len(manifest['reencoded_as_png'])} TIFF / WebP images stored as lossless PNG (tf.io decodes neither)")
    print(f"manifest: {join(args.out, MANIFEST)} ({manifest['image_size']} px, {manifest['channels']} channel(s)); "
          f"train on it with --dataset {args.out} --streaming")
    return 0


def main(argv=None):
    args = build_parser().parse_args(argv)
    out_dir = None
    from anomzoo.data import DatasetError

    try:
        if args.command == "zoo":  # answered from the entries alone, without loading TensorFlow
            return _zoo(args)
        if args.command == "data":
            return _data(args)
        from anomzoo import models, rundir, runs

        if args.command == "models":
            for name, cls in models.MODELS.items():
                aliases = [a for a, n in models.ALIASES.items() if n == name]
                print(f"{name} (aliases: {', '.join(aliases) or '-'}): configs {', '.join(cls.configs)}")
            return 0
        if args.command == "export":
            return _export(args)
        if args.command == "predict":
            return _predict(args)
        if args.command == "serve":
            return _serve(args)
        if args.command == "evaluate" and args.dataset is None:
            raise ValueError("evaluate needs --dataset (the data to evaluate on)")
        stamp = time.strftime("%Y%m%d-%H%M%S")
        label = pathlib.Path(str(args.dataset)).name
        default_out = f"runs/{getattr(args, 'model', 'evaluate')}-{label}-{stamp}"
        out_dir = pathlib.Path(args.out or default_out)
        if args.command == "train":
            options = dict(dataset=args.dataset, **training_configuration(args, _image_side(args)), batch_size=args.batch_size,
                           seed=args.seed, **_dataset_options(args))
            if args.precision != "float32":  # float32 runs keep the request they always had (resume)
                from anomzoo.models import precision

                options["model_options"] = {"precision": args.precision}
                if not precision.fast_on_this_cpu(args.precision):
                    print("anomzoo: warning: this CPU has no bfloat16 instructions (AMX / AVX-512 BF16): "
                          "bfloat16 runs here, but no faster than float32", file=sys.stderr)
            if args.set:  # a run without --set keeps the request it always had (resume)
                options["model_options"] = {**options.get("model_options", {}), **dict(args.set)}
            if args.resume and not args.out:
                out_dir = rundir.find_unfinished_run("runs", runs.train_request(args.model, **options))
                if out_dir is None:
                    raise ValueError("--resume: no unfinished run of this command under runs/ "
                                     "(give its directory with --out)")
                print(f"continuing {out_dir}", file=sys.stderr)
            results = runs.train_run(args.model, out_dir, distribute=args.distribute, **options)
            if results is None:  # a multi-worker run's other worker: the chief reports
                return 0
        else:
            results = runs.evaluate_run(_evaluated_model(args.model_path), out_dir, dataset=args.dataset,
                                        batch_size=args.batch_size, seed=args.seed, **_dataset_options(args))
        print(_summary(results, out_dir))
        return 0
    except KeyboardInterrupt:
        where = ""
        if out_dir is not None and args.command == "train" and (out_dir / "checkpoint").is_dir():
            where = (f"; the last finished epoch is kept in {out_dir}: run the same command with "
                     f"--out {out_dir} to continue")
        print(f"anomzoo: interrupted{where}", file=sys.stderr)
        return 130
    except (ValueError, OSError, DatasetError, FloatingPointError) as error:  # OSError: a full disk too
        print(f"anomzoo: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
