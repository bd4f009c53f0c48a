"""Same seed, same result: each registered model (`tiny` configuration) trained one epoch a stage on 64 tire
images at 32 px; prints its layer count, a digest of its weights and the sum of 32 test scores.
Run it before and after a change that should not change results, and compare the lines:

    python tools/same_result.py [TIRE_FOLDER]
"""

import dataclasses
import hashlib
import sys

import keras
import numpy as np

from anomzoo import training
from anomzoo.data import load_dataset
from anomzoo.models import MODELS, build_model

data = load_dataset(sys.argv[1] if len(sys.argv) > 1 else "../shared/data/mvtec3d_tire_rgb/tire", image_size=32, seed=0)
data = dataclasses.replace(data, train=data.train.take(np.arange(64)), validation=data.validation.take(np.arange(16)))
for name in MODELS:
    keras.utils.set_random_seed(0)
    model = build_model(name, "tiny", image_shape=(32, 32, 3))
    classes = [type(l).__name__ for l in model._flatten_layers()]
    training.train(model, data, epochs=[1] * len(model.stages), batch_size=16, seed=0, verbose=0)
    scores = model.predict(data.test.images[:32], verbose=0)["score"]
    digest = hashlib.sha256(b"".join(np.asarray(w).tobytes() for w in model.get_weights())).hexdigest()[:16]
    print(name, len(classes), digest, float(np.sum(scores)))
