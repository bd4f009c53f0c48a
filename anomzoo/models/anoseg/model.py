"""AnoSeg (Song, Kong et al., "AnoSeg: Anomaly Segmentation Network Using Self-Supervised Learning").

Stage "segmentation" (Sec. 3): each step turns a random half of the normal batch into synthetic
anomalies (`AnomalySynthesizer`, "anoseg" mode: rotation, perm, colour jitter each with p = 0.5,
then CutPaste into a random region), with target maps A = 1 - mask (normal masks all ones). The
segmenter maps an image (+ coordinate channels) to a normal-ness map and a reconstruction:
    L_Seg = E|A - A_hat|                                        (Eq. 2)
    L_Re  = E|x * A - x_hat * A| / E|A|                           (Eq. 4, per image)
    L_Adv on D(concat(x, A)) real vs D(concat(x_hat, A_hat)) fake (Eq. 3, BCE from logits)
Stage "detector" (Sec. 3.4, Appendix A), with the segmenter frozen: a second generator maps
concat(x_Nor, A_hat_Nor) to x_hat_Nor; its discriminator learns real (x_Nor, ones) against fake
(x_hat_Nor, A_hat_Nor), plus the synthetic-anomaly classification loss L_cls (x_Ano, A_Ano) fake;
the generator has the adversarial, feature-matching (L_fea) and reconstruction losses.
Image score (Eq. 5): alpha MSE(f(x, ones), f(x_hat, A_hat)) + beta MSE(x, x_hat), alpha 1, beta 0.1.
The anomaly map users see is 1 - A_hat (higher = more anomalous).
"""

import keras
from keras import ops

from anomzoo.augment import AnomalySynthesizer
from anomzoo.models.anoseg import networks
from anomzoo.models.anoseg.presets import CONFIGS, RECOMMENDED
from anomzoo.models.base import (AnomalyModel, Stage, binary_cross_entropy, check_image_shape_form, discriminate,
                                 gan_terms, masked_mean_per_image, mean_over_pixels)
from anomzoo.optimizers import FusedAdam

SCORES = ("detector", "map_max", "map_top1")


@keras.saving.register_keras_serializable(package="anomzoo")
class AnoSeg(AnomalyModel):
    """AnoSeg and its detector. Inputs: images (B, H, W, C) in [0, 1], H = W a power of two >= 32.

    Outputs: {"score", "anomaly_map" (1 - A_hat), "normal_map" (A_hat), "reconstruction" (the
    segmenter's), "map_max_score" and "map_top1_score" (the map's maximum and the mean of its top
    1% pixels: labelled alternatives to the detector's score), and with a detector
    "detector_score" (Eq. 5)}. `score` is the output named by the `score` option.

    synthesis_area_range: the CutPaste region's area as a fraction of the image, uniform (the paper
    gives no range; CutPaste's (0.02, 0.15) by default). synthesis_min_change: a pixel of a synthetic
    anomaly is a target only where some channel changed by more than this (0: any change, the mask
    rule; a deviation from the paper when > 0). synthesis_region: "box", the paper's CutPaste
    rectangle, or "blob", DRAEM-style irregular regions blended at an opacity drawn from
    synthesis_opacity_range (`BlobPaste`; a deviation from the paper, for small low-contrast defects).
    synthesis_foreground: None (the paper: anomalies anywhere) or a threshold that puts synthetic
    anomalies on the object as `anomzoo.augment.foreground_mask` estimates it (a deviation from the
    paper: on a centred object most of the image is background, where no real defect lies).

    weight_averaging: None (the paper) or a momentum (0.9 in `lite`): the generators' weights are replaced
    by their exponential moving average at every epoch's end, against maps that swing from epoch to
    epoch (a deviation from the paper when set).

    balanced_segmentation: L_Seg as the mean of its value over normal-target and over anomalous-target
    pixels (a deviation from Eq. 2's plain mean, off by default).

    Ablation switches (Tables 3 and 5): coordinate_channels, masked_reconstruction, adversarial
    (w_adv > 0), hard_augmentation (False = CutPaste of the un-augmented image only), detector,
    detector_map_input, detector_feature_matching (w_det_fea > 0), detector_classification
    (w_det_cls > 0).
    """

    configs = CONFIGS
    recommendations = RECOMMENDED
    stage_fractions = (2 / 3, 1 / 3)

    def __init__(
        self,
        image_shape=(256, 256, 3),
        encoder_filters=(64, 128, 256, 512),
        encoder_blocks=(2, 2, 2, 2),
        decoder_filters=networks.DECODER_FILTERS,
        discriminator_filters=networks.DISCRIMINATOR_FILTERS,
        encoder_stride="auto",
        coordinate_channels=True,
        masked_reconstruction=True,
        hard_augmentation=True,
        anomaly_fraction=0.5,
        synthesis_area_range=(0.02, 0.15),
        synthesis_min_change=0.0,
        synthesis_region="box",
        synthesis_opacity_range=(0.3, 1.0),
        synthesis_foreground=None,
        balanced_segmentation=False,
        w_seg=1.0,
        w_re=1.0,
        w_adv=0.01,
        detector=True,
        detector_map_input=True,
        w_det_adv=1.0,
        w_det_fea=1.0,
        w_det_rec=10.0,
        w_det_cls=1.0,
        score_alpha=1.0,
        score_beta=0.1,
        score="detector",
        learning_rate=1e-4,
        discriminator_learning_rate=None,
        weight_averaging=None,
        synthesis_seed=0,
        **kwargs,
    ):
        image_shape = check_image_shape_form(image_shape, type(self).__name__)
        stride = networks.encoder_stride_for(image_shape, encoder_stride)
        if score not in SCORES:
            raise ValueError(f"score must be one of {SCORES}, got {score!r}")
        if score == "detector" and not detector:
            raise ValueError("score='detector' needs detector=True; choose score='map_max' or 'map_top1'")
        if not 0.0 <= float(synthesis_min_change) < 1.0:
            raise ValueError(f"synthesis_min_change must be in [0, 1), got {synthesis_min_change}")
        if weight_averaging is not None and not 0.0 < float(weight_averaging) < 1.0:
            raise ValueError(f"weight_averaging must be None or a momentum in (0, 1), got {weight_averaging}")
        if not 0.0 < float(anomaly_fraction) < 1.0:
            raise ValueError(f"anomaly_fraction must be in (0, 1), got {anomaly_fraction}")
        super().__init__(config=self.options(locals()), **kwargs)
        channels = image_shape[-1]
        self.segmenter = networks.segmenter(image_shape, encoder_filters, encoder_blocks, decoder_filters,
                                            coordinate_channels, stride)
        self.discriminator = networks.discriminator((*image_shape[:2], channels + 1), discriminator_filters)
        # "p = 0" switches hard augmentation off: the pasted patch is then the image's own (CutPaste only).
        self.synthesizer = AnomalySynthesizer(seed=synthesis_seed, mode="anoseg", p=0.5 if hard_augmentation else 0.0,
                                              **self.validation_synthesis())
        self.mix_seed = keras.random.SeedGenerator(synthesis_seed + 1000)
        stages = [Stage("segmentation", {"g": ("segmenter",), "d": ("discriminator",)},
                        selection_metric="val_syn_pixel_auroc")]
        if detector:
            pair_channels = channels + 1 if detector_map_input else channels
            self.detector_generator = networks.detector_generator(
                (*image_shape[:2], pair_channels), channels, encoder_filters, encoder_blocks, decoder_filters,
                coordinate_channels, stride)
            self.detector_discriminator = networks.discriminator(
                (*image_shape[:2], pair_channels), discriminator_filters, name="detector_discriminator")
            stages.append(Stage("detector", {"detector_g": ("detector_generator",),
                                             "detector_d": ("detector_discriminator",)},
                                selection_metric="val_syn_image_auroc"))
        self.stages = tuple(stages)
        if not detector:
            self.stage_fractions = (1.0,)
        self.build((None, *image_shape))

    def default_optimizers(self, stage_steps=None, steps_per_epoch=None):
        """Adam (0.5, 0.999) at a constant rate for every player (the paper gives no optimizer); the
        discriminators at `discriminator_learning_rate` when it is set. With `weight_averaging` the
        generators' optimizers keep a moving average of their weights at that momentum, swapped in at
        every epoch's end (`callbacks.AverageWeights`)."""
        d_rate = self.discriminator_learning_rate or self.learning_rate
        averaging = {} if self.weight_averaging is None else {"use_ema": True,
                                                               "ema_momentum": float(self.weight_averaging)}
        return {player: FusedAdam(d_rate, beta_1=0.5, beta_2=0.999) if player.endswith("d")
                else FusedAdam(self.learning_rate, beta_1=0.5, beta_2=0.999, **averaging)
                for stage in self.stages for player in stage.players}

    # -- synthetic anomalies --------------------------------------------------------------------

    def validation_synthesis(self):
        # The training synthesiser's settings: selection must not reward what training was told not
        # to learn (flagging invisible changes), nor score anomalies of another kind.
        return {"area_range": self.synthesis_area_range, "min_change": self.synthesis_min_change,
                "region": self.synthesis_region, "opacity_range": self.synthesis_opacity_range,
                "foreground_threshold": self.synthesis_foreground}

    def _synthesize(self, images):
        """(synthetic images, their normal-ness targets 1 - mask, (B,) whether anything changed)."""
        synthetic, mask = self.synthesizer(images)  # only visible changes marked (synthesis_min_change)
        changed = ops.cast(ops.max(mask, axis=(1, 2, 3)) > 0, "float32")
        return synthetic, 1.0 - mask, changed

    def _segmentation_batch(self, images):
        """The normal batch with a random `anomaly_fraction` of it turned into synthetic anomalies."""
        synthetic, target, changed = self._synthesize(images)
        coin = keras.random.uniform((ops.shape(images)[0],), seed=self.mix_seed) < self.anomaly_fraction
        use = ops.reshape(ops.logical_and(coin, changed > 0), (-1, 1, 1, 1))
        return ops.where(use, synthetic, images), ops.where(use, target, ops.ones_like(target))

    def _pair(self, images, maps):
        return ops.concatenate([images, maps], axis=-1) if self.detector_map_input else images

    # -- losses ---------------------------------------------------------------------------------

    def loss_terms(self, batch, stage, training):
        if stage == "segmentation":
            return self._segmentation_terms(batch["image"], training)
        return self._detector_terms(batch["image"], training)

    def _segmentation_terms(self, images, training):
        x, target = self._segmentation_batch(images)
        out = self.segmenter(x, training=training)
        normal_map, reconstruction = out["map"], out["reconstruction"]
        seg_error = ops.abs(target - normal_map)
        if self.balanced_segmentation:
            # Anomalous pixels are a few percent of a batch: the plain mean is lowest for a map of
            # all ones, where the sigmoid saturates and stops learning. Balanced, each class of
            # pixels (normal / anomalous target) weighs half.
            anomalous = 1.0 - target
            seg = 0.5 * (ops.sum(seg_error * target) / ops.maximum(ops.sum(target), 1.0)
                         + ops.sum(seg_error * anomalous) / ops.maximum(ops.sum(anomalous), 1.0))
        else:
            seg = ops.mean(seg_error)
        error = ops.abs(x - reconstruction)
        re = ops.mean(masked_mean_per_image(error, target) if self.masked_reconstruction else mean_over_pixels(error))
        gan = gan_terms(self.discriminator, ops.concatenate([x, target], axis=-1),
                        ops.concatenate([reconstruction, normal_map], axis=-1), training)
        adv, d_real, d_fake = gan["adv"], gan["d_real"], gan["d_fake"]
        return {
            "g": {"total": self.w_seg * seg + self.w_re * re + self.w_adv * adv, "seg": seg, "re": re, "adv": adv},
            "d": {"total": 0.5 * (d_real + d_fake), "d_real": d_real, "d_fake": d_fake},
        }

    def _detector_terms(self, images, training):
        normal_map = ops.stop_gradient(self.segmenter(images, training=False)["map"])
        reconstruction = self.detector_generator(self._pair(images, normal_map), training=training)
        # L_cls: synthetic anomalies with their masks are "not normal" (Appendix A.1); images the
        # synthesiser left unchanged are normal, so they carry no weight here. One call of D on the
        # real, fake and synthetic pairs, so that its BatchNorm scores (Eq. 5) as it trains.
        synthetic, target, changed = self._synthesize(images)
        real_out, fake_out, synthetic_out = discriminate(
            self.detector_discriminator, (self._pair(images, ops.ones_like(normal_map)),
                                          self._pair(reconstruction, normal_map), self._pair(synthetic, target)),
            training)
        real, fake, cls_logits = real_out["logits"], fake_out["logits"], synthetic_out["logits"]
        adv = binary_cross_entropy(ops.ones_like(fake), fake)
        fea = ops.mean(ops.square(real_out["features"] - fake_out["features"]))
        rec = ops.mean(ops.abs(images - reconstruction))
        d_real = binary_cross_entropy(ops.ones_like(real), real)
        d_fake = binary_cross_entropy(ops.zeros_like(fake), fake)
        per_image = ops.binary_crossentropy(ops.zeros_like(cls_logits), cls_logits, from_logits=True)
        cls = ops.sum(per_image * changed) / ops.maximum(ops.sum(changed), 1.0) + d_real
        g_total = self.w_det_adv * adv + self.w_det_fea * fea + self.w_det_rec * rec
        d_total = 0.5 * (d_real + d_fake) + self.w_det_cls * cls
        return {
            "detector_g": {"total": g_total, "det_adv": adv, "det_fea": fea, "det_rec": rec},
            "detector_d": {"total": d_total, "det_d_real": d_real, "det_d_fake": d_fake, "det_cls": cls},
        }

    # -- inference ------------------------------------------------------------------------------

    def anomaly_outputs(self, images):
        out = self.segmenter(images, training=False)
        normal_map = out["map"]
        anomaly_map = 1.0 - normal_map
        pixels = self.image_shape[0] * self.image_shape[1]
        flat = ops.reshape(anomaly_map, (-1, pixels))
        top = max(1, pixels // 100)
        outputs = {
            "anomaly_map": anomaly_map,
            "normal_map": normal_map,
            "reconstruction": out["reconstruction"],
            "map_max_score": ops.max(flat, axis=-1),
            "map_top1_score": ops.mean(ops.top_k(flat, top)[0], axis=-1),
        }
        if self.detector:
            reconstruction = self.detector_generator(self._pair(images, normal_map), training=False)
            real, fake = discriminate(self.detector_discriminator, (self._pair(images, ops.ones_like(normal_map)),
                                                                    self._pair(reconstruction, normal_map)), False)
            feature_gap = ops.mean(ops.square(real["features"] - fake["features"]), axis=-1)
            outputs["detector_score"] = (self.score_alpha * feature_gap
                                         + self.score_beta * mean_over_pixels(ops.square(images - reconstruction)))
        outputs["score"] = outputs[f"{self.score}_score"]
        return outputs
