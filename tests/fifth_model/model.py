"""A throwaway fifth model, as a contributor would add one: its own folder (this file) and one
registry line (`register.py`). A small adversarial autoencoder: score = mean squared reconstruction
error, map = per-pixel absolute error. It exists to prove that the generic tests and the speed case
of a new model come without editing them (tests/test_fifth_model.py)."""

import keras
from keras import ops

from anomzoo.layers import dcgan
from anomzoo.layers import nn as layers
from anomzoo.models.base import AnomalyModel, Stage, check_image_shape_form, gan_terms, mean_over_pixels
from anomzoo.optimizers import FusedAdam

_CONFIG = {"image_shape": (32, 32, 3), "filters": 8, "w_rec": 10.0, "w_adv": 1.0, "learning_rate": 1e-3}


@keras.saving.register_keras_serializable(package="anomzoo_tests")
class Throwaway(AnomalyModel):
    stages = (Stage("train", {"g": ("autoencoder",), "d": ("discriminator",)}),)
    configs = {name: {"config": dict(_CONFIG),
                      "metadata": {"paper": "none", "image_size": 32, "parameters": 19_851,
                                   "description": "a throwaway test model"}}
               for name in ("paper", "tiny")}

    def __init__(self, image_shape=(32, 32, 3), filters=8, w_rec=10.0, w_adv=1.0, learning_rate=1e-3, **kwargs):
        image_shape = check_image_shape_form(image_shape, type(self).__name__)
        dcgan.check_image_shape(image_shape, type(self).__name__)
        super().__init__(config=self.options(locals()), **kwargs)
        inputs = keras.Input(image_shape)
        x = layers.ReLU()(layers.BatchNormalization()(layers.Conv2D(filters, 4, strides=2, padding="same")(inputs)))
        x = layers.Conv2DTranspose(image_shape[-1], 4, strides=2, padding="same", activation="sigmoid")(x)
        self.autoencoder = keras.Model(inputs, x, name="autoencoder")
        self.discriminator = dcgan.dcgan_discriminator(image_shape, filters, 16)
        self.build((None, *image_shape))

    def default_optimizers(self, stage_steps=None, steps_per_epoch=None):
        return {player: FusedAdam(self.learning_rate, beta_1=0.5) for player in ("g", "d")}

    def loss_terms(self, batch, stage, training):
        images = batch["image"]
        fake = self.autoencoder(images, training=training)
        rec = ops.mean(ops.abs(images - fake))
        terms = gan_terms(self.discriminator, images, fake, training)
        return {"g": {"total": self.w_rec * rec + self.w_adv * terms["adv"], "rec": rec, "adv": terms["adv"]},
                "d": {"total": terms["d_real"] + terms["d_fake"], "d_real": terms["d_real"],
                      "d_fake": terms["d_fake"]}}

    def anomaly_outputs(self, images):
        error = ops.abs(images - self.autoencoder(images, training=False))
        return {"score": mean_over_pixels(ops.square(error)),
                "anomaly_map": ops.mean(error, axis=-1, keepdims=True)}
