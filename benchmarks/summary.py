"""The README's results table, from the recorded results: `python benchmarks/summary.py`.

One row per benchmark configuration: the paper's number, the no-learning floor (distance to the
mean normal image, `anomzoo.floors`) and anomzoo's, on the same test sets. For a benchmark run on
several classes, the class means over seed 0 (the protocol's number), and the spread over seeds
where classes ran with >= 3 seeds. Only configurations named in ROWS are shown: the current ones.
"""

import json
import pathlib

import numpy as np

RESULTS = pathlib.Path(__file__).resolve().parent / "results"
FLOOR = "distance to the mean normal"

# (label, results file, configuration key part, metric, paper's number)
ROWS = [
    ("CAVGA-D_u, MNIST one-class", "cavga_mnist", "paper_d+precision=bfloat16/e15/last", "image_auroc",
     0.986),
    ("CAVGA-D_u, Fashion-MNIST one-class", "cavga_fashion_mnist", "paper_d+precision=bfloat16/e15/last",
     "image_auroc", 0.885),
    ("CAVGA-D_u, CIFAR-10 one-class", "cavga_cifar10_oneclass", "paper_d+precision=bfloat16/e8/last",
     "image_auroc", 0.737),
    ("Attention network + ADGAN, CIFAR-10 one-class (partial: 2 classes)", "attention_adgan_cifar10_oneclass",
     "cifar10+precision=bfloat16/e1-1/last", "image_auroc", 0.823),
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
    first = [next((e for e in es if e["metrics"]["provenance"]["seed"] == 0), es[0]) for es in by_target.values()]
    model = np.mean([e["metrics"][metric] for e in first])
    floor = np.mean([e["floors"][FLOOR][metric] for e in first])
    spread = [f"{t}: {np.mean(v):.3f} ± {np.std(v):.3f}" for t, es in sorted(by_target.items())
              if len(v := [e["metrics"][metric] for e in es]) >= 3]
    mark = " (below floor)" if model < floor else ""
    targets = ", ".join(sorted(by_target)) if len(by_target) <= 3 else f"{len(by_target)} classes"
    return (f"| {label} | {targets} | {'-' if paper is None else f'{paper:.3f}'} | {floor:.3f} | {model:.3f}{mark} | "
            f"{'; '.join(spread) or 'seed 0'} | [`{name}.md`](benchmarks/results/{name}.md) |")


def main():
    print("| benchmark | classes | paper | floor | anomzoo | seeds (mean ± std) | details |")
    print("|---|---|---|---|---|---|---|")
    for spec in ROWS:
        line = row(*spec)
        if line:
            print(line)


if __name__ == "__main__":
    main()
