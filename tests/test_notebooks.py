"""Every notebook runs top to bottom (nbclient, small settings), and every registered model has one."""

import pathlib

import nbformat
import pytest
from nbclient import NotebookClient

from anomzoo.models import MODELS

NOTEBOOKS = pathlib.Path(__file__).resolve().parents[1] / "notebooks"


def test_every_registered_model_has_a_notebook():
    missing = [name for name in MODELS if not (NOTEBOOKS / f"{name}.ipynb").is_file()]
    assert not missing, f"run python notebooks/build.py to write the notebooks of {missing}"


@pytest.mark.parametrize("path", sorted(NOTEBOOKS.glob("*.ipynb")), ids=lambda p: p.stem)
def test_notebook_runs(path, tmp_path, monkeypatch):
    # Small settings: the tiny configuration, one epoch per stage (two in all covers every model's stages),
    # the SavedModel export only (the export tests cover every format).
    monkeypatch.setenv("ANOMZOO_NOTEBOOK_CONFIG", "tiny")
    monkeypatch.setenv("ANOMZOO_NOTEBOOK_EPOCHS", "2")
    monkeypatch.setenv("ANOMZOO_NOTEBOOK_FORMATS", "saved_model")
    monkeypatch.setenv("ANOMZOO_NOTEBOOK_OUT", str(tmp_path / "out"))
    book = nbformat.read(path, as_version=4)
    NotebookClient(book, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    errors = [o for cell in book.cells if cell.cell_type == "code" for o in cell.get("outputs", [])
              if o.get("output_type") == "error"]
    assert not errors
    assert (tmp_path / "out" / "anomaly_maps.png").is_file()
    assert (tmp_path / "out" / "export" / "metadata.json").is_file()
