"""FusedAdam: the same updates as Keras' Adam (to float32 rounding), the same config and state."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from anomzoo.optimizers import FusedAdam

SHAPES = [(3, 3, 4, 8), (8,), (5, 7)]


def run(optimizer, steps=6):
    rng = np.random.default_rng(0)
    variables = [keras.Variable(rng.standard_normal(s).astype("float32")) for s in SHAPES]
    optimizer.build(variables)
    apply = tf.function(lambda grads: optimizer.apply(grads, variables))
    for _ in range(steps):
        apply([tf.constant(rng.standard_normal(s).astype("float32")) for s in SHAPES])
    return [v.numpy() for v in variables], [v.numpy() for v in optimizer.variables]


@pytest.mark.parametrize("options", [
    {"learning_rate": 1e-2, "beta_1": 0.5, "beta_2": 0.999},
    {"learning_rate": keras.optimizers.schedules.PiecewiseConstantDecay([2, 4], [1e-2, 1e-3, 1e-4])},
    {"learning_rate": 1e-2, "amsgrad": True},  # not fused: Keras' own update
])
def test_fused_adam_updates_as_keras_adam_does(options):
    expected_weights, expected_state = run(keras.optimizers.Adam(**options))
    weights, state = run(FusedAdam(**options))
    for got, want in zip(weights + state, expected_weights + expected_state):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    assert not np.allclose(weights[0], run(keras.optimizers.Adam(**options), steps=0)[0][0])  # it did move


def test_fused_adam_config_loads_as_adam_and_back():
    fused = FusedAdam(learning_rate=2e-3, beta_1=0.5)
    restored = keras.optimizers.deserialize(keras.optimizers.serialize(fused))
    assert type(restored) is FusedAdam and restored.get_config() == fused.get_config()
    plain = keras.optimizers.Adam.from_config(fused.get_config())  # a checkpoint's state fits either
    variables = [keras.Variable(np.zeros(s, "float32")) for s in SHAPES]
    fused.build(variables)
    plain.build(variables)
    assert [v.shape for v in fused.variables] == [v.shape for v in plain.variables]
