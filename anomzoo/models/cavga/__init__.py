from anomzoo.models.cavga.model import CAVGA
from anomzoo.models.cavga.presets import CONFIGS

__all__ = ["CAVGA", "CONFIGS"]
