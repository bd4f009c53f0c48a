"""Writing files so that a failure never leaves a half-written one behind."""

import contextlib
import json
import os
import pathlib
import shutil
import tempfile


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path beside `path` (same suffixes); rename it onto `path` on success."""
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # All suffixes: Keras wants weight files to end in ".weights.h5".
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix="".join(path.suffixes), dir=path.parent)
    os.close(fd)
    os.unlink(tmp)  # some writers (Keras) refuse to overwrite; they get a fresh name
    try:
        yield pathlib.Path(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def check_new_directory(path, flag="--out"):
    """Refuse `path` (a ValueError naming it and `flag`) unless a new or empty directory can be written
    there; cheap, so a command calls it before its long work rather than failing after it."""
    path = pathlib.Path(path)
    if path.exists() and not path.is_dir():
        raise ValueError(f"{flag} {path} is a file; give a new folder")
    if path.is_dir() and any(path.iterdir()):
        raise ValueError(f"{flag} {path} is not empty; choose a new folder (results of different "
                         "commands are never mixed)")
    existing = next(p for p in (path, *path.parents) if p.exists())  # "." or "/" at the latest
    if not existing.is_dir():
        raise ValueError(f"{flag} {path}: {existing} is a file, so no folder can be made under it")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ValueError(f"{flag} {path}: {existing} is not writable")


@contextlib.contextmanager
def atomic_directory(path):
    """Yield a temporary directory beside `path`; rename it onto `path` on success (`path` must not
    exist, or be an empty directory), remove it on failure."""
    path = pathlib.Path(path)
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise FileExistsError(f"{path} exists and is not an empty directory; choose a new place")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = pathlib.Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        yield tmp
        if path.exists():
            path.rmdir()
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def write_text(path, text):
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_json(path, data):
    write_text(path, json.dumps(data, indent=2, sort_keys=False) + "\n")


def save_model(model, path):
    with atomic_path(path) as tmp:
        model.save(tmp)
