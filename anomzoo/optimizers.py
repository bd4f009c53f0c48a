"""FusedAdam: Keras' Adam, each variable updated by TensorFlow's one fused kernel.

Keras 3's Adam updates a variable with about ten separate element-wise ops (m, v, their squares
and square roots, the step), each a pass over memory; TensorFlow's `ResourceApplyAdam` does the
same arithmetic in one pass. On a CPU that is a large share of a step: it does not shrink with the
batch, nor with bfloat16 (weights and optimizer state stay float32). Profiled alone
(`python benchmarks/profile_step.py --cases cavga-64 anoseg-lite-64 --variants plain fast bf16`,
`benchmarks/results/profile_step.md`, batch 16 at 64 px), the element-wise op types Adam uses took
271 ms of CAVGA's step and 542 ms of AnoSeg's with Keras' Adam, 26 and 17 with this one, whose
fused kernel took 86 and 57 ms.

Same formula (Kingma & Ba with the epsilon outside the square root, as Keras writes it), same
variables and config as `keras.optimizers.Adam`, so checkpoints and configs load either way;
results equal Keras' to float32 rounding, not bit for bit. Falls back to Keras' own update for
AMSGrad and outside the TensorFlow backend.
"""

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="anomzoo")
class FusedAdam(keras.optimizers.Adam):
    def update_step(self, gradient, variable, learning_rate):
        if self.amsgrad or keras.backend.backend() != "tensorflow":
            return super().update_step(gradient, variable, learning_rate)
        index = self._get_variable_index(variable)
        dtype = variable.dtype
        step = tf.cast(self.iterations + 1, dtype)
        beta_1, beta_2 = tf.cast(self.beta_1, dtype), tf.cast(self.beta_2, dtype)
        tf.raw_ops.ResourceApplyAdam(
            var=variable.handle, m=self._momentums[index].handle, v=self._velocities[index].handle,
            beta1_power=tf.pow(beta_1, step), beta2_power=tf.pow(beta_2, step),
            lr=tf.cast(learning_rate, dtype), beta1=beta_1, beta2=beta_2, epsilon=tf.cast(self.epsilon, dtype),
            grad=tf.cast(gradient, dtype), use_locking=False)
