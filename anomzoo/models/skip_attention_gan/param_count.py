"""How SAGAN's Table 1 counts its weights (5,181,089 with DSCs, 18,498,481 without).

The counts are reproduced exactly, in PyTorch's convention (trainable weights; BatchNorm = 2 per
channel), by this generator and discriminator with three quirks that only the numbers reveal:
- the generator was counted with 12 input channels and 1 output channel: SmaAt-UNet's defaults
  (it was built for precipitation nowcasting), not CIFAR-10's 3 and 3;
- each CBAM's shared channel MLP is counted twice, as a per-call counter (torchsummary) does,
  because the MLP is applied to the average- and the max-pooled descriptor;
- the total is generator + discriminator (3-channel 32x32 input, latent 100).
The zoo's "paper" configuration is the same network with CIFAR-10's 3 input and 3 output channels.
"""

import math

from anomzoo.layers.cbam import CBAM
from anomzoo.layers.dcgan import dcgan_discriminator
from anomzoo.models.skip_attention_gan.generator import skip_attention_generator


def trainable_count(model):
    return sum(math.prod(v.shape) for v in model.trainable_variables)


def table1_count(separable=True):
    """The number SAGAN's Table 1 reports for this configuration."""
    generator = skip_attention_generator((32, 32, 12), separable=separable, output_channels=1)
    discriminator = dcgan_discriminator((32, 32, 3))
    mlp_counted_again = sum(
        trainable_count(layer.mlp_hidden) + trainable_count(layer.mlp_out)
        for layer in generator.layers
        if isinstance(layer, CBAM)
    )
    return trainable_count(generator) + mlp_counted_again + trainable_count(discriminator)
