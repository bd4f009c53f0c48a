"""`train()`: the one way the CLI and the benchmarks fit a zoo model on an `AnomalyDataset`.

It is plain `model.fit` with the paper's optimizer schedule, seeded data order and callbacks;
users in a notebook can equally call `model.compile()` and `model.fit()` themselves.
"""

import math

import keras
import numpy as np

from anomzoo.data import make_pipeline
from anomzoo.models.schedules import ConstantThenLinearDecay

#: what every result trained here records as its checkpoint-selection rule.
SELECTION_RULE = "last epoch (no checkpoint selection; test data unused in training)"


def paper_optimizers(model, steps):
    """Two Adams at the model's learning rate, constant for half the run, then linear to zero."""
    constant = steps // 2
    schedule = ConstantThenLinearDecay(model.learning_rate, constant, max(steps - constant, 1))
    return model.default_optimizers(learning_rate=schedule)


def train(model, dataset, *, epochs, batch_size=64, seed=0, callbacks=(), verbose="auto"):
    """Fit `model` on the normal training images of `dataset`, validating on its validation split.

    Returns the Keras `History`. Raises FloatingPointError if a loss became NaN or infinite.
    """
    if epochs < 1 or batch_size < 1:
        raise ValueError(f"need epochs >= 1 and batch_size >= 1, got epochs={epochs}, batch_size={batch_size}")
    if dataset.image_shape != tuple(model.image_shape):
        raise ValueError(f"the model expects images of shape {tuple(model.image_shape)}, "
                         f"the dataset has {dataset.image_shape}; build the model with image_shape={dataset.image_shape}")
    keras.utils.set_random_seed(seed)
    train_data = make_pipeline(dataset.train.images, batch_size=batch_size, shuffle=True, seed=seed)
    validation_data = None
    if len(dataset.validation):
        validation_data = make_pipeline(dataset.validation.images, batch_size=batch_size, shuffle=False)
    steps = epochs * math.ceil(len(dataset.train) / batch_size)
    g_optimizer, d_optimizer = paper_optimizers(model, steps)
    model.compile(g_optimizer=g_optimizer, d_optimizer=d_optimizer)
    history = model.fit(
        train_data,
        validation_data=validation_data,
        epochs=epochs,
        callbacks=[keras.callbacks.TerminateOnNaN(), *callbacks],
        verbose=verbose,
    )
    losses = history.history.get("loss", [])
    if not losses or not np.all(np.isfinite(losses)):
        raise FloatingPointError(
            f"training diverged: the generator loss became {losses[-1] if losses else 'undefined'} "
            f"after {len(losses)} epoch(s); try a lower learning rate or another seed"
        )
    return history
