"""Write the notebooks: `python notebooks/build.py` (after adding a model to the registry).

One notebook per registered model (`<model>.ipynb`) and a quick tour (`quick_tour.ipynb`), all
from the cells below, so that they stay alike and a new model gets its notebook by re-running this.
Each runs top to bottom in Colab (its first cell installs anomzoo) and in CI at small settings
(`tests/test_notebooks.py` sets the ANOMZOO_NOTEBOOK_* variables read by the parameter cell).
"""

import pathlib
import sys

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = pathlib.Path(__file__).resolve().parent

INSTALL = '''# Colab: install anomzoo (it keeps Colab's TensorFlow). Until anomzoo is on PyPI, point
# ANOMZOO_PIP at the repository, e.g. "anomzoo[export] @ git+https://github.com/<org>/anomzoo".
import importlib.util, os, subprocess, sys
if importlib.util.find_spec("anomzoo") is None:
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", os.environ.get("ANOMZOO_PIP", "anomzoo[export]")],
                   check=True)'''

PARAMETERS = '''# Parameters (CI runs every notebook with small values through these variables).
import os
MODEL = "{model}"
CONFIG = os.environ.get("ANOMZOO_NOTEBOOK_CONFIG", "{config}")
EPOCHS = int(os.environ.get("ANOMZOO_NOTEBOOK_EPOCHS", "{epochs}"))
FORMATS = os.environ.get("ANOMZOO_NOTEBOOK_FORMATS", "saved_model litert onnx").split()
OUT = os.environ.get("ANOMZOO_NOTEBOOK_OUT", "anomzoo_notebook")'''

DATA = '''import keras
import numpy as np
import anomzoo
from anomzoo.data import load_dataset, make_pipeline

# scikit-learn's handwritten digits (no download): digit 0 is normal, the other digits anomalous.
# Any folder in the MVTec AD layout works the same way: load_dataset("path/to/bottle", image_size=128).
data = load_dataset("digits", normal_class=0, image_size=32)
print(data.image_shape, len(data.train), "train,", len(data.validation), "validation,", len(data.test), "test")'''

FIT = '''from anomzoo.callbacks import StageSchedule
from anomzoo.training import split_epochs

keras.utils.set_random_seed(0)
model = anomzoo.build_model(MODEL, CONFIG, image_shape=data.image_shape)
model.compile()                                       # the model's own optimizers, one per player
stage_epochs = split_epochs(model, EPOCHS)            # one entry per training stage
print("stages:", [s.name for s in model.stages], "epochs:", stage_epochs)
history = model.fit(make_pipeline(data.train.images, batch_size=16, shuffle=True, seed=0),
                    validation_data=make_pipeline(data.validation.images, batch_size=16, shuffle=False),
                    epochs=sum(stage_epochs), callbacks=[StageSchedule(stage_epochs)], verbose=2)'''

METRICS = '''from anomzoo.evaluation import evaluate_model

# Thresholds come from the validation images (normal only); no test label chooses anything.
results, predictions = evaluate_model(model, data)
{k: round(v, 4) for k, v in results.items() if isinstance(v, float)}'''

PICTURES = '''from IPython.display import Image, display
from anomzoo.report import overlay_grid

os.makedirs(OUT, exist_ok=True)
overlay_grid(data.test.images, predictions["anomaly_map"], data.test.labels, predictions["score"],
             f"{OUT}/anomaly_maps.png", masks=data.test.masks)
display(Image(f"{OUT}/anomaly_maps.png"))'''

EXPORT = '''import shutil
from anomzoo.export import export, load_export, trained_model

shutil.rmtree(f"{OUT}/export", ignore_errors=True)
metadata = export(trained_model(model, data), f"{OUT}/export", formats=FORMATS)
for key, facts in metadata["files"].items():
    print(f"{key:20s} {facts['bytes'] / 1e6:6.2f} MB  max |score - keras| = {facts['deviation_from_keras']['score']:.2e}")'''

RELOAD = '''# Reload each float32 export, as a server or a device would, and compare it with the Keras model.
images = data.test.images[:16].astype("float32") / 255.0
expected = model.predict(images, verbose=0)
for key in ("saved_model", "litert_float32", "onnx"):
    if key in metadata["files"]:
        outputs = load_export(f"{OUT}/export/" + metadata["files"][key]["path"])(images)
        np.testing.assert_allclose(outputs["score"], expected["score"], rtol=0, atol=1e-4)
        print(key, "matches the Keras model")'''

TOUR_CELLS = [
    new_markdown_cell("# anomzoo: a quick tour\n\nA trained model from the zoo, its metrics, its anomaly "
                      "maps, an export and a check that the export scores as the Keras model does. The "
                      "per-model notebooks train from scratch."),
    new_code_cell(INSTALL),
    new_code_cell(PARAMETERS.format(model="sagan_digits0", config="paper", epochs=0)),
    new_code_cell("# The zoo's trained models (also: anomzoo zoo list | info NAME | get NAME).\n"
                  "from anomzoo import zoo\nfor name, entry in zoo.ENTRIES.items():\n"
                  "    print(name, entry['model'], entry['dataset'], entry['target'], entry['metrics'])"),
    new_code_cell(DATA),
    new_code_cell("# A trained SAGAN for digit 0 (weights shipped with anomzoo, checked by sha256, loaded in "
                  "safe mode).\nmodel = anomzoo.from_preset(MODEL)\nprint(zoo.info(MODEL)['metrics'])"),
    new_code_cell(METRICS),
    new_code_cell(PICTURES),
    new_code_cell(EXPORT),
    new_code_cell(RELOAD),
]


def model_cells(name, cls):
    doc = (cls.__doc__ or name).strip().splitlines()[0]
    return [
        new_markdown_cell(f"# {name}: train, evaluate, export\n\n{doc}\n\nThe `{name}` model of anomzoo "
                          "trained with `model.fit` on the built-in digits, its test metrics and anomaly maps, "
                          "then exported (SavedModel, LiteRT, ONNX) and reloaded."),
        new_code_cell(INSTALL),
        new_code_cell(PARAMETERS.format(model=name, config="paper", epochs=10)),
        new_code_cell(DATA),
        new_code_cell(FIT),
        new_code_cell(METRICS),
        new_code_cell(PICTURES),
        new_code_cell(EXPORT),
        new_code_cell(RELOAD),
    ]


def notebook(cells):
    for number, cell in enumerate(cells):
        cell.id = f"cell-{number}"  # fixed ids: re-running this script changes nothing that did not change
    book = new_notebook(cells=cells)
    book.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    book.metadata["colab"] = {"provenance": []}
    return book


def main():
    sys.path.insert(0, str(HERE.parent))
    from anomzoo.models import MODELS

    written = {"quick_tour.ipynb": notebook(TOUR_CELLS)}
    written.update({f"{name}.ipynb": notebook(model_cells(name, cls)) for name, cls in MODELS.items()})
    for filename, book in written.items():
        nbformat.write(book, HERE / filename)
        print(HERE / filename)


if __name__ == "__main__":
    main()
