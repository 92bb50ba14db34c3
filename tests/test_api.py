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
    with pytest.raises(mc.ImageError, match=r"nothing\.png: cannot read the file \(No such file"):
        run.probabilities([tmp_path / "seven.png", tmp_path / "nothing.png"])
    with pytest.raises(mc.RunError, match="not a run directory"):
        mc.load_run(tmp_path)
    with pytest.raises(mc.ConfigError, match="preset goes with settings by name"):
        mc.train(mc.TrainConfig(), preset="fast")
    with pytest.raises(mc.ConfigError, match=r"^epochs must be at least 1, got 0$"):
        mc.train(epochs=0, out=tmp_path / "never")
    assert not (tmp_path / "never").exists()


def test_every_image_gives_one_result_a_blank_or_unreadable_one_costing_the_others_nothing(
    tiny_run: Path, tmp_path: Path
) -> None:
    """Files in a batch: a blank image is not a digit with its reason; an unreadable file carries its error; the
    others are read exactly as they are read alone, and every field has one entry per image, in order."""
    from PIL import Image

    run = mc.load_run(tiny_run)
    digits = mc.load_dataset("mnist").x_test[:2]
    files = [tmp_path / name for name in ("seven.png", "blank.png", "two.png", "broken.png", "missing.png")]
    Image.fromarray(255 - digits[0]).save(files[0])
    Image.new("L", (120, 80), 255).save(files[1])
    Image.fromarray(255 - digits[1]).save(files[2])
    files[3].write_bytes(b"not an image")
    found = run.predict(files, set_coverage=0.9)
    alone = run.predict([files[0], files[2]], set_coverage=0.9)
    assert len(found) == 5 and found.probabilities.shape == (5, 10) and len(found.sets or []) == 5
    assert found.digits == ["7", None, "2", None, None]
    assert found.verdicts[1] == "not_a_digit" and found.verdicts[3:] == [None, None]
    assert found.reasons[1] is not None and found.reasons[1].startswith("no digit found")
    assert [r is None for r in found.reasons] == [True, False, True, True, True]
    assert found.errors[3] is not None and "not an image format" in found.errors[3]
    assert found.errors[4] is not None and "No such file" in found.errors[4] and found.errors[:3] == [None] * 3
    assert found.confidence.tolist()[1::2] == [0.0, 0.0] and np.isnan(found.probabilities[[1, 3, 4]]).all()
    np.testing.assert_array_equal(found.probabilities[[0, 2]], alone.probabilities)
    assert [found.verdicts[0], found.verdicts[2]] == alone.verdicts and found.sets is not None
    assert [found.sets[0], found.sets[2]] == alone.sets and found.sets[1] == []
    rows = found.to_json(top_k=2)
    assert rows[1]["digit"] is None and rows[1]["verdict"] == "not_a_digit" and rows[1]["reason"] == found.reasons[1]
    assert rows[1]["set"] == [] and rows[3] == {"error": found.errors[3]} and rows[0]["set"] == found.sets[0]
    blank = run.predict(np.full((90, 90, 3), 250, np.uint8))
    assert blank.digits == [None] and blank.verdicts == ["not_a_digit"] and blank.reasons[0] is not None


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


def test_prediction_sets_hold_their_coverage_on_the_test_set(tiny_run: Path) -> None:
    """Split conformal on the run's validation digits: on the MNIST test set, never seen in training or calibration,
    the sets hold the true digit at least as often as asked, less four standard deviations of sampling error (of the
    6,000 validation digits and of the 10,000 test digits); and they grow with the coverage."""
    run, mnist = mc.load_run(tiny_run), mc.load_dataset("mnist")
    truth = [str(label) for label in mnist.y_test]
    previous = np.zeros(len(truth))
    for coverage in (0.9, 0.99):
        sets = run.predict(mnist.x_test, set_coverage=coverage).sets
        assert sets is not None and len(sets) == len(truth)
        covered = np.mean([label in found for label, found in zip(truth, sets, strict=True)])
        spread = np.sqrt(coverage * (1 - coverage) * (1 / 6000 + 1 / len(truth)))
        assert covered >= coverage - 4 * spread, (coverage, covered)
        sizes = np.array([len(found) for found in sets])
        assert (sizes >= previous).all() and sizes.mean() < 10
        previous = sizes
    assert run.predict(mnist.x_test[:1], set_coverage=0.9999).sets == [list(run.predictor.class_names)]
    with pytest.raises(mc.ConfigError, match="set_coverage must be between 0 and 1"):
        run.predict(mnist.x_test[:1], set_coverage=1.0)
