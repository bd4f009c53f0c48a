"""Named configurations of SAGAN. "paper" is the configuration of the ICIP 2021 paper."""

PRESETS = {
    # The paper's CIFAR-10 set-up: 32x32 RGB, losses 40/1/1, Adam 2e-3 (0.5, 0.999), score 0.2 R + 0.8 L.
    "paper": {
        "image_shape": (32, 32, 3),
        "base_filters": 64,
        "depth": 4,
        "separable": True,
    },
    # The same network with standard convolutions (the paper's "SAGAN without DSCs").
    "paper_no_dsc": {
        "image_shape": (32, 32, 3),
        "base_filters": 64,
        "depth": 4,
        "separable": False,
    },
}
