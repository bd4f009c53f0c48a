"""The one exception type the data loaders raise for bad data (a missing path is FileNotFoundError)."""

from __future__ import annotations


class DatasetError(ValueError):
    """Data that is present but not what a loader expects: a corrupt image, a wrong size, an
    unknown class or dataset name, an empty folder.

    It subclasses ValueError so that callers catching ValueError keep working; every message
    names the file, folder or value at fault and what was expected instead.
    """
