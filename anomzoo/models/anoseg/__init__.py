from anomzoo.models.anoseg.model import AnoSeg
from anomzoo.models.anoseg.presets import PRESETS

__all__ = ["AnoSeg", "PRESETS"]
