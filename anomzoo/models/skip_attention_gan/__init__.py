from anomzoo.models.skip_attention_gan.model import SkipAttentionGAN
from anomzoo.models.skip_attention_gan.presets import PRESETS

__all__ = ["SkipAttentionGAN", "PRESETS"]
