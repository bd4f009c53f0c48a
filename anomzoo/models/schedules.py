"""Learning-rate schedules the papers use."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="anomzoo")
class ConstantThenLinearDecay(keras.optimizers.schedules.LearningRateSchedule):
    """The (Skip-)GANomaly / pix2pix "lambda" rule: constant, then linear decay to zero.

    The rate stays at `initial_learning_rate` for `constant_steps` steps and then falls linearly to
    0 over `decay_steps` steps (SAGAN: "lr = 2e-3 with a lambda decay").
    """

    def __init__(self, initial_learning_rate, constant_steps, decay_steps):
        if decay_steps < 1 or constant_steps < 0:
            raise ValueError(f"need constant_steps >= 0 and decay_steps >= 1, got {constant_steps}, {decay_steps}")
        self.initial_learning_rate = float(initial_learning_rate)
        self.constant_steps = int(constant_steps)
        self.decay_steps = int(decay_steps)

    def __call__(self, step):
        step = ops.cast(step, "float32")
        past = ops.maximum(step - self.constant_steps, 0.0)
        fraction = ops.maximum(1.0 - past / float(self.decay_steps + 1), 0.0)
        return self.initial_learning_rate * fraction

    def get_config(self):
        return {
            "initial_learning_rate": self.initial_learning_rate,
            "constant_steps": self.constant_steps,
            "decay_steps": self.decay_steps,
        }
