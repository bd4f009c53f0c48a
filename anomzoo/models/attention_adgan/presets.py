"""Named configurations of the attention network + ADGAN, each complete, with metadata.

The paper's main text gives the layer types (Sec. 4.1) but not widths, loss weights or the
optimizer (its supplementary material, which has them, is not available): widths follow ResNet-18
and DCGAN, Eq. 5's weights are all 1, Adam 2e-4 (0.5, 0.999) is DCGAN's. Parameter counts are
the trainable weights of the built model (checked by tests/test_models.py). Each configuration's
"pretrained" says what the paper started from and what the zoo can load: the attention network's keras-hub
ResNet-18 takes ImageNet weights with the option `backbone_weights` ("imagenet", or a local keras-hub preset
folder; see `anomzoo.layers.pretrained`); every configuration starts from random weights by default.
"""

PAPER = ("Song, Kong, Park, Kang, Attention Map-Guided Two-stage Anomaly Detection using Hard "
         "Augmentation (attention network + ADGAN), 2021")
_LOSSES = {"w_adv": 1.0, "w_adv_ano": 1.0, "w_g": 1.0, "w_att": 1.0, "w_adgan_adv": 1.0, "w_adgan_rec": 0.4,
           "learning_rate": 2e-4}
# What the paper pretrained (Sec. 4.1), and how to get it here.
_IMAGENET = ("attention network's encoder: ResNet-18 pretrained on ImageNet in the paper; here random unless "
             "backbone_weights='imagenet' (keras-hub's resnet_18_imagenet: `anomzoo train attention_adgan --config "
             "paper --set backbone_weights=imagenet`) or a local keras-hub preset folder (--set backbone_weights="
             "/path/to/folder); ADGAN's encoder (on feature maps) starts random")
_WIDTHS = {"encoder_filters": (64, 128, 256, 512), "encoder_blocks": (2, 2, 2, 2), "latent_channels": 512,
           "decoder_filters": (256, 128, 64, 64), "path_filters": (64, 32), "discriminator_filters": 64,
           "discriminator_latent": 100, "feature_filters": (64, 64), "adgan_decoder_filters": (256, 128, 64)}

CONFIGS = {
    "paper": {
        "config": {"image_shape": (256, 256, 3), "encoder": "resnet18_hub", "encoder_stride": 32, **_WIDTHS,
                   **_LOSSES},
        "metadata": {"paper": PAPER, "image_size": 256, "parameters": 124_890_700, "pretrained": _IMAGENET,
                     "description": "Sec. 4.1 at 256 px: keras-hub ResNet-18 encoder (random init; ImageNet weights "
                                    "with backbone_weights='imagenet' or a local preset folder), 8x8x512 "
                                    "convolutional z, "
                                    "four ConvTr (strides 4, 2, 2, 2) and two three-conv paths, DCGAN "
                                    "discriminators; ADGAN: two-conv F_Img, ResNet-18 encoder, four ConvTr."},
    },
    "cifar10": {
        "config": {"image_shape": (32, 32, 3), "encoder": "resnet18", "encoder_stride": 8, **_WIDTHS, **_LOSSES},
        "metadata": {"paper": PAPER, "image_size": 32, "parameters": 31_061_580,
                     "pretrained": "the paper's encoder is ImageNet-pretrained; the zoo's ResNet-18 at stride 8 here "
                                   "takes no pretrained weights (random initialisation; ImageNet weights: the paper "
                                   "configuration, keras-hub's ResNet-18 at stride 32)",
                     "description": "The paper's networks for 32 px CIFAR-10 one-class: the zoo's ResNet-18 "
                                    "(full widths) at stride 8 (a 4x4x512 feature map, as CIFAR ResNets keep), "
                                    "four ConvTr (strides 2, 2, 2, 1)."},
    },
    "tiny": {
        "config": {"image_shape": (32, 32, 3), "encoder": "resnet18", "encoder_filters": (8, 16, 16, 16),
                   "encoder_blocks": (1, 1, 1, 1), "encoder_stride": 8, "latent_channels": 16,
                   "decoder_filters": (16, 16, 8, 8), "path_filters": (8, 8), "discriminator_filters": 8,
                   "discriminator_latent": 16, "feature_filters": (8, 8), "adgan_decoder_filters": (16, 8, 8),
                   **_LOSSES},
        "metadata": {"paper": PAPER, "image_size": 32, "parameters": 96_444, "pretrained": None,
                     "description": "About 96 thousand weights, for tests and smoke runs; not for results."},
    },
}


#: What `anomzoo train attention_adgan` trains when no config, epochs or selection is given: (largest
#: image side, configuration), the first that fits. The cifar10 configuration (the zoo's ResNet-18 at stride 8),
#: 5 + 5 epochs up to 64 px, as the tire benchmark ran it; the paper's keras-hub networks above.
RECOMMENDED = ((64, {"config": "cifar10", "epochs": [5, 5], "selection": "last"}),
               (None, {"config": "paper", "epochs": [5, 5], "selection": "val_syn_auroc"}))
