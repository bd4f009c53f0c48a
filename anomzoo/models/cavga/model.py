"""CAVGA (Venkataramanan et al., "Attention Guided Anomaly Localization in Images", ECCV 2020).

One stage, players "g" (encoder, latent heads, decoder, and the classifier when weakly supervised)
and "d" (the DCGAN discriminator), each with its own optimizer:
    L    = BCE(x, x_hat) + KL(q(z|x) || N(0, I))    (Eq. 1; per image, summed over pixels and units)
    L_adv: D(x) real against D(x_hat) fake, BCE from logits          (Eq. 2; G: non-saturating form)
    A    = Grad-CAM of sum(mu) at the last encoder feature map F, normalised per image, upsampled
    L_ae = mean(1 - A)                                                (Eq. 3)
    unsupervised (Eq. 4):  w_r L + w_adv L_adv + w_ae L_ae, weights 1, 1, 0.01
Weakly supervised (CAVGA_w), batches carry "label" (0 normal, 1 anomalous): a classifier on
flatten(z) gives p; L_bce its cross-entropy on every image; A^cn / A^ca the Grad-CAMs of the normal
and anomalous logits;
    L_cga = mean over images of 1(p = y = normal) * mean(1 - A^cn + A^ca)       (Eq. 5)
    L_final = w_r L + w_adv L_adv + w_c L_bce + w_cga L_cga, weights 1, 1, 0.001, 0.01   (Eq. 6)
with L and L_adv on the normal images only (the VAE models normality).
D takes real and reconstructed images in one call (BatchNorm then trains on the statistics it scores
with); the decoder's BatchNorm moving statistics come from z = mu, the latent it decodes at inference
(`base.decode_sample`). In training the Grad-CAM gradient comes from an inner tape, so the attention losses train the
network through second-order gradients; at inference it comes from the closed form (the heads are
linear in F), which is exact and needs no tape. Inference: anomaly map 1 - A (unsupervised) or A^ca
(weakly supervised); score: the mean absolute reconstruction difference (in [0, 1]).
"""

import keras
import tensorflow as tf
from keras import layers, ops

from anomzoo.layers import dcgan, gradcam, pretrained
from anomzoo.models.base import (AnomalyModel, Stage, check_image_shape_form, decode_sample, gan_terms, gaussian_kl,
                                 mean_over_pixels, sample_gaussian, sum_over_pixels)
from anomzoo.models.cavga import networks
from anomzoo.models.cavga.presets import CONFIGS, RECOMMENDED
from anomzoo.optimizers import FusedAdam


@keras.saving.register_keras_serializable(package="anomzoo")
class CAVGA(AnomalyModel):
    """CAVGA_u / CAVGA_w. Inputs: images (B, H, W, C) in [0, 1].

    Outputs: {"score" (mean |x - x_hat|), "anomaly_map", "reconstruction", "attention" (A, the
    normal attention), and when weakly supervised "anomalous_attention" (A^ca, the anomaly map) and
    "classifier_score" (the classifier's probability of "anomalous")}.

    encoder: "resnet18_hub" (CAVGA-R, keras-hub), "resnet18" (CAVGA-R, the zoo's ResNet-18) or
    "dcgan" (CAVGA-D); decoder: "residual" (Table 9) or "dcgan".
    backbone_weights (encoder="resnet18_hub"): None (random initialisation), "imagenet" (keras-hub's
    `resnet_18_imagenet`, as the paper starts: the internet or KaggleHub's cache) or a local keras-hub
    preset folder (`anomzoo.layers.pretrained`); the images are then normalised as ImageNet's were.
    A saved model holds the weights: loading it fetches nothing.
    Ablation switches (Table 8): attention_loss (L_ae / L_cga), flat_latent (a dense z of that size
    instead of the convolutional z), adversarial (L_adv). loss_reduction="mean" takes Eq. 1 as
    per-pixel / per-unit means (the zoo's old reading); augment adds A.1's random centre crops and
    rotations; decay_epochs sets the x0.1 period (0: constant).
    """

    configs = CONFIGS
    recommendations = RECOMMENDED
    stages = (Stage("train", {"g": ("encoder", "latent", "decoder"), "d": ("discriminator",)}),)

    def __init__(
        self,
        image_shape=(256, 256, 3),
        encoder="resnet18_hub",
        encoder_filters=(64, 128, 256, 512),
        encoder_blocks=(2, 2, 2, 2),
        encoder_stride=32,
        backbone_weights=None,
        latent_channels=512,
        flat_latent=None,
        decoder="residual",
        decoder_filters=(512, 256, 128, 64),
        discriminator_filters=64,
        weakly_supervised=False,
        attention_loss=True,
        adversarial=True,
        w_r=1.0,
        w_adv=1.0,
        w_ae=0.01,
        w_c=0.001,
        w_cga=0.01,
        learning_rate=1e-4,
        decay_epochs=30,
        loss_reduction="sum",
        augment=False,
        **kwargs,
    ):
        image_shape = check_image_shape_form(image_shape, type(self).__name__)
        dcgan.check_image_shape(image_shape, type(self).__name__)
        backbone_weights = networks.backbone_weights_option(backbone_weights, kwargs, type(self).__name__)
        if decoder not in ("residual", "dcgan"):
            raise ValueError(f"decoder must be 'residual' or 'dcgan', got {decoder!r}")
        if loss_reduction not in ("sum", "mean"):
            raise ValueError(f"loss_reduction must be 'sum' (Eq. 1: per image, summed over pixels) or 'mean', "
                             f"got {loss_reduction!r}")
        super().__init__(config=self.options(locals()), **kwargs)
        self.encoder = networks.encoder(image_shape, encoder, encoder_filters, encoder_blocks, encoder_stride,
                                        backbone_weights)
        feature_shape = tuple(self.encoder.output.shape[1:])
        side = feature_shape[0] * 2 ** (len(decoder_filters) + 1)
        if feature_shape[0] != feature_shape[1] or side != image_shape[0] or image_shape[0] != image_shape[1]:
            raise ValueError(f"the decoder's {len(decoder_filters) + 1} upsamplings take the {feature_shape[:2]} "
                             f"feature map to {side} px, not the image's {image_shape[:2]}: give decoder_filters "
                             f"one entry per 2x step minus one, or another encoder stride")
        self.feature_shape = feature_shape
        self.latent = networks.latent(feature_shape, latent_channels, flat_latent)
        latent_shape = (flat_latent,) if flat_latent else (*feature_shape[:2], latent_channels)
        self.decoder = networks.decoder(latent_shape, image_shape, decoder_filters, decoder == "residual",
                                        flat_shape=(*feature_shape[:2], latent_channels) if flat_latent else None)
        # The shared DCGAN discriminator, Table 9's discriminator layers.
        self.discriminator = dcgan.dcgan_discriminator(image_shape, base_filters=discriminator_filters,
                                                       name="discriminator")
        self.noise_seed = keras.random.SeedGenerator(0)
        # AVAGA A.1, for the high-resolution datasets: random centre crops (a zoom-in about the centre,
        # up to 10%) and rotations within +-15 degrees.
        self.augmentation = keras.Sequential([layers.RandomZoom((-0.1, 0.0), fill_mode="nearest", seed=1),
                                              layers.RandomRotation(15 / 360, fill_mode="nearest", seed=2)],
                                             name="augmentation") if augment else None
        if weakly_supervised:
            self.classifier = networks.classifier(latent_shape)
            self.stages = (Stage("train", {"g": ("encoder", "latent", "decoder", "classifier"),
                                           "d": ("discriminator",)}),)
        self.build((None, *image_shape))

    @classmethod
    def from_config(cls, config):
        # The weights come from the file being loaded (or the caller's set_weights), not from
        # `backbone_weights` again: a saved pretrained model loads offline, without its preset.
        with pretrained.weights_from_file():
            return super().from_config(config)

    def default_optimizers(self, stage_steps=None, steps_per_epoch=None):
        """Adam at 1e-4 for G and for D, divided by 10 every `decay_epochs` epochs (AVAGA A.1: every
        30 of 150 epochs); constant when the epoch's length is unknown, or the run ends before the
        first decay (a short run trains at the paper's rate, not at a compressed schedule's)."""
        steps = (stage_steps or {}).get("train")
        def rate():
            if not steps or not steps_per_epoch or not self.decay_epochs:
                return self.learning_rate
            every = int(steps_per_epoch * self.decay_epochs)
            bounds = list(range(every, steps, every))
            if not bounds:  # a run too short for one decay (one step); Keras takes no empty boundary list
                return self.learning_rate
            return keras.optimizers.schedules.PiecewiseConstantDecay(
                bounds, [self.learning_rate * 0.1 ** i for i in range(len(bounds) + 1)])
        return {"g": FusedAdam(rate()), "d": FusedAdam(rate())}

    # -- Grad-CAM ---------------------------------------------------------------------------------

    def _mu_gradient(self):
        """Closed-form d sum(mu) / dF: (C,) for the 1x1-conv z, (h, w, C) for a flat z."""
        kernel = self.latent.get_layer("mu").kernel
        if self.flat_latent:
            return gradcam.dense_gradient(kernel, self.feature_shape)
        return gradcam.conv1x1_gradient(kernel)

    def _logit_gradient(self, column):
        """Closed-form d sum(logit_column(flatten(mu))) / dF, (h, w, C): the classifier and z are linear."""
        mu_kernel = self.latent.get_layer("mu").kernel
        logit_kernel = self.classifier.get_layer("logits").kernel[:, column]
        if self.flat_latent:  # F -> flat mu (K) -> logit: W_mu @ w_c
            return ops.reshape(ops.matmul(mu_kernel, logit_kernel), self.feature_shape)
        h, w = self.feature_shape[:2]
        per_unit = ops.reshape(logit_kernel, (h, w, self.latent_channels))  # d logit / d mu
        kernel = ops.reshape(mu_kernel, (self.feature_shape[-1], self.latent_channels))
        return ops.matmul(per_unit, ops.transpose(kernel))

    def _attention(self, features, gradients):
        return gradcam.attention_map(features, gradients, self.image_shape[:2])

    # -- losses -----------------------------------------------------------------------------------

    def _sample(self, mu, log_var, training):
        if not training:
            return mu
        return sample_gaussian(mu, log_var, self.noise_seed)

    def loss_terms(self, batch, stage, training):
        images = batch["image"]
        if training and self.augmentation is not None:
            images = self.augmentation(images, training=True)
        features = self.encoder(images, training=training)
        labels = batch.get("label")
        normal = ops.ones((ops.shape(images)[0],)) if labels is None else 1.0 - ops.cast(labels, "float32")
        if training:
            # The inner tape: the attention gradient stays differentiable, so the attention losses reach
            # the encoder and the heads through second-order gradients (the base step's tape is outside).
            with tf.GradientTape(persistent=True) as inner:
                inner.watch(features)
                latent = self.latent(features, training=training)
                mu, log_var = latent["mu"], latent["log_var"]
                z = self._sample(mu, log_var, training)
                logits = self.classifier(z, training=training) if self.weakly_supervised else None
                mu_target = ops.sum(mu)
                logit_targets = (ops.sum(logits[:, 0]), ops.sum(logits[:, 1])) if logits is not None else None
            if self.weakly_supervised:
                grad_n, grad_a = (gradcam.tape_gradient(inner, t, features) for t in logit_targets)
            else:
                grad_mu = gradcam.tape_gradient(inner, mu_target, features)
            del inner
        else:
            latent = self.latent(features, training=training)
            mu, log_var = latent["mu"], latent["log_var"]
            z = mu
            if self.weakly_supervised:
                logits = self.classifier(z, training=training)
                grad_n, grad_a = self._logit_gradient(0), self._logit_gradient(1)
            else:
                grad_mu = self._mu_gradient()
        reconstruction = decode_sample(self.decoder, z, mu, training)

        # Eq. 1, on normal images: BCE and KL per image, summed over pixels and latent units ("sum", the
        # paper's negative log-likelihood, against which L_adv and L_ae weigh 1 and 0.01 per image) or
        # averaged ("mean", an ablation: it makes L_adv ~1,000x heavier, and D wins from the first epoch).
        count = ops.maximum(ops.sum(normal), 1.0)
        per_image = sum_over_pixels if self.loss_reduction == "sum" else mean_over_pixels
        bce = per_image(ops.binary_crossentropy(images, reconstruction))
        kl = per_image(gaussian_kl(mu, log_var))
        rec, kl = ops.sum(bce * normal) / count, ops.sum(kl * normal) / count
        g_terms = {"rec": rec, "kl": kl}
        total = self.w_r * (rec + kl)
        if not self.adversarial:
            # The "without L_adv" ablation: D still has a player and an optimizer; a zero loss of its
            # output gives it zero gradients (Adam then leaves it unchanged).
            d_total = 0.0 * ops.mean(self.discriminator(images[:1], training=False)["logits"])
        else:
            # Eq. 2: real = normal images, fake = their reconstructions (anomalous images take no part).
            gan = gan_terms(self.discriminator, images, reconstruction, training, weights=normal)
            total = total + self.w_adv * gan["adv"]
            d_total = 0.5 * (gan["d_real"] + gan["d_fake"])
            g_terms["adv"] = gan["adv"]
        if self.weakly_supervised:
            targets = ops.cast(1.0 - normal, "int32")
            bce_c = ops.mean(ops.sparse_categorical_crossentropy(targets, logits, from_logits=True))
            a_normal = self._attention(features, grad_n)
            a_anomalous = self._attention(features, grad_a)
            correct_normal = ops.cast(ops.argmax(logits, axis=-1) == 0, "float32") * normal  # 1(p = y = c_n)
            cga = ops.mean(correct_normal * mean_over_pixels(1.0 - a_normal + a_anomalous))  # Eq. 5
            total = total + self.w_c * bce_c
            g_terms.update(cls=bce_c, cga=cga)
            if self.attention_loss:
                total = total + self.w_cga * cga
        else:
            attention = self._attention(features, grad_mu)
            ae = ops.mean(1.0 - attention)  # Eq. 3
            g_terms["ae"] = ae
            if self.attention_loss:
                total = total + self.w_ae * ae
        return {"g": {"total": total, **g_terms}, "d": {"total": d_total}}

    # -- inference (no tape: exported as is) ------------------------------------------------------

    def anomaly_outputs(self, images):
        features = self.encoder(images, training=False)
        mu = self.latent(features, training=False)["mu"]
        reconstruction = self.decoder(mu, training=False)
        outputs = {"reconstruction": reconstruction,
                   "score": mean_over_pixels(ops.abs(images - reconstruction))}
        if self.weakly_supervised:
            logits = self.classifier(mu, training=False)
            outputs["attention"] = self._attention(features, self._logit_gradient(0))
            outputs["anomalous_attention"] = self._attention(features, self._logit_gradient(1))
            outputs["anomaly_map"] = outputs["anomalous_attention"]
            outputs["classifier_score"] = ops.softmax(logits, axis=-1)[:, 1]
        else:
            outputs["attention"] = self._attention(features, self._mu_gradient())
            outputs["anomaly_map"] = 1.0 - outputs["attention"]
        return outputs
