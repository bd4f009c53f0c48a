"""The convolutional part of ResNet-18 (He et al., CVPR 2016), as an encoder built from scratch.

Written here rather than taken from keras-hub because keras-hub requires tensorflow-text, which
installs the full `tensorflow` distribution beside `tensorflow-cpu` (TensorFlow twice, the thing
`setup.cfg`'s extras exist to avoid). The layout is torchvision's and keras-hub's
(`ResNetBackbone`, basic blocks, no pre-activation): 7x7/2 conv, BN, ReLU, 3x3/2 max pool, four
stages of two basic blocks (64, 128, 256, 512 filters; stride 1, 2, 2, 2; a 1x1 projection on the
shortcut where the shape changes). With 3 input channels it has 11,176,512 trainable weights,
torchvision's resnet18 without its classifier. Output stride 32: 8x8x512 at 256 px.
"""

import keras

from anomzoo.layers import BN_MOMENTUM
from anomzoo.layers import nn as layers


def _conv_bn(x, filters, kernel, stride, name, relu=True):
    x = layers.Conv2D(filters, kernel, strides=stride, padding="same", use_bias=False, name=f"{name}_conv")(x)
    x = layers.BatchNormalization(momentum=BN_MOMENTUM, epsilon=1e-5, name=f"{name}_bn")(x)
    return layers.ReLU(name=f"{name}_relu")(x) if relu else x


def _basic_block(x, filters, stride, name):
    shortcut = x
    if stride != 1 or x.shape[-1] != filters:
        shortcut = _conv_bn(x, filters, 1, stride, f"{name}_shortcut", relu=False)
    y = _conv_bn(x, filters, 3, stride, f"{name}_a")
    y = _conv_bn(y, filters, 3, 1, f"{name}_b", relu=False)
    return layers.ReLU(name=f"{name}_out")(layers.Add(name=f"{name}_add")([shortcut, y]))


def resnet18_encoder(input_shape, filters=(64, 128, 256, 512), blocks=(2, 2, 2, 2), stride=32, name="encoder"):
    """A functional model: (B, H, W, C) -> (B, H/stride, W/stride, filters[-1]).

    filters / blocks: per stage; ResNet-18 is (64, 128, 256, 512) / (2, 2, 2, 2). Narrower or
    shallower settings give the same structure at a lower cost (the zoo's `tiny` configurations).
    stride: 32 is ResNet-18's; 16 drops the stem's max pooling and 8 also its stride, as ResNets
    for small images do, so that small inputs keep a feature map larger than 1x1 or 2x2.
    """
    if stride not in (8, 16, 32):
        raise ValueError(f"the ResNet-18 encoder's stride must be 8, 16 or 32, got {stride}")
    inputs = keras.Input(input_shape, name="image")
    x = _conv_bn(inputs, filters[0], 7, 2 if stride >= 16 else 1, "stem")
    if stride == 32:
        x = layers.MaxPooling2D(3, strides=2, padding="same", name="stem_pool")(x)
    for stage, (width, count) in enumerate(zip(filters, blocks)):
        for block in range(count):
            stride = 2 if stage > 0 and block == 0 else 1
            x = _basic_block(x, width, stride, f"stage{stage + 1}_block{block + 1}")
    return keras.Model(inputs, x, name=name)
