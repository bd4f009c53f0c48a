"""Where a result came from: code version, machine and library versions."""

import functools
import os
import pathlib
import platform
import subprocess

import keras


@functools.lru_cache(maxsize=None)
def commit():
    """The git commit of the anomzoo source, with "+dirty" when it has uncommitted changes.

    Cached: the first call (at start-up, for long runs) names the code the process imported.
    """
    root = pathlib.Path(__file__).resolve().parents[1]
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        from anomzoo.version import __version__

        return f"release {__version__}"
    return head.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


def cpu_flags():
    """The CPU's instruction-set extensions that decide training speed here (AVX2 / FMA / F16C,
    AVX-512, AMX): machines of one kind differ, e.g. with or without AVX-512 BF16 and AMX, which
    oneDNN needs for fast bfloat16."""
    try:
        with open("/proc/cpuinfo") as handle:
            flags = next(line for line in handle if line.startswith("flags")).split()
    except (OSError, StopIteration):
        return []
    return sorted(f for f in flags if "avx512" in f or "amx" in f or f in ("avx2", "fma", "f16c"))


def environment():
    import tensorflow as tf

    return {
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores, {platform.system()}",
        "cpu_flags": cpu_flags(),
        "accelerators": [d.name for d in tf.config.list_physical_devices() if d.device_type != "CPU"],
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
    }
