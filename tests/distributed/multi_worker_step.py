"""One SGD step per stage of a model's `tiny` configuration under MultiWorkerMirroredStrategy, as one
of the workers TF_CONFIG names; every random draw a constant (see mirrored_checks.py). Each worker
writes its weights to OUT_PREFIX<worker index>.npz; `tests/test_distribute.py` runs two of them on
localhost and compares with one device. Usage: python multi_worker_step.py MODEL OUT_PREFIX"""

import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mirrored_checks import constant_draws, one_step, tiny_data  # noqa: E402

from anomzoo import distribute  # noqa: E402


def main(name, prefix):
    strategy = distribute.make_strategy("multi_worker")
    with constant_draws():
        _, before, after, spread = one_step(name, tiny_data(), strategy)
    index = json.loads(os.environ["TF_CONFIG"])["task"]["index"]
    np.savez(f"{prefix}{index}.npz", *before, *after, spread=spread, count=len(after))


if __name__ == "__main__":
    main(*sys.argv[1:])
