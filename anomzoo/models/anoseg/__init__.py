from anomzoo.models.anoseg.model import AnoSeg
from anomzoo.models.anoseg.presets import CONFIGS

__all__ = ["AnoSeg", "CONFIGS"]
