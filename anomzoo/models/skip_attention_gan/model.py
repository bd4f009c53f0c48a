"""Skip-Attention GAN (Liu et al., "SAGAN: Skip-Attention GAN for Anomaly Detection", ICIP 2021).

Skip-GANomaly's adversarial U-Net with CBAM attention and depthwise-separable convolutions:
    L_G = 40 L_con (L1 of x - G(x)) + 1 L_lat (L2 of D-features) + 1 L_adv,
    L_D = BCE(D(x), 1) + BCE(D(G(x)), 0), halved as in Skip-GANomaly (BCE from logits),
    A(x) = 0.2 R(x) + 0.8 L(x), R and L the mean squared image and feature differences.
The paper min-max normalises A over the test set; that is rank-preserving (AUROC is unchanged) but
uses test data, so the raw A(x) is the score here and thresholds come from normal data only.
"""

import keras
from keras import ops

from anomzoo.layers import dcgan
from anomzoo.models.base import (AnomalyModel, Stage, binary_cross_entropy, check_image_shape_form, discriminate,
                                 mean_over_pixels)
from anomzoo.models.schedules import ConstantThenLinearDecay
from anomzoo.models.skip_attention_gan.generator import skip_attention_generator
from anomzoo.models.skip_attention_gan.presets import CONFIGS, RECOMMENDED
from anomzoo.optimizers import FusedAdam


@keras.saving.register_keras_serializable(package="anomzoo")
class SkipAttentionGAN(AnomalyModel):
    """SAGAN. Inputs: images (B, H, W, C) in [0, 1].

    Outputs: {"score": (B,), "anomaly_map": (B, H, W, 1), "reconstruction": (B, H, W, C),
    "reconstruction_score": (B,) R(x), "latent_score": (B,) L(x)}. The two parts of the score are
    exposed because their raw scales differ by an order of magnitude, so that L dominates A.
    """

    stages = (Stage("adversarial", {"g": ("generator",), "d": ("discriminator",)}),)
    configs = CONFIGS
    recommendations = RECOMMENDED

    def __init__(
        self,
        image_shape=(32, 32, 3),
        base_filters=64,
        depth=4,
        separable=True,
        cbam_reduction=16,
        cbam_kernel_size=7,
        discriminator_filters=64,
        w_con=40.0,
        w_lat=1.0,
        w_adv=1.0,
        score_weight=0.2,
        learning_rate=2e-3,
        **kwargs,
    ):
        image_shape = check_image_shape_form(image_shape, type(self).__name__)
        dcgan.check_image_shape(image_shape, type(self).__name__)
        super().__init__(config=self.options(locals()), **kwargs)
        self.generator = skip_attention_generator(
            image_shape, base_filters, depth, separable, cbam_reduction, cbam_kernel_size
        )
        self.discriminator = dcgan.dcgan_discriminator(image_shape, discriminator_filters)
        self.build((None, *image_shape))

    def default_optimizers(self, stage_steps=None, steps_per_epoch=None):
        """Adam (0.5, 0.999) at the paper's 2e-3 for G and D; with the run's length known, the
        Skip-GANomaly "lambda" rule: constant for half the steps, then linear decay to zero."""
        steps = (stage_steps or {}).get("adversarial")
        optimizers = {}
        for player in ("g", "d"):
            rate = self.learning_rate
            if steps:
                rate = ConstantThenLinearDecay(self.learning_rate, steps // 2, max(steps - steps // 2, 1))
            optimizers[player] = FusedAdam(rate, beta_1=0.5, beta_2=0.999)
        return optimizers

    def _forward(self, images, training):
        x = images * 2.0 - 1.0  # the networks work in [-1, 1], as Skip-GANomaly's do
        fake = self.generator(x, training=training)
        real_out, fake_out = discriminate(self.discriminator, (x, fake), training)
        return x, fake, real_out, fake_out

    def loss_terms(self, batch, stage, training):
        x, fake, real_out, fake_out = self._forward(batch["image"], training)
        con = ops.mean(ops.abs(x - fake))
        lat = ops.mean(ops.square(real_out["features"] - fake_out["features"]))
        real_logits, fake_logits = real_out["logits"], fake_out["logits"]
        adv = binary_cross_entropy(ops.ones_like(fake_logits), fake_logits)
        g_total = self.w_con * con + self.w_lat * lat + self.w_adv * adv
        d_real = binary_cross_entropy(ops.ones_like(real_logits), real_logits)
        d_fake = binary_cross_entropy(ops.zeros_like(fake_logits), fake_logits)
        d_total = 0.5 * (d_real + d_fake)
        return {
            "g": {"total": g_total, "con": con, "lat": lat, "adv": adv},
            "d": {"total": d_total, "d_real": d_real, "d_fake": d_fake},
        }

    def anomaly_outputs(self, images):
        x, fake, real_out, fake_out = self._forward(images, training=False)
        reconstruction_error = mean_over_pixels(ops.square(x - fake))
        latent_error = mean_over_pixels(ops.square(real_out["features"] - fake_out["features"]))
        score = self.score_weight * reconstruction_error + (1.0 - self.score_weight) * latent_error
        reconstruction = (fake + 1.0) * 0.5
        anomaly_map = ops.mean(ops.abs(images - reconstruction), axis=-1, keepdims=True)
        return {
            "score": score,
            "anomaly_map": anomaly_map,
            "reconstruction": reconstruction,
            "reconstruction_score": reconstruction_error,
            "latent_score": latent_error,
        }
