"""The one adversarial training core shared by every model of the zoo.

The four papers differ in their networks and loss terms, not in how a two-player step runs, so
this class owns the step and a model supplies:

- `self.generator` and `self.discriminator` (Keras models), built in `__init__`;
- `loss_terms(images, training)` -> `(generator_terms, discriminator_terms)`, two dicts of scalar
  tensors, each with a "total" entry (the other entries are logged as they are named);
- `anomaly_outputs(images)` -> the inference contract: {"score": (B,), "anomaly_map": (B, H, W, 1)},
  higher meaning more anomalous; extra outputs may be added by name.

One forward pass feeds both players: the generator's gradient is taken with the discriminator as
it is, and the discriminator's with the generated images as they are. That is exactly the
(Skip-)GANomaly update, which steps G and then D on the same D weights and the same fake batch.
Everything here except the gradient tape is backend-neutral; the tape is the one TensorFlow piece.
"""

import keras
import tensorflow as tf
from keras import ops


class AdversarialAnomalyModel(keras.Model):
    """Base class: two players, two optimizers, `model.fit`-ready.

    Subclasses pass their constructor arguments to `super().__init__(config=...)` so that
    `get_config` / `from_config` and `.keras` files work without further code.
    """

    #: names of the generator / discriminator loss terms a subclass reports besides "total".
    generator_term_names: tuple = ()
    discriminator_term_names: tuple = ()

    def __init__(self, config=None, **kwargs):
        super().__init__(**kwargs)
        self._model_config = dict(config or {})
        # "loss" is the generator's total so that TerminateOnNaN and EarlyStopping("loss") work.
        names = ["loss", "d_loss", *self.generator_term_names, *self.discriminator_term_names]
        self._trackers = {name: keras.metrics.Mean(name=name) for name in names}

    # -- what a model provides ------------------------------------------------------------------

    def loss_terms(self, images, training):
        raise NotImplementedError

    def anomaly_outputs(self, images):
        raise NotImplementedError

    #: a subclass sets its paper's rate; `default_optimizers` uses it unless given a rate or schedule.
    learning_rate = 2e-4

    def default_optimizers(self, learning_rate=None):
        """(generator optimizer, discriminator optimizer) used when `compile()` is given none."""
        rate = self.learning_rate if learning_rate is None else learning_rate
        return keras.optimizers.Adam(rate, beta_1=0.5), keras.optimizers.Adam(rate, beta_1=0.5)

    # -- Keras plumbing -------------------------------------------------------------------------

    def compile(self, g_optimizer=None, d_optimizer=None, **kwargs):
        """Set the two players' optimizers; other keyword arguments go to `keras.Model.compile`."""
        default_g, default_d = self.default_optimizers()
        self.g_optimizer = g_optimizer or default_g
        self.d_optimizer = d_optimizer or default_d
        super().compile(**kwargs)

    def get_compile_config(self):
        return {
            "g_optimizer": keras.optimizers.serialize(self.g_optimizer),
            "d_optimizer": keras.optimizers.serialize(self.d_optimizer),
        }

    def compile_from_config(self, config):
        self.compile(
            g_optimizer=keras.optimizers.deserialize(config["g_optimizer"]),
            d_optimizer=keras.optimizers.deserialize(config["d_optimizer"]),
        )
        # Build the optimizers' slots now so that a .keras file restores their state too.
        self.g_optimizer.build(self.generator.trainable_variables)
        self.d_optimizer.build(self.discriminator.trainable_variables)

    @property
    def metrics(self):
        return list(self._trackers.values())

    def build(self, input_shape):
        # The networks are built when constructed; there is nothing left to create.
        self.built = True

    def call(self, images, training=False):
        return self.anomaly_outputs(images)

    def get_config(self):
        return {**super().get_config(), **self._model_config}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for key in ("trainable", "dtype"):
            config.pop(key, None)
        return cls(**config)

    # -- the step -------------------------------------------------------------------------------

    @staticmethod
    def _images(data):
        """Unsupervised models train on images alone; accept (images, ...) tuples too."""
        return data[0] if isinstance(data, (tuple, list)) else data

    def train_step(self, data):
        images = self._images(data)
        g_vars = self.generator.trainable_variables
        d_vars = self.discriminator.trainable_variables
        with tf.GradientTape(persistent=True) as tape:
            g_terms, d_terms = self.loss_terms(images, training=True)
        g_grads = tape.gradient(g_terms["total"], g_vars)
        d_grads = tape.gradient(d_terms["total"], d_vars)
        del tape
        self.g_optimizer.apply(g_grads, g_vars)
        self.d_optimizer.apply(d_grads, d_vars)
        return self._update_trackers(g_terms, d_terms)

    def test_step(self, data):
        g_terms, d_terms = self.loss_terms(self._images(data), training=False)
        return self._update_trackers(g_terms, d_terms)

    def _update_trackers(self, g_terms, d_terms):
        values = {"loss": g_terms["total"], "d_loss": d_terms["total"]}
        values.update({k: v for k, v in g_terms.items() if k != "total"})
        values.update({k: v for k, v in d_terms.items() if k != "total"})
        for name, value in values.items():
            self._trackers[name].update_state(value)
        return {name: tracker.result() for name, tracker in self._trackers.items()}


def mean_over_pixels(x):
    """Per-image mean over all but the batch axis: (B, ...) -> (B,)."""
    return ops.mean(ops.reshape(x, (ops.shape(x)[0], -1)), axis=-1)


def binary_cross_entropy(targets, logits):
    """Mean BCE from logits: stable where the sigmoid saturates (probabilities would be clipped)."""
    return ops.mean(ops.binary_crossentropy(targets, logits, from_logits=True))
