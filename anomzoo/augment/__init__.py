"""Hard augmentation and synthetic anomalies as Keras 3 layers (keras.ops / keras.random only).

Every layer takes a batch (B, H, W, C) float in [0, 1] (or one (H, W, C) image), is deterministic
given its `seed` (keras.random.SeedGenerator), is always applied (no `training` switch: these
layers make data), and runs unchanged in eager code, inside a Keras model and inside
`tf.data.Dataset.map` on batches (with the TensorFlow backend). Layers that synthesise anomalies
return (image, mask) with mask (B, H, W, 1) float32 = 1 exactly where the output differs from
the input on some channel.
"""

from .blobpaste import BlobPaste
from .boxfill import BoxFill
from .color import DEFAULT_JITTER, HardColorJitter
from .cutpaste import CutPaste
from .foreground import foreground_mask
from .hard import HardAugment
from .perm import RandomPatchPermutation, permute_patches
from .rotate import RandomRotate90, rotate90
from .synth import AnomalySynthesizer

__all__ = [
    "AnomalySynthesizer",
    "BlobPaste",
    "BoxFill",
    "CutPaste",
    "DEFAULT_JITTER",
    "HardAugment",
    "HardColorJitter",
    "RandomPatchPermutation",
    "RandomRotate90",
    "foreground_mask",
    "permute_patches",
    "rotate90",
]
