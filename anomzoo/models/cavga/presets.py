"""Named configurations of CAVGA, each complete (networks, loss weights, rate) with its metadata.

Weights 1, 1, 0.01 (unsupervised) and 1, 1, 0.001, 0.01 (weakly supervised) on a per-image L_R summed
over pixels, Adam 1e-4 decayed x0.1 every 30 epochs, and random crops and rotations for the
high-resolution (256 px) data are the paper's (ECCV Sec. 3; AVAGA Appendix A.1). Each configuration's
"pretrained" says what the paper started from and what the zoo can load: CAVGA-R's encoder takes ImageNet
weights with the option `backbone_weights` ("imagenet", or a local keras-hub preset folder; see
`anomzoo.layers.pretrained`); every configuration starts from random weights by default.
"""

PAPER = "Venkataramanan et al., Attention Guided Anomaly Localization in Images (CAVGA), ECCV 2020"
_LOSSES = {"w_r": 1.0, "w_adv": 1.0, "w_ae": 0.01, "w_c": 0.001, "w_cga": 0.01, "learning_rate": 1e-4}
_R = {"image_shape": (256, 256, 3), "encoder": "resnet18_hub", "latent_channels": 512, "decoder": "residual",
      "decoder_filters": (512, 256, 128, 64), "discriminator_filters": 64, "augment": True, **_LOSSES}
# What the paper pretrained (Sec. 4, "Architecture details"), and how to get it here.
_IMAGENET = ("encoder: ResNet-18 pretrained on ImageNet in the paper; here random unless backbone_weights="
             "'imagenet' (keras-hub's resnet_18_imagenet: `anomzoo train cavga --config paper --set "
             "backbone_weights=imagenet`) or a local keras-hub preset folder (--set backbone_weights=/path/to/folder)")
_CELEBA = ("encoder, decoder and discriminator: DCGAN pretrained on Celeb-A in the paper; not available here "
           "(random initialisation)")
_D = {"image_shape": (32, 32, 3), "encoder": "dcgan", "encoder_filters": (64, 128, 256), "latent_channels": 1,
      "decoder": "dcgan", "decoder_filters": (128, 64), "discriminator_filters": 64, **_LOSSES}

CONFIGS = {
    "paper": {
        "config": _R,
        "metadata": {"paper": PAPER, "image_size": 256, "parameters": 69_773_255,
                     "pretrained": _IMAGENET,
                     "description": "CAVGA-R_u: keras-hub ResNet-18 encoder (random init; ImageNet weights with "
                                    "backbone_weights='imagenet' or a local preset folder), 8x8x512 convolutional z, "
                                    "Table 9's residual decoder, DCGAN discriminator."},
    },
    "paper_weak": {
        "config": {**_R, "weakly_supervised": True},
        "metadata": {"paper": PAPER, "image_size": 256, "parameters": 69_838_793, "pretrained": _IMAGENET,
                     "description": "CAVGA-R_w: CAVGA-R_u plus the classifier on flatten(z) (Table 9, W.S.)."},
    },
    "paper_d": {
        "config": _D,
        "metadata": {"paper": PAPER, "image_size": 32, "parameters": 1_865_993, "pretrained": _CELEBA,
                     "description": "CAVGA-D_u for the 32 px datasets: DCGAN encoder (64-128-256, 4x4 "
                                    "features), 4x4x1 convolutional z (the paper gives no size; chosen on "
                                    "validation), DCGAN generator as decoder."},
    },
    "paper_d_weak": {
        "config": {**_D, "weakly_supervised": True},
        "metadata": {"paper": PAPER, "image_size": 32, "parameters": 1_866_027, "pretrained": _CELEBA,
                     "description": "CAVGA-D_w: CAVGA-D_u plus the classifier on flatten(z)."},
    },
    "tiny": {
        "config": {"image_shape": (32, 32, 3), "encoder": "resnet18", "encoder_filters": (8, 16, 16, 16),
                   "encoder_blocks": (1, 1, 1, 1), "encoder_stride": 8, "latent_channels": 16,
                   "decoder": "residual", "decoder_filters": (16, 8), "discriminator_filters": 8,
                   **_LOSSES},
        "metadata": {"paper": PAPER, "image_size": 32, "parameters": 88_847, "pretrained": None,
                     "description": "About 89 thousand weights (the zoo's ResNet-18 layout, narrow "
                                    "and one block per stage), for tests and smoke runs; not for results."},
    },
}


#: What `anomzoo train cavga` trains when no config, epochs or selection is given: (largest image
#: side, configuration), the first that fits. At 32 px CAVGA-D_u with the 4x4x1 z beat the no-learning
#: floor on one-class MNIST at 15 epochs (benchmarks/results/cavga_mnist.md); 15 epochs are the first
#: half of the paper's constant-rate phase. Above 64 px, CAVGA-R (keras-hub ResNet-18).
RECOMMENDED = ((64, {"config": "paper_d", "epochs": 15, "selection": "last"}),
               (None, {"config": "paper", "epochs": 30, "selection": "last"}))
