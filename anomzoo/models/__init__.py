"""The zoo's models by registry name. `build_model("anoseg", "paper")`."""

from anomzoo.models.anoseg import AnoSeg
from anomzoo.models.attention_adgan import AttentionADGAN
from anomzoo.models.base import AnomalyModel, Stage
from anomzoo.models.cavga import CAVGA
from anomzoo.models.skip_attention_gan import SkipAttentionGAN

MODELS = {"skip_attention_gan": SkipAttentionGAN, "anoseg": AnoSeg, "cavga": CAVGA, "attention_adgan": AttentionADGAN}
# "SAGAN" usually means Self-Attention GAN elsewhere, so it is an alias, not the registry key.
ALIASES = {"sagan": "skip_attention_gan"}


def canonical_name(name):
    if not isinstance(name, str):
        raise ValueError(f"a model is named by a str, one of {sorted([*MODELS, *ALIASES])}; got {name!r}")
    key = ALIASES.get(name.lower(), name.lower())
    if key not in MODELS:
        known = sorted([*MODELS, *ALIASES])
        raise ValueError(f"unknown model {name!r}; expected one of {known}")
    return key


def build_model(name, config="paper", **overrides):
    """A fresh model of the registry `name` in its named configuration `config`, with `overrides` on top."""
    return MODELS[canonical_name(name)].configured(config, **overrides)


__all__ = ["ALIASES", "MODELS", "AnoSeg", "AnomalyModel", "AttentionADGAN", "CAVGA", "SkipAttentionGAN", "Stage",
           "build_model", "canonical_name"]
