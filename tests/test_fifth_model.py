"""Adding a model is its folder and one registry line: a throwaway fifth model
(`tests/fifth_model/`), registered by `sitecustomize.py` in its folder, gets every generic model test and a speed case
without an edit to either."""

import os
import re
import subprocess
import sys

from conftest import REPO

HERE = REPO / "tests"


def test_a_fifth_model_gets_the_generic_tests_and_a_speed_case():
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE / "fifth_model"), str(HERE),
                                                         os.environ.get("PYTHONPATH", "")])}
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-n", "0",
         str(HERE / "test_models.py"), str(HERE / "test_speed_benchmark.py"), "-k", "throwaway"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    summary = run.stdout.strip().splitlines()[-1] if run.stdout.strip() else run.stderr[-2000:]
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    passed = int(re.search(r"(\d+) passed", summary).group(1))
    # every test of test_models.py parametrised over MODELS, and the speed benchmark's case for it
    assert passed >= 12, summary
