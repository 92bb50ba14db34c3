"""Durable file writes, the thread setting, and a package import that changes nothing in the process."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from mnist_classifier.utils import write_text

from .conftest import PythonProcess


def test_an_atomic_write_is_on_the_disk_before_its_rename_and_the_rename_after(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A power cut must leave the old file or the new one: fsync the temporary file, rename, fsync the folder."""
    events: list[tuple[str, object]] = []
    fsync, replace = os.fsync, os.replace

    def recorded_fsync(fd: int) -> None:
        events.append(("fsync", os.fstat(fd).st_ino))
        fsync(fd)

    def recorded_replace(source: Path, target: Path) -> None:
        events.append(("replace", Path(target).name))
        replace(source, target)

    monkeypatch.setattr(os, "fsync", recorded_fsync)
    monkeypatch.setattr(os, "replace", recorded_replace)
    target = tmp_path / "run" / "history.csv"
    write_text(target, "epoch\n1\n")
    assert target.read_text() == "epoch\n1\n"
    assert events == [
        ("fsync", target.stat().st_ino),  # the temporary file, renamed: the same inode
        ("replace", "history.csv"),
        ("fsync", target.parent.stat().st_ino),
    ]


def test_importing_the_package_changes_no_warning_filter_and_no_environment_variable(
    python_process: PythonProcess,
) -> None:
    """In a fresh interpreter, after the libraries it builds on (NumPy installs filters of its own)."""
    script = (
        "import json, os, warnings\n"
        "import numpy, PIL.Image, scipy.ndimage\n"
        "filters, environ = list(warnings.filters), dict(os.environ)\n"
        "import mnist_classifier, mnist_classifier.preprocess\n"
        "print(json.dumps({'filters': [str(f) for f in warnings.filters if f not in filters],"
        " 'environ': sorted(set(os.environ.items()) ^ set(environ.items()))}))\n"
    )
    unset = {name: value for name, value in os.environ.items() if not name.startswith("TF_")}  # what it might set
    result = python_process.run("-c", script, env=unset)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"filters": [], "environ": []}


def test_the_version_is_pyprojects_everywhere() -> None:
    """pyproject.toml holds the version; the package and the server's OpenAPI read it from the installed metadata."""
    import tomllib
    from types import SimpleNamespace

    import mnist_classifier
    from mnist_classifier.server import create_app

    declared = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())["project"]["version"]
    assert mnist_classifier.__version__ == declared
    assert create_app(SimpleNamespace(name="a model")).version == declared  # type: ignore[arg-type]
