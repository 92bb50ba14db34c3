"""The search space: parse a TOML file or a dict of settings to vary, check every value, list the grid's points.

A setting takes a list of values (the grid's points, or choices for random and TPE) or a range
`{low, high, log or step}`; every value is checked as a TrainConfig value, and every error names the key.
"""

from __future__ import annotations

import itertools
import json
import random
import tomllib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna

from ..config import FIELDS, HINTS, TrainConfig, closest, coerce, option, to_dict
from ..errors import ConfigError

SPACES = Path(__file__).parent.parent / "spaces"
NOT_TUNABLE = ("model", "dataset", "data_dir")
RANGE_KEYS = ("low", "high", "log", "step")


def base_type(name: str) -> Any:
    """The field's type without `| None`: int, float, bool, str or list."""
    hint = HINTS[name]
    if isinstance(hint, types.UnionType):
        hint = next(a for a in typing.get_args(hint) if a is not type(None))
    return typing.get_origin(hint) or hint


def encode(value: Any) -> Any:
    """A setting's value as an Optuna categorical choice (lists become their JSON text)."""
    return json.dumps(value) if isinstance(value, list) else value


def decode(name: str, param: Any) -> Any:
    return json.loads(param) if base_type(name) is list else param


@dataclass(frozen=True)
class Dimension:
    """One hyperparameter: a list of choices, or a numeric range with a log scale or a step."""

    name: str
    choices: tuple[Any, ...] = ()
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None

    def suggest(self, trial: optuna.Trial) -> Any:
        """The trial's value, drawn by the sampler or fixed by an enqueued grid point."""
        if self.choices:
            return trial.suggest_categorical(self.name, [encode(c) for c in self.choices])
        assert self.low is not None and self.high is not None
        if base_type(self.name) is int:
            step = int(self.step or 1)
            return trial.suggest_int(self.name, int(self.low), int(self.high), step=step, log=self.log)
        return trial.suggest_float(self.name, self.low, self.high, step=self.step, log=self.log)

    def values(self) -> tuple[Any, ...]:
        """The choices, or a range's two ends: what validation checks."""
        return self.choices or (self.low, self.high)


Space = dict[str, Dimension]


class InlineSpace(dict[str, Any]):
    """A space given as a Python dict (the notebook API); `name` is what reports show where a file's name goes."""

    name = "given in Python"


def load_space(source: Path | Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """The raw space and the label its errors start with: the file's path, or `space` for a dict."""
    if isinstance(source, Mapping):
        return "space", dict(source)
    try:
        return str(source), tomllib.loads(source.read_text())
    except OSError as e:
        raise ConfigError(f"--space: cannot read {source} ({e.strerror})") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{source}: not valid TOML ({e})") from None


def read_space(source: Path | Mapping[str, Any], base: TrainConfig, sampler: str) -> Space:
    """Parse and check a space against the settings it varies; every error names the key."""
    label, raw = load_space(source)
    if not raw:
        raise ConfigError(f"{label}: no hyperparameters; name settings such as learning_rate = [1e-3, 3e-3]")
    space: Space = {}
    for name, spec in raw.items():
        where = f"{label}: {name!r}"
        if name not in FIELDS:
            tunable = [f for f in FIELDS if f not in NOT_TUNABLE]
            raise ConfigError(f"{where} is not a setting; {closest(name, tunable, 'tunable settings:')}")
        if name in NOT_TUNABLE:
            raise ConfigError(f"{where} cannot be tuned; set it with {option(name)}")
        dim = parse_dimension(label, name, spec)
        if sampler == "grid" and not dim.choices:
            raise ConfigError(f"{where} is a range; the grid sampler needs a list of values (or use --sampler tpe)")
        for value in dim.values():
            try:
                TrainConfig(**(to_dict(base) | {name: value})).validate()
            except ConfigError as e:
                raise ConfigError(f"{where}: {e}") from None
        space[name] = dim
    return space


def parse_dimension(label: str, name: str, spec: Any) -> Dimension:
    where = f"{label}: {name!r}"
    if isinstance(spec, list | tuple):
        if not spec:
            raise ConfigError(f"{where} has an empty list; give at least one value")
        choices = tuple(coerce(name, v, label) for v in spec)
        seen = [encode(c) for c in choices]
        repeated = next((c for i, c in enumerate(seen) if c in seen[:i]), None)
        if repeated is not None:
            raise ConfigError(f"{where} lists {repeated!r} twice; give each value once")
        return Dimension(name, choices=choices)
    if not isinstance(spec, Mapping):
        raise ConfigError(f"{where} must be a list of values or a range {{low = ..., high = ...}}, got {spec!r}")
    unknown = sorted(set(spec) - set(RANGE_KEYS))
    if unknown:
        raise ConfigError(f"{where}: unknown range key {unknown[0]!r}; a range has low, high and log = true or step")
    if "low" not in spec or "high" not in spec:
        raise ConfigError(f"{where}: a range needs both low and high")
    if base_type(name) not in (int, float):
        raise ConfigError(f"{where} is not numeric, so it cannot be a range; give a list of values")
    low, high = coerce(name, spec["low"], label), coerce(name, spec["high"], label)
    log, step = spec.get("log", False), spec.get("step")
    if not isinstance(log, bool):
        raise ConfigError(f"{where}: log must be true or false, got {log!r}")
    if step is not None and (coerce(name, step, label) <= 0):
        raise ConfigError(f"{where}: step must be positive, got {step!r}")
    if low > high:
        raise ConfigError(f"{where}: low {low} is above high {high}")
    if log and step is not None:
        raise ConfigError(f"{where}: give log = true or a step, not both")
    if log and low <= 0:
        raise ConfigError(f"{where}: a log range needs low above 0, got {low}")
    return Dimension(name, low=low, high=high, log=log, step=step)


def grid_points(space: Space, seed: int) -> list[dict[str, Any]]:
    """Every combination of the choices, as Optuna params, in a seeded order (so early trials are a fair sample)."""
    names = list(space)
    choices = [[encode(c) for c in space[n].choices] for n in names]
    points = [dict(zip(names, combo, strict=True)) for combo in itertools.product(*choices)]
    random.Random(seed).shuffle(points)
    return points


def trial_config(base: TrainConfig, space: Space, params: dict[str, Any]) -> TrainConfig:
    return TrainConfig(**(to_dict(base) | {n: decode(n, params[n]) for n in space})).validate()
