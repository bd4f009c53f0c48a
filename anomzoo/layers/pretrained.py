"""Pretrained weights for a keras-hub backbone that a zoo network builds itself.

CAVGA-R and the attention network start their ResNet-18 encoder from ImageNet weights. The zoo builds
the backbone (the zoo's layers, the model's input shape) exactly as without weights, and then loads
only the weights into it, from a keras-hub preset:

- `None`: no weights, random initialisation (nothing here runs);
- `"imagenet"`: keras-hub's built-in preset (`resnet_18_imagenet`), fetched from Kaggle by KaggleHub,
  or found in its cache (`~/.cache/kagglehub`, or `$KAGGLEHUB_CACHE`);
- any other string: a local keras-hub preset folder, what `backbone.save_to_preset(folder)` writes
  (`config.json` and `model.weights.h5`), for machines without the internet.

The preset's `config.json` must describe the backbone the network builds (same class, same
architecture arguments); its input channels may differ only as 3 (RGB) weights for a 1-channel
(grey) model, whose first convolution then takes the kernel summed over the three colours: a grey
image x fed to the RGB network as (x, x, x) gives exactly that convolution. Images reach the backbone
normalised as ImageNet's were (`imagenet_normalization`).

A saved model holds its weights: `weights_from_file()` builds models without fetching anything while
Keras loads a `.keras` file (or a copy is given weights by `set_weights`).
"""

import contextlib
import contextvars
import json
import os

import keras
import numpy as np

IMAGENET = "imagenet"
# ImageNet's channel statistics (torchvision's, timm's defaults; RGB images in [0, 1]).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CONFIG_FILE = "config.json"
WEIGHTS_FILES = ("model.weights.h5", "model.weights.json")  # one file, or keras' sharded index

_DEFERRED = contextvars.ContextVar("anomzoo_backbone_weights_deferred", default=False)


@contextlib.contextmanager
def weights_from_file():
    """While open, `load` loads nothing: the model being built gets its weights from elsewhere (the
    `.keras` file Keras is loading, or `set_weights` on a copy), so a saved pretrained model loads
    without the preset and without the internet."""
    token = _DEFERRED.set(True)
    try:
        yield
    finally:
        _DEFERRED.reset(token)


def check_option(value, owner):
    """`backbone_weights` as given, or a ValueError naming `owner`: None, "imagenet" or a folder (a str)."""
    if value is None or (isinstance(value, (str, os.PathLike)) and str(value)):
        return None if value is None else str(value)
    raise ValueError(f"{owner}: backbone_weights must be None (random initialisation), 'imagenet' or the path of "
                     f"a local keras-hub preset folder, got {value!r}")


def imagenet_normalization(channels, name="imagenet_normalization"):
    """[0, 1] images -> (x - mean) / std with ImageNet's statistics, as the pretrained weights saw
    them; a grey image takes the means of the three colours' statistics."""
    mean, std = np.asarray(IMAGENET_MEAN), np.asarray(IMAGENET_STD)
    if channels == 1:
        mean, std = mean.mean(keepdims=True), std.mean(keepdims=True)
    return keras.layers.Normalization(mean=mean.tolist(), variance=(std ** 2).tolist(), name=name)


def _offline_help(imagenet_preset):
    return (f"On a machine without the internet, save the preset where it is reachable: `python -c \"import "
            f"keras_hub; keras_hub.models.ResNetBackbone.from_preset('{imagenet_preset}')"
            f".save_to_preset('{imagenet_preset}')\"`, copy the folder over and pass its path: "
            f"backbone_weights='/path/to/{imagenet_preset}' (command line: --set "
            f"backbone_weights=/path/to/{imagenet_preset}); or copy KaggleHub's cache (~/.cache/kagglehub).")


def _imagenet_folder(backbone_class, imagenet_preset):
    """The local folder of keras-hub's built-in preset: KaggleHub's cache, else a download."""
    handle = backbone_class.presets[imagenet_preset]["kaggle_handle"]
    try:
        import kagglehub

        return kagglehub.model_download(handle.removeprefix("kaggle://"))
    except Exception as error:  # no network (ConnectionError), no kagglehub, Kaggle refusing, ...
        raise OSError(f"backbone_weights='imagenet' needs keras-hub's {imagenet_preset!r} preset ({handle}), "
                      f"which could not be fetched from Kaggle nor found in KaggleHub's cache: "
                      f"{type(error).__name__}: {error}. {_offline_help(imagenet_preset)}") from error


def preset_folder(source, backbone_class, imagenet_preset):
    """The local folder holding the preset `source` names ("imagenet" or a folder path)."""
    if source == IMAGENET:
        return _imagenet_folder(backbone_class, imagenet_preset)
    folder = os.path.expanduser(source)
    if not os.path.isdir(folder):
        what = "is a file, not a folder" if os.path.exists(folder) else "does not exist"
        raise FileNotFoundError(f"backbone_weights={source!r}: the folder {what}; expected 'imagenet' or a "
                                f"keras-hub preset folder (what `backbone.save_to_preset(folder)` writes: "
                                f"{CONFIG_FILE}, {WEIGHTS_FILES[0]}). {_offline_help(imagenet_preset)}")
    return folder


def _read_config(folder, source):
    path = os.path.join(folder, CONFIG_FILE)
    try:
        with open(path, encoding="utf-8") as file:
            config = json.load(file)
    except FileNotFoundError:
        raise FileNotFoundError(f"backbone_weights={source!r}: no {CONFIG_FILE} in {folder}; a keras-hub preset "
                                f"folder is what `backbone.save_to_preset(folder)` writes") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"backbone_weights={source!r}: {path} is not JSON ({error})") from None
    if not isinstance(config, dict) or not isinstance(config.get("config"), dict):
        raise ValueError(f"backbone_weights={source!r}: {path} is not a keras-hub backbone configuration")
    return config


def _check_config(config, source, backbone_class, expected, description):
    """A ValueError unless `config` is `backbone_class` with the `expected` arguments."""
    class_name = config.get("class_name")
    if class_name != backbone_class.__name__:
        raise ValueError(f"backbone_weights={source!r} is a preset of {class_name or 'an unknown class'}, not a "
                         f"keras-hub {backbone_class.__name__}: the encoder needs {description} weights")
    arguments = config["config"]
    differing = {key: arguments.get(key) for key, value in expected.items()
                 if _plain(arguments.get(key)) != _plain(value)}
    if differing:
        raise ValueError(f"backbone_weights={source!r} is not a {description} ({backbone_class.__name__} with "
                         f"{differing}; {description} has {({k: expected[k] for k in differing})})")


def _plain(value):
    return [_plain(v) for v in value] if isinstance(value, (list, tuple)) else value


def _weights_file(folder, source):
    for name in WEIGHTS_FILES:
        if os.path.isfile(os.path.join(folder, name)):
            return os.path.join(folder, name)
    raise FileNotFoundError(f"backbone_weights={source!r}: no {WEIGHTS_FILES[0]} in {folder}; a keras-hub preset "
                            f"folder is what `backbone.save_to_preset(folder)` writes")


def _first_conv(backbone):
    return next(layer for layer in backbone.layers if isinstance(layer, keras.layers.Conv2D))


@contextlib.contextmanager
def _first_conv_summed_over_colours(backbone):
    """While open, the backbone's first convolution loads a 3-channel kernel as its sum over the
    colours (a 1-channel kernel)."""
    conv = _first_conv(backbone)

    def load_own_variables(store):
        kernel = np.asarray(store["0"])
        if kernel.ndim != 4 or kernel.shape[2] != 3:
            raise ValueError(f"expected an RGB kernel (k, k, 3, filters) for {conv.name}, got {kernel.shape}")
        conv.kernel.assign(kernel.sum(axis=2, keepdims=True))
        if conv.use_bias:
            conv.bias.assign(np.asarray(store["1"]))

    object.__setattr__(conv, "load_own_variables", load_own_variables)
    try:
        yield
    finally:
        object.__delattr__(conv, "load_own_variables")


def load(backbone, source, *, backbone_class, expected, imagenet_preset, description):
    """Load the weights of preset `source` ("imagenet" or a folder) into `backbone`, a built
    `backbone_class` with the `expected` architecture arguments (a ValueError or an OSError that names
    the cause when the preset is missing, unreachable or of another architecture). Inside
    `weights_from_file()` nothing is loaded. Returns `backbone`."""
    if source is None or _DEFERRED.get():
        return backbone
    folder = preset_folder(source, backbone_class, imagenet_preset)
    config = _read_config(folder, source)
    _check_config(config, source, backbone_class, expected, description)
    weights = _weights_file(folder, source)
    channels = backbone.input_shape[-1]
    saved_channels = (config["config"].get("image_shape") or (None, None, 3))[-1] or 3
    if saved_channels not in (channels, 3) or (saved_channels != channels and channels != 1):
        raise ValueError(f"backbone_weights={source!r} holds weights for {saved_channels}-channel images; the model "
                         f"takes {channels}-channel images (pretrained weights load for the same channels, or RGB "
                         f"weights for grey images); use backbone_weights=None for {channels} channels")
    adapt = _first_conv_summed_over_colours(backbone) if saved_channels != channels else contextlib.nullcontext()
    try:
        with adapt:
            backbone.load_weights(weights)
    except ValueError as error:
        raise ValueError(f"backbone_weights={source!r}: the weights in {weights} do not fit a {description}: "
                         f"{error}") from error
    return backbone
