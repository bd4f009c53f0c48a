"""Exports of trained models: SavedModel (TF Serving), LiteRT and ONNX, and runners for them.

    from anomzoo.export import export, load_export, open_trained
    metadata = export(open_trained("runs/my-run"), "exports/my-run")
    runner = load_export("exports/my-run/onnx/skip_attention_gan.onnx")
"""

from anomzoo.export.exporter import FORMATS, export
from anomzoo.export.runtime import load_export
from anomzoo.export.source import TrainedModel, open_trained

__all__ = ["FORMATS", "TrainedModel", "export", "load_export", "open_trained"]
