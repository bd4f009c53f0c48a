"""Grad-CAM (Selvaraju et al., ICCV 2017) as plain `keras.ops`, shared by the attention models.

A map is `relu(sum_c F_c * alpha_c)` where F (B, h, w, C) is a feature map and alpha_c the spatial
mean of the gradient of a target with respect to F_c. Two ways to get that gradient:

- in training, from a tape (`tape_gradient`), so that a loss on the map trains the network through
  second-order gradients (the outer tape differentiates the inner gradient);
- at inference and in exports, in closed form where the target is linear in F (a 1x1 conv or a
  dense layer on top of F): the gradient is then a constant of the weights (`conv1x1_gradient`,
  `dense_gradient`), exact, and needs no tape (a tape inside an exported function does not convert
  to LiteRT / ONNX).

Maps are normalised per image (divided by each image's own maximum): a public CAVGA port divides by
the batch maximum, which makes one image's map depend on the others in its batch.
"""

from keras import ops


def channel_weights(gradients):
    """alpha: the spatial mean of the gradient, (B, h, w, C) or (h, w, C) -> (B, C) or (C,)."""
    return ops.mean(gradients, axis=(-3, -2))


def class_activation(features, weights):
    """relu(sum_c F_c * alpha_c): (B, h, w, C) features, (B, C) or (C,) weights -> (B, h, w, 1)."""
    if len(weights.shape) == 1:
        weights = ops.expand_dims(weights, 0)
    weighted = features * ops.expand_dims(ops.expand_dims(weights, 1), 1)
    return ops.relu(ops.sum(weighted, axis=-1, keepdims=True))


def normalize_per_image(cam, epsilon=1e-8):
    """Each image's map divided by its own maximum: values in [0, 1] (a map of zeros stays zero).

    Divided by max(peak, epsilon), not peak + epsilon: an untrained network's weak maps (peaks of
    1e-5) would otherwise peak visibly below 1."""
    peak = ops.max(cam, axis=(1, 2, 3), keepdims=True)
    return cam / ops.maximum(peak, epsilon)


def attention_map(features, gradients, image_size):
    """The Grad-CAM attention map A in [0, 1], upsampled (bilinear) to `image_size` (h, w), then normalised:
    (B, h, w, C) features and gradients (or a (h, w, C) / (C,) constant gradient) -> (B, H, W, 1)."""
    weights = gradients if len(gradients.shape) == 1 else channel_weights(gradients)
    # Upsampled before normalising: bilinear sampling at pixel centres misses the coarse map's peak,
    # so normalising first would leave maxima below 1 (up to 4% at 4x4 -> 32x32).
    cam = ops.image.resize(class_activation(features, weights), tuple(image_size), interpolation="bilinear")
    return normalize_per_image(ops.relu(cam))


def conv1x1_gradient(kernel):
    """d sum(Conv1x1(F)) / dF: the same at every position, sum_k W[c, k] -> (C,).
    kernel: the (1, 1, C, K) kernel of the 1x1 convolution (bias and position do not matter)."""
    return ops.sum(ops.reshape(kernel, (kernel.shape[-2], kernel.shape[-1])), axis=-1)


def dense_gradient(kernel, feature_shape, column=None):
    """d sum(Dense(flatten(F))) / dF, or of one output `column`: (h*w*C, K) kernel -> (h, w, C)."""
    summed = ops.sum(kernel, axis=-1) if column is None else kernel[:, column]
    return ops.reshape(summed, tuple(feature_shape))


def tape_gradient(tape, target, features):
    """The gradient of `target` (a scalar computed inside `tape`, which watches `features`) with
    respect to `features`, kept differentiable for an outer tape. Raises if it is disconnected."""
    gradients = tape.gradient(target, features)
    if gradients is None:
        raise ValueError("the Grad-CAM target does not depend on the features: compute it inside the tape")
    return gradients
