from anomzoo.models.skip_attention_gan.model import SkipAttentionGAN
from anomzoo.models.skip_attention_gan.presets import CONFIGS

__all__ = ["SkipAttentionGAN", "CONFIGS"]
