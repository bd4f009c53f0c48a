"""The zoo: trained models with recorded metrics, loadable by name.

    anomzoo zoo list                       # entries, what they were trained on, their metrics
    model = anomzoo.from_preset("sagan_digits0")          # or SkipAttentionGAN.from_preset(...)

Each entry (`entries.json`) names its model, configuration (key `preset`), dataset and protocol, image size, the metrics
its weights give (re-computed from the shipped file and checked by the tests), the thresholds
chosen on normal validation images, where the weights live and their sha256. A location is
`package:<path>` (inside this folder: weights small enough to ship), a local path, or an http(s)
URL, downloaded once into the cache (`$ANOMZOO_CACHE`, default `~/.keras/anomzoo`) by
`keras.utils.get_file`. A file whose checksum differs is refused; `.keras` files load with Keras'
`safe_mode` (no arbitrary code).
"""

import hashlib
import json
import os
import pathlib

HERE = pathlib.Path(__file__).resolve().parent
ENTRIES = json.loads((HERE / "entries.json").read_text())


class ZooError(ValueError):
    """An unknown entry, a missing weights file or a checksum mismatch."""


def is_entry(name):
    return name in ENTRIES


def info(name):
    """The entry `name` (a dict), or a ZooError naming the known entries."""
    if name not in ENTRIES:
        raise ZooError(f"unknown zoo entry {name!r}; known entries: {', '.join(sorted(ENTRIES)) or 'none'}")
    return ENTRIES[name]


def sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def cache_dir():
    return pathlib.Path(os.environ.get("ANOMZOO_CACHE", pathlib.Path.home() / ".keras" / "anomzoo"))


def fetch(name):
    """The local path of entry `name`'s weights, downloaded and verified first if need be."""
    entry = info(name)
    location, expected = entry["weights"]["location"], entry["weights"]["sha256"]
    if location.startswith(("http://", "https://")):
        import keras

        fname = f"{name}-{expected[:12]}.keras"
        cache_dir().mkdir(parents=True, exist_ok=True)  # get_file falls back to /tmp/.keras for a missing one
        try:
            path = keras.utils.get_file(fname=fname, origin=location, file_hash=expected, hash_algorithm="sha256",
                                        cache_dir=str(cache_dir()), cache_subdir="weights")
        except ValueError as error:  # get_file's checksum mismatch; it leaves the bad file in the cache
            (cache_dir() / "weights" / fname).unlink(missing_ok=True)
            raise ZooError(f"zoo entry {name!r}: the file at {location} does not have the recorded sha256 "
                           f"{expected}: {error}") from error
        except Exception as error:  # urllib's HTTP / URL errors, named with the location
            raise ZooError(f"zoo entry {name!r}: cannot download {location}: {error}") from error
        return pathlib.Path(path)
    path = HERE / location.removeprefix("package:") if location.startswith("package:") else pathlib.Path(location)
    if not path.is_file():
        raise ZooError(f"zoo entry {name!r}: weights file {path} is missing")
    actual = sha256(path)
    if actual != expected:
        raise ZooError(f"zoo entry {name!r}: {path} has sha256 {actual}, the entry records {expected}; "
                       "the file is damaged or not the one the entry was made from")
    return path
