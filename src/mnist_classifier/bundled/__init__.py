"""The trained models that ship inside the package: found by name, each file checked against its manifest's SHA-256.

Each bundled model is a run folder cut to what reading needs (config.json, metrics.json, the calibration, model.keras
and its ONNX copy model.onnx, model_card.md, and misclassified.npz: the test images it got wrong) plus manifest.json:
every file's SHA-256 and size, the date, the accuracy, the command and seed that trained it, and the versions of
Keras, TensorFlow and onnxruntime. `make models` (tools/bundle_models.py) writes them. A bundled model is read-only:
it reads images as any run does (with its shipped ONNX copy, so without TensorFlow), and what writes into a run
folder works on a copy of it.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import RunError
from ..runs import read_json

PREFIX = "bundled:"
DEFAULT = "cnn-fast"
MANIFEST, ONNX, CARD_FILE = "manifest.json", "model.onnx", "model_card.md"
ENVIRONMENT = "MNIST_CLASSIFIER_BUNDLED"  # another folder of bundled models (tests point it at a damaged copy)
SHIPPED = Path(__file__).parent


@dataclass(frozen=True)
class Bundled:
    """One bundled model as its manifest describes it."""

    name: str
    path: Path
    manifest: dict[str, Any]

    @property
    def accuracy(self) -> float:
        return float(self.manifest["accuracy"])

    @property
    def size(self) -> int:
        """The bytes of its files, as the manifest lists them."""
        return sum(int(entry["bytes"]) for entry in self.manifest["files"].values())

    @property
    def date(self) -> str:
        return str(self.manifest["created"])[:10]


def folder() -> Path:
    """Where the bundled models are: the package's own, or the folder $MNIST_CLASSIFIER_BUNDLED names."""
    return Path(os.environ.get(ENVIRONMENT) or SHIPPED)


def names() -> list[str]:
    """The bundled models' names, the default first."""
    found = sorted(p.parent.name for p in folder().glob(f"*/{MANIFEST}") if not p.parent.name.startswith("."))
    return sorted(found, key=lambda name: name != DEFAULT)


def is_bundled(model: str | Path) -> bool:
    """Whether a model argument names a bundled model ("bundled:NAME")."""
    return str(model).startswith(PREFIX)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def load(name: str = DEFAULT) -> Bundled:
    """The bundled model `name` (or "bundled:NAME"), each of its files checked against the manifest; an unknown name,
    or a file missing or changed, is one line."""
    name = name.removeprefix(PREFIX)
    path = folder() / name
    if not name or name.startswith(".") or "/" in name or not (path / MANIFEST).is_file():
        raise RunError(
            f"no bundled model {name!r}; the bundled models are {', '.join(names()) or 'none'}"
            " (`mnist-classifier models` lists them)"
        )
    manifest = read_json(path / MANIFEST)
    verify(path, manifest)
    return Bundled(name, path, manifest)


def verify(path: Path, manifest: dict[str, Any]) -> None:
    """Each file the manifest lists is there with its SHA-256, or one line naming the first that is not."""
    files = manifest.get("files")
    if not isinstance(files, dict) or not files:
        raise RunError(f"{path / MANIFEST} lists no files; reinstall mnist-classifier (in a clone: `make models`)")
    for file, entry in files.items():
        where = path / file
        if not where.is_file():
            problem = "is missing"
        elif sha256(where) != entry.get("sha256"):
            problem = "does not match its SHA-256 in manifest.json (damaged or changed)"
        else:
            continue
        raise RunError(
            f"bundled model {path.name}: {file} {problem}; reinstall mnist-classifier (in a clone: `make models`)"
        )


def shipped_onnx(run: Path) -> Path | None:
    """The checked ONNX copy that a bundled model's folder carries (None for any other run): read as it is, never
    converted again."""
    if not run.is_dir() or not (run / MANIFEST).is_file():
        return None
    manifest = read_json(run / MANIFEST)
    verify(run, manifest)
    return run / ONNX if ONNX in manifest["files"] else None


def resolve(model: str | Path | None) -> Path:
    """The folder a model argument names: a bundled model's for None (the default) or "bundled:NAME", checked; else
    the path as given."""
    if model is None or is_bundled(model):
        return load(str(model or DEFAULT)).path
    return Path(model)


def every() -> list[Bundled]:
    """Every bundled model, each checked."""
    return [load(name) for name in names()]
