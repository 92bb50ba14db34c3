"""Settings of a training run: one dataclass, loaded from TOML or JSON, validated up front.

Precedence, lowest first: the model's defaults, the preset, the config file, the command line.
Every error names the option (`--epochs`) so the user knows what to change.
"""

from __future__ import annotations

import dataclasses
import json
import os
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ConfigError

OPTIMIZERS = ("adam", "adamw", "sgd", "rmsprop")
SCHEDULES = ("constant", "cosine", "onecycle")
CNN_ONLY = ("filters", "convs_per_stage", "kernel_size", "downsample")
DOWNSAMPLING = ("pool", "stride")
ACTIVATIONS = ("relu", "gelu", "elu", "tanh", "sigmoid", "swish")


@dataclass
class TrainConfig:
    """Everything that decides what `train` does; saved to each run's config.json."""

    model: str = "dnn"
    dataset: str = "mnist"
    data_dir: str | None = None
    epochs: int = 10
    batch_size: int = 256
    learning_rate: float = 3e-3
    optimizer: str = "adam"
    schedule: str = "cosine"
    warmup_fraction: float = 0.1
    validation_fraction: float = 0.1
    patience: int = 5
    seed: int = 42
    split_seed: int | None = None  # seed of the validation split when it differs from `seed` (ensemble members)
    hidden_units: list[int] = field(default_factory=lambda: [512, 256])
    activation: str = "relu"
    dropout: float = 0.2
    batch_norm: bool = True
    standardize: bool = False
    deskew: bool = False  # straighten each digit inside the model, before its first layer
    train_samples: int | None = None  # train on only this many images of the training split; quick experiments
    filters: list[int] | None = None
    convs_per_stage: int | None = None
    kernel_size: int | None = None
    downsample: str | None = None
    shift: float = 0.0
    rotation: float = 0.0
    scale: float = 0.0
    elastic: float = 0.0
    elastic_sigma: float = 4.0
    label_smoothing: float = 0.0
    weight_decay: float = 0.0
    jit_compile: bool = False
    threads: int = field(default_factory=lambda: os.cpu_count() or 1)
    ensemble: int = 1

    @property
    def validation_seed(self) -> int:
        """The seed of the validation split: split_seed, else seed."""
        return self.seed if self.split_seed is None else self.split_seed

    @property
    def validation_split(self) -> tuple[str, str | None, float, int]:
        """What decides the validation images: runs with equal values hold out the same ones."""
        return self.dataset, self.data_dir, self.validation_fraction, self.validation_seed

    def validate(self) -> TrainConfig:
        """Raise ConfigError naming the first invalid option; return self."""
        from .data import REGISTRY
        from .models import MODELS

        choose("model", self.model, tuple(MODELS))
        if self.data_dir is None:
            choose("dataset", self.dataset, tuple(REGISTRY))
        choose("optimizer", self.optimizer, OPTIMIZERS)
        choose("schedule", self.schedule, SCHEDULES)
        choose("activation", self.activation, ACTIVATIONS)
        at_least("epochs", self.epochs, 1)
        at_least("batch_size", self.batch_size, 1)
        at_least("patience", self.patience, 0)
        at_least("seed", self.seed, 0)
        if self.split_seed is not None:
            at_least("split_seed", self.split_seed, 0)
        if self.train_samples is not None:
            at_least("train_samples", self.train_samples, 1)
        between("learning_rate", self.learning_rate, 0, 10, "between 0 and 10 (exclusive)")
        between("validation_fraction", self.validation_fraction, 0, 1, "between 0 and 1 (exclusive)")
        if not 0 <= self.warmup_fraction < 1:
            raise ConfigError(f"{option('warmup_fraction')} must be in [0, 1), got {self.warmup_fraction}")
        if not 0 <= self.dropout < 1:
            raise ConfigError(f"{option('dropout')} must be in [0, 1), got {self.dropout}")
        if (self.model == "dnn" and not self.hidden_units) or any(u < 1 for u in self.hidden_units):
            raise ConfigError(
                f"{option('hidden_units')} must be a non-empty list of positive sizes, got {self.hidden_units}"
            )
        self.validate_cnn()
        for name, high in (("shift", 14), ("rotation", 180), ("scale", 1), ("elastic", 100)):
            value = getattr(self, name)
            if not 0 <= value < high:
                raise ConfigError(f"{option(name)} must be in [0, {high}) (0 turns it off), got {value}")
        between("elastic_sigma", self.elastic_sigma, 0, 28, "between 0 and 28 pixels (exclusive)")
        if not 0 <= self.label_smoothing < 1:
            raise ConfigError(f"{option('label_smoothing')} must be in [0, 1), got {self.label_smoothing}")
        if not 0 <= self.weight_decay < 1:
            raise ConfigError(f"{option('weight_decay')} must be in [0, 1), got {self.weight_decay}")
        at_least("threads", self.threads, 1)
        at_least("ensemble", self.ensemble, 1)
        return self

    def validate_cnn(self) -> None:
        """Convolution options belong to the cnn model only; the cnn needs them all."""
        if self.model != "cnn":
            given = [name for name in CNN_ONLY if getattr(self, name) is not None]
            if given:
                raise ConfigError(f"{option(given[0])} applies to --model cnn only, not {self.model!r}; remove it")
            return
        missing = [name for name in CNN_ONLY if getattr(self, name) is None]
        if missing:
            raise ConfigError(f"{option(missing[0])} is required for --model cnn")
        assert self.filters is not None and self.convs_per_stage is not None and self.downsample is not None
        if not self.filters or any(f < 1 for f in self.filters) or len(self.filters) > 4:
            raise ConfigError(f"{option('filters')} must list 1 to 4 positive stage widths, got {self.filters}")
        at_least("convs_per_stage", self.convs_per_stage, 1)
        if self.kernel_size not in (3, 5, 7):
            raise ConfigError(f"{option('kernel_size')} must be 3, 5 or 7, got {self.kernel_size}")
        choose("downsample", self.downsample, DOWNSAMPLING)


def option(name: str) -> str:
    return "--" + name.replace("_", "-")


def choose(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ConfigError(f"{option(name)}: unknown value {value!r}; choose one of {', '.join(choices)}")


def at_least(name: str, value: int, low: int) -> None:
    if value < low:
        raise ConfigError(f"{option(name)} must be at least {low}, got {value}")


def between(name: str, value: float, low: float, high: float, text: str) -> None:
    if not low < value < high:
        raise ConfigError(f"{option(name)} must be {text}, got {value}")


FIELDS = {f.name: f for f in dataclasses.fields(TrainConfig)}
HINTS = typing.get_type_hints(TrainConfig)


def coerce(name: str, value: Any, source: str) -> Any:
    """Check a value from a file against the field's type; ints are accepted for floats."""
    hint = HINTS[name]
    optional = isinstance(hint, types.UnionType) and type(None) in typing.get_args(hint)
    if optional and value is None:
        return None
    base = typing.get_args(hint)[0] if optional else hint
    origin = typing.get_origin(base)
    ok: bool
    if base is bool:
        ok = isinstance(value, bool)
    elif base is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif base is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        value = float(value) if ok else value
    elif base is str:
        ok = isinstance(value, str)
    elif origin is list:
        ok = isinstance(value, list) and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
    else:
        raise AssertionError(f"unsupported field type {hint}")
    if not ok:
        kind = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}.get(
            base, "a list of integers"
        )
        raise ConfigError(f"{source}: {name!r} must be {kind}, got {value!r}")
    return value


def read_config_file(path: Path) -> dict[str, Any]:
    """The settings in a TOML or JSON file (a run's config.json works too), type-checked."""
    try:
        text = path.read_text()
    except OSError as e:
        raise ConfigError(f"{path}: cannot read config file ({e.strerror})") from None
    try:
        raw = json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as e:
        raise ConfigError(f"{path}: not valid {'JSON' if path.suffix == '.json' else 'TOML'} ({e})") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a table of settings")
    raw.pop("meta", None)
    unknown = sorted(set(raw) - set(FIELDS))
    if unknown:
        raise ConfigError(f"{path}: unknown key {unknown[0]!r}; known keys: {', '.join(FIELDS)}")
    return {k: coerce(k, v, str(path)) for k, v in raw.items()}


CNN_DEFAULT: dict[str, Any] = {
    "filters": [32, 64, 128],
    "convs_per_stage": 2,
    "kernel_size": 5,
    "downsample": "stride",
    "hidden_units": [],
    "dropout": 0.25,
    "epochs": 6,
    "batch_size": 128,
    "learning_rate": 5e-3,
    "schedule": "onecycle",
    "warmup_fraction": 0.25,
    "patience": 0,
    "shift": 2.0,
    "rotation": 10.0,
    "scale": 0.1,
    "label_smoothing": 0.1,
    "deskew": True,
}
MODEL_DEFAULTS: dict[str, dict[str, Any]] = {"dnn": {}, "cnn": CNN_DEFAULT}
PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    "cnn": {
        "fast": {
            "filters": [16, 32, 64],
            "convs_per_stage": 1,
            "hidden_units": [128],
            "dropout": 0.0,
            "epochs": 2,
            "learning_rate": 1e-2,
            "shift": 0.0,
            "rotation": 0.0,
            "scale": 0.0,
            "deskew": False,
        },
        "default": {},
        "best": {"filters": [48, 96, 192], "epochs": 12, "ensemble": 2},
    },
    "dnn": {
        "augmented": {
            "hidden_units": [1024, 1024],
            "epochs": 10,
            "batch_size": 256,
            "schedule": "onecycle",
            "warmup_fraction": 0.25,
            "shift": 2.0,
            "rotation": 10.0,
            "scale": 0.1,
            "label_smoothing": 0.1,
            "patience": 0,
        },
    },
}


def resolve(file: Path | None = None, preset: str | None = None, **overrides: Any) -> TrainConfig:
    """Merge defaults, preset, file and command-line overrides (None means not given), then validate."""
    from_file = read_config_file(file) if file else {}
    given = {k: v for k, v in overrides.items() if v is not None}
    model = given.get("model", from_file.get("model", "dnn"))
    values: dict[str, Any] = dict(MODEL_DEFAULTS.get(model, {}))
    if preset is not None:
        presets = PRESETS.get(model, {})
        if preset not in presets:
            names = ", ".join(presets) or "none"
            raise ConfigError(f"--preset: unknown preset {preset!r} for model {model!r}; choose one of {names}")
        values.update(presets[preset])
    values.update(from_file)
    values.update(given)
    return TrainConfig(**values).validate()


def to_dict(config: TrainConfig) -> dict[str, Any]:
    return dataclasses.asdict(config)
