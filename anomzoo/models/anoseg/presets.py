"""Named configurations of AnoSeg, each complete (networks, loss weights, rate) with its metadata.

Loss weights and the learning rate are not in the paper; w_adv = 0.01, Adam 1e-4 and `lite`'s
synthesis_min_change 0.05, weight_averaging 0.9 and synthesis_foreground 0.03 were chosen on the tire's synthetic validation set
(see the model's README), never on test data. `tiny` keeps 1e-3: it exists for tests and smoke runs of a few steps.
"""

PAPER = "Song, Kong et al., AnoSeg: Anomaly Segmentation Network Using Self-Supervised Learning, 2021"
_LOSSES = {"w_seg": 1.0, "w_re": 1.0, "w_adv": 0.01, "w_det_adv": 1.0, "w_det_fea": 1.0, "w_det_rec": 10.0,
           "w_det_cls": 1.0, "score_alpha": 1.0, "score_beta": 0.1, "learning_rate": 1e-4}

CONFIGS = {
    "paper": {
        "config": {"image_shape": (256, 256, 3), **_LOSSES},
        "metadata": {"paper": PAPER, "image_size": 256, "parameters": 77_707_849,
                     "description": "Table 6 exactly at 256 px: ResNet-18 encoder, two decoders "
                                    "(512-256-128-128-128-128), the 8-conv discriminator, coordinate "
                                    "channels; plus the detector of Appendix A."},
    },
    "lite": {
        "config": {"image_shape": (256, 256, 3), "decoder_filters": (256, 128, 64, 64, 32, 32),
                   "balanced_segmentation": True, "synthesis_min_change": 0.05, "weight_averaging": 0.9,
                   "synthesis_foreground": 0.03, **_LOSSES},
        "metadata": {"paper": PAPER, "image_size": 256, "parameters": 55_990_249,
                     "description": "Table 6 with narrower decoders (256-128-64-64-32-32): the layers at "
                                    "full resolution cost a sixteenth, for CPU training; L_Seg "
                                    "balanced over normal and anomalous pixels, only visible changes "
                                    "(> 0.05) of a synthetic anomaly as targets, synthetic anomalies "
                                    "placed on the object (foreground threshold 0.03), and the generators' "
                                    "weights averaged (momentum 0.9) at every epoch's end. Not the paper's "
                                    "network."},
    },
    "tiny": {
        "config": {"image_shape": (32, 32, 3), "encoder_filters": (8, 16, 16, 16), "encoder_blocks": (1, 1, 1, 1),
                   "decoder_filters": (16, 16, 8, 8, 8, 8), "discriminator_filters": (8, 16, 16, 16, 16, 16, 8),
                   **_LOSSES, "learning_rate": 1e-3},
        "metadata": {"paper": PAPER, "image_size": 32, "parameters": 70_441,
                     "description": "About 70 thousand weights, for tests and smoke runs; not for results."},
    },
}


#: What `anomzoo train anoseg` trains when no config, epochs or selection is given: (largest image
#: side, configuration), the first that fits. `lite` 12 + 3 epochs, selected on synthetic anomalies,
#: is the tire benchmark's configuration at 64-128 px; Table 6's `paper` above.
RECOMMENDED = ((128, {"config": "lite", "epochs": [12, 3], "selection": "val_syn_auroc"}),
               (None, {"config": "paper", "epochs": [12, 3], "selection": "val_syn_auroc"}))
