from __future__ import annotations

import json
from pathlib import Path

import pytest

from mnist_classifier.config import TrainConfig, read_config_file, resolve
from mnist_classifier.errors import ConfigError


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"epochs": -1}, "--epochs must be at least 1, got -1"),
        ({"batch_size": 0}, "--batch-size must be at least 1"),
        ({"model": "resnet"}, "--model: unknown value 'resnet'"),
        ({"dataset": "cifar"}, "--dataset: unknown value 'cifar'"),
        ({"validation_fraction": 1.0}, "--validation-fraction must be between 0 and 1"),
        ({"validation_fraction": 0.0}, "--validation-fraction must be between 0 and 1"),
        ({"learning_rate": 0.0}, "--learning-rate must be between 0 and 10"),
        ({"optimizer": "lbfgs"}, "--optimizer: unknown value 'lbfgs'"),
        ({"dropout": 1.0}, r"--dropout must be in \[0, 1\)"),
        ({"hidden_units": []}, "--hidden-units must be a non-empty list"),
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
