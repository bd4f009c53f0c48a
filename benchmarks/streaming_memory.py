"""Does streaming keep memory flat as the data grows? Peak RSS of one training epoch on N images.

    python benchmarks/streaming_memory.py                      # N = 2,000 and 20,000, 64 px PNGs
    python benchmarks/streaming_memory.py --counts 2000 --modes streaming

For each N it writes N generated 64 px PNGs into a temporary MVTec-layout folder (plus a fixed
validation/good of 20 and a test split of 10 good and 10 defective images with masks, so that only
the training split grows), then trains one epoch of SAGAN `tiny` on it in a fresh subprocess per
(N, mode): with ``streaming=True`` (`anomzoo.data.streaming`: the training images stay on disk) and,
for comparison, in memory. Each subprocess reports its peak resident memory (``ru_maxrss``) after
loading the data and after the epoch. Peak RSS is valid on a shared machine; times are not, and
none are recorded. Writes results/streaming_memory.{json,md}.
"""

import argparse
import json
import os
import pathlib
import resource
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

RESULTS = ROOT / "benchmarks" / "results"
SIZE = 64


def peak_rss_mb():
    """This process's peak resident set so far, in MB (Linux reports ru_maxrss in kB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def write_folder(root, count, seed=0):
    """An MVTec-layout category with ``count`` training PNGs (smooth random blobs, ~4 kB each)."""
    import cv2
    import numpy as np

    rng = np.random.default_rng(seed)

    def image():
        small = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
        return cv2.resize(small, (SIZE, SIZE), interpolation=cv2.INTER_CUBIC)

    def write(path, picture):
        path.parent.mkdir(parents=True, exist_ok=True)
        if not cv2.imwrite(str(path), picture):
            raise OSError(f"cannot write {path}")

    for i in range(count):
        write(root / "train" / "good" / f"{i:06d}.png", image())
    for i in range(20):
        write(root / "validation" / "good" / f"{i:03d}.png", image())
    for i in range(10):
        write(root / "test" / "good" / f"{i:03d}.png", image())
        write(root / "test" / "spot" / f"{i:03d}.png", image())
        mask = np.zeros((SIZE, SIZE), np.uint8)
        mask[20:30, 20:30] = 255
        write(root / "ground_truth" / "spot" / f"{i:03d}_mask.png", mask)
    return root


def child(folder, streaming, batch_size):
    """Load, train one epoch, print the peaks as JSON (run in its own process)."""
    import keras

    from anomzoo import training
    from anomzoo.data import load_dataset
    from anomzoo.models import build_model

    baseline = peak_rss_mb()
    data = load_dataset(folder, image_size=SIZE, streaming=streaming)
    loaded = peak_rss_mb()
    keras.utils.set_random_seed(0)
    model = build_model("skip_attention_gan", "tiny", image_shape=data.image_shape)
    training.train(model, data, epochs=1, batch_size=batch_size, verbose=0)
    print(json.dumps({"train_images": len(data.train), "peak_rss_mb_after_imports": round(baseline, 1),
                      "peak_rss_mb_after_loading": round(loaded, 1), "peak_rss_mb": round(peak_rss_mb(), 1)}))


def measure(count, modes, batch_size):
    rows = []
    with tempfile.TemporaryDirectory(prefix="anomzoo-streaming-") as tmp:
        folder = write_folder(pathlib.Path(tmp) / "generated", count)
        disk_mb = sum(p.stat().st_size for p in (folder / "train" / "good").iterdir()) / 1e6
        for mode in modes:
            command = [sys.executable, __file__, "--child", str(folder), "--batch-size", str(batch_size)]
            if mode == "streaming":
                command.append("--streaming")
            done = subprocess.run(command, capture_output=True, text=True,
                                  env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
            if done.returncode:
                raise RuntimeError(f"{mode} with {count} images failed:\n{done.stderr[-3000:]}")
            facts = json.loads(done.stdout.strip().splitlines()[-1])
            rows.append({"images": count, "mode": mode, "train_png_mb": round(disk_mb, 1), **facts})
            print(rows[-1], flush=True)
    return rows


def table(record):
    lines = ["# Peak memory of one training epoch: streamed against in memory", "",
             f"`{record['command']}`; commit {record['commit']}, {record['measured']}, {record['machine']}, "
             f"TensorFlow {record['tensorflow']}, Keras {record['keras']}.", "",
             f"SAGAN `tiny`, {SIZE} px PNGs, batch {record['batch_size']}, one epoch; validation (20) and test (20) "
             "images in memory in both modes. Peak RSS (`ru_maxrss`) of a fresh process per row; no times "
             "(the machine was shared).", "",
             "| training images | PNG on disk (MB) | mode | peak RSS after loading (MB) "
             "| peak RSS after the epoch (MB) |",
             "|---:|---:|---|---:|---:|"]
    for row in record["rows"]:
        lines.append(f"| {row['images']:,} | {row['train_png_mb']} | {row['mode']} "
                     f"| {row['peak_rss_mb_after_loading']} | {row['peak_rss_mb']} |")
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--counts", type=int, nargs="+", default=[2000, 20000])
    parser.add_argument("--modes", nargs="+", choices=["streaming", "in_memory"], default=["streaming", "in_memory"])
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--streaming", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return child(args.child, args.streaming, args.batch_size)

    from anomzoo import provenance
    from anomzoo.files import write_json, write_text

    rows = []
    for count in args.counts:
        rows += measure(count, args.modes, args.batch_size)
    env = provenance.environment()
    record = {"command": "python benchmarks/streaming_memory.py" + (" " + " ".join(argv or sys.argv[1:])).rstrip(),
              "commit": provenance.commit(), "measured": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
              "machine": env["machine"], "cpu_flags": env["cpu_flags"], "tensorflow": env["tensorflow"],
              "keras": env["keras"], "python": env["python"], "batch_size": args.batch_size, "image_size": SIZE,
              "model": "skip_attention_gan tiny", "rows": rows}
    RESULTS.mkdir(parents=True, exist_ok=True)
    write_json(RESULTS / "streaming_memory.json", record)
    write_text(RESULTS / "streaming_memory.md", table(record))
    print(table(record))
    return 0


if __name__ == "__main__":
    sys.exit(main())
