"""CAVGA's networks (Venkataramanan et al., ECCV 2020; layer table: Table 9 of the AVAGA version).

- encoder: image -> the last feature map F, where Grad-CAM is taken. "resnet18_hub" is keras-hub's
  `ResNetBackbone` configured as ResNet-18 (CAVGA-R; random initialisation, or ImageNet weights with
  `backbone_weights`: "imagenet" or a local preset folder, `anomzoo.layers.pretrained`), "resnet18"
  the zoo's own ResNet-18 (same layout, any stride),
  "dcgan" the DCGAN discriminator's convolutions (CAVGA-D);
- latent: F -> {"mu", "log_var"}: two 1x1 convs (Table 9, layers 20-21; convolutional z), or two
  dense layers on flatten(F) (the "flat z" ablation, Table 8);
- decoder: z -> image in [0, 1]: Table 9's residual decoder (ConvTr 4x4/2, BN, ReLU, Conv 3x3, BN,
  ReLU, + skip from the ConvTr output) or the DCGAN generator (ConvTr 4x4/2, BN, ReLU);
- classifier (weakly supervised): flatten(z) -> 2 logits (normal, anomalous), Table 9's W.S. layers.
"""

import math

import keras

from anomzoo.layers import BN_MOMENTUM, pretrained
from anomzoo.layers import nn as layers
from anomzoo.layers.resnet import resnet18_encoder

ENCODERS = ("resnet18_hub", "resnet18", "dcgan")

# keras-hub's ResNetBackbone arguments for ResNet-18 (11,186,112 weights, as `resnet_18_imagenet`).
HUB_RESNET18 = dict(input_conv_filters=[64], input_conv_kernel_sizes=[7], stackwise_num_filters=[64, 128, 256, 512],
                    stackwise_num_blocks=[2, 2, 2, 2], stackwise_num_strides=[1, 2, 2, 2],
                    block_type="basic_block", use_pre_activation=False)
#: keras-hub's preset that `backbone_weights="imagenet"` loads.
IMAGENET_PRESET = "resnet_18_imagenet"


def hub_resnet18(image_shape, backbone_weights=None):
    """keras-hub's ResNet-18 backbone, built for `image_shape`: random weights, or those of
    `backbone_weights` ("imagenet": keras-hub's `resnet_18_imagenet`, from Kaggle or KaggleHub's cache;
    or a local keras-hub preset folder; see `anomzoo.layers.pretrained`). Imported here so that
    `import anomzoo.models` does not pay for keras-hub."""
    try:
        import keras_hub
    except ImportError as error:  # an optional extra (setup.cfg: hub)
        raise ImportError("encoder='resnet18_hub' needs keras-hub: pip install 'anomzoo[hub]', or use "
                          "encoder='resnet18' (the zoo's own ResNet-18)") from error
    # keras-hub builds Keras' Conv2D and BatchNormalization by name: have it build the zoo's (the
    # same layers, with the faster kernel gradient on ResNet's last small maps and the fused BatchNorm).
    with layers.keras_names_build_these():
        backbone = keras_hub.models.ResNetBackbone(**HUB_RESNET18, image_shape=tuple(image_shape))
    # The same network with or without weights: only the weights are loaded into it.
    return pretrained.load(backbone, backbone_weights, backbone_class=keras_hub.models.ResNetBackbone,
                           expected=HUB_RESNET18, imagenet_preset=IMAGENET_PRESET, description="ResNet-18")


def _dcgan_encoder(image_shape, filters, name):
    inputs = keras.Input(image_shape, name="image")
    x = inputs
    for level, width in enumerate(filters):
        x = layers.Conv2D(width, 4, strides=2, padding="same", use_bias=False, name=f"conv_{level}")(x)
        if level > 0:
            x = layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"bn_{level}")(x)
        x = layers.LeakyReLU(0.2, name=f"lrelu_{level}")(x)
    return keras.Model(inputs, x, name=name)


def encoder(image_shape, kind, filters, blocks, stride, backbone_weights=None, name="encoder"):
    """image -> F (B, H/stride, W/stride, C), ending in a ReLU (Table 9, layer 19). With
    `backbone_weights` (keras-hub's ResNet-18 only), the images are first normalised as ImageNet's were."""
    if kind not in ENCODERS:
        raise ValueError(f"encoder must be one of {ENCODERS}, got {kind!r}")
    if backbone_weights is not None and kind != "resnet18_hub":
        raise ValueError(f"backbone_weights={backbone_weights!r} loads keras-hub ResNet-18 weights: it needs "
                         f"encoder='resnet18_hub', got encoder={kind!r}")
    if kind == "dcgan":
        return _dcgan_encoder(image_shape, filters, name)
    if kind == "resnet18":
        return resnet18_encoder(image_shape, filters, blocks, stride, name=name)
    if stride != 32:
        raise ValueError(f"keras-hub's ResNet-18 has stride 32, got encoder_stride={stride}; "
                         "use encoder='resnet18' for another stride")
    if backbone_weights is not None and image_shape[-1] not in (1, 3):
        raise ValueError(f"ImageNet weights take RGB images (or grey ones, by the first kernel summed over the "
                         f"colours), not {image_shape[-1]} channels: use backbone_weights=None")
    inputs = keras.Input(image_shape, name="image")
    x = inputs
    if backbone_weights is not None:
        x = pretrained.imagenet_normalization(image_shape[-1])(x)
    features = hub_resnet18(image_shape, backbone_weights)(x)
    return keras.Model(inputs, layers.ReLU(name="relu")(features), name=name)


def backbone_weights_option(backbone_weights, kwargs, owner):
    """`backbone_weights` checked (`pretrained.check_option`), taking over `backbone_preset`, the
    option's earlier name, from `kwargs` (which files saved before it still carry): None stays None,
    keras-hub's "resnet_18_imagenet" is "imagenet", a folder stays a folder."""
    legacy = kwargs.pop("backbone_preset", None)
    if legacy is not None:
        if backbone_weights is not None:
            raise ValueError(f"{owner}: give backbone_weights only (backbone_preset is its old name)")
        backbone_weights = pretrained.IMAGENET if legacy == IMAGENET_PRESET else legacy
    return pretrained.check_option(backbone_weights, owner)


def latent(feature_shape, channels, flat_dim=None, name="latent"):
    """F -> {"mu", "log_var"}: 1x1 convs with `channels` outputs, or dense layers of `flat_dim`."""
    inputs = keras.Input(feature_shape, name="features")
    if flat_dim:
        flat = layers.Flatten(name="flatten")(inputs)
        mu, log_var = (layers.Dense(flat_dim, name=n)(flat) for n in ("mu", "log_var"))
    else:
        mu, log_var = (layers.Conv2D(channels, 1, name=n)(inputs) for n in ("mu", "log_var"))
    return keras.Model(inputs, {"mu": mu, "log_var": log_var}, name=name)


def decoder(latent_shape, image_shape, filters, residual, flat_shape=None, name="decoder"):
    """z -> reconstruction: one 2x upsampling per entry of `filters`, then ConvTr 4x4/2 to the image's
    channels and a sigmoid. flat_shape (h, w, c): a flat z is first mapped by a dense layer to it."""
    inputs = keras.Input(latent_shape, name="z")
    x = inputs
    if flat_shape is not None:
        x = layers.Dense(math.prod(flat_shape), name="from_flat")(x)
        x = layers.Reshape(flat_shape, name="unflatten")(layers.ReLU(name="from_flat_relu")(x))
    for level, width in enumerate(filters):
        up = layers.Conv2DTranspose(width, 4, strides=2, padding="same", use_bias=False, name=f"up_{level}")(x)
        x = layers.ReLU(name=f"up_relu_{level}")(
            layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"up_bn_{level}")(up))
        if residual:
            y = layers.Conv2D(width, 3, padding="same", use_bias=False, name=f"conv_{level}")(x)
            y = layers.ReLU(name=f"conv_relu_{level}")(
                layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"conv_bn_{level}")(y))
            # Table 9: "output layer 1 + output layer 6", i.e. the ConvTr's output (before its BN) plus the block's.
            x = layers.Add(name=f"skip_{level}")([up, y])
    x = layers.Conv2DTranspose(image_shape[-1], 4, strides=2, padding="same", name="to_image")(x)
    return keras.Model(inputs, layers.Activation("sigmoid", dtype="float32", name="sigmoid")(x), name=name)


def classifier(latent_shape, name="classifier"):
    """flatten(z) -> 2 logits (0 = normal, 1 = anomalous); softmax is applied where needed."""
    inputs = keras.Input(latent_shape, name="z")
    flat = layers.Flatten(name="flatten")(inputs) if len(latent_shape) > 1 else inputs
    return keras.Model(inputs, layers.Dense(2, name="logits")(flat), name=name)
