"""Hyperparameter search with Optuna over TrainConfig settings, resumable and shared by workers.

A space file (TOML) names settings with a list of values (grid, or choices for random and TPE) or a range
`{low, high, log or step}`. The objective is a trial's best validation accuracy on the seeded validation split;
per-epoch values feed the pruner. Only the final retrain of the best configuration sees the test set.
The study lives in SQLite or PostgreSQL: a re-run continues it and several processes can share it. Trials are
claimed under a lock held in the storage, so workers never evaluate one grid point twice (Optuna's GridSampler
can, when workers race); a killed worker's trial is failed once its heartbeat goes stale, and then redone.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import datetime
import fcntl
import hashlib
import io
import itertools
import json
import os
import random
import shutil
import socket
import statistics
import threading
import time
import tomllib
import types
import typing
import uuid
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import keras
import optuna
import sqlalchemy
from markupsafe import Markup
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.storages import RDBStorage
from optuna.trial import FrozenTrial, TrialState

from .config import FIELDS, HINTS, TrainConfig, coerce, option, read_config_file, to_dict
from .errors import ConfigError, TuningError
from .evaluation import evaluate_run
from .report import card, format_duration, percent, render, write_report
from .training import train
from .utils import write_text

SAMPLERS = ("grid", "random", "tpe")
PRUNERS = ("median", "hyperband", "none")
SPACES = Path(__file__).parent / "spaces"
NOT_TUNABLE = ("model", "dataset", "data_dir")
RANGE_KEYS = ("low", "high", "log", "step")
DEFAULT_TRIALS = 20
HEARTBEAT_SECONDS = 3
GRACE_SECONDS = 12
MAX_FAILURES_IN_A_ROW = 5
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)

Progress = Callable[[str], None]


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

    def distribution(self) -> BaseDistribution:
        if self.choices:
            return CategoricalDistribution([encode(c) for c in self.choices])
        assert self.low is not None and self.high is not None
        if base_type(self.name) is int:
            return IntDistribution(int(self.low), int(self.high), log=self.log, step=int(self.step or 1))
        return FloatDistribution(self.low, self.high, log=self.log, step=self.step)

    def values(self) -> tuple[Any, ...]:
        """The choices, or a range's two ends: what validation checks."""
        return self.choices or (self.low, self.high)


Space = dict[str, Dimension]


def read_space(path: Path, base: TrainConfig, sampler: str) -> Space:
    """Parse and check a space file against the settings it varies; every error names the key."""
    try:
        raw = tomllib.loads(path.read_text())
    except OSError as e:
        raise ConfigError(f"--space: cannot read {path} ({e.strerror})") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML ({e})") from None
    if not raw:
        raise ConfigError(f"{path}: no hyperparameters; name settings such as learning_rate = [1e-3, 3e-3]")
    space: Space = {}
    for name, spec in raw.items():
        where = f"{path}: {name!r}"
        if name not in FIELDS:
            tunable = ", ".join(f for f in FIELDS if f not in NOT_TUNABLE)
            raise ConfigError(f"{where} is not a setting; tunable settings: {tunable}")
        if name in NOT_TUNABLE:
            raise ConfigError(f"{where} cannot be tuned; set it with {option(name)}")
        dim = parse_dimension(path, name, spec)
        if sampler == "grid" and not dim.choices:
            raise ConfigError(f"{where} is a range; the grid sampler needs a list of values (or use --sampler tpe)")
        for value in dim.values():
            try:
                TrainConfig(**(to_dict(base) | {name: value})).validate()
            except ConfigError as e:
                raise ConfigError(f"{where}: {e}") from None
        space[name] = dim
    return space


def parse_dimension(path: Path, name: str, spec: Any) -> Dimension:
    where = f"{path}: {name!r}"
    if isinstance(spec, list):
        if not spec:
            raise ConfigError(f"{where} has an empty list; give at least one value")
        choices = tuple(coerce(name, v, str(path)) for v in spec)
        seen = [encode(c) for c in choices]
        repeated = next((c for i, c in enumerate(seen) if c in seen[:i]), None)
        if repeated is not None:
            raise ConfigError(f"{where} lists {repeated!r} twice; give each value once")
        return Dimension(name, choices=choices)
    if not isinstance(spec, dict):
        raise ConfigError(f"{where} must be a list of values or a range {{low = ..., high = ...}}, got {spec!r}")
    unknown = sorted(set(spec) - set(RANGE_KEYS))
    if unknown:
        raise ConfigError(f"{where}: unknown range key {unknown[0]!r}; a range has low, high and log = true or step")
    if "low" not in spec or "high" not in spec:
        raise ConfigError(f"{where}: a range needs both low and high")
    if base_type(name) not in (int, float):
        raise ConfigError(f"{where} is not numeric, so it cannot be a range; give a list of values")
    low, high = coerce(name, spec["low"], str(path)), coerce(name, spec["high"], str(path))
    log, step = spec.get("log", False), spec.get("step")
    if not isinstance(log, bool):
        raise ConfigError(f"{where}: log must be true or false, got {log!r}")
    if step is not None and (coerce(name, step, str(path)) <= 0):
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


@dataclass
class TuneSettings:
    """What `tune` does; `base` holds every setting the space leaves fixed."""

    base: TrainConfig
    space: Path
    sampler: str
    pruner: str
    trials: int | None
    timeout: float | None
    study: str
    storage: str
    out: Path
    final_train: bool


def settings(
    base: TrainConfig,
    space: Path | None = None,
    sampler: str = "tpe",
    pruner: str = "median",
    trials: int | None = None,
    timeout: float | None = None,
    study: str | None = None,
    storage: str | None = None,
    out: Path | None = None,
    final_train: bool = True,
) -> TuneSettings:
    """Check the options and fill in the defaults: the model's shipped space, a study named after model, dataset
    and sampler, runs/tune-STUDY as the folder and a SQLite database in it, so re-running a command continues."""
    if sampler not in SAMPLERS:
        raise ConfigError(f"--sampler: unknown value {sampler!r}; choose one of {', '.join(SAMPLERS)}")
    if pruner not in PRUNERS:
        raise ConfigError(f"--pruner: unknown value {pruner!r}; choose one of {', '.join(PRUNERS)}")
    if trials is not None and trials < 0:
        raise ConfigError(f"--trials must be at least 0, got {trials}")
    if timeout is not None and timeout <= 0:
        raise ConfigError(f"--timeout must be positive, got {timeout}")
    if space is None:
        space = SPACES / f"{base.model}{'-grid' if sampler == 'grid' else ''}.toml"
        if not space.is_file():
            raise ConfigError(f"--space: no search space ships for model {base.model!r}; give a space file")
    study = study or f"{base.model}-{base.dataset}-{sampler}"
    if not study.strip():
        raise ConfigError("--study must not be empty")
    out = out or Path("runs") / f"tune-{study}"
    storage = storage or f"sqlite:///{out / 'study.db'}"
    return TuneSettings(base, space, sampler, pruner, trials, timeout, study, storage, out, final_train)


def open_storage(url: str) -> RDBStorage:
    """The study database, with heartbeats on; an unreachable or unsupported URL is one clear line."""
    try:
        parsed = sqlalchemy.engine.make_url(url)
    except sqlalchemy.exc.ArgumentError:
        raise ConfigError(
            f"--storage: {url!r} is not a database URL; use sqlite:///FILE or postgresql://HOST/DB"
        ) from None
    backend = parsed.get_backend_name()
    if backend not in ("sqlite", "postgresql"):
        raise ConfigError(f"--storage: {backend} is not supported; use sqlite:///FILE or postgresql://HOST/DB")
    if backend == "sqlite" and parsed.database in (None, "", ":memory:"):
        raise ConfigError("--storage: give SQLite a database file, as in sqlite:///runs/study.db")
    shown = parsed.render_as_string(hide_password=True)
    connect_args = {"timeout": 60} if backend == "sqlite" else {"connect_timeout": 10}
    attempts = 3
    for attempt in range(1, attempts + 1):
        try:
            return RDBStorage(
                url,
                engine_kwargs={"connect_args": connect_args},
                heartbeat_interval=HEARTBEAT_SECONDS,
                grace_period=GRACE_SECONDS,
            )
        except (sqlalchemy.exc.IntegrityError, sqlalchemy.exc.ProgrammingError) as e:
            if attempt == attempts:  # workers started together race to create the tables; the loser retries
                error: Exception = e
                break
            time.sleep(attempt + random.random())
        except (sqlalchemy.exc.SQLAlchemyError, optuna.exceptions.StorageInternalError, RuntimeError) as e:
            error = e
            break
    reason = str(getattr(error, "orig", None) or error).strip().splitlines()[0]
    raise TuningError(f"--storage: cannot open {shown} ({reason}); check the URL and that the server runs")


@contextlib.contextmanager
def study_lock(storage: RDBStorage, study: str) -> Iterator[None]:
    """Serialise trial claims across processes: a lock file beside a SQLite database, an advisory lock in PostgreSQL
    (released by the server if the worker dies)."""
    url = storage.engine.url
    if url.get_backend_name() == "sqlite":
        with open(f"{url.database}.lock", "a") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            yield
        return
    key = int.from_bytes(hashlib.sha256(study.encode()).digest()[:8], "big", signed=True)
    with storage.engine.begin() as connection:
        connection.execute(sqlalchemy.text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})
        yield


def make_sampler(kind: str, seed: int) -> optuna.samplers.BaseSampler:
    """Grid points are enqueued as fixed params, so the grid study's sampler never draws."""
    return optuna.samplers.TPESampler(seed=seed) if kind == "tpe" else optuna.samplers.RandomSampler(seed=seed)


def make_pruner(kind: str, epochs: int = 5) -> optuna.pruners.BasePruner:
    """Median pruning starts after a third of the epochs: earlier, warm-up and noise decide the ranking."""
    if kind == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=max(2, epochs // 3))
    if kind == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, reduction_factor=3)
    return optuna.pruners.NopPruner()


def study_spec(s: TuneSettings, space: Space) -> dict[str, Any]:
    """What makes trial values comparable; a re-run or another worker must bring the same."""
    spec = {"sampler": s.sampler, "space": {n: dataclasses.asdict(d) for n, d in space.items()}, **to_dict(s.base)}
    return json.loads(json.dumps(spec))


def open_study(storage: RDBStorage, s: TuneSettings, space: Space) -> optuna.Study:
    """Create the study or load it, refusing to continue it with another space, sampler or fixed settings
    (settings added to TrainConfig after the study began are not compared)."""
    study = optuna.create_study(
        study_name=s.study,
        storage=storage,
        direction="maximize",
        load_if_exists=True,
        pruner=make_pruner(s.pruner, s.base.epochs),
        sampler=make_sampler(s.sampler, s.base.seed),
    )
    spec = study_spec(s, space)
    with study_lock(storage, s.study):
        stored = study.user_attrs.get("spec")
        if stored is None:
            study.set_user_attr("spec", spec)
        else:
            changed = [k for k in spec if k in stored and spec[k] != stored[k]]
            if changed:
                key = changed[0]
                values = "" if key == "space" else f" ({stored[key]!r}, now {spec[key]!r})"
                raise TuningError(
                    f"--study {s.study!r} was started with another {key}{values};"
                    " re-run it with its settings, or choose a new --study"
                )
    return study


def params_of(trial: FrozenTrial) -> dict[str, Any]:
    return dict(trial.system_attrs.get("fixed_params", trial.params))


def point_key(params: dict[str, Any]) -> str:
    return json.dumps(params, sort_keys=True)


@dataclass
class Claim:
    """How this process picks its next trial; `skip` holds grid points that failed here (retried by a re-run)."""

    storage: RDBStorage
    space: Space
    sampler: str
    seed: int
    budget: int
    points: list[dict[str, Any]] | None
    skip: set[str] = field(default_factory=set)

    def next(self, study: optuna.Study) -> tuple[optuna.Trial | None, int]:
        """Under the study lock: fail stale trials, then claim a trial if the budget allows; also the count of
        trials still running elsewhere."""
        with study_lock(self.storage, study.study_name):
            optuna.storages.fail_stale_trials(study)
            self.fail_unbeaten(study.get_trials(deepcopy=False))
            trials = study.get_trials(deepcopy=False)
            running = sum(t.state == TrialState.RUNNING for t in trials)
            if running + sum(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in trials) >= self.budget:
                return None, running
            if self.points is not None:
                taken = {point_key(params_of(t)) for t in trials if t.state != TrialState.FAIL} | self.skip
                todo = [p for p in self.points if point_key(p) not in taken]
                if not todo:
                    return None, running
                study.enqueue_trial(todo[0])
            else:
                study.sampler = make_sampler(self.sampler, self.seed + len(trials))
            trial = study.ask({n: d.distribution() for n, d in self.space.items()})
            self.storage.record_heartbeat(trial._trial_id)
            return trial, running

    def fail_unbeaten(self, trials: list[FrozenTrial]) -> None:
        """Fail running trials that never beat, past the grace period: a worker killed between claiming a
        trial and its first heartbeat, which Optuna's stale check cannot see."""
        with self.storage.engine.connect() as connection:
            beating = {row[0] for row in connection.execute(sqlalchemy.text("SELECT trial_id FROM trial_heartbeats"))}
        cutoff = datetime.datetime.now() - datetime.timedelta(seconds=GRACE_SECONDS)
        for t in trials:
            started = t.datetime_start
            if t.state == TrialState.RUNNING and t._trial_id not in beating and started and started < cutoff:
                self.storage.set_trial_state_values(t._trial_id, TrialState.FAIL)


@contextlib.contextmanager
def heartbeat(storage: RDBStorage, trial_id: int) -> Iterator[None]:
    """Record the trial's heartbeat while it runs, so other workers can tell a live trial from a killed one."""
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(HEARTBEAT_SECONDS):
            storage.record_heartbeat(trial_id)

    thread = threading.Thread(target=beat, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


class PruningCallback(keras.callbacks.Callback):
    """Report each epoch's validation accuracy to the trial; stop training when the pruner says so."""

    def __init__(self, trial: optuna.Trial) -> None:
        super().__init__()
        self.trial = trial
        self.best = float("-inf")
        self.epochs = 0
        self.pruned = False

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        value = float((logs or {})["val_accuracy"])
        self.epochs = epoch + 1
        self.best = max(self.best, value)
        self.trial.report(value, self.epochs)
        if self.trial.should_prune():
            self.pruned = True
            self.model.stop_training = True


def fit_trial(trial: optuna.Trial, base: TrainConfig, space: Space, out: Path) -> PruningCallback:
    """Train the trial's configuration (no model file, only config.json and history.csv in trials/NNNN)."""
    callback = PruningCallback(trial)
    try:
        config = trial_config(base, space, trial.params)
        train(config, out / "trials" / f"{trial.number:04d}", verbose=0, callbacks=[callback], save_model=False)
    finally:
        keras.backend.clear_session()
    return callback


def one_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0][:300]}" if text else type(e).__name__


def trial_value(t: FrozenTrial) -> float | None:
    """A complete trial's value; a pruned trial's best reported value."""
    if t.state == TrialState.COMPLETE:
        return t.value
    if t.state == TrialState.PRUNED and t.intermediate_values:
        return max(t.intermediate_values.values())
    return None


def show_params(params: dict[str, Any]) -> str:
    return " ".join(f"{k}={v}" for k, v in params.items())


def run_trials(study: optuna.Study, s: TuneSettings, space: Space, storage: RDBStorage, progress: Progress) -> None:
    """Claim and run trials until the budget, the grid or the time is used up, or too many fail in a row."""
    points = grid_points(space, s.base.seed) if s.sampler == "grid" else None
    budget = s.trials if s.trials is not None else len(points) if points is not None else DEFAULT_TRIALS
    claim = Claim(storage, space, s.sampler, s.base.seed, budget, points)
    deadline = None if s.timeout is None else time.monotonic() + s.timeout
    worker = f"{socket.gethostname()}:{os.getpid()}"
    durations: list[float] = []
    failures = 0
    waiting = False
    while deadline is None or time.monotonic() < deadline:
        trial, running = claim.next(study)
        if trial is None:
            if not running:
                return
            if not waiting:
                progress(
                    f"waiting for {running} running trial(s): another worker's, or a killed run's until it goes stale"
                )
            waiting = True
            time.sleep(HEARTBEAT_SECONDS)
            continue
        waiting = False
        started = time.perf_counter()
        result: PruningCallback | None = None
        reason = ""
        try:
            with heartbeat(storage, trial._trial_id):
                result = fit_trial(trial, s.base, space, s.out)
        except KeyboardInterrupt:
            with contextlib.suppress(optuna.exceptions.UpdateFinishedTrialError):
                trial.set_user_attr("reason", "interrupted")
            study.tell(trial, state=TrialState.FAIL, skip_if_finished=True)
            raise
        except Exception as e:  # a trial's failure (out of memory, a bad combination) must not end the study
            reason = one_line(e)
            if points is not None:
                claim.skip.add(point_key(trial.params))
        seconds = time.perf_counter() - started
        attrs: dict[str, Any] = {"worker": worker, "seconds": round(seconds, 2)}
        attrs |= {"epochs": result.epochs} if result else {"reason": reason}
        with contextlib.suppress(optuna.exceptions.UpdateFinishedTrialError):
            for key, value in attrs.items():
                trial.set_user_attr(key, value)
        if result is None:
            frozen = study.tell(trial, state=TrialState.FAIL, skip_if_finished=True)
        elif result.pruned:
            frozen = study.tell(trial, state=TrialState.PRUNED, skip_if_finished=True)
        else:
            frozen = study.tell(trial, result.best, skip_if_finished=True)
        durations.append(seconds)
        failures = failures + 1 if result is None else 0
        progress(progress_line(study, frozen, attrs, budget, deadline, durations))
        if failures >= MAX_FAILURES_IN_A_ROW:
            progress(f"stopping: {failures} trials failed in a row; fix the cause and run the command again")
            return


def progress_line(
    study: optuna.Study,
    trial: FrozenTrial,
    attrs: dict[str, Any],
    budget: int,
    deadline: float | None,
    durations: list[float],
) -> str:
    """One line per finished trial: its outcome and params, the best so far, trials done and time left."""
    if trial.state == TrialState.FAIL:
        outcome = f"failed ({attrs.get('reason') or 'marked stale by another worker'})"
    else:
        value = trial_value(trial)
        where = f" at epoch {attrs['epochs']}" if trial.state == TrialState.PRUNED else ""
        outcome = f"{trial.state.name.lower()}{where}  val {percent(value) if value is not None else '—'}"
    trials = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED))
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    best = max(complete, key=lambda t: t.value or 0.0) if complete else None
    best_text = f"best {percent(best.value or 0.0)} (trial {best.number})" if best else "best —"
    estimates = [max(0, budget - len(trials)) * statistics.mean(durations)]
    if deadline is not None:
        estimates.append(max(0.0, deadline - time.monotonic()))
    return (
        f"trial {trial.number} {outcome}  {show_params(params_of(trial))}  |  {best_text}  |"
        f"  {len(trials)}/{budget} done  ~{format_duration(min(estimates))} left"
    )


def leaderboard(trials: list[FrozenTrial], space: Space) -> list[dict[str, Any]]:
    """Finished trials, best value first (pruned ones by the best value they reached), failed ones last."""
    done = [t for t in trials if t.state in FINISHED]
    done.sort(key=lambda t: (trial_value(t) is None, -(trial_value(t) or 0.0), t.number))
    rows = []
    for rank, t in enumerate(done, 1):
        value = trial_value(t)
        rows.append(
            {"rank": rank if value is not None else "", "trial": t.number, "state": t.state.name.lower()}
            | {"val_accuracy": "" if value is None else round(value, 6)}
            | {"epochs": t.user_attrs.get("epochs", ""), "seconds": t.user_attrs.get("seconds", "")}
            | {n: params_of(t).get(n, "") for n in space}
            | {"worker": t.user_attrs.get("worker", ""), "reason": t.user_attrs.get("reason", "")}
        )
    return rows


def write_csv(path: Path, rows: list[dict[str, Any]], columns: list[str]) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_text(path, buffer.getvalue())


def write_best_config(path: Path, config: TrainConfig, study: str, trial: FrozenTrial) -> None:
    import tomli_w

    header = (
        f"# Best configuration of study {study!r}: trial {trial.number},"
        f" validation accuracy {percent(trial.value or 0)}."
        f"\n# Train it with: mnist-classifier train --config {path.name}\n"
    )
    write_text(path, header + tomli_w.dumps({k: v for k, v in to_dict(config).items() if v is not None}))


def final_run(config: TrainConfig, out: Path, progress: Progress) -> tuple[Path, dict[str, Any]]:
    """Retrain the best configuration with its model and evaluate it on the test set, into OUT/final; a finished
    final run of the same configuration is kept. The folder appears only once training and evaluation are done."""
    final = out / "final"
    if (final / "metrics.json").is_file() and read_config_file(final / "config.json") == to_dict(config):
        if not (final / "report.html").is_file():
            write_report(final)
        return final, json.loads((final / "metrics.json").read_text())
    progress("retraining the best configuration and evaluating it on the test set")
    staging = out / f".final-{uuid.uuid4().hex[:8]}"
    try:
        train(config, staging, verbose=0)
        evaluate_run(staging, "test")
        if final.exists():
            shutil.rmtree(final)
        os.replace(staging, final)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    write_report(final)
    return final, json.loads((final / "metrics.json").read_text())


@dataclass
class TuneResult:
    """What a `tune` run leaves: the leaderboard, the best trial and the final run's test metrics."""

    study: str
    out: Path
    rows: list[dict[str, Any]]
    counts: dict[str, int]
    best: FrozenTrial | None
    best_config: Path | None
    final_dir: Path | None
    final_metrics: dict[str, Any] | None
    report: Path
    columns: list[str]


def tune(s: TuneSettings, progress: Progress = lambda line: None) -> TuneResult:
    """Run (or continue) the study, then write leaderboard.csv, best_config.toml, the final run and report.html."""
    space = read_space(s.space, s.base, s.sampler)
    s.out.mkdir(parents=True, exist_ok=True)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        warnings.filterwarnings("ignore", "Heartbeat of storage is supposed to be used with Study.optimize")
        storage = open_storage(s.storage)
        study = open_study(storage, s, space)
        run_trials(study, s, space, storage, progress)
    trials = study.get_trials(deepcopy=False)
    rows = leaderboard(trials, space)
    columns = ["rank", "trial", "state", "val_accuracy", "epochs", "seconds", *space, "worker", "reason"]
    write_csv(s.out / "leaderboard.csv", rows, columns)
    counts = {state.name.lower(): sum(t.state == state for t in trials) for state in TrialState}
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    best = max(complete, key=lambda t: (t.value or 0.0, -t.number)) if complete else None
    best_config = final_dir = final_metrics = None
    if best is not None:
        config = trial_config(s.base, space, best.params)
        best_config = s.out / "best_config.toml"
        write_best_config(best_config, config, s.study, best)
        if s.final_train:
            final_dir, final_metrics = final_run(config, s.out, progress)
    report = write_tuning_report(study, s, rows, columns, best, final_metrics)
    return TuneResult(s.study, s.out, rows, counts, best, best_config, final_dir, final_metrics, report, columns)


def figures(study: optuna.Study, seed: int) -> list[dict[str, Any]]:
    """Optuna's plots, each a title and a Plotly HTML fragment (Plotly.js is inlined once by the page), or for a
    plot that needs more finished trials, a note saying why."""
    from optuna import visualization as vis
    from optuna.importance import FanovaImportanceEvaluator

    plots: dict[str, Callable[[], Any]] = {
        "Optimisation history": lambda: vis.plot_optimization_history(study),
        "Validation accuracy per epoch (pruned trials stop early)": lambda: vis.plot_intermediate_values(study),
        "Parameter importances (fANOVA)": lambda: vis.plot_param_importances(
            study, evaluator=FanovaImportanceEvaluator(seed=seed)
        ),
        "Parallel coordinates": lambda: vis.plot_parallel_coordinate(study),
    }
    complete = len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))
    out: list[dict[str, Any]] = []
    for title, plot in plots.items():
        try:
            if complete < 2:
                raise ValueError("needs at least two complete trials")
            out.append({"title": title, "plot": Markup(plot().to_html(full_html=False, include_plotlyjs=False))})
        except (ValueError, RuntimeError, ZeroDivisionError) as e:
            out.append({"title": title, "plot": None, "note": str(e).splitlines()[0]})
    return out


def write_tuning_report(
    study: optuna.Study,
    s: TuneSettings,
    rows: list[dict[str, Any]],
    columns: list[str],
    best: FrozenTrial | None,
    final: dict[str, Any] | None,
) -> Path:
    """report.html: summary, leaderboard, best configuration, Optuna's plots and a link to the final run's report;
    self-contained (Plotly.js inline), so it opens offline."""
    from plotly.offline import get_plotlyjs

    counts = {state: sum(r["state"] == state for r in rows) for state in ("complete", "pruned", "fail")}
    best_card = (percent(best.value or 0), f"trial {best.number}") if best else ("—", "no complete trial yet")
    final_card = (percent(final["accuracy"]), "best configuration retrained") if final else ("—", "not retrained")
    tally = f"{counts['complete']} complete, {counts['pruned']} pruned, {counts['fail']} failed"
    shown = rows[:50]
    page = render(
        "tuning.html.j2",
        title=f"Study {s.study}",
        plotlyjs=Markup(get_plotlyjs()),
        model=s.base.model,
        dataset=s.base.dataset,
        space=s.space.name,
        storage=sqlalchemy.engine.make_url(s.storage).render_as_string(hide_password=True),
        summary=[
            card("Best validation accuracy", *best_card, main=True),
            card("Final test accuracy", *final_card),
            card("Trials", str(len(rows)), tally),
            card("Sampler", s.sampler, f"pruner {s.pruner}"),
        ],
        final=bool(final),
        columns=columns,
        rows=[[r[c] for c in columns] for r in shown],
        more=len(rows) - len(shown),
        best_toml=(s.out / "best_config.toml").read_text() if best else "No complete trial yet.",
        plots=figures(study, s.base.seed),
    )
    path = s.out / "report.html"
    write_text(path, page)
    return path
