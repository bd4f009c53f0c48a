"""The README's results table, from the recorded results: `python benchmarks/summary.py` prints it,
`--readme` writes it into README.md between its results markers.

One row per benchmark configuration: the paper's number, the no-learning floor (distance to the
mean normal image, `anomzoo.floors`) and anomzoo's, on the same test sets. For a benchmark run on
several classes, the class means over seed 0 (the protocol's number), and the spread over seeds
where classes ran with >= 3 seeds. Only configurations named in ROWS are shown: the current ones.
"""

import json
import pathlib
import sys

import numpy as np

RESULTS = pathlib.Path(__file__).resolve().parent / "results"
README = RESULTS.parent.parent / "README.md"
START, END = "<!-- results table: python benchmarks/summary.py --readme -->", "<!-- end of results table -->"
FLOOR = "distance to the mean normal"

# (label, results file, configuration key part, metric, paper's number)
ROWS = [
    ("CAVGA-D_u, MNIST one-class, 15 epochs", "cavga_mnist", "paper_d+precision=bfloat16/e15/last", "image_auroc",
     0.986),
    ("CAVGA-D_u, Fashion-MNIST one-class, 15 epochs", "cavga_fashion_mnist", "paper_d+precision=bfloat16/e15/last",
     "image_auroc", 0.885),
    ("CAVGA-D_u, MNIST one-class, 30 epochs", "cavga_mnist", "paper_d+precision=bfloat16/e30/last",
     "image_auroc", 0.986),
    ("CAVGA-D_u, Fashion-MNIST one-class, 30 epochs", "cavga_fashion_mnist",
     "paper_d+precision=bfloat16/e30/last", "image_auroc", 0.885),
    ("CAVGA-D_u, CIFAR-10 one-class", "cavga_cifar10_oneclass", "paper_d+precision=bfloat16/e8/last",
     "image_auroc", 0.737),
    ("Attention network + ADGAN, CIFAR-10 one-class (partial: 2 classes)", "attention_adgan_cifar10_oneclass",
     "cifar10+precision=bfloat16/e1-1/last", "image_auroc", 0.823),
    ("SAGAN, CIFAR-10 one-class (sanity row: airplane, 15 epochs)", "sagan_cifar10_oneclass",
     "paper+precision=bfloat16/e15/last", "image_auroc", None),
    ("CAVGA-R_u, tire 64 px: pixel AUROC inside the tire", "cavga_tire", "paper+precision=bfloat16/e10/last",
     "pixel_auroc_object", None),
    ("SAGAN, tire 64 px: pixel AUROC inside the tire", "sagan_tire", "paper+precision=bfloat16/e10/last",
     "pixel_auroc_object", None),
    ("AnoSeg `lite`, tire 64 px: pixel AUROC inside the tire", "anoseg_tire", "lite+precision=bfloat16/e12-3/val_syn_auroc",
     "pixel_auroc_object", None),
    ("Attention network + ADGAN, tire 64 px: pixel AUROC inside the tire", "attention_adgan_tire",
     "cifar10+precision=bfloat16/e5-5/last", "pixel_auroc_object", None),
]


def entries(name, configuration):
    path = RESULTS / f"{name}.json"
    if not path.is_file():
        return []
    return [e for e in json.loads(path.read_text())["entries"] if f"/{configuration}/" in e["key"] and "floors" in e]


def row(label, name, configuration, metric, paper):
    found = entries(name, configuration)
    by_target = {}
    for e in found:
        by_target.setdefault(e["metrics"]["provenance"]["target"], []).append(e)
    if not by_target:
        return None
    targets = sorted(by_target)
    first = [next((e for e in by_target[t] if e["metrics"]["provenance"]["seed"] == 0), by_target[t][0])
             for t in targets]
    models = [e["metrics"][metric] for e in first]
    floors = [e["floors"][FLOOR][metric] for e in first]
    spread = [f"{t}: {np.mean(v):.3f} ± {np.std(v):.3f}" for t in targets
              if len(v := [e["metrics"][metric] for e in by_target[t]]) >= 3]
    if len(targets) <= 3:  # a partial row: each class, not a mean that hides one below its floor
        names = ", ".join(targets)
        floor = " / ".join(f"{f:.3f}" for f in floors)
        model = " / ".join(f"{m:.3f}{' (below floor)' if m < f else ''}" for m, f in zip(models, floors))
    else:
        names = f"{len(targets)} classes"
        floor = f"{np.mean(floors):.3f}"
        model = f"{np.mean(models):.3f}{' (below floor)' if np.mean(models) < np.mean(floors) else ''}"
    return (f"| {label} | {names} | {'-' if paper is None else f'{paper:.3f}'} | {floor} | {model} | "
            f"{'; '.join(spread) or 'seed 0'} | [`{name}.md`](benchmarks/results/{name}.md) |")


def table():
    lines = ["| benchmark | classes | paper | floor | anomzoo | seeds (mean ± std) | details |",
             "|---|---|---|---|---|---|---|"]
    return "\n".join(lines + [line for spec in ROWS if (line := row(*spec))])


def main(argv):
    if "--readme" not in argv:
        print(table())
        return
    text = README.read_text()
    before, rest = text.split(START)
    after = rest.split(END)[1]
    README.write_text(f"{before}{START}\n{table()}\n{END}{after}")


if __name__ == "__main__":
    main(sys.argv[1:])
