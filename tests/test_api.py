"""The Python API: the README's example runs as written, and Run behaves the same for runs and ensembles."""

from __future__ import annotations

import re
from collections.abc import Callable
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


def test_the_readme_example_runs(trainer: Callable[..., Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """It trains for real (`trainer` puts it in the slow tier)."""
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


def test_run_of_a_file_and_its_mistakes(tiny_run: Path, tmp_path: Path) -> None:
    from PIL import Image

    run = mc.load_run(tiny_run)
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


@pytest.mark.parametrize(
    "call",
    [
        lambda out: mc.train(epoch=3, out=out),
        lambda out: mc.train(mc.TrainConfig(), epoch=3, out=out),
        lambda out: mc.tune(epoch=3, out=out),
        lambda out: mc.tune(space={"epoch": [1]}, trials=1, out=out),
        lambda out: mc.resolve(epoch=3),
    ],
    ids=["train", "train-config", "tune", "tune-space", "resolve"],
)
def test_a_misspelt_setting_is_named(call: Callable[[Path], object], tmp_path: Path) -> None:
    """A misspelt setting is the project's settings error naming it (it was a TypeError from TrainConfig), raised
    before anything is written."""
    with pytest.raises(mc.ConfigError, match=r"\bepoch\b.* not a setting") as raised:
        call(tmp_path / "never")
    assert "epochs" in str(raised.value), "the message says which setting was meant"
    assert not (tmp_path / "never").exists()


def test_predictions_read_as_predict_json_does(cli, tiny_run: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Predictions.to_json and `predict --json` give one shape (readings.py) with the same values."""
    import json

    from PIL import Image

    image = tmp_path / "digit.png"
    Image.fromarray(mc.load_dataset("mnist").x_test[1]).save(image)
    found = mc.load_run(tiny_run).predict(image)
    assert found.classes == [str(i) for i in range(10)]
    result = cli("predict", str(tiny_run), str(image), "--json", "--top-k", "3")
    assert result.code == 0, result.err
    (row,) = json.loads(result.out)
    assert row.pop("file") == str(image)
    (mine,) = found.to_json(top_k=3)
    assert mine.keys() == row.keys() and mine["digit"] == row["digit"] and mine["verdict"] == row["verdict"]
    assert np.allclose(mine["probabilities"], row["probabilities"], atol=1e-5)
