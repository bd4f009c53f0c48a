"""Coordinate channels (CoordConv, Liu et al. 2018), as AnoSeg concatenates them to its input."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="anomzoo")
class CoordinateChannels(keras.layers.Layer):
    """Append two channels to (B, H, W, C) images: the row and the column position, each a rank-1
    ramp from -1 (first pixel) to 1 (last pixel). Made inside the model, so users pass images only."""

    def call(self, images):
        height, width = images.shape[1], images.shape[2]
        ys = ops.linspace(-1.0, 1.0, height)
        xs = ops.linspace(-1.0, 1.0, width)
        grid_y = ops.broadcast_to(ops.reshape(ys, (1, height, 1, 1)), (ops.shape(images)[0], height, width, 1))
        grid_x = ops.broadcast_to(ops.reshape(xs, (1, 1, width, 1)), (ops.shape(images)[0], height, width, 1))
        return ops.concatenate([images, ops.cast(grid_y, images.dtype), ops.cast(grid_x, images.dtype)], axis=-1)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], input_shape[-1] + 2)
