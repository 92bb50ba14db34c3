"""The Python API: the README's example runs as written, and Run behaves the same for runs and ensembles."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

import mnist_classifier as mc

README = Path(__file__).parent.parent / "README.md"


def readme_example() -> str:
    section = README.read_text().split("## Python API", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match, "the README's Python API section has an example"
    return match.group(1)


def test_the_readme_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(readme_example(), "README.md", "exec"), namespace)
    run, found, again, study = namespace["run"], namespace["found"], namespace["again"], namespace["study"]
    assert run.metrics["accuracy"] > 0.95 and list(run.history.index) == [1, 2]
    assert len(found) == 5 and found.digits == ["7", "2", "1", "0", "4"], "the first five test digits"
    assert found.probabilities.shape == (5, 10) and np.all(found.confidence > 0.5)
    assert Path(namespace["report"]).name == "report.html" and Path(namespace["report"]).is_file()
    assert "<img" in namespace["report"]._repr_html_()
    assert again.metrics == run.metrics and again.path == Path("runs/notebook-cnn")
    assert study.final_metrics["accuracy"] > 0.6 and "learning_rate" in study.best_config.read_text()


def test_run_of_a_file_and_its_mistakes(dnn_run: Path, tmp_path: Path) -> None:
    from PIL import Image

    run = mc.load_run(dnn_run)
    digit = mc.load_dataset("mnist").x_test[0]
    Image.fromarray(255 - digit).save(tmp_path / "seven.png")  # dark ink on white, as on paper
    assert run.predict(tmp_path / "seven.png").digits == ["7"]
    with pytest.raises(mc.ImageError, match=r"nothing\.png"):
        run.predict([tmp_path / "seven.png", tmp_path / "nothing.png"])
    with pytest.raises(mc.RunError, match="not a run directory"):
        mc.load_run(tmp_path)
    with pytest.raises(mc.ConfigError, match="preset goes with settings by name"):
        mc.train(mc.TrainConfig(), preset="fast")
    with pytest.raises(mc.ConfigError, match=r"^epochs must be at least 1, got 0$"):
        mc.train(epochs=0, out=tmp_path / "never")
    assert not (tmp_path / "never").exists()
