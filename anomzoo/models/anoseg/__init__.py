from anomzoo.models.anoseg.model import AnoSeg
from anomzoo.models.anoseg.configs import CONFIGS

__all__ = ["AnoSeg", "CONFIGS"]
