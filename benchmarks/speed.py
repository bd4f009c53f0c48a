"""Training speed, measured alone: images/s of the bare step and of `fit`, GFLOP per training
image, achieved GFLOP/s and its share of this CPU's fp32 matmul peak (numpy's large matmul),
measured in the same run.

    python benchmarks/speed.py                       # every case below
    python benchmarks/speed.py --cases sagan-32 --rounds 5

Contenders are timed in alternating rounds in one process (A, B, A, B, ...), after warm-up, and
the median round is reported, so that a slower moment of the machine hits both. "plain" builds
the networks with Keras' own layers (`anomzoo.layers.nn.keras_layers`, the one switch between the
zoo's CPU versions and Keras') and trains them with Keras' own Adam, "fast" with the CPU versions and the fused Adam (`anomzoo.optimizers.FusedAdam`) the
zoo uses now (same variables, same function), "xla" the fast layers with the train step compiled
by XLA (`compile(jit_compile=True)`), "bf16" the fast layers with the model option
precision="bfloat16" (mixed precision). FLOPs are TensorFlow's registered op statistics over the
ops of the traced train step that run (forward, backward and optimizer ops; a multiply-add counts
2; gradient ops the graph holds but TensorFlow prunes are left out, see `executed_flops`). A case
trains one stage (`CASE_STAGES`); the two-stage models' whole runs combine their stage cases of one
run by each stage's share of the epochs (`whole_runs`). Results go to results/speed.json and
results/speed.md. Run it with nothing else on the machine.
"""

import argparse
import collections
import contextlib
import json
import os
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from anomzoo import provenance  # noqa: E402
from anomzoo.data import make_pipeline, steps_per_epoch  # noqa: E402
from anomzoo.files import write_json, write_text  # noqa: E402
from anomzoo.layers import nn  # noqa: E402
from anomzoo.models import MODELS, build_model, canonical_name  # noqa: E402

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")

# name: (model, configuration, image size, channels, batch, images in the fit epoch)
MEASURED_CASES = {
    "sagan-32": ("sagan", "paper", 32, 3, 64, 320),
    "sagan-256": ("sagan", "paper", 256, 3, 4, 16),
    "anoseg-lite-64": ("anoseg", "lite", 64, 3, 16, 64),
    "cavga-64": ("cavga", "paper", 64, 3, 16, 64),
    "cavga-resnet18-64": ("cavga", "paper", 64, 3, 16, 64),
    "attention_adgan-32": ("attention_adgan", "cifar10", 32, 3, 16, 64),
    "anoseg-lite-detector-64": ("anoseg", "lite", 64, 3, 16, 64),
    "attention_adgan-adgan-32": ("attention_adgan", "cifar10", 32, 3, 16, 64),
}
# The stage a case trains, where not the first: a two-stage model's training run is both stages, its
# speed their epoch-weighted mix (`whole_runs`).
CASE_STAGES = {"anoseg-lite-detector-64": "detector", "attention_adgan-adgan-32": "adgan"}
# Options on top of a case's configuration. CAVGA's paper configuration takes keras-hub's ResNet-18 (built with the
# zoo's layers, `nn.keras_names_build_these`); "resnet18" is the zoo's ResNet-18 of the same layout.
CASE_OPTIONS = {"cavga-resnet18-64": {"encoder": "resnet18"}}


def registry_cases():
    """A 32 px case (first stage, first configuration) for every registered model the cases above do not
    name: a new model is measured without an edit here."""
    named = {canonical_name(case[0]) for case in MEASURED_CASES.values()}
    return {f"{name}-32": (name, next(iter(cls.configs)), 32, 3, 16, 64)
            for name, cls in MODELS.items() if name not in named}


CASES = {**MEASURED_CASES, **registry_cases()}


def matmul_peak(multiply, seconds=4.0, n=4096):
    """fp32 GFLOP/s of `multiply(a, a)` on an n x n matrix now (median of repeated products)."""
    a = np.random.default_rng(0).standard_normal((n, n), dtype=np.float32)
    multiply(a)
    rates, started = [], time.time()
    while time.time() - started < seconds:
        begin = time.perf_counter()
        multiply(a)
        rates.append(2 * n**3 / (time.perf_counter() - begin) / 1e9)
    return statistics.median(rates)


def numpy_matmul(a):
    return a @ a


_tf_product = tf.function(lambda a: tf.linalg.matmul(a, a))


def tensorflow_matmul(a):
    return _tf_product(tf.constant(a)).numpy()


def executed_flops(graph):
    """FLOPs of the ops of a traced function that run: the fan-in of its outputs and of its control
    outputs (the variable updates), with TensorFlow's registered statistics (a multiply-add counts
    2). Not the whole graph: the zoo's step takes each player's gradient from one persistent tape,
    and a tape builds gradient ops along every watched path (the discriminator's loss back through
    the generator too); nothing uses those, TensorFlow prunes them before running, and counting
    them inflated the count 1.5-1.7x (checked against the ops the profiler sees run)."""
    from tensorflow.python.framework import ops as framework_ops

    needed, stack = {}, [tensor.op for tensor in graph.outputs] + list(graph.control_outputs)
    while stack:
        op = stack.pop()
        if op.name not in needed:
            needed[op.name] = op
            stack.extend(tensor.op for tensor in op.inputs)
            stack.extend(op.control_inputs)
    total = 0
    for op in needed.values():
        try:
            total += float(framework_ops.get_stats_for_node_def(graph, op.node_def, "flops").value or 0)
        except ValueError:  # a shape the statistic needs is unknown: the profiler skips it too
            pass
    return total


def train_step_gflop(model, batch):
    images = tf.zeros((batch, *model.image_shape))
    graph = tf.function(lambda x: model.train_step({"image": x})).get_concrete_function(images).graph
    return executed_flops(graph) / batch / 1e9


class Contender:
    """One model variant, with its bare step and its fit ready to be timed."""

    def __init__(self, case, variant):
        model_name, preset, size, channels, batch, fit_images = CASES[case]
        keras.utils.set_random_seed(0)
        with nn.keras_layers() if variant == "plain" else contextlib.nullcontext():
            precision = "bfloat16" if variant == "bf16" else "float32"
            self.model = build_model(model_name, preset, image_shape=(size, size, channels), precision=precision,
                                     **CASE_OPTIONS.get(case, {}))
        optimizers = None
        if variant == "plain":  # and Keras' own Adam: the code before the zoo's fused layers and optimizer
            optimizers = {player: keras.optimizers.Adam.from_config(optimizer.get_config())
                          for player, optimizer in self.model.default_optimizers().items()}
        self.model.compile(optimizers=optimizers, jit_compile=variant == "xla")
        self.model.build_optimizers()  # while every network is trainable, as `training.train` does
        self.model.set_stage(CASE_STAGES.get(case, 0))
        self.stage = self.model.stage.name
        self.stages = [each.name for each in self.model.stages]
        self.stage_share = self.model.stage_fractions[self.model.stage_of(self.stage)]
        rng = np.random.default_rng(0)
        self.batch = batch
        self.images = rng.integers(0, 256, (fit_images, size, size, channels), dtype=np.uint8)
        self.step_batch = {"image": tf.constant(self.images[:batch].astype("float32") / 255.0)}
        self.gflop = train_step_gflop(self.model, batch)
        self.step(2)
        self.fit()  # trace the fit graph and warm up

    def step(self, steps):
        started = time.perf_counter()
        for _ in range(steps):
            self.model.train_on_batch(self.step_batch)
        return steps * self.batch / (time.perf_counter() - started)

    def fit(self):
        """(images/s of a whole `fit` call of 2 epochs, images/s of its second epoch alone)."""
        data = make_pipeline(self.images, batch_size=self.batch, shuffle=True, seed=0, epochs=2)
        clock = EpochClock()
        started = time.perf_counter()
        self.model.fit(data, epochs=2, steps_per_epoch=steps_per_epoch(len(self.images), self.batch),
                       verbose=0, shuffle=False, callbacks=[clock])
        return 2 * len(self.images) / (time.perf_counter() - started), len(self.images) / clock.seconds[-1]


class EpochClock(keras.callbacks.Callback):
    def on_train_begin(self, logs=None):
        self.seconds = []

    def on_epoch_begin(self, epoch, logs=None):
        self._began = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self._began)


def run_case(case, variants, rounds, steps, peak):
    """Time `variants` of `case` in alternating rounds. The peak is measured again after every round
    and the highest is kept: this machine's speed drifts (numpy's matmul gave 141 and 183 GFLOP/s
    twenty minutes apart), and a peak taken at a slow moment would inflate every percentage."""
    contenders = {v: Contender(case, v) for v in variants}
    # One untimed round first: the first round after every contender is built ran 19-42% slower for
    # plain and fast (not bf16, built last), and a median of three then fell on the slower of the two
    # good rounds for some contenders only.
    for contender in contenders.values():
        contender.step(steps)
        contender.fit()
    timings = {v: {"step": [], "fit": [], "fit_call": []} for v in variants}
    for _ in range(rounds):
        for variant, contender in contenders.items():
            timings[variant]["step"].append(contender.step(steps))
            call_rate, epoch_rate = contender.fit()
            timings[variant]["fit"].append(epoch_rate)
            timings[variant]["fit_call"].append(call_rate)
        peak = max(peak, matmul_peak(numpy_matmul, seconds=2.0))
    rows = []
    for variant, contender in contenders.items():
        step_rate = statistics.median(timings[variant]["step"])
        fit_rate = statistics.median(timings[variant]["fit"])
        call_rate = statistics.median(timings[variant]["fit_call"])
        achieved = step_rate * contender.gflop
        rows.append({
            "case": case, "variant": variant, "model": CASES[case][0], "preset": CASES[case][1],
            "options": CASE_OPTIONS.get(case, {}), "stage": contender.stage,
            "stages": contender.stages, "stage_share": round(contender.stage_share, 4),
            "image_size": CASES[case][2], "batch_size": CASES[case][4],
            "step_images_per_second": round(step_rate, 2), "fit_images_per_second": round(fit_rate, 2),
            "fit_vs_step": round(fit_rate / step_rate, 3),
            "fit_call_images_per_second": round(call_rate, 2),
            "gflop_per_training_image": round(contender.gflop, 3), "flops_counted": "ops that run",
            "achieved_gflops": round(achieved, 1), "percent_of_fp32_peak": round(100 * achieved / peak, 1),
            "fp32_peak_gflops": round(peak, 1),
            "rounds": rounds, "steps_per_round": steps,
            "step_rounds": [round(r, 2) for r in timings[variant]["step"]],
            "fit_rounds": [round(r, 2) for r in timings[variant]["fit"]],
            "fit_call_rounds": [round(r, 2) for r in timings[variant]["fit_call"]],
        })
        print(rows[-1], flush=True)
    keras.backend.clear_session()
    return rows


def cpu_kind(row):
    """Machines of one kind differ: with AMX (and AVX-512 BF16) or without; rows keep which."""
    flags = row.get("cpu_flags")
    if flags is None:
        # Rows from before flags were recorded: that session's machine had AVX2 / FMA / F16C only
        # (results/precision.md), with a 143 GFLOP/s fp32 peak.
        return "AVX2, no AMX"
    return "AMX" if "amx_bf16" in flags else ("AVX-512" if "avx512f" in flags else "AVX2, no AMX")


def whole_runs(rows):
    """A two-stage model's training speed over a whole run, from its stages' rows of one run (same
    command, same minute): each stage's bare-step rate weighted by its share of the epochs (the
    model's `stage_fractions`, how `anomzoo train --epochs N` splits them), images/s = 1 / sum(share
    / rate). One dict per (model, preset, variant, CPU kind, run) whose every stage was measured."""
    groups = collections.defaultdict(dict)
    for r in rows:
        if len(r.get("stages", ())) > 1:
            key = (r["model"], r["preset"], r["variant"], cpu_kind(r), r["commit"], r["measured"], r["command"])
            groups[key][r["stage"]] = r
    wholes = []
    for (model, preset, variant, kind, commit, measured, command), by_stage in groups.items():
        stages = next(iter(by_stage.values()))["stages"]
        if sorted(by_stage) != sorted(stages):
            continue
        seconds = sum(by_stage[s]["stage_share"] / by_stage[s]["step_images_per_second"] for s in stages)
        wholes.append({"model": model, "preset": preset, "variant": variant, "cpu": kind, "commit": commit,
                       "measured": measured, "command": command,
                       "stages": [(s, by_stage[s]["stage_share"], by_stage[s]["step_images_per_second"])
                                  for s in stages],
                       "images_per_second": round(1.0 / seconds, 2)})
    return wholes


def markdown(record):
    lines = ["# training speed", "", "Each row: measured alone on the machine, with the fp32 matmul peak (numpy's "
             "4096x4096 product, the highest of the measurements before the run and after each round; "
             "TensorFlow's own matmul, at the start, beside it) measured in the same run.", "",
             "| case | variant | CPU | batch | bare step img/s | fit epoch img/s | fit / step | whole fit call img/s "
             "| GFLOP per training image | achieved GFLOP/s | % of fp32 peak | peak (TF matmul) GFLOP/s "
             "| rounds | commit | measured | command |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in record["rows"]:
        mark = "" if r.get("flops_counted") == "ops that run" else " †"
        lines.append(f"| {r['case']} | {r['variant']} | {cpu_kind(r)} | {r['batch_size']} | {r['step_images_per_second']} | "
                     f"{r['fit_images_per_second']} | {r['fit_vs_step']} | {r['fit_call_images_per_second']} | "
                     f"{r['gflop_per_training_image']}{mark} | {r['achieved_gflops']}{mark} | "
                     f"{r['percent_of_fp32_peak']}{mark} | "
                     f"{r['fp32_peak_gflops']:.0f} ({r['tensorflow_matmul_gflops']:.0f}) | {r['rounds']} | "
                     f"{r['commit'][:10]} | {r['measured']} | `{r['command']}` |")
    machines = sorted({r["machine"] + ", TensorFlow " + r["tensorflow"] for r in record["rows"]})
    lines += ["", f"Machine: {'; '.join(machines)}. Medians over alternating rounds (see speed.json for every "
              "round). Bare step: `train_on_batch` on one fixed batch. Fit epoch: the second epoch of a 2-epoch "
              "`fit` over `make_pipeline`; whole fit call: both epochs plus the call's set-up and tear-down. "
              "GFLOP: TensorFlow's registered op statistics over the ops of the traced train step that run "
              "(multiply-add = 2). † Rows measured before commit d1bfd2a counted every op of the traced graph, "
              "gradient ops TensorFlow prunes before running included: 1.5-1.7x the FLOPs that run (`fast`: SAGAN "
              "32 px 1.83 against 1.15, CAVGA 6.03 against 4.07, AnoSeg `lite` 27.04 against 16.56, the attention "
              "network 17.74 against 10.79), so their GFLOP, achieved GFLOP/s and % of peak are too high "
              "by that factor; their images/s stand."]
    wholes = whole_runs(record["rows"])
    if wholes:
        lines += ["", "## Whole training runs of the two-stage models", "",
                  "A two-stage model trains each stage for its share of the epochs (`stage_fractions`, how "
                  "`anomzoo train --epochs N` splits them), so its training speed is 1 / sum(share / stage's bare "
                  "step img/s), from the stage rows above of one run. \"vs plain\": against the plain variant "
                  "of the same run.", "",
                  "| model | config | variant | CPU | stages (share of epochs: bare step img/s) | whole run img/s "
                  "| vs plain | commit | measured | command |", "|---|---|---|---|---|---|---|---|---|---|"]
        plain = {(w["model"], w["preset"], w["cpu"], w["measured"]): w["images_per_second"]
                 for w in wholes if w["variant"] == "plain"}
        for w in wholes:
            base = plain.get((w["model"], w["preset"], w["cpu"], w["measured"]))
            ratio = f"{w['images_per_second'] / base:.3f}x" if base else "-"
            stages = ", ".join(f"{name} ({share:.2f}: {rate})" for name, share, rate in w["stages"])
            lines.append(f"| {w['model']} | {w['preset']} | {w['variant']} | {w['cpu']} | {stages} | "
                         f"{w['images_per_second']} | {ratio} | {w['commit'][:10]} | {w['measured']} | "
                         f"`{w['command']}` |")
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    parser.add_argument("--variants", nargs="+", default=["plain", "fast"], choices=["plain", "fast", "xla", "bf16"])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=5, help="bare steps per round")
    args = parser.parse_args(argv)
    commit = provenance.commit()
    # The machine's peak is numpy's (OpenBLAS) large matmul; TensorFlow's own matmul is recorded beside it.
    peak = matmul_peak(numpy_matmul)
    tf_peak = matmul_peak(tensorflow_matmul)
    print(f"fp32 matmul now: numpy {peak:.0f} GFLOP/s, TensorFlow {tf_peak:.0f} GFLOP/s", flush=True)
    rows = []
    for case in args.cases:
        rows += run_case(case, args.variants, args.rounds, args.steps, peak)
    env = provenance.environment()
    run = {"command": "python benchmarks/speed.py " + " ".join(argv or sys.argv[1:]),
           "tensorflow_matmul_gflops": round(tf_peak, 1),
           "machine": env["machine"], "cpu_flags": env["cpu_flags"], "tensorflow": env["tensorflow"], "commit": commit,
           "measured": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    for row in rows:  # every row names the run (commit, time) it was measured in, beside its own peak
        row.update(run)
    path = os.path.join(RESULTS, "speed.json")
    earlier = json.load(open(path))["rows"] if os.path.isfile(path) else []
    measured = {(r["case"], r["variant"], cpu_kind(r)) for r in rows}  # replaced only on the same kind of CPU
    record = {"rows": [r for r in earlier if (r["case"], r["variant"], cpu_kind(r)) not in measured] + rows}
    write_json(path, record)
    write_text(os.path.join(RESULTS, "speed.md"), markdown(record))


if __name__ == "__main__":
    main()
