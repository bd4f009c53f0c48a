"""Exports of trained models: SavedModel (TF Serving), LiteRT and ONNX, and runners for them.

    from anomzoo.export import export, load_export, open_trained
    metadata = export(open_trained("runs/my-run"), "exports/my-run")     # a run directory
    metadata = export(trained_model(model, data), "exports/mine")          # a model just fitted
    runner = load_export("exports/my-run/onnx/skip_attention_gan.onnx")
"""

from anomzoo.export.exporter import FORMATS, export
from anomzoo.export.runtime import load_export
from anomzoo.export.source import TrainedModel, open_trained, trained_model

__all__ = ["FORMATS", "TrainedModel", "export", "load_export", "open_trained", "trained_model"]
