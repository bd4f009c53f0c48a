"""anomzoo: a Keras 3 / TensorFlow model zoo for visual anomaly detection and localisation.

`import anomzoo` is cheap (the command line answers `--help` without loading TensorFlow); the
first use of `anomzoo.build_model`, `anomzoo.load_model`, `anomzoo.models` and the like imports
Keras and registers anomzoo's models, layers and schedules with it, after which `.keras` files
anomzoo wrote also load with `keras.models.load_model`.
"""

import importlib

from anomzoo.version import __version__

_SUBMODULES = ("augment", "layers", "models")


def _register():
    from anomzoo.models.loading import register_classes

    register_classes()


def build_model(name, config="paper", **overrides):
    """A fresh model of the registry `name` in its named configuration `config` (e.g. "anoseg", "lite")."""
    _register()
    from anomzoo.models import build_model as build

    return build(name, config, **overrides)


def from_preset(name):
    """A trained model from the zoo by entry name (`anomzoo zoo list`), e.g. "sagan_digits0"."""
    from anomzoo.models.loading import load_zoo_entry

    return load_zoo_entry(name)


def load_model(path):
    """Load a `.keras` file written by anomzoo (or a run directory's model.keras). A missing file is
    a FileNotFoundError, a truncated or corrupt one a ValueError naming it."""
    _register()
    from anomzoo.models.loading import load_run_model

    return load_run_model(path)[0]


def __getattr__(name):
    if name in _SUBMODULES:
        _register()
        return importlib.import_module(f"anomzoo.{name}")
    raise AttributeError(f"module 'anomzoo' has no attribute {name!r}")


__all__ = ["__version__", "build_model", "from_preset", "load_model"]
