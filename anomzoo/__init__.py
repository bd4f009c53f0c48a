"""anomzoo: a Keras 3 / TensorFlow model zoo for visual anomaly detection and localisation.

Importing anomzoo registers its models, layers and schedules with Keras, so `.keras` files it
wrote load with `keras.models.load_model` (or `anomzoo.load_model`).
"""

__version__ = "0.1.0"

import keras

from anomzoo import augment, layers, models  # noqa: F401  (registers the serialisable classes)
from anomzoo.models import build_model
from anomzoo.models.schedules import ConstantThenLinearDecay  # noqa: F401


def load_model(path):
    """Load a `.keras` file written by anomzoo (a run directory's model.keras)."""
    return keras.models.load_model(path)


__all__ = ["__version__", "build_model", "load_model"]
