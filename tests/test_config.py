from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from mnist_classifier.config import Interval, Options, TrainConfig, check_value, read_config_file, resolve
from mnist_classifier.errors import ConfigError, SettingError

if TYPE_CHECKING:
    from .conftest import PythonProcess


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"epochs": -1}, "^epochs must be at least 1, got -1$"),
        ({"batch_size": 0}, "^batch_size must be at least 1, got 0$"),
        ({"model": "resnet"}, "^model must be one of dnn, cnn, got 'resnet'$"),
        ({"dataset": "cifar"}, r"^dataset must be one of mnist, fashion-mnist \(or give a data folder\), got 'cifar'$"),
        ({"validation_fraction": 1.0}, r"^validation_fraction must be in \(0, 1\), got 1.0$"),
        ({"validation_fraction": 0.0}, r"^validation_fraction must be in \(0, 1\), got 0.0$"),
        ({"learning_rate": 0.0}, r"^learning_rate must be in \(0, 10\), got 0.0$"),
        ({"optimizer": "lbfgs"}, "^optimizer must be one of adam, adamw, sgd, rmsprop, got 'lbfgs'$"),
        ({"dropout": 1.0}, r"^dropout must be in \[0, 1\), got 1.0$"),
        ({"hidden_units": []}, r"^hidden_units must list at least one layer size for the dnn, got \[\]$"),
        ({"hidden_units": [64, 0]}, r"^hidden_units must list sizes at least 1, got \[64, 0\]$"),
        ({"epochs": "ten"}, "^epochs must be an integer, got 'ten'$"),
        ({"hard_fraction": 1.0}, r"^hard_fraction must be in \(0, 1\), got 1.0$"),
        ({"precision": "fp16"}, "^precision must be one of float32, bfloat16, auto, got 'fp16'$"),
        ({"epoch": 3}, r"^epoch is not a setting; did you mean epochs\?$"),
        ({"colour": "red"}, "^colour is not a setting; the settings are model, dataset, data_dir, epochs, "),
    ],
)
def test_invalid_options_name_the_option(overrides: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        resolve(**overrides)


def test_file_then_command_line(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text("epochs = 3\nlearning_rate = 1\nhidden_units = [64, 32]\n")
    config = resolve(path, epochs=5)
    assert config.epochs == 5 and config.learning_rate == 1.0 and config.hidden_units == [64, 32]
    assert isinstance(config.learning_rate, float)
    assert resolve(path).epochs == 3


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"epochs": 2, "colour": "red"}', "unknown key 'colour'"),
        ('{"epochs": "ten"}', "'epochs' must be an integer, got 'ten'"),
        ('{"epochs": true}', "'epochs' must be an integer"),
        ('{"batch_norm": 1}', "'batch_norm' must be true or false"),
        ('{"hidden_units": [1.5]}', "'hidden_units' must be a list of integers"),
        ('{"epochs": ', "not valid JSON"),
        ("[1, 2]", "expected a table of settings"),
    ],
)
def test_bad_config_files(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "c.json"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        resolve(path)


def test_run_config_json_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"epochs": 4, "meta": {"created": "now"}}))
    assert read_config_file(path) == {"epochs": 4}


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config file"):
        resolve(tmp_path / "none.toml")


def test_defaults_validate() -> None:
    assert TrainConfig().validate().model == "dnn"


def test_which_models_deskew_by_default() -> None:
    """Every model and preset straightens its input (the fast CNN since its levers were measured again); an explicit
    --no-deskew does not."""
    assert resolve().deskew and resolve(preset="augmented").deskew
    assert resolve(model="cnn").deskew and resolve(model="cnn", preset="best").deskew
    assert resolve(model="cnn", preset="fast").deskew and not resolve(deskew=False).deskew
    assert not resolve(model="cnn", preset="fast", deskew=False).deskew


def test_checking_settings_does_not_import_tensorflow(python_process: PythonProcess) -> None:
    """--show-config, config errors and space checks answer without TensorFlow's seconds of start-up."""
    program = (
        "import sys, mnist_classifier.config as c\n"
        "c.resolve(model='cnn', preset='fast').validate()\n"
        "try:\n    c.resolve(dropout=2.0)\nexcept c.ConfigError:\n    pass\n"
        "print(sorted(m for m in ('tensorflow', 'keras') if m in sys.modules))"
    )
    done = python_process.run("-c", program, check=True)
    assert done.stdout == "[]\n"


def test_config_knows_the_names_that_models_and_data_define() -> None:
    from mnist_classifier.config import DATASET_NAMES, MODEL_NAMES
    from mnist_classifier.data import REGISTRY
    from mnist_classifier.models import MODELS

    assert tuple(MODELS) == MODEL_NAMES and tuple(REGISTRY) == DATASET_NAMES


def test_train_validates_the_config_it_is_given(tmp_path: Path) -> None:
    from mnist_classifier.training import train

    with pytest.raises(ConfigError, match=r"^dropout must be in \[0, 1\), got 1.5$"):
        train(TrainConfig(dropout=1.5), tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_an_option_that_is_not_a_setting_is_checked_by_declared_rules() -> None:
    """check_value: the rules a setting declares, for a command's own options (the server's port, a grid's rows)."""
    check_value("port", 8000, Interval(0, 65535))
    check_value("split", None, Options(("train", "test")))
    with pytest.raises(SettingError, match=r"^port must be in \[0, 65535\], got 65536$") as raised:
        check_value("port", 65536, Interval(0, 65535))
    assert raised.value.for_command_line() == "--port must be in [0, 65535], got 65536"
    with pytest.raises(SettingError, match=r"^split must be one of train, test, got 'val'$"):
        check_value("split", "val", Options(("train", "test")))
