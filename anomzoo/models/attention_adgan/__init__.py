"""Attention network + ADGAN (Song et al.): two-stage anomaly detection with a learned attention map."""

from anomzoo.models.attention_adgan.model import AttentionADGAN
from anomzoo.models.attention_adgan.presets import CONFIGS

__all__ = ["AttentionADGAN", "CONFIGS"]
