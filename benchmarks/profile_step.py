"""Where a train step spends its time: TensorFlow's profiler over a few bare steps of a case of
`speed.py`, op time summed by op type and by op, per variant (float32 `fast` against `bf16`).

    python benchmarks/profile_step.py --cases cavga-64 --variants fast bf16

Op times are summed over the host threads, so with two cores the total exceeds the wall time
(independent ops run side by side); compare shares and variants within one run. Writes
results/profile_step.{json,md} (a new run of a case replaces that case's record). A diagnostic:
run it alone for timings that mean anything.
"""

import argparse
import collections
import glob
import json
import os
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402
from tensorflow.tsl.profiler.protobuf import xplane_pb2  # noqa: E402

import speed  # noqa: E402  (benchmarks/ is the script's directory)
from anomzoo import provenance  # noqa: E402
from anomzoo.files import write_json, write_text  # noqa: E402

TOP = 12


def op_times(steps_run):
    """Run `steps_run()` under the profiler: {(op name, op type): seconds} over the host threads."""
    logdir = tempfile.mkdtemp(prefix="anomzoo-profile-")
    tf.profiler.experimental.start(logdir)
    steps_run()
    tf.profiler.experimental.stop()
    space = xplane_pb2.XSpace()
    with open(glob.glob(f"{logdir}/**/*.xplane.pb", recursive=True)[0], "rb") as f:
        space.ParseFromString(f.read())
    times = collections.Counter()
    for plane in (p for p in space.planes if p.name.startswith("/host:CPU")):
        for line in plane.lines:
            for event in line.events:
                name = plane.event_metadata[event.metadata_id].name
                # TensorFlow ops are "name:Type"; executor and function events ("X::Run",
                # "EagerLocalExecute: f") enclose them and are left out.
                if ":" in name and "::" not in name and " " not in name:
                    times[tuple(name.rsplit(":", 1))] += event.duration_ps * 1e-12
    return times


def profile_case(case, variants, steps):
    records = []
    for variant in variants:
        contender = speed.Contender(case, variant)
        contender.step(steps)  # warm: the profile should not see the first steps' allocations
        started = time.perf_counter()
        times = op_times(lambda: contender.step(steps))
        wall = (time.perf_counter() - started) / steps
        total = sum(times.values())
        by_type = collections.Counter()
        for (_, op_type), seconds in times.items():
            by_type[op_type] += seconds
        records.append({
            "case": case, "variant": variant, "steps": steps, "batch_size": contender.batch,
            "wall_ms_per_step": round(wall * 1e3, 1), "op_ms_per_step": round(total / steps * 1e3, 1),
            "op_types": [{"type": t, "ms_per_step": round(s / steps * 1e3, 1), "share": round(s / total, 3)}
                         for t, s in by_type.most_common()],
            "top_ops": [{"op": n, "type": t, "ms_per_step": round(s / steps * 1e3, 1)}
                        for (n, t), s in times.most_common(TOP)],
        })
        print(case, variant, records[-1]["wall_ms_per_step"], "ms/step", flush=True)
        tf.keras.backend.clear_session()
    return records


def markdown(record):
    lines = ["# where a train step spends its time", "",
             "Op time summed over host threads by TensorFlow's profiler (two cores run independent ops side by "
             "side, so op time exceeds wall time); per bare step of the case's batch. A diagnostic for the speed "
             "issue; `results/speed.md` has the throughput.", ""]
    for case, run in record["cases"].items():
        variants = [r["variant"] for r in run["rows"]]
        lines += [f"## {case}", "", f"`{run['command']}`, commit {run['commit'][:10]}, {run['measured']}, "
                  f"{run['machine']}, CPU flags {', '.join(run['cpu_flags']) or 'none listed'}.", "",
                  "| | " + " | ".join(variants) + " |", "|---|" + "---|" * len(variants),
                  "| wall ms / step | " + " | ".join(str(r["wall_ms_per_step"]) for r in run["rows"]) + " |",
                  "| op ms / step (summed) | " + " | ".join(str(r["op_ms_per_step"]) for r in run["rows"]) + " |"]
        by_type = [{t["type"]: t for t in r["op_types"]} for r in run["rows"]]
        for op_type in [t["type"] for t in run["rows"][-1]["op_types"][:TOP]]:
            cells = [f"{t[op_type]['ms_per_step']} ({100 * t[op_type]['share']:.0f}%)" if op_type in t else "-"
                     for t in by_type]
            lines.append(f"| {op_type} | " + " | ".join(cells) + " |")
        for r in run["rows"]:
            lines += ["", f"Slowest ops, {r['variant']} (ms / step):", ""]
            lines += [f"- {o['ms_per_step']} `{o['op']}` ({o['type']})" for o in r["top_ops"]]
        lines.append("")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", nargs="+", default=["cavga-64"], choices=list(speed.CASES))
    parser.add_argument("--variants", nargs="+", default=["fast", "bf16"], choices=["plain", "fast", "bf16"])
    parser.add_argument("--steps", type=int, default=6)
    args = parser.parse_args(argv)
    env = provenance.environment()
    run = {"command": "python benchmarks/profile_step.py " + " ".join(argv or sys.argv[1:]),
           "commit": provenance.commit(), "machine": env["machine"], "cpu_flags": env["cpu_flags"],
           "measured": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    path = os.path.join(speed.RESULTS, "profile_step.json")
    record = json.load(open(path)) if os.path.isfile(path) else {"cases": {}}
    for case in args.cases:  # one record per case and kind of CPU (AMX, AVX-512, AVX2), as in speed.py
        rows = profile_case(case, args.variants, args.steps)
        record["cases"][f"{case} on {speed.cpu_kind(run)}"] = {**run, "rows": rows}
        write_json(path, record)
        write_text(os.path.join(speed.RESULTS, "profile_step.md"), markdown(record))


if __name__ == "__main__":
    main()
