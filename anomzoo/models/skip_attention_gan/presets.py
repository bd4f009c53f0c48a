"""Named configurations of SAGAN, each complete (network, loss weights, rate) with its metadata."""

PAPER = "Liu et al., SAGAN: Skip-Attention GAN for Anomaly Detection, ICIP 2021"
_LOSSES = {"w_con": 40.0, "w_lat": 1.0, "w_adv": 1.0, "score_weight": 0.2, "learning_rate": 2e-3}

CONFIGS = {
    "paper": {
        "config": {"image_shape": (32, 32, 3), "base_filters": 64, "depth": 4, "separable": True,
                   "discriminator_filters": 64, **_LOSSES},
        "metadata": {"paper": PAPER, "image_size": 32, "parameters": 5_102_035,
                     "description": "The paper's CIFAR-10 set-up: 32x32 RGB, DSC U-Net with CBAM, losses "
                                    "40/1/1, Adam 2e-3 (0.5, 0.999), score 0.2 R + 0.8 L."},
    },
    "paper_no_dsc": {
        "config": {"image_shape": (32, 32, 3), "base_filters": 64, "depth": 4, "separable": False,
                   "discriminator_filters": 64, **_LOSSES},
        "metadata": {"paper": PAPER, "image_size": 32, "parameters": 18_415_575,
                     "description": "The same network with standard convolutions (the paper's "
                                    "\"SAGAN without DSCs\")."},
    },
    "tiny": {
        "config": {"image_shape": (32, 32, 3), "base_filters": 8, "depth": 2, "separable": True,
                   "discriminator_filters": 8, **_LOSSES},
        "metadata": {"paper": PAPER, "image_size": 32, "parameters": 70_042,
                     "description": "70 thousand weights, for tests and smoke runs; not for results."},
    },
}


#: What `anomzoo train sagan` trains when no config, epochs or selection is given: (largest image
#: side, configuration), the first that fits: the paper's networks, 30 epochs (as its zoo entry
#: sagan_digits0 was trained), the last epoch.
RECOMMENDED = ((None, {"config": "paper", "epochs": 30, "selection": "last"}),)
