"""A run directory: what a run asked for (run.json), whether it finished, and who holds it.

A run trains and writes into one directory; these helpers keep two runs from mixing in it and let
an unfinished run be found and continued (`anomzoo train --resume`).
"""

import contextlib
import json
import os
import pathlib

from anomzoo.files import write_json

RUN_FILE = "run.json"  # what was asked for, and whether the run has finished
CHECKPOINT_DIR = "checkpoint"  # the training state after the last finished epoch, until the run ends
LOCK_FILE = "run.lock"  # the pid of the process training in the directory (`run_lock`)


class RunDirectoryError(ValueError):
    """A run directory that cannot be used for the run asked for."""


def _differences(recorded, request):
    keys = sorted(set(recorded) | set(request))
    return ", ".join(f"{k}: {recorded.get(k)!r} there, {request.get(k)!r} now" for k in keys
                     if recorded.get(k) != request.get(k))


def open_run_dir(out_dir, request=None):
    """Make `out_dir` ready for a run before any data is loaded; True when it continues an unfinished run.

    A new or empty directory is created (and shown writable) and records `request`. A directory
    holding an unfinished training run with the same request is continued; anything else (a file,
    a finished run, another request, foreign files, any non-empty directory for an evaluation with
    `request=None`) is refused, so that two runs never mix in one directory.
    """
    out_dir = pathlib.Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise RunDirectoryError(f"--out {out_dir} is a file; give a directory for the run")
    if out_dir.is_dir() and any(p.name != LOCK_FILE for p in out_dir.iterdir()):
        recorded = read_run_record(out_dir) if request is not None else None
        if recorded is None:
            raise RunDirectoryError(f"{out_dir} is not empty; give a new or empty directory with --out "
                                    "(results of different runs are never mixed)")
        if recorded.get("status") == "finished":
            raise RunDirectoryError(f"{out_dir} holds a finished run; give a new directory with --out "
                                    "(or delete this one to train it again)")
        if recorded["request"] != request:
            raise RunDirectoryError(f"{out_dir} holds an unfinished run of another command "
                                    f"({_differences(recorded['request'], request)}); run that command "
                                    "again to continue it, or give a new directory with --out")
        return True
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        if request is not None:
            write_json(out_dir / RUN_FILE, {"status": "training", "request": request})
        else:  # show the directory is writable now, not after the evaluation
            (out_dir / ".write-test").touch()
            (out_dir / ".write-test").unlink()
    except OSError as error:
        raise RunDirectoryError(f"cannot write the run directory {out_dir}: {error.strerror or error}") from error
    return False


@contextlib.contextmanager
def run_lock(out_dir):
    """Hold `out_dir` for this process: a lock file holding its pid, removed when the block ends. A
    second process (a --resume of a run still going, or only stopped with kill -STOP) is refused, since
    both would write the same checkpoint and model; a lock whose process is gone is stale and taken over."""
    lock = pathlib.Path(out_dir) / LOCK_FILE
    for _ in range(2):
        try:
            handle = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            break
        except FileExistsError:
            try:
                owner = int(lock.read_text().strip() or 0)
            except (OSError, ValueError):
                owner = 0
            if owner and owner != os.getpid() and _process_alive(owner):
                raise RunDirectoryError(f"{out_dir} is in use by process {owner} (a run still training, or "
                                        f"stopped); wait for it or end it (kill {owner}) before continuing this run")
            lock.unlink(missing_ok=True)  # stale: its process is gone
    else:
        raise RunDirectoryError(f"cannot take the lock {lock}: another process keeps taking it")
    try:
        os.write(handle, str(os.getpid()).encode())
        os.close(handle)
        yield
    finally:
        lock.unlink(missing_ok=True)


def _process_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


def find_unfinished_run(runs_root, request):
    """The newest directory under `runs_root` holding an unfinished run of `request`, or None."""
    candidates = []
    for run_file in pathlib.Path(runs_root).glob(f"*/{RUN_FILE}"):
        recorded = read_run_record(run_file.parent)
        if recorded is not None and recorded.get("status") != "finished" and recorded["request"] == request:
            candidates.append(run_file.parent)
    return max(candidates, key=lambda p: p.stat().st_mtime, default=None)


def read_run_record(run_dir):
    """The run.json of `run_dir` ({"status", "request"}), or None when it has none or it is unreadable."""
    try:
        recorded = json.loads((pathlib.Path(run_dir) / RUN_FILE).read_text())
    except (OSError, ValueError):
        return None
    return recorded if isinstance(recorded, dict) and "request" in recorded else None
