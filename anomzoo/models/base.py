"""The one training core shared by every model of the zoo.

The four papers differ in their networks and loss terms, not in how an adversarial step runs, so
this class owns the step and a model declares:

- `stages`: the training stages, in order, each a `Stage(name, players)`; a player is a name
  mapped to the networks (attribute names) its loss trains. SAGAN has one stage with players
  "g" and "d"; AnoSeg a segmentation stage, then a detector stage. Networks of a finished stage
  are frozen (the model calls them with training=False and no optimizer sees them), and every
  stage's networks live in the same `.keras` file;
- `loss_terms(batch, stage, training)` -> {player: {"total": scalar, other terms...}}, where
  `batch` is a dict: "image" (B, H, W, C) in [0, 1], and "mask" / "label" when the data has them.
  A model that learns from synthetic anomalies makes them here, inside the step, so that images
  and masks never part in `tf.data`;
- `anomaly_outputs(images)` -> the inference contract {"score": (B,), "anomaly_map": (B, H, W, 1)},
  higher meaning more anomalous; extra outputs may be added by name;
- `default_optimizers(stage_steps, steps_per_epoch)` -> {player: optimizer}, its paper's rates and
  schedule, where `stage_steps` maps a stage name to the number of steps it will train and
  `steps_per_epoch` is the length of an epoch (each None when unknown).

One forward pass feeds every player of a stage: each player's gradient is taken from the same
tape, so a generator's step sees the discriminator as it is and vice versa, exactly the
(Skip-)GANomaly update. Logged names come from what the loss terms return: the first player's
total is "loss" (so TerminateOnNaN and EarlyStopping work), the others' "<player>_loss", and every
other term under its own name. Everything here except the gradient tape is backend-neutral.
"""

import contextlib
import dataclasses
import inspect

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from anomzoo import contract, distribute
from anomzoo.models import precision as precision_option


@dataclasses.dataclass(frozen=True)
class Stage:
    """A training stage: its name, {player name: tuple of network attribute names}, and the
    validation metric that judges it under the combined "val_syn_auroc" selection rule (None: the
    rule's own). AnoSeg's segmentation stage is judged by pixel AUROC alone, since the image score
    comes from a detector that stage does not train."""

    name: str
    players: dict
    selection_metric: str | None = None


def check_image_shape_form(image_shape, owner):
    """(height, width, channels) as a tuple of three positive ints, or a ValueError naming `owner`;
    each model's constructor calls it first, then checks the sizes its networks can take."""
    try:
        shape = tuple(int(d) for d in image_shape)
    except (TypeError, ValueError):
        shape = ()
    if len(shape) != 3 or min(shape) < 1 or shape != tuple(image_shape):
        raise ValueError(f"{owner} takes image_shape=(height, width, channels), three positive ints, "
                         f"got {image_shape!r}")
    return shape


def check_numbers(config, owner):
    """A ValueError naming `owner` for a configuration number out of range: a learning rate must be a
    positive finite number (a negative one trains by gradient ascent, silently), a loss weight (w_*)
    a finite number >= 0, a depth a positive int."""
    def number(value):
        return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)

    for key, value in config.items():
        if key.endswith("learning_rate") and value is not None:
            if not number(value) or not np.isfinite(value) or value <= 0:
                raise ValueError(f"{owner}: {key} must be a positive number, got {value!r}")
        elif key.startswith("w_") and (not number(value) or not np.isfinite(value) or value < 0):
            raise ValueError(f"{owner}: loss weight {key} must be a finite number >= 0, got {value!r}")
        elif key == "depth" and (not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1):
            raise ValueError(f"{owner}: depth must be a positive int, got {value!r}")


def as_batch(data):
    """What `fit` / `evaluate` hand a step, as the dict every model reads.

    A dict passes through; a tuple or list is (image, mask, label) in that order (Keras wraps a
    plain array as a 1-tuple); a tensor is the images alone.
    """
    if isinstance(data, dict):
        if "image" not in data:
            raise ValueError(f"a batch dict needs an 'image' entry, got keys {sorted(data)}")
        return data
    if isinstance(data, (tuple, list)):
        if data and isinstance(data[0], dict):  # train_on_batch(dict) arrives as (dict, None, None)
            return as_batch(data[0])
        return {key: value for key, value in zip(("image", "mask", "label"), data) if value is not None}
    return {"image": data}


def _as_declared(value, default):
    """`value` as its option stores it: sequences as tuples, numbers of a float option as floats."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, (list, tuple)):
        kinds = default if isinstance(default, tuple) and len(default) == len(value) else (None,) * len(value)
        return tuple(_as_declared(v, d) for v, d in zip(value, kinds))
    if isinstance(default, float) and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return value


class AnomalyModel(keras.Model):
    """Base class: declared stages and players, their optimizers, `model.fit`-ready.

    A model declares its options once, as its constructor's keyword arguments, checks the ones
    that need more than `check_numbers`, and passes `config=self.options(locals())` to
    `super().__init__`: every option is then an attribute, `get_config` / `from_config` and `.keras`
    files work without further code. `configs` maps {name: {"config": {...}, "metadata": {...}}}
    for `configured` (trained models from the zoo are presets: `from_preset`).
    """

    stages: tuple = ()
    configs: dict = {}
    #: ((largest image side or None, {"config", "epochs", "selection"}), ...): what the zoo's results
    #: recommend training at each size, the first entry whose side fits (see `recommended`).
    recommendations: tuple = ()

    def __init__(self, config=None, precision="float32", **kwargs):
        super().__init__(**kwargs)
        # Every model takes `precision` ("float32" or "bfloat16", see models/precision.py); it is
        # applied to the networks in `build`, which each model calls once its networks exist.
        self.precision = precision_option.check(precision)
        check_numbers(config or {}, type(self).__name__)
        self._model_config = {**dict(config or {}), "precision": precision}
        for key, value in (config or {}).items():
            setattr(self, key, value)
        # The stage being trained; a variable, so that a saved model remembers which stages are done.
        self._stage_variable = keras.Variable(0, dtype="int32", trainable=False, name="stage")
        self._stage_index = 0
        self._set_trackers({})

    @classmethod
    def options(cls, arguments):
        """The constructor's options from `arguments` (its `locals()`, after its own checks): lists
        become tuples and a number takes the kind of its default (1 for a float option is 1.0), so a
        configuration read back from JSON builds the same model."""
        options = {}
        for name, parameter in inspect.signature(cls.__init__).parameters.items():
            if name != "self" and parameter.kind is parameter.POSITIONAL_OR_KEYWORD:
                options[name] = _as_declared(arguments[name], parameter.default)
        return options

    # -- what a model provides ------------------------------------------------------------------

    def loss_terms(self, batch, stage, training):
        raise NotImplementedError

    def anomaly_outputs(self, images):
        raise NotImplementedError

    def default_optimizers(self, stage_steps=None, steps_per_epoch=None):
        raise NotImplementedError

    #: each stage's share of `training.train(epochs=N)`, in stage order (a two-stage model overrides).
    stage_fractions = (1.0,)

    def validation_synthesis(self):
        """Keyword arguments of `validation.synthetic_validation_set` for this model's checkpoint
        selection: a model that makes its own synthetic anomalies has the selection set made the same way."""
        return {}

    # -- configurations and presets ----------------------------------------------------------
    # A configuration is a named set of options (`configs`, built by `configured` / `build_model`);
    # a preset is a trained model in the zoo (`from_preset`), as keras-hub's presets carry weights.

    @classmethod
    def recommended(cls, image_side):
        """{"config", "epochs", "selection"}: what the zoo's results recommend training for images of
        this side (a model that recommends nothing: its `paper` configuration, 30 epochs, the last epoch)."""
        for largest, recommendation in cls.recommendations:
            if largest is None or image_side <= largest:
                return dict(recommendation)
        return {"config": "paper", "epochs": 30, "selection": "last"}

    @classmethod
    def configured(cls, config, **overrides):
        """A fresh model of the named configuration, e.g. `AnoSeg.configured("lite")`, with `overrides`
        on top."""
        if not isinstance(config, str):
            raise ValueError(f"config must be a name (a str), e.g. {next(iter(cls.configs))!r}; got {config!r}")
        if config not in cls.configs:
            from anomzoo import zoo

            hint = (f"; {config!r} is a trained preset, loaded with {cls.__name__}.from_preset({config!r}) "
                    "(training from it is not supported)" if zoo.is_entry(config) else "")
            raise ValueError(f"unknown {cls.__name__} config {config!r}; expected one of {sorted(cls.configs)}{hint}")
        return cls(**{**cls.configs[config]["config"], **overrides})

    @classmethod
    def from_preset(cls, preset):
        """A trained model from the zoo by preset name, e.g. `SkipAttentionGAN.from_preset("sagan_digits0")`
        (`anomzoo zoo list` shows them)."""
        from anomzoo import zoo
        from anomzoo.models import MODELS

        if isinstance(preset, str) and preset in cls.configs and not zoo.is_entry(preset):
            raise ValueError(f"{preset!r} is a configuration of {cls.__name__}, not a trained preset: build it "
                             f"with {cls.__name__}.configured({preset!r}) or build_model(name, {preset!r})")
        if not isinstance(preset, str) or not zoo.is_entry(preset):
            entries = [n for n, e in zoo.ENTRIES.items() if MODELS.get(e["model"]) is cls]
            raise ValueError(f"unknown {cls.__name__} preset {preset!r}; trained presets: "
                             f"{', '.join(sorted(entries)) or 'none yet'}")
        # this class being in use, anomzoo.models (every class Keras must know) is imported
        model = keras.models.load_model(zoo.fetch(preset), safe_mode=True)
        if not isinstance(model, cls):
            raise ValueError(f"zoo preset {preset!r} is a {type(model).__name__}, not a {cls.__name__}")
        return model

    # -- stages ---------------------------------------------------------------------------------

    @property
    def stage(self):
        """The `Stage` being trained."""
        return self.stages[self._stage_index]

    def stage_of(self, name):
        """The index of the stage called `name` (an index passes through)."""
        names = [s.name for s in self.stages]
        if isinstance(name, (int, np.integer)):
            if not 0 <= name < len(names):
                raise ValueError(f"stage index {name} out of range; {type(self).__name__} has stages {names}")
            return int(name)
        if name not in names:
            raise ValueError(f"unknown stage {name!r}; {type(self).__name__} has stages {names}")
        return names.index(name)

    def set_stage(self, stage):
        """Train `stage` (name or index) from now on; the networks of earlier stages are frozen.

        Inside `fit` this takes effect at the next step (the train and test functions are rebuilt).
        """
        index = self.stage_of(stage)
        self._stage_variable.assign(index)
        self._stage_index = index
        for position, each in enumerate(self.stages):
            for networks in each.players.values():
                for network in networks:
                    getattr(self, network).trainable = position >= index
        if getattr(self, "train_function", None) is not None:
            self.make_train_function(force=True)
        if getattr(self, "test_function", None) is not None:
            self.make_test_function(force=True)

    def player_variables(self, player):
        networks = next(s.players[player] for s in self.stages if player in s.players)
        return [v for network in networks for v in getattr(self, network).trainable_variables]

    def _sync_stage(self):
        """Read the stage back from its variable (after loading a saved model)."""
        index = int(ops.convert_to_numpy(self._stage_variable))
        if index != self._stage_index:
            self.set_stage(index)

    # -- Keras plumbing -------------------------------------------------------------------------

    def compile(self, optimizers=None, stage_steps=None, steps_per_epoch=None, **kwargs):
        """Set every player's optimizer: `optimizers` {player: optimizer}, else the paper's defaults
        (`stage_steps` {stage: steps} lets their schedules end with training, `steps_per_epoch`
        lets them count in epochs). Other keyword arguments go to `keras.Model.compile`."""
        chosen = dict(self.default_optimizers(stage_steps, steps_per_epoch))
        chosen.update(optimizers or {})
        players = [p for s in self.stages for p in s.players]
        if sorted(chosen) != sorted(players):
            raise ValueError(f"optimizers must be given for the players {players}, got {sorted(chosen)}")
        self.player_optimizers = {p: chosen[p] for p in players}
        super().compile(**kwargs)
        self._make_trackers()

    def _make_trackers(self):
        """One Mean per logged name, named by what each stage's loss terms return (a probe on two
        blank images, in inference mode so that no statistic moves)."""
        probe = {"image": ops.zeros((2, *self.image_shape))}
        names = []
        for each in self.stages:
            names += [n for n in self._log_values(each, self.loss_terms(probe, each.name, training=False))
                      if n not in names]
        self._set_trackers({name: keras.metrics.Mean(name=name) for name in names})

    def _set_trackers(self, trackers):
        # Plain attribute: the trackers are made after the model is built (their names come from the
        # loss terms), and Keras' tracking refuses new state then. Their values are never saved.
        object.__setattr__(self, "_trackers", trackers)

    def get_compile_config(self):
        if not hasattr(self, "player_optimizers"):  # never compiled (e.g. saved untrained): nothing to restore
            return None
        return {"optimizers": {p: keras.optimizers.serialize(o) for p, o in self.player_optimizers.items()}}

    def compile_from_config(self, config):
        self.compile(optimizers={p: keras.optimizers.deserialize(o) for p, o in config["optimizers"].items()})
        self.build_optimizers()

    def build_optimizers(self):
        """Create every player's optimizer state now (not at its first step), so that saved
        weights and checkpoints always hold the same variables, whichever stage they were written in.
        Call it while every network is still trainable (before a stage freezes some)."""
        for player, optimizer in self.player_optimizers.items():
            if not optimizer.built:
                optimizer.build(self.player_variables(player))

    def load_own_variables(self, store):
        super().load_own_variables(store)
        self._sync_stage()

    @property
    def metrics(self):
        return list(self._trackers.values())

    def build(self, input_shape):
        # The networks are built when constructed; what is left is their compute precision.
        for name in sorted({n for s in self.stages for networks in s.players.values() for n in networks}):
            precision_option.apply(getattr(self, name), self.precision)
        self.built = True

    def call(self, images, training=False):
        if isinstance(images, dict):  # a batch of the zoo's own pipelines: {"image": ...}
            images = as_batch(images)["image"]
        return self.anomaly_outputs(images)

    def fit(self, *args, callbacks=None, **kwargs):
        """`keras.Model.fit`; where some player's optimizer averages its weights (`use_ema`), an
        `AverageWeights` callback goes first, so every epoch ends with the averaged weights in place."""
        from anomzoo.callbacks import AverageWeights  # here: callbacks imports the validation module

        callbacks = list(callbacks or [])
        averaging = any(o.use_ema for o in getattr(self, "player_optimizers", {}).values())
        if averaging and not any(isinstance(c, AverageWeights) for c in callbacks):
            callbacks.insert(0, AverageWeights())
        return super().fit(*args, callbacks=callbacks, **kwargs)

    def predict(self, x, *args, **kwargs):
        """`keras.Model.predict`, with images checked against the inference contract (see
        `check_images`): numpy arrays, lists and tensors before anything runs, each batch of a
        dataset or generator (images or {"image": ...} dicts) inside the predict step."""
        if x is None:
            raise ValueError(f"{type(self).__name__}.predict takes images, got None")
        if isinstance(x, (np.ndarray, list, tf.Tensor)):
            x = self.check_images(x)
            if not len(x):  # Keras' predict fails on zero batches: empty outputs of the right shapes
                outputs = super().predict(np.zeros((1, *self.image_shape), "float32"), *args, **kwargs)
                return {key: value[:0] for key, value in outputs.items()}
        return super().predict(x, *args, **kwargs)

    def predict_step(self, data):
        x, _, _ = keras.utils.unpack_x_y_sample_weight(data)
        images = as_batch(x)["image"]
        return self(contract.check_images_in_graph(images, self.image_shape, type(self).__name__), training=False)

    def check_images(self, images):
        """Images as the model takes them: float32 (N, *image_shape) in [0, 1], uint8 divided by
        255, anything else a ValueError (see `anomzoo.contract`)."""
        return contract.check_images(images, self.image_shape, type(self).__name__)

    def get_config(self):
        return {**super().get_config(), **self._model_config}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for key in ("trainable", "dtype"):
            config.pop(key, None)
        return cls(**config)

    # -- the step -------------------------------------------------------------------------------

    def train_step(self, data):
        stage = self.stage
        with tf.GradientTape(persistent=True) as tape:
            terms = self.loss_terms(as_batch(data), stage.name, training=True)
            # Under a strategy Keras sums the replicas' gradients: each takes its share of the mean.
            totals = {player: distribute.per_replica_loss(terms[player]["total"]) for player in stage.players}
        for player in stage.players:
            variables = self.player_variables(player)
            gradients = tape.gradient(totals[player], variables)
            self.player_optimizers[player].apply(gradients, variables)
        del tape
        return self._update_trackers(stage, terms)

    def test_step(self, data):
        stage = self.stage
        return self._update_trackers(stage, self.loss_terms(as_batch(data), stage.name, training=False))

    @staticmethod
    def _log_values(stage, terms):
        values = {}
        for position, player in enumerate(stage.players):
            player_terms = dict(terms[player])
            values["loss" if position == 0 else f"{player}_loss"] = player_terms.pop("total")
            values.update(player_terms)
        return values

    def _update_trackers(self, stage, terms):
        values = self._log_values(stage, terms)
        for name, value in values.items():
            self._trackers[name].update_state(value)
        logs = {name: self._trackers[name].result() for name in values}
        if distribute.is_multi_worker(self.distribute_strategy):
            # Keras 3 reduces multi-worker logs along axis 0, which a scalar lacks (tensorflow#72388).
            logs = {name: ops.reshape(value, (1,)) for name, value in logs.items()}
        return logs

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        # Under a strategy Keras builds the model from one batch averaged over the replicas, which
        # fails on dict batches under a multi-worker strategy (keras#20329) and on a split of uneven
        # size (a validation batch); a zoo model's networks, optimizers and trackers are built before fit.
        return None


def mean_over_pixels(x):
    """Per-image mean over all but the batch axis: (B, ...) -> (B,)."""
    return ops.mean(ops.reshape(x, (ops.shape(x)[0], -1)), axis=-1)


def sum_over_pixels(x):
    """Per-image sum over all but the batch axis: (B, ...) -> (B,)."""
    return ops.sum(ops.reshape(x, (ops.shape(x)[0], -1)), axis=-1)


def masked_mean_per_image(values, weights, epsilon=1e-6):
    """Per-image weighted mean: sum(values * weights) / sum(weights) over all but the batch axis.

    weights broadcast against values (a (B, H, W, 1) mask over (B, H, W, C) values counts each
    pixel once per channel). Returns (B,); an image whose weights are all zero gives 0.
    """
    weights = ops.broadcast_to(weights, ops.shape(values))
    total = mean_over_pixels(values * weights)
    return total / ops.maximum(mean_over_pixels(weights), epsilon)


def sample_gaussian(mu, log_var, seed):
    """z = mu + sigma * eps, the VAE's reparameterised sample (CAVGA, the attention network)."""
    return mu + ops.exp(0.5 * log_var) * keras.random.normal(ops.shape(mu), seed=seed)


def decode_sample(decoder, z, mu, training):
    """A VAE decoder's output for the sampled `z`, with its BatchNorm moving statistics taken from
    the mean `mu`, the latent the decoder sees at inference.

    In training the decoder normalises by the batch statistics of sampled latents, whose collapsed
    units are pure N(0, 1) noise; moving statistics averaged over those are wrong for z = mu, and a
    decoder that reconstructed digits at a BCE of 0.14 in training mode gave 0.28 with them,
    worse than emitting the mean image (CAVGA-D_u, MNIST 0, 2 epochs). So the sampled pass leaves
    the moving statistics as they were, and a second, gradient-free pass on `mu` updates them.
    """
    if not training:
        return decoder(mu, training=False)
    with moving_statistics_kept(decoder):
        output = decoder(z, training=True)
    decoder(ops.stop_gradient(mu), training=True)
    return output


@contextlib.contextmanager
def moving_statistics_kept(network):
    """Calls of `network` inside leave its BatchNorm moving statistics as they were: their values are
    read on entry and written back on exit (the batch statistics still normalise, and the gradient is
    unchanged). No layer attribute changes, which matters under MirroredStrategy: it traces the step
    in one thread per replica, and those threads take turns at every all-reduce."""
    norms = [layer for layer in network._flatten_layers() if isinstance(layer, keras.layers.BatchNormalization)]
    statistics = [v for layer in norms for v in (layer.moving_mean, layer.moving_variance)]
    values = [ops.copy(v) for v in statistics]  # read now (a plain conversion reads lazily, after the calls)
    yield
    for variable, value in zip(statistics, values):
        variable.assign(value)


def gaussian_kl(mu, log_var):
    """KL(N(mu, sigma^2) || N(0, 1)) per latent unit, element-wise (callers take the mean they need)."""
    return -0.5 * (1.0 + log_var - ops.square(mu) - ops.exp(log_var))


def discriminate(discriminator, batches, training):
    """D's outputs on each of `batches` (real and fake images), from ONE call on their concatenation.

    BatchNorm in a discriminator must see real and fake images in the same batch: called on a
    pure-real and a pure-fake batch, each is normalised by its own statistics in training, while in
    inference mode D normalises with moving statistics averaged over both kinds, so a D that told them
    apart in training calls almost everything real when it scores (measured on ADGAN's D2: mean
    sigmoid of reconstructions 0.07 in train mode against 0.29 in inference mode). The batches have
    the same size.
    """
    outputs = discriminator(ops.concatenate(list(batches), axis=0), training=training)
    parts = {key: ops.split(value, len(batches), axis=0) for key, value in outputs.items()}
    return [{key: value[i] for key, value in parts.items()} for i in range(len(batches))]


def gan_terms(discriminator, real, fake, training, weights=None):
    """{"adv": G's non-saturating loss, "d_real", "d_fake": D's losses} of one `discriminate` call,
    BCE from logits, each a mean over images (weighted by `weights` (B,) where given)."""
    real_logits, fake_logits = (out["logits"] for out in discriminate(discriminator, (real, fake), training))

    def mean(per_image):
        if weights is None:
            return ops.mean(per_image)
        return ops.sum(per_image * weights) / ops.maximum(ops.sum(weights), 1.0)

    bce = ops.binary_crossentropy
    return {"adv": mean(bce(ops.ones_like(fake_logits), fake_logits, from_logits=True)),
            "d_real": mean(bce(ops.ones_like(real_logits), real_logits, from_logits=True)),
            "d_fake": mean(bce(ops.zeros_like(fake_logits), fake_logits, from_logits=True))}


def binary_cross_entropy(targets, logits):
    """Mean BCE from logits: stable where the sigmoid saturates (probabilities would be clipped)."""
    return ops.mean(ops.binary_crossentropy(targets, logits, from_logits=True))
