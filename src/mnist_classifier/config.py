"""Settings of a training run: one dataclass, loaded from TOML or JSON, validated up front.

Precedence, lowest first: the model's defaults, the preset, the config file, the command line.
Every error names the option (`--epochs`) so the user knows what to change.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import os
import tomllib
import types
import typing
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ConfigError, SettingError

MODEL_NAMES = ("dnn", "cnn")  # models.MODELS builds them; a test keeps the two in step
DATASET_NAMES = ("mnist", "fashion-mnist")  # data.REGISTRY locates them; likewise
OPTIMIZERS = ("adam", "adamw", "sgd", "rmsprop")
SCHEDULES = ("constant", "cosine")
CNN_ONLY = ("filters", "convs_per_stage", "kernel_size", "downsample")
DOWNSAMPLING = ("pool", "stride")
ACTIVATIONS = ("relu", "gelu", "elu", "tanh", "sigmoid", "swish")
PRECISIONS = ("float32", "bfloat16", "auto")


@dataclass(frozen=True)
class Interval:
    """A number within [low, high], each end closed or open; None leaves that side unbounded."""

    low: float | None
    high: float | None = None
    closed: str = "both"  # both, left, right or neither

    def problem(self, value: Any) -> str | None:
        values = value if isinstance(value, list) else [value]
        left, right = self.closed in ("both", "left"), self.closed in ("both", "right")
        for v in values:  # asked "is it inside?", so NaN (never inside) is refused
            if self.low is not None and not (v >= self.low if left else v > self.low):
                break
            if self.high is not None and not (v <= self.high if right else v < self.high):
                break
        else:
            return None
        if self.high is None:
            bound = f"at least {self.low}" if left else f"above {self.low}"
        else:
            bound = f"in {'[' if left else '('}{self.low}, {self.high}{']' if right else ')'}"
        return f"must list sizes {bound}" if isinstance(value, list) else f"must be {bound}"


@dataclass(frozen=True)
class Options:
    """One of a fixed set of values."""

    choices: tuple[Any, ...]

    def problem(self, value: Any) -> str | None:
        return None if value in self.choices else f"must be one of {', '.join(map(str, self.choices))}"


@dataclass(frozen=True)
class Length:
    """A list of low to high entries."""

    low: int
    high: int

    def problem(self, value: list[Any]) -> str | None:
        return None if self.low <= len(value) <= self.high else f"must list {self.low} to {self.high} values"


Rule = Interval | Options | Length


def setting(default: Any = dataclasses.MISSING, *rules: Rule, factory: Any = dataclasses.MISSING) -> Any:
    """A TrainConfig field with its constraints (checked by `check`), scikit-learn style: data, not code."""
    return field(default=default, default_factory=factory, metadata={"rules": rules})


FRACTION = Interval(0, 1, "left")  # [0, 1): 0 turns the option off
POSITIVE = Interval(1)


@dataclass
class TrainConfig:
    """Everything that decides what `train` does; saved to each run's config.json."""

    model: str = setting("dnn", Options(MODEL_NAMES))
    dataset: str = "mnist"
    data_dir: str | None = None
    epochs: int = setting(10, POSITIVE)
    batch_size: int = setting(256, POSITIVE)
    learning_rate: float = setting(3e-3, Interval(0, 10, "neither"))
    optimizer: str = setting("adam", Options(OPTIMIZERS))
    schedule: str = setting("cosine", Options(SCHEDULES))
    warmup_fraction: float = setting(0.1, FRACTION)
    validation_fraction: float = setting(0.1, Interval(0, 1, "neither"))
    patience: int = setting(5, Interval(0))
    seed: int = setting(42, Interval(0))
    split_seed: int | None = setting(None, Interval(0))  # the validation split's seed when not `seed` (ensembles)
    hidden_units: list[int] = setting(dataclasses.MISSING, POSITIVE, factory=lambda: [512, 256])
    activation: str = setting("relu", Options(ACTIVATIONS))
    dropout: float = setting(0.2, FRACTION)
    batch_norm: bool = True
    standardize: bool = False
    deskew: bool = False  # straighten each digit inside the model, before its first layer
    train_samples: int | None = setting(None, POSITIVE)  # train on only this many images; quick experiments
    filters: list[int] | None = setting(None, POSITIVE, Length(1, 4))
    convs_per_stage: int | None = setting(None, POSITIVE)
    kernel_size: int | None = setting(None, Options((3, 5, 7)))
    downsample: str | None = setting(None, Options(DOWNSAMPLING))
    shift: float = setting(0.0, Interval(0, 14, "left"))
    rotation: float = setting(0.0, Interval(0, 180, "left"))
    scale: float = setting(0.0, FRACTION)
    elastic: float = setting(0.0, Interval(0, 100, "left"))
    elastic_sigma: float = setting(4.0, Interval(0, 28, "neither"))
    label_smoothing: float = setting(0.0, FRACTION)
    # outlier exposure: non-digits per digit in each batch, trained toward equal probabilities (digit datasets only)
    outliers: float = setting(0.25, FRACTION)
    # printed digits (Matplotlib's fonts, photographed) added to the training digits, so that digits unlike MNIST's
    # are not taken for non-digits (digit datasets only; at most one per 10 training digits)
    printed_digits: int = setting(3000, Interval(0))
    # the share of training digits that training sees as photographed and prepared, as `predict` sees a photo of
    # one (digit datasets only)
    photographed: float = setting(0.25, FRACTION)
    # the share of training digits that training sees in the styles users bring (synthetic.variants: low-resolution
    # scans, thick and thin pens, chalk, lined paper...), one kind each in turn (digit datasets only)
    variants: float = setting(0.2, FRACTION)
    weight_decay: float = setting(0.0, FRACTION)
    # an exponential moving average of the weights (Polyak averaging), its momentum (0: none): validation, the saved
    # model and the checkpoints use the averaged weights while the raw ones train
    ema: float = setting(0.0, FRACTION)
    # fewer, harder examples late: the last `hard_epochs` epochs (the first always excepted) train on the
    # `hard_fraction` of the training digits the model reads least surely, and of the non-digits it takes most for a
    # digit, at the end of the epoch before
    hard_epochs: int = setting(0, Interval(0))
    hard_fraction: float = setting(0.5, Interval(0, 1, "neither"))
    jit_compile: bool = False
    # the hidden layers' arithmetic: "auto" takes bfloat16 where the CPU has bf16 units and it measured faster for
    # the model (BF16_FASTER), float32 elsewhere; the weights, softmax and loss stay float32 either way
    precision: str = setting("auto", Options(PRECISIONS))
    threads: int = setting(dataclasses.MISSING, POSITIVE, factory=lambda: os.cpu_count() or 1)
    ensemble: int = setting(1, POSITIVE)

    @property
    def validation_seed(self) -> int:
        """The seed of the validation split: split_seed, else seed."""
        return self.seed if self.split_seed is None else self.split_seed

    @property
    def validation_split(self) -> tuple[str, str | None, float, int]:
        """What decides the validation images: runs with equal values hold out the same ones."""
        return self.dataset, self.data_dir, self.validation_fraction, self.validation_seed

    def validate(self) -> TrainConfig:
        """Raise SettingError naming the first invalid setting; return self."""
        check(self)
        return self


def check(config: TrainConfig) -> None:
    """Every field's type and declared rules, then the rules that tie fields together."""
    for name in FIELDS:
        check_field(name, getattr(config, name))
    if config.data_dir is None and config.dataset not in DATASET_NAMES:
        raise SettingError("dataset", f"must be one of {', '.join(DATASET_NAMES)} (or give a data folder), got "
                           f"{config.dataset!r}")  # fmt: skip
    if config.model == "dnn" and not config.hidden_units:
        raise SettingError("hidden_units", "must list at least one layer size for the dnn, got []")
    if config.model == "cnn":
        missing = [name for name in CNN_ONLY if getattr(config, name) is None]
        if missing:
            raise SettingError(missing[0], "is required for the cnn model")
    else:
        given = [name for name in CNN_ONLY if getattr(config, name) is not None]
        if given:
            raise SettingError(given[0], f"applies to the cnn model only, not {config.model!r}; remove it")


def check_field(name: str, value: Any) -> None:
    """One setting's type and declared rules."""
    kind = type_problem(name, value)
    if kind:
        raise SettingError(name, f"must be {kind}, got {value!r}")
    check_value(name, value, *FIELDS[name].metadata.get("rules", ()))


def check_value(name: str, value: Any, *rules: Rule) -> None:
    """A value against declared rules: a setting's, or those of an option that is not a setting (None passes)."""
    for rule in rules:
        problem = None if value is None else rule.problem(value)
        if problem:
            raise SettingError(name, f"{problem}, got {value!r}")


def type_problem(name: str, value: Any) -> str | None:
    """What the field's type asks for when `value` is not of it (None is allowed for optional fields)."""
    hint = HINTS[name]
    optional = isinstance(hint, types.UnionType) and type(None) in typing.get_args(hint)
    if optional and value is None:
        return None
    base = typing.get_args(hint)[0] if optional else hint
    if base is bool:
        ok = isinstance(value, bool)
    elif base is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif base is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
    elif base is str:
        ok = isinstance(value, str)
    else:
        ok = isinstance(value, list) and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
    if ok:
        return None
    return {bool: "true or false", int: "an integer", float: "a number", str: "a string"}.get(
        base, "a list of integers"
    )


def option(name: str) -> str:
    """The command-line flag of a setting."""
    return "--" + name.replace("_", "-")


FIELDS = {f.name: f for f in dataclasses.fields(TrainConfig)}
HINTS = typing.get_type_hints(TrainConfig)


def check_names(names: Iterable[str]) -> None:
    """Raise SettingError naming the first of `names` that is not a setting, with the closest one that is."""
    unknown = sorted(set(names) - set(FIELDS))
    if unknown:
        raise SettingError(unknown[0], f"is not a setting; {closest(unknown[0], list(FIELDS), 'the settings are')}")


def closest(name: str, names: Sequence[str], listing: str) -> str:
    """What to say of a name that is not one of `names`: the close one it likely meant, else them all."""
    close = difflib.get_close_matches(name, names, n=1)
    return f"did you mean {close[0]}?" if close else f"{listing} {', '.join(names)}"


def coerce(name: str, value: Any, source: str) -> Any:
    """Check a value from a file against the field's type; ints are accepted for floats."""
    kind = type_problem(name, value)
    if kind:
        raise ConfigError(f"{source}: {name!r} must be {kind}, got {value!r}")
    return float(value) if HINTS[name] is float else value


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
    if raw.get("schedule") == "onecycle":  # retired for cosine (the same warm-up and fall), so that old runs resume
        raw["schedule"] = "cosine"
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
    "schedule": "cosine",
    "warmup_fraction": 0.25,
    "patience": 0,
    "shift": 2.0,
    "rotation": 10.0,
    "scale": 0.1,
    "label_smoothing": 0.1,
    "deskew": True,
    # the last 4 of 6 epochs on the hardest third of the digits and non-digits (seeds 42-44, benchmarks/levers.py,
    # docs/results/levers.md): 0.86x the training time of the last 3 (97.8 -> 84.1 s), validation accuracy 99.35% ->
    # 99.48% (mean 99.42% -> 99.44%), clean validation digits answered 98.8% -> 99.0%, validation non-digits not
    # answered: letters 98.5% -> 97.5%, hand letters and scribbles the same, shapes 97.5% -> 98%. The last 3 had been
    # 0.71x the time of 6 full epochs (140.5 -> 99.1 s) for validation 99.38% -> 99.35%.
    "hard_epochs": 4,
    "hard_fraction": 1 / 3,
}
# precision "auto" trains these models in bfloat16 on a CPU with bf16 units (AMX, AVX-512 BF16); decided by
# benchmarks/levers.py in one sitting on an AMX Xeon (docs/results/levers.md). dnn: a step 1.00x as fast, no gain.
# cnn (default preset, seed 42): 0.83x the training time (339 -> 280 s on a busy machine; steps 1.18x as fast at
# batch 128), validation 99.37% -> 99.33%, clean validation digits answered 98.8% both, letters turned away
# 94% -> 93.5%, scribbles 86% -> 89%; the fast preset pins float32 (its steps were slower in bfloat16)
BF16_FASTER: dict[str, bool] = {"dnn": False, "cnn": True}
# the DNN deskews too: chosen on validation (seed 42: accuracy 98.30% -> 98.72%, and more validation non-digits
# rejected with as many photographed validation digits kept)
MODEL_DEFAULTS: dict[str, dict[str, Any]] = {"dnn": {"deskew": True}, "cnn": CNN_DEFAULT}
PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    "cnn": {
        "fast": {
            "filters": [16, 32, 64],
            "convs_per_stage": 1,
            "hidden_units": [128],
            "dropout": 0.0,
            "epochs": 2,
            # batch 256 with the learning rate doubled: 0.83x the training time, validation accuracy 98.97% ->
            # 98.98%, validation non-digits not answered within half a point of batch 128's (seeds 42-44,
            # benchmarks/levers.py, docs/results/levers.md)
            "batch_size": 256,
            "learning_rate": 2e-2,
            "shift": 0.0,
            "rotation": 0.0,
            "scale": 0.0,
            # deskewed (once, before training: it has no augmentation); chosen on validation, medians of seeds 42-44
            # (benchmarks/levers.py, docs/results/levers.md): validation non-digits not answered, letters 91% -> 94.5%,
            # hand letters 93.5% -> 94%, scribbles 93.5% -> 94%, shapes 92% -> 95.5%; clean validation digits
            # answered 98.8% both; validation accuracy 98.98% -> 98.95%; the same training time
            "deskew": True,
            # three times the non-digits per batch, chosen on validation once digits in other styles joined training
            # (seed 42, against 0.25: validation letters not answered 85% -> 92%, scribbles 90% -> 95%, shapes
            # 90% -> 97%; clean validation digits answered 98.8% and 98.9%; test accuracy 99.10% and 99.28%); again
            # with deskew (seeds 42-44: 0.25 trains 0.82x as long but answers more validation non-digits: letters
            # 90.5% against 94.5% not answered, shapes 91% against 95.5%)
            "outliers": 0.75,
            # float32 even on bf16 units: its 16-filter stages ran 0.80x as fast in bfloat16 (63.8 -> 79.6 ms a step
            # at batch 128, AMX Xeon, benchmarks/levers.py)
            "precision": "float32",
            # every epoch on every example: its first epoch is most of its time, so a hard second one saved little
            # and cost verdicts (half: 0.95x, letters 2 points more answered; a third: 0.85x, the worst validation
            # style 5.5 points less right; seeds 42-44, benchmarks/levers.py)
            "hard_epochs": 0,
        },
        "default": {},
        # every epoch on every example, as its figures were measured (hard epochs not measured for it)
        "best": {"filters": [48, 96, 192], "epochs": 12, "ensemble": 2, "hard_epochs": 0},
    },
    "dnn": {
        "augmented": {
            "hidden_units": [1024, 1024],
            "epochs": 10,
            "batch_size": 256,
            "schedule": "cosine",
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
    check_names(overrides)
    from_file = read_config_file(file) if file else {}
    given = {k: v for k, v in overrides.items() if v is not None}
    model = given.get("model", from_file.get("model", "dnn"))
    values: dict[str, Any] = dict(MODEL_DEFAULTS.get(model, {}))
    if preset is not None:
        presets = PRESETS.get(model, {})
        if preset not in presets:
            names = ", ".join(presets) or "none"
            raise SettingError("preset", f"must be one of {names} for model {model!r}, got {preset!r}")
        values.update(presets[preset])
    values.update(from_file)
    values.update(given)
    return TrainConfig(**values).validate()


def to_dict(config: TrainConfig) -> dict[str, Any]:
    return dataclasses.asdict(config)
