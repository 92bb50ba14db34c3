"""Worker processes: when they may start."""

from __future__ import annotations

import sys
from pathlib import Path
from types import ModuleType

import pytest

from mnist_classifier import processes


@pytest.mark.parametrize(
    ("source", "safe"),
    [
        ('import mnist_classifier as mc\n\nif __name__ == "__main__":\n    mc.train()\n', True),
        ("import mnist_classifier as mc\n\nmc.train()\n", False),
    ],
)
def test_no_workers_for_a_main_script_that_would_run_again(
    source: str, safe: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    script = tmp_path / "script.py"
    script.write_text(source)
    main = ModuleType("__main__")
    main.__file__ = str(script)
    monkeypatch.setitem(sys.modules, "__main__", main)
    assert processes.main_reimport_safe() is safe
    monkeypatch.delattr(main, "__file__")  # a notebook or `python -c`
    assert processes.main_reimport_safe()
