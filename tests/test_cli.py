"""The command line end to end, through the real entry point."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from mnist_classifier.cli import command_words

if TYPE_CHECKING:
    from .conftest import PythonProcess


def test_train_then_evaluate(cli, trainer: Callable[..., Path], tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Trains through the command line (`trainer` puts it in the slow tier)."""
    config = tmp_path / "small.toml"
    config.write_text("epochs = 5\nhidden_units = [128]\ntrain_samples = 10000\n")  # validation stays whole
    run_dir = tmp_path / "run"
    result = cli("train", "--config", str(config), "--epochs", "1", "--out", str(run_dir))
    assert result.code == 0, result.err
    assert re.search(r"test accuracy \d+\.\d\d%", result.out) and str(run_dir) in result.out
    for name in ("config.json", "model.keras", "history.csv", "metrics.json", "confusion_matrix.csv", "report.html"):
        assert (run_dir / name).is_file(), name
    saved = json.loads((run_dir / "config.json").read_text())
    assert saved["epochs"] == 1 and saved["hidden_units"] == [128], "command line overrides the file"
    html = (run_dir / "report.html").read_text()
    assert html.count("data:image/png;base64,") >= 3 and '<img src="runs' not in html
    assert not list(run_dir.glob(".*tmp*")), "temporary files left behind"

    result = cli("evaluate", str(run_dir), "--split", "val")
    assert result.code == 0, result.err
    assert re.search(r"(?m)^val accuracy \d+\.\d\d% \(\d+ errors of 6,000\)", result.out)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["split"] == "val" and metrics["n"] == 6000


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["train", "--epochs", "-3"], "--epochs must be at least 1"),
        (["train", "--model", "transformer"], "--model must be one of dnn, cnn, got 'transformer'"),
        (["train", "--dataset", "cifar10"], "--dataset must be one of mnist, fashion-mnist"),
        (["train", "--validation-fraction", "1.5"], "--validation-fraction must be in (0, 1), got 1.5"),
        (["train", "--hidden-units", "big"], "--hidden-units: expected comma-separated sizes"),
        (["train", "--config", "missing.toml"], "missing.toml: cannot read config file"),
        (["evaluate", "nowhere"], "nowhere: not a run directory"),
        (["data", "info", "--dataset", "nope"], "unknown dataset 'nope'"),
        (["data", "info", "--validation-fraction", "1"], "--validation-fraction must be in (0, 1), got 1.0"),
        (["data", "show", "--per-class", "51"], "--per-class must be in [1, 50], got 51"),
        (["data", "show", "--split", "val"], "--split must be one of train, test, got 'val'"),
        (["serve", "nowhere", "--port", "65536"], "--port must be in [0, 65535], got 65536"),
        (["serve", "nowhere", "--max-upload-mb", "0"], "--max-upload-mb must be above 0, got 0.0"),
        (["serve", "nowhere", "--max-decode-mb", "-1"], "--max-decode-mb must be above 0, got -1.0"),
    ],
)
def test_mistakes_are_one_line_with_exit_code_2(cli, tmp_path: Path, args: list[str], message: str) -> None:  # type: ignore[no-untyped-def]
    result = cli(*args, "--out", str(tmp_path / "r")) if args[0] == "train" else cli(*args)
    assert result.code == 2
    assert result.err.startswith("error: ") and result.err.count("\n") == 1
    assert message in result.err
    assert not (tmp_path / "r").exists(), "nothing written before validation"


def test_show_config(cli) -> None:  # type: ignore[no-untyped-def]
    result = cli("train", "--show-config", "--epochs", "7")
    assert result.code == 0 and "epochs = 7" in result.out and 'model = "dnn"' in result.out


def test_data_commands(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    result = cli("data", "info")
    assert result.code == 0 and "54,000" in result.out and "6,000" in result.out and "10,000" in result.out
    result = cli("data", "verify")
    assert result.code == 0 and result.out.count("ok ") == 4
    png = tmp_path / "grid.png"
    result = cli("data", "show", "--out", str(png), "--per-class", "5")
    assert result.code == 0 and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_tensorflow_starts_without_noise_on_stderr(python_process: PythonProcess) -> None:
    """TensorFlow's C++ start-up lines (absl, oneDNN) are kept off stderr; a real error still gets through."""
    program = (
        "import sys; from mnist_classifier.utils import import_tensorflow_quietly as quiet; quiet()\n"
        "import tensorflow as tf; print(int(tf.reduce_sum(tf.ones(3)))); print('after', file=sys.stderr)"
    )
    done = python_process.run("-c", program, check=True)
    assert (done.stdout, done.stderr) == ("3\n", "after\n")


def test_help_of_every_command_starts_no_tensorflow(python_process: PythonProcess) -> None:
    """`--help` answers without importing TensorFlow (or Keras): it took seconds for `train --help`, whose app
    callback imported it before the help was handled. Each command's help runs in one fresh process."""
    every = command_words()
    assert {"train", "predict", "serve", "tune"} <= {words[0] for words in every} and ["data", "info"] in every
    program = (
        "import sys, json\n"
        "from mnist_classifier.cli import main\n"
        "sys.argv = ['mnist-classifier', *json.loads(sys.argv[1]), '--help']\n"
        "try:\n    main()\nexcept SystemExit as e:\n    assert e.code in (0, None), e.code\n"
        "print(json.dumps(sorted(m for m in ('tensorflow', 'keras') if m in sys.modules)), file=sys.stderr)"
    )
    for words in every:
        done = python_process.run("-c", program, json.dumps(words))
        assert done.returncode == 0 and "Usage" in done.stdout, (words, done.stderr)
        assert done.stderr.splitlines()[-1] == "[]", (words, done.stderr)


@pytest.mark.parametrize(
    ("command", "message"),
    [
        (
            ["predict", "{run}", "{image}", "--save-preprocessed", "/proc/forbidden"],
            "--save-preprocessed: cannot create",
        ),
        (["export", "{run}", "--format", "onnx", "--out", "/proc/forbidden/model.onnx"], "--out: cannot create"),
        (["train", "--epochs", "1", "--out", "{image}"], "is a file; choose a folder"),
    ],
)
def test_unwritable_output_paths_are_one_line(
    cli, tiny_run: Path, tmp_path: Path, command: list[str], message: str
) -> None:  # type: ignore[no-untyped-def]
    from PIL import Image

    image = tmp_path / "digit.png"
    Image.new("L", (28, 28)).save(image)
    result = cli(*(part.format(run=tiny_run, image=image) for part in command))
    assert result.code == 2 and result.err.count("\n") == 1 and message in result.err, result.err
