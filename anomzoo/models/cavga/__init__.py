from anomzoo.models.cavga.model import CAVGA
from anomzoo.models.cavga.configs import CONFIGS

__all__ = ["CAVGA", "CONFIGS"]
