"""Attention network + ADGAN (Song et al., "Attention Map-Guided Two-stage Anomaly Detection using
Hard Augmentation").

Stage "attention" (Sec. 3.2), players "g" (CAVGA's adversarial VAE with two heads: encoder, latent,
two-head decoder) and "d" (DCGAN discriminator on concat(image, attention)). Each step makes
synthetic anomalies x_Ano from the normal batch (`AnomalySynthesizer`, "attention" mode: rotation,
perm, colour jitter, then a box filled with zeros or the augmented image; with `full_image_fraction`
the whole augmented image, the paper's first type) with their normal-ness targets A_Ano = 1 - mask;
normal targets A_Nor are all ones. With x_Re, A_Gen from the normal batch and x_Re^ano, A_Gen^ano
from x_Ano (BCE from logits, G non-saturating):
    L_Adv     : D(concat(x_In, A_Nor)) real, D(concat(x_Re, A_Gen)) fake                  (Eq. 1)
    L_Adv^ano : D(concat(x_Ano, A_Ano)) real, D(concat(x_Re^ano, A_Gen^ano)) fake         (Eq. 2)
                Eq. 2 prints E[1 - log D(fake)], a typo: read as the standard GAN form
                E[log(1 - D(fake))] + E[log D(real)], the form of Eq. 1.
    L_G       : BCE(x_In, x_Re) (the NLL of a Bernoulli decoder) + KL(q(z|x) || N(0, I))  (Eq. 3)
    L_Att     : E||A_Gen^nor - A_Nor||^2 + E||A_Gen^ano - A_Ano||^2                      (Eq. 4)
                L_G and L_Att are per image, summed over pixels and latent units (the NLL and the
                squared norm; `loss_reduction="mean"` averages them instead, an ablation)
    L_total   = L_Adv^ano + L_Adv + L_G + L_Att (weights w_adv_ano, w_adv, w_g, w_att: 1)  (Eq. 5)
Stage "adgan" (Sec. 3.3), the attention network frozen: F_Nor = F_Img * A_Gen (Eq. 6), F_Img from
two conv layers; an encoder-decoder G2 reconstructs F_Nor and a DCGAN discriminator D2 tells F_Nor
(real) from G2(F_Nor) (fake) and, as Table 1 has the hard-augmented data serve the DCGANs as
anomalies, from F_Nor of the step's synthetic anomalies (fake; `adgan_anomalies`); G2's loss is
adversarial + w_adgan_rec * MSE (ALOCC's, [25], whose procedure Sec. 4.2.1 follows). F_Img belongs to
D2's player: trained with G2 it could shrink to zero, which G2 reconstructs perfectly and D2 cannot
tell apart.
Inference: score = -logit of D2(G2(F_Nor)), ALOCC's detector D(R(X)) (higher = less "real" = more
anomalous; the logit, not the sigmoid, so confident scores do not tie at 1.0); `score="adgan_features"`
takes D2(F_Nor) instead; anomaly map = 1 - A_Gen.
"""

import keras
from keras import ops

from anomzoo.augment import AnomalySynthesizer
from anomzoo.augment.synth import OPERATIONS
from anomzoo.models.attention_adgan import networks
from anomzoo.models.attention_adgan.presets import CONFIGS, RECOMMENDED
from anomzoo.layers import dcgan, pretrained
from anomzoo.models.base import (AnomalyModel, Stage, binary_cross_entropy, check_image_shape_form, decode_sample,
                                 discriminate, gan_terms, gaussian_kl, mean_over_pixels, sample_gaussian,
                                 sum_over_pixels)
from anomzoo.models.cavga import networks as cavga_networks
from anomzoo.optimizers import FusedAdam

SCORES = ("adgan", "adgan_features", "reconstruction", "discriminator")


@keras.saving.register_keras_serializable(package="anomzoo")
class AttentionADGAN(AnomalyModel):
    """Attention network + ADGAN. Inputs: images (B, H, W, C) in [0, 1], square, a power of two.

    Outputs: {"score" (the one named by `score`), "anomaly_map" (1 - attention), "attention" (A_Gen,
    normal-ness in [0, 1]), "reconstruction" (x_Re), "reconstruction_score" (mean |x - x_Re|),
    "discriminator_score" (-logit of the attention network's D on concat(x, A_Gen)), and with ADGAN
    "adgan_score" (-logit of ADGAN's D on F_Nor)}.

    encoder: "resnet18_hub" (keras-hub ResNet-18), "resnet18" (the zoo's own, any stride) or "dcgan",
    as CAVGA's; backbone_weights, as CAVGA's (encoder="resnet18_hub"): None (random initialisation),
    "imagenet" (keras-hub's `resnet_18_imagenet`, as the paper starts) or a local keras-hub preset
    folder; a saved model holds the weights, and loading it fetches nothing. ADGAN's encoder has the same
    layout on F_Nor's channels (the zoo's ResNet-18 where the attention network uses keras-hub's:
    ImageNet weights do not fit a feature-map input).
    Ablation switches: `operations` (Table 1: a subset of rotation / perm / color_jitter),
    `adversarial_anomaly` and `attention_loss` (Table 4: L_Adv^ano, L_Att; an unused term is
    still logged), `adgan` and `score` (Table 5: "adgan", or without ADGAN "reconstruction" /
    "discriminator", the attention network's reconstruction error or discriminator output).
    """

    configs = CONFIGS
    recommendations = RECOMMENDED
    stage_fractions = (0.5, 0.5)

    def __init__(
        self,
        image_shape=(256, 256, 3),
        encoder="resnet18_hub",
        encoder_filters=(64, 128, 256, 512),
        encoder_blocks=(2, 2, 2, 2),
        encoder_stride=32,
        backbone_weights=None,
        latent_channels=512,
        decoder_filters=(256, 128, 64, 64),
        path_filters=(64, 32),
        discriminator_filters=64,
        discriminator_latent=100,
        adgan=True,
        feature_filters=(64, 64),
        adgan_decoder_filters=(256, 128, 64),
        operations=OPERATIONS,
        full_image_fraction=0.5,
        adversarial_anomaly=True,
        attention_loss=True,
        w_adv=1.0,
        w_adv_ano=1.0,
        w_g=1.0,
        w_att=1.0,
        w_adgan_adv=1.0,
        w_adgan_rec=0.4,
        score="adgan",
        adgan_anomalies=True,
        loss_reduction="sum",
        learning_rate=2e-4,
        synthesis_seed=0,
        **kwargs,
    ):
        image_shape = check_image_shape_form(image_shape, type(self).__name__)
        dcgan.check_image_shape(image_shape, type(self).__name__)
        backbone_weights = cavga_networks.backbone_weights_option(backbone_weights, kwargs, type(self).__name__)
        if score not in SCORES:
            raise ValueError(f"score must be one of {SCORES}, got {score!r}")
        if score.startswith("adgan") and not adgan:
            raise ValueError(f"score={score!r} needs adgan=True; without ADGAN choose 'reconstruction' or "
                             "'discriminator'")
        if loss_reduction not in ("sum", "mean"):
            raise ValueError(f"loss_reduction must be 'sum' (Eq. 3-4: per image, summed over pixels) or 'mean', "
                             f"got {loss_reduction!r}")
        super().__init__(config=self.options(locals()), **kwargs)
        channels = image_shape[-1]
        # Stage 1: the attention network.
        # CAVGA's encoder and latent heads, unchanged (the generator is CAVGA's adversarial VAE).
        self.encoder = cavga_networks.encoder(image_shape, encoder, encoder_filters, encoder_blocks, encoder_stride,
                                              backbone_weights)
        feature_shape = tuple(self.encoder.output.shape[1:])
        self.latent = cavga_networks.latent(feature_shape, latent_channels)
        self.decoder = networks.two_head_decoder((*feature_shape[:2], latent_channels), channels, decoder_filters,
                                                 path_filters, self._strides(feature_shape, len(decoder_filters)))
        self.discriminator = dcgan.dcgan_discriminator((*image_shape[:2], channels + 1), discriminator_filters,
                                                       discriminator_latent, name="discriminator")
        self.synthesizer = AnomalySynthesizer(seed=synthesis_seed, mode="attention", operations=operations,
                                              full_image_prob=full_image_fraction)
        self.noise_seed = keras.random.SeedGenerator(synthesis_seed + 1000)
        stages = [Stage("attention", {"g": ("encoder", "latent", "decoder"), "d": ("discriminator",)},
                        selection_metric="val_syn_pixel_auroc")]
        # Stage 2: ADGAN.
        if adgan:
            feature_channels = feature_filters[-1]
            self.feature_extractor = networks.feature_extractor(image_shape, feature_filters)
            self.adgan_encoder = cavga_networks.encoder(
                (*image_shape[:2], feature_channels), "dcgan" if encoder == "dcgan" else "resnet18", encoder_filters,
                encoder_blocks, encoder_stride, name="adgan_encoder")
            code_shape = tuple(self.adgan_encoder.output.shape[1:])
            self.adgan_decoder = networks.feature_decoder(code_shape, feature_channels, adgan_decoder_filters,
                                                          self._strides(code_shape, len(adgan_decoder_filters) + 1))
            self.adgan_discriminator = dcgan.dcgan_discriminator((*image_shape[:2], feature_channels),
                                                                 discriminator_filters, discriminator_latent,
                                                                 name="adgan_discriminator")
            stages.append(Stage("adgan", {"adgan_g": ("adgan_encoder", "adgan_decoder"),
                                          "adgan_d": ("feature_extractor", "adgan_discriminator")},
                                selection_metric="val_syn_image_auroc"))
        else:
            self.stage_fractions = (1.0,)
        self.stages = tuple(stages)
        self.build((None, *image_shape))

    def _strides(self, feature_shape, count):
        side = self.image_shape[0]
        if feature_shape[0] != feature_shape[1] or side != self.image_shape[1] or side % feature_shape[0]:
            raise ValueError(f"the attention network needs square images whose side is a multiple of the "
                             f"encoder's stride: image {self.image_shape}, features {feature_shape}")
        return networks.upsampling_strides(side // feature_shape[0], count)

    @classmethod
    def from_config(cls, config):
        # As CAVGA's: the weights come from the file being loaded, not from `backbone_weights` again.
        with pretrained.weights_from_file():
            return super().from_config(config)

    def default_optimizers(self, stage_steps=None, steps_per_epoch=None):
        """Adam(learning_rate, 0.5, 0.999) for every player, constant (the paper gives no optimizer
        in its main text; DCGAN's settings, whose discriminator both stages use)."""
        return {player: FusedAdam(self.learning_rate, beta_1=0.5, beta_2=0.999)
                for stage in self.stages for player in stage.players}

    # -- the networks, as the losses and inference use them ---------------------------------------

    def generate(self, images, training=False):
        """The attention network's generator: {"reconstruction", "attention", "mu", "log_var"}; z is
        sampled in training (the VAE), its mean otherwise."""
        latent = self.latent(self.encoder(images, training=training), training=training)
        mu, log_var = latent["mu"], latent["log_var"]
        z = sample_gaussian(mu, log_var, self.noise_seed) if training else mu
        return {**decode_sample(self.decoder, z, mu, training), "mu": mu, "log_var": log_var}

    def normal_features(self, images, attention, training=False):
        """F_Nor = F_Img * A_Gen (Eq. 6)."""
        return self.feature_extractor(images, training=training) * attention

    def synthesize(self, images):
        """(x_Ano, A_Ano = 1 - mask): the paper's synthetic anomalies and their normal-ness targets."""
        synthetic, mask = self.synthesizer(images)
        return synthetic, 1.0 - mask

    # -- losses -----------------------------------------------------------------------------------

    def loss_terms(self, batch, stage, training):
        if stage == "attention":
            return self._attention_terms(batch["image"], training)
        return self._adgan_terms(batch["image"], training)

    def _attention_terms(self, images, training):
        x_ano, a_ano = self.synthesize(images)
        normal = self.generate(images, training)
        anomalous = self.generate(x_ano, training)
        a_nor = ops.ones_like(normal["attention"])
        d = self.discriminator
        gan = gan_terms(d, ops.concatenate([images, a_nor], axis=-1),
                        ops.concatenate([normal["reconstruction"], normal["attention"]], axis=-1), training)
        gan_ano = gan_terms(d, ops.concatenate([x_ano, a_ano], axis=-1),
                            ops.concatenate([anomalous["reconstruction"], anomalous["attention"]], axis=-1), training)
        adv, d_real, d_fake = gan["adv"], gan["d_real"], gan["d_fake"]
        adv_ano, d_ano_real, d_ano_fake = gan_ano["adv"], gan_ano["d_real"], gan_ano["d_fake"]
        # Eq. 3 on the normal images and Eq. 4, per image: summed over pixels and latent units (the
        # paper's NLL and squared norms), or averaged (the "mean" ablation), then a mean over images.
        per_image = sum_over_pixels if self.loss_reduction == "sum" else mean_over_pixels
        rec = ops.mean(per_image(ops.binary_crossentropy(images, normal["reconstruction"])))
        mu, log_var = normal["mu"], normal["log_var"]
        kl = ops.mean(per_image(gaussian_kl(mu, log_var)))
        att_nor = ops.mean(per_image(ops.square(normal["attention"] - a_nor)))  # Eq. 4, first term
        att_ano = ops.mean(per_image(ops.square(anomalous["attention"] - a_ano)))  # Eq. 4, second term
        g_total = self.w_adv * adv + self.w_g * (rec + kl)
        d_total = 0.5 * (d_real + d_fake)
        if self.adversarial_anomaly:
            g_total = g_total + self.w_adv_ano * adv_ano
            d_total = d_total + 0.5 * (d_ano_real + d_ano_fake)
        if self.attention_loss:
            g_total = g_total + self.w_att * (att_nor + att_ano)
        return {
            "g": {"total": g_total, "adv": adv, "adv_ano": adv_ano, "rec": rec, "kl": kl, "att_nor": att_nor,
                  "att_ano": att_ano},
            "d": {"total": d_total, "d_real": d_real, "d_fake": d_fake, "d_ano_real": d_ano_real,
                  "d_ano_fake": d_ano_fake},
        }

    def _adgan_terms(self, images, training):
        # The attention network is frozen: inference mode (its BN statistics stay) and no gradient.
        attention = ops.stop_gradient(self.generate(images, training=False)["attention"])
        features = self.normal_features(images, attention, training)
        reconstruction = self.adgan_decoder(self.adgan_encoder(features, training=training), training=training)
        batches = [features, reconstruction]
        if self.adgan_anomalies:  # Table 1: the hard-augmented data are anomalies (fakes) for the DCGAN
            x_ano, _ = self.synthesize(images)
            a_ano = ops.stop_gradient(self.generate(x_ano, training=False)["attention"])
            batches.append(self.normal_features(x_ano, a_ano, training))
        # One D2 call on real, fake (and anomalous) features, so its BatchNorm scores as it trains.
        logits = [out["logits"] for out in discriminate(self.adgan_discriminator, batches, training)]
        adv = binary_cross_entropy(ops.ones_like(logits[1]), logits[1])
        d_real = binary_cross_entropy(ops.ones_like(logits[0]), logits[0])
        d_fake = binary_cross_entropy(ops.zeros_like(logits[1]), logits[1])
        rec = ops.mean(ops.square(features - reconstruction))
        d_terms = {"adgan_d_real": d_real, "adgan_d_fake": d_fake}
        d_total = 0.5 * (d_real + d_fake)
        if self.adgan_anomalies:
            d_terms["adgan_d_anomaly"] = binary_cross_entropy(ops.zeros_like(logits[2]), logits[2])
            d_total = (d_real + d_fake + d_terms["adgan_d_anomaly"]) / 3.0
        return {
            "adgan_g": {"total": self.w_adgan_adv * adv + self.w_adgan_rec * rec, "adgan_adv": adv,
                        "adgan_rec": rec},
            "adgan_d": {"total": d_total, **d_terms},
        }

    # -- inference --------------------------------------------------------------------------------

    def anomaly_outputs(self, images):
        generated = self.generate(images, training=False)
        attention, reconstruction = generated["attention"], generated["reconstruction"]
        pair = ops.concatenate([images, attention], axis=-1)
        outputs = {
            "anomaly_map": 1.0 - attention,
            "attention": attention,
            "reconstruction": reconstruction,
            "reconstruction_score": mean_over_pixels(ops.abs(images - reconstruction)),
            "discriminator_score": -self.discriminator(pair, training=False)["logits"],
        }
        if self.adgan:
            features = self.normal_features(images, attention)
            reconstructed = self.adgan_decoder(self.adgan_encoder(features, training=False), training=False)
            outputs["adgan_score"] = -self.adgan_discriminator(reconstructed, training=False)["logits"]
            outputs["adgan_features_score"] = -self.adgan_discriminator(features, training=False)["logits"]
        outputs["score"] = outputs[f"{self.score}_score"]
        return outputs
