"""Blocks shared by the zoo's networks (keras.layers / keras.ops only, so any backend runs them)."""

# The papers' reference code is PyTorch, whose BatchNorm keeps 90% of its running statistics per
# step (momentum 0.1); Keras' default keeps 99%, which on small training sets (a few hundred steps)
# leaves the inference statistics near their initial values and ruins eval-mode outputs.
BN_MOMENTUM = 0.9

from anomzoo.layers import gradcam  # noqa: E402,F401  (the shared Grad-CAM helper)
