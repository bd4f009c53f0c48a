"""Convolutions on small feature maps whose kernel gradient is one matrix product.

On maps of a few positions (a 64 px image's 2x2 to 4x4 maps: the end of an encoder, the start of
a decoder, a discriminator's last layers) oneDNN's kernel-gradient op (Conv2DBackpropFilter) is
slower than writing the same sum as one matrix product: the image patches, one row per output
position, transposed, times the output gradient. Measured alone on the zoo's layer shapes
(`benchmarks/kernel_gradient.py`, `results/kernel_gradient.md`, AVX-512 BF16 CPU): with at most
16 output positions the product is 1.0-2.0x as fast in float32 and 0.97-5.0x in bfloat16; with
64, 0.7-0.8x in float32 and 0.9-1.5x in bfloat16; from 256 on, 0.2-0.6x in both. So these
layers take the product where the output map has at most `SMALL_MAP_POSITIONS` positions, and
only in training (the forward pass and the input gradient are TensorFlow's own either way, and
inference and exports run the parent layer's code).

The Conv2D takes the same product for every 1x1 kernel with a stride above 1 (a ResNet shortcut),
whatever its map size, for another reason: TensorFlow 2.21's oneDNN kernel gradient for those
corrupts the heap at some shapes and odd batch sizes (`tf.raw_ops.Conv2DBackpropFilter` of a 1x1,
stride-2 kernel over a (3, 32, 32, 8) input aborts the process: "munmap_chunk(): invalid pointer"),
so a last batch of 5 images killed CAVGA's, AnoSeg's and the attention network's training. Their
patches are every stride-th pixel of the input, and the product never calls that op.

The classes keep Keras' class names so that `.keras` files store their weights under the same
paths as the parent layers' (see `anomzoo.layers.cpu_kernels`); they are registered, and used, as
PatchGradientConv2D and PatchGradientConv2DTranspose.
"""

import keras
from keras import layers

# Output positions per image (per-image map area) up to which the patch product is used.
SMALL_MAP_POSITIONS = 16


def patch_kernel_gradient(inputs, output_gradient, kernel_shape, strides, padding):
    """dL/dkernel of conv2d(inputs, kernel): patches (N * positions, kh * kw * C_in)^T @
    output_gradient (N * positions, C_out), reshaped to the kernel's (kh, kw, C_in, C_out)."""
    import tensorflow as tf

    kh, kw, c_in, c_out = kernel_shape
    if (kh, kw) == (1, 1):  # a 1x1 kernel pads nothing ("same" or "valid"): its patches are every stride-th pixel
        patches = every_stride_th_pixel(inputs, strides)
    else:
        patches = tf.image.extract_patches(inputs, [1, kh, kw, 1], [1, *strides, 1], [1, 1, 1, 1], padding)
    product = tf.matmul(tf.reshape(patches, (-1, kh * kw * c_in)), tf.reshape(output_gradient, (-1, c_out)),
                        transpose_a=True)
    return tf.reshape(product, kernel_shape)


def every_stride_th_pixel(images, strides):
    """images[:, ::sh, ::sw, :] as a reshape and a slice of unit stride. Sampled by TensorFlow's strided
    slice, the kernel gradient took 2-6x as long as oneDNN's own op on the zoo's shortcut shapes
    (64x64x64 at batch 16: 7.5-10.3 ms against 1.3-3.1 ms); sampled this way, as long or less."""
    import tensorflow as tf

    (sh, sw), (height, width, channels) = strides, images.shape[1:]
    if None in (height, width, channels):
        return images[:, ::sh, ::sw, :]
    pad_h, pad_w = -height % sh, -width % sw  # the rows and columns past the last sampled one
    images = tf.pad(images, [[0, 0], [0, pad_h], [0, pad_w], [0, 0]]) if pad_h or pad_w else images
    blocks = tf.reshape(images, (-1, (height + pad_h) // sh, sh, (width + pad_w) // sw, sw, channels))
    return blocks[:, :, 0, :, 0, :]


def conv2d(inputs, kernel, strides, padding):
    """`tf.nn.conv2d` (NHWC, no dilation) with the kernel gradient as one matrix product.
    strides: (sh, sw); padding: "SAME" or "VALID"."""
    import tensorflow as tf

    @tf.custom_gradient
    def convolve(x, w):
        def gradient(dy):
            dx = tf.nn.conv2d_transpose(dy, w, tf.shape(x), strides, padding)  # the input gradient
            return dx, patch_kernel_gradient(x, dy, w.shape, strides, padding)

        return tf.nn.conv2d(x, w, strides, padding), gradient

    return convolve(inputs, kernel)


def conv2d_transpose(inputs, kernel, output_shape, strides, padding):
    """`tf.nn.conv2d_transpose` (NHWC, no dilation) with the kernel gradient as one matrix product.
    kernel: (kh, kw, C_out, C_in), Keras' and TensorFlow's layout."""
    import tensorflow as tf

    @tf.custom_gradient
    def convolve(x, w):
        def gradient(dy):
            # The transposed convolution is the input gradient of conv2d(dy, w): its kernel gradient
            # is conv2d's, with the roles of the input (dy) and the output gradient (x) swapped.
            dx = tf.nn.conv2d(dy, w, strides, padding)
            return dx, patch_kernel_gradient(dy, x, w.shape, strides, padding)

        return tf.nn.conv2d_transpose(x, w, output_shape, strides, padding), gradient

    return convolve(inputs, kernel)


def _plain_2d(layer):
    """The settings the patch product covers: TensorFlow, NHWC, no dilation, no groups."""
    return (keras.backend.backend() == "tensorflow" and layer.data_format == "channels_last"
            and tuple(layer.dilation_rate) == (1, 1) and getattr(layer, "groups", 1) == 1)


def _kernel(layer):
    """The layer's kernel as a tensor in its compute dtype: a custom gradient takes tensors, and the
    read stays on the tape, so the variable gets the kernel gradient."""
    import tensorflow as tf

    return tf.cast(tf.convert_to_tensor(layer.kernel), layer.compute_dtype)


def _bias_and_activation(layer, outputs):
    """What the parent layers do after the convolution."""
    if layer.use_bias:
        outputs = keras.ops.add(outputs, layer.bias)
    return outputs if layer.activation is None else layer.activation(outputs)


def _small(height, width):
    return height is not None and width is not None and height * width <= SMALL_MAP_POSITIONS


def _strided_1x1(layer):
    """A 1x1 kernel with a stride: oneDNN's kernel gradient of it can corrupt the heap (module doc)."""
    return tuple(layer.kernel_size) == (1, 1) and tuple(layer.strides) != (1, 1)


@keras.saving.register_keras_serializable(package="anomzoo", name="PatchGradientConv2D")
class Conv2D(layers.Conv2D):
    """`keras.layers.Conv2D` whose kernel gradient, in training on an output map of at most
    `SMALL_MAP_POSITIONS` positions or with a strided 1x1 kernel, is one matrix product over image
    patches."""

    def call(self, inputs, training=None):
        small = _small(*self.compute_output_shape(inputs.shape)[1:3])
        if not (training and _plain_2d(self) and (small or _strided_1x1(self))):
            return super().call(inputs)
        outputs = conv2d(inputs, _kernel(self), tuple(self.strides), self.padding.upper())
        return _bias_and_activation(self, outputs)


@keras.saving.register_keras_serializable(package="anomzoo", name="PatchGradientConv2DTranspose")
class Conv2DTranspose(layers.Conv2DTranspose):
    """`keras.layers.Conv2DTranspose` ("same" padding) whose kernel gradient, in training on an input
    map of at most `SMALL_MAP_POSITIONS` positions, is one matrix product over patches of the output
    gradient."""

    def call(self, inputs, training=None):
        if not (training and _plain_2d(self) and self.padding == "same" and self.output_padding is None
                and _small(*inputs.shape[1:3])):
            return super().call(inputs)
        import tensorflow as tf

        height, width = inputs.shape[1] * self.strides[0], inputs.shape[2] * self.strides[1]
        output_shape = tf.stack([tf.shape(inputs)[0], height, width, self.filters])
        outputs = conv2d_transpose(inputs, _kernel(self), output_shape, tuple(self.strides), "SAME")
        return _bias_and_activation(self, tf.ensure_shape(outputs, (None, height, width, self.filters)))


PatchGradientConv2D = Conv2D
PatchGradientConv2DTranspose = Conv2DTranspose
