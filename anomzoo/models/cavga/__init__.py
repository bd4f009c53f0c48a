from anomzoo.models.cavga.model import CAVGA
from anomzoo.models.cavga.presets import PRESETS

__all__ = ["CAVGA", "PRESETS"]
