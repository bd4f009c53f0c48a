"""A convolution's kernel gradient two ways: TensorFlow's op (oneDNN's Conv2DBackpropFilter) against
one matrix product over image patches (`anomzoo.layers.patch_gradient`), per map size, in float32 and
bfloat16, on the zoo's layer shapes. The evidence for `patch_gradient.SMALL_MAP_POSITIONS`.

    python benchmarks/kernel_gradient.py --rounds 5

The two are timed in alternating rounds (A, B, A, B, ...) after warm-up; medians of the rounds.
Results go to results/kernel_gradient.json and .md. Run it with nothing else on the machine.
"""

import argparse
import os
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import tensorflow as tf  # noqa: E402

from anomzoo import provenance  # noqa: E402
from anomzoo.files import write_json, write_text  # noqa: E402
from anomzoo.layers.patch_gradient import SMALL_MAP_POSITIONS, patch_kernel_gradient  # noqa: E402

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
BATCH = 16
# (input map side, input channels, kernel, stride, output channels): the 64 px networks' layers
# (CAVGA's discriminator, decoder and ResNet stages; the first rows are large maps for contrast).
SHAPES = [(64, 3, 4, 2, 64), (32, 64, 4, 2, 128), (32, 64, 3, 1, 64), (16, 128, 3, 1, 128), (16, 128, 4, 2, 256),
          (16, 256, 4, 2, 512), (8, 256, 3, 1, 256), (8, 512, 3, 1, 512), (8, 256, 4, 2, 512), (4, 512, 3, 1, 512),
          (4, 512, 4, 2, 512), (4, 256, 1, 1, 512), (2, 512, 3, 1, 512)]


def _milliseconds(function, repeats):
    function()
    begin = time.perf_counter()
    for _ in range(repeats):
        function()
    return (time.perf_counter() - begin) / repeats * 1000


def measure(shape, dtype, rounds, repeats):
    side, c_in, kernel, stride, c_out = shape
    out_side = -(-side // stride)
    x = tf.random.normal((BATCH, side, side, c_in), dtype=dtype)
    dy = tf.random.normal((BATCH, out_side, out_side, c_out), dtype=dtype)
    kernel_shape = (kernel, kernel, c_in, c_out)
    contenders = {
        "tensorflow": tf.function(lambda: tf.raw_ops.Conv2DBackpropFilter(
            input=x, filter_sizes=kernel_shape, out_backprop=dy, strides=[1, stride, stride, 1], padding="SAME")),
        "patches": tf.function(lambda: patch_kernel_gradient(x, dy, kernel_shape, (stride, stride), "SAME")),
    }
    reference, got = (tf.cast(f(), "float32") for f in contenders.values())
    difference = float(tf.reduce_max(tf.abs(got - reference)) / tf.reduce_max(tf.abs(reference)))
    times = {name: [] for name in contenders}
    for _ in range(rounds):
        for name, function in contenders.items():
            times[name].append(_milliseconds(function, repeats))
    medians = {name: statistics.median(t) for name, t in times.items()}
    return {"input_side": side, "input_channels": c_in, "kernel": kernel, "stride": stride, "output_channels": c_out,
            "output_positions": out_side * out_side, "dtype": dtype.name, "batch": BATCH,
            "tensorflow_ms": round(medians["tensorflow"], 2), "patches_ms": round(medians["patches"], 2),
            "speedup": round(medians["tensorflow"] / medians["patches"], 2),
            "patch_path_taken": out_side * out_side <= SMALL_MAP_POSITIONS,
            "max_relative_difference": float(f"{difference:.1e}"),
            "tensorflow_rounds_ms": [round(t, 2) for t in times["tensorflow"]],
            "patches_rounds_ms": [round(t, 2) for t in times["patches"]]}


def markdown(record):
    lines = ["# kernel gradient: TensorFlow's op against one matrix product over patches", "",
             f"`{record['command']}`, commit {record['commit'][:10]}, {record['measured']}, {record['machine']}, "
             f"CPU flags {', '.join(record['cpu_flags'])}; batch {BATCH}, medians of {record['rounds']} alternating "
             f"rounds. The zoo takes the patch product where the output map has at most {SMALL_MAP_POSITIONS} "
             "positions (`anomzoo.layers.patch_gradient`).", "",
             "| input map | channels in -> out | kernel / stride | output positions | dtype | TensorFlow ms | "
             "patches ms | speed-up | zoo takes patches | max relative difference |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in record["rows"]:
        lines.append(f"| {r['input_side']}x{r['input_side']} | {r['input_channels']} -> {r['output_channels']} | "
                     f"{r['kernel']}x{r['kernel']} / {r['stride']} | {r['output_positions']} | {r['dtype']} | "
                     f"{r['tensorflow_ms']} | {r['patches_ms']} | {r['speedup']}x | "
                     f"{'yes' if r['patch_path_taken'] else 'no'} | {r['max_relative_difference']} |")
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=10, help="calls per round")
    args = parser.parse_args(argv)
    rows = []
    for shape in SHAPES:
        for dtype in (tf.float32, tf.bfloat16):
            rows.append(measure(shape, dtype, args.rounds, args.repeats))
            print(rows[-1], flush=True)
    env = provenance.environment()
    record = {"command": "python benchmarks/kernel_gradient.py " + " ".join(argv or sys.argv[1:]),
              "commit": provenance.commit(), "measured": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
              "machine": env["machine"], "cpu_flags": env["cpu_flags"], "tensorflow": env["tensorflow"],
              "rounds": args.rounds, "rows": rows}
    write_json(os.path.join(RESULTS, "kernel_gradient.json"), record)
    write_text(os.path.join(RESULTS, "kernel_gradient.md"), markdown(record))


if __name__ == "__main__":
    main()
