"""Does bfloat16 (or float16) compute pay on this CPU? TensorFlow matmul and convolution throughput
per dtype, the contenders alternating in rounds, measured alone.

    python benchmarks/precision.py

Writes results/precision.{json,md} with the CPU's instruction-set flags that matter (AVX-512 BF16,
AMX): without them oneDNN has no bf16 arithmetic and converts, so `mixed_bfloat16` cannot be faster.
"""

import json
import os
import statistics
import sys
import time

import tensorflow as tf

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from anomzoo import provenance  # noqa: E402
from anomzoo.files import write_json, write_text  # noqa: E402

DTYPES = ("float32", "bfloat16", "float16")
# (name, flop count, builder of the inputs, the op): a large matmul, and a 3x3 convolution of the
# shape SAGAN's 64-filter layers run at 64 px with a batch of 16.
OPS = {
    "matmul 4096": (2 * 4096**3, lambda dt: (tf.cast(tf.random.normal((4096, 4096)), dt),) * 2,
                    tf.function(lambda a, b: tf.linalg.matmul(a, b), autograph=False)),
    "conv3x3 16x64x64x64": (2 * 16 * 64 * 64 * 64 * 64 * 9,
                            lambda dt: (tf.cast(tf.random.normal((16, 64, 64, 64)), dt),
                                        tf.cast(tf.random.normal((3, 3, 64, 64)), dt)),
                            tf.function(lambda x, k: tf.nn.conv2d(x, k, 1, "SAME"), autograph=False)),
}


def main(rounds=5, seconds=2.0):
    rates = {(op, dt): [] for op in OPS for dt in DTYPES}
    inputs = {(op, dt): OPS[op][1](dt) for op in OPS for dt in DTYPES}
    for key, args in inputs.items():
        OPS[key[0]][2](*args).numpy()  # trace and warm up
    for _ in range(rounds):
        for (op, dt), args in inputs.items():  # contenders alternate within every round
            flop, _, fn = OPS[op]
            started = time.time()
            while time.time() - started < seconds / rounds * 2:
                begin = time.perf_counter()
                fn(*args).numpy()
                rates[op, dt].append(flop / (time.perf_counter() - begin) / 1e9)
    env = provenance.environment()
    rows = [{"op": op, "dtype": dt, "median_gflops": round(statistics.median(r), 1),
             "min_gflops": round(min(r), 1), "max_gflops": round(max(r), 1), "samples": len(r)}
            for (op, dt), r in rates.items()]
    record = {"rows": rows, "cpu_flags": env["cpu_flags"], "machine": env["machine"], "tensorflow": env["tensorflow"],
              "commit": provenance.commit(), "measured": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
              "command": "python benchmarks/precision.py", "rounds": rounds}
    # One record per kind of CPU (machines of one kind differ: with or without AVX-512 BF16 / AMX);
    # a new run replaces only the record of its own kind.
    path = os.path.join(ROOT, "benchmarks", "results", "precision.json")
    earlier = json.load(open(path)).get("runs", []) if os.path.isfile(path) else []
    runs = [r for r in earlier if r["cpu_flags"] != record["cpu_flags"]] + [record]
    write_json(path, {"runs": runs})
    lines = ["# compute precision on this CPU", ""]
    for run in runs:
        lines += [f"## CPU flags: {', '.join(run['cpu_flags']) or 'none of interest'}", "",
                  f"`{run['command']}`, {run['machine']}, TensorFlow {run['tensorflow']}, commit {run['commit']}, "
                  f"{run['measured']}; measured alone, the contenders alternating in {run.get('rounds', 5)} rounds.",
                  "", "| op | dtype | median GFLOP/s | min | max | samples |", "|---|---|---|---|---|---|"]
        lines += [f"| {r['op']} | {r['dtype']} | {r['median_gflops']} | {r['min_gflops']} | {r['max_gflops']} | "
                  f"{r['samples']} |" for r in run["rows"]]
        lines.append("")
    write_text(os.path.join(ROOT, "benchmarks", "results", "precision.md"), "\n".join(lines))
    print("\n".join(lines))

if __name__ == "__main__":
    main()
