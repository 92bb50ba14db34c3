"""The study loop: open the study (refusing other settings), enqueue the grid, run trials with Study.optimize.

Optuna does the multi-worker work: workers take enqueued (WAITING) trials one at a time, a running trial records
heartbeats, and a trial whose worker died is failed once its heartbeat is older than the grace period and
enqueued again by RetryHeartbeatStaleTrialCallback. A worker with nothing left to start waits while other
workers' trials run (one may die and come back as WAITING), then stops.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import os
import socket
import statistics
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import keras
import optuna
import sqlalchemy
from optuna.study import MaxTrialsCallback
from optuna.trial import FrozenTrial, TrialState

from ..config import TrainConfig, to_dict
from ..errors import TuningError
from ..report import format_duration, percent
from ..training import train
from .space import Space, grid_points, trial_config
from .storage import GRACE_PERIOD, HEARTBEAT_INTERVAL, lock, retry_stale

if TYPE_CHECKING:
    from ..mlflow_tracking import Tracker
    from . import TuneSettings

DEFAULT_TRIALS = 20
MAX_FAILURES_IN_A_ROW = 5
DONE = (TrialState.COMPLETE, TrialState.PRUNED)
NOT_FINGERPRINTED = ("threads", "data_dir", "jit_compile")
NO_POINT = "no grid point left: another worker took the last one"
WORKER = f"{socket.gethostname()}:{os.getpid()}"

Progress = Callable[[str], None]


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


def fingerprint(s: TuneSettings, space: Space) -> dict[str, Any]:
    """What makes trial values comparable: the sampler, the space and the fixed settings, but not a worker's
    resources or paths (threads, data folder, XLA), which differ between machines."""
    fixed = {k: v for k, v in to_dict(s.base).items() if k not in NOT_FINGERPRINTED}
    spec = {"sampler": s.sampler, "space": {n: dataclasses.asdict(d) for n, d in space.items()}, **fixed}
    return json.loads(json.dumps(spec))


def open_study(storage: optuna.storages.BaseStorage, s: TuneSettings, space: Space) -> optuna.Study:
    """Create the study or load it, refusing to continue it with another space, sampler or fixed setting; a grid
    study gets its missing points enqueued (all of them when new). Call it under the database's open lock."""
    study = optuna.create_study(
        study_name=s.study,
        storage=storage,
        direction="maximize",
        load_if_exists=True,
        pruner=make_pruner(s.pruner, s.base.epochs),
        sampler=make_sampler(s.sampler, s.base.seed),
    )
    spec = fingerprint(s, space)
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
    if s.sampler == "grid":
        enqueue_missing(study, space, s.base.seed, retry_failed=True)
    return study


def enqueue_missing(study: optuna.Study, space: Space, seed: int, retry_failed: bool) -> None:
    """Enqueue each grid point that no trial holds (waiting, running or done) and that was never tried, or whose
    trial raised (when `retry_failed`: a re-run retries it), or whose stale trial's retry was never enqueued (its
    worker died in between). Call it under the open lock, so that no point is enqueued twice."""
    now = datetime.datetime.now()
    held, tried, retry = set(), set(), set()
    for t in study.get_trials(deepcopy=False):
        key = t.user_attrs.get("point") or json.dumps(t.params, sort_keys=True)
        tried.add(key)
        if t.state != TrialState.FAIL:
            held.add(key)
        elif "reason" in t.user_attrs:
            retry |= {key} if retry_failed else set()
        elif t.datetime_complete and (now - t.datetime_complete).total_seconds() > GRACE_PERIOD:
            retry.add(key)
    for params in grid_points(space, seed):
        key = json.dumps(params, sort_keys=True)
        if key not in held and (key not in tried or key in retry):
            study.enqueue_trial(params, user_attrs={"point": key})


def fail_unstarted(study: optuna.Study) -> None:
    """Fail and re-enqueue a trial taken by a worker that died before the trial's first heartbeat (Optuna never
    calls such a trial stale): running for longer than the grace period without ever reaching the objective."""
    now = datetime.datetime.now()
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        started = t.datetime_start
        if t.user_attrs.get("trial") != t.number and started and (now - started).total_seconds() > GRACE_PERIOD:
            retry_stale(study, study.tell(t.number, state=TrialState.FAIL, skip_if_finished=True))


@dataclass
class Worker:
    """This process's part of the study: the trials it may start, and how it reports them."""

    study: optuna.Study
    s: TuneSettings
    space: Space
    progress: Progress
    durations: list[float] = field(default_factory=list)
    failures: int = 0
    current: int | None = None  # the number of the trial running here, until Optuna has recorded its end
    tracker: Tracker | None = None  # logs each trial as a child MLflow run of `parent`
    parent: str | None = None

    @property
    def grid(self) -> bool:
        return self.s.sampler == "grid"

    @property
    def budget(self) -> int:
        if self.s.trials is not None:
            return self.s.trials
        return len(grid_points(self.space, 0)) if self.grid else DEFAULT_TRIALS

    def next_step(self) -> str:
        """run (a trial waits, or the sampler may draw one), wait (other workers' trials run) or stop."""
        trials = self.study.get_trials(deepcopy=False)
        count = {state: sum(t.state == state for t in trials) for state in TrialState}
        done, running = count[TrialState.COMPLETE] + count[TrialState.PRUNED], count[TrialState.RUNNING]
        if done + running < self.budget and (count[TrialState.WAITING] or not self.grid):
            return "run"
        return "wait" if running else "stop"

    def objective(self, trial: optuna.Trial) -> float:
        self.current = trial.number
        trial.set_user_attr("trial", trial.number)
        trial.set_user_attr("worker", WORKER)
        if self.grid and "point" not in trial.user_attrs:
            trial.set_user_attr("reason", NO_POINT)
            raise TuningError(NO_POINT)
        if not self.grid:  # seeded by trial number: reproducible, and no two workers draw alike
            self.study.sampler = make_sampler(self.s.sampler, self.s.base.seed + trial.number)
        started = time.perf_counter()
        try:
            result = self.tracked_trial(trial)
        except Exception as e:  # a trial's failure (out of memory, a bad combination) must not end the study
            trial.set_user_attr("reason", one_line(e))
            raise
        finally:
            self.durations.append(time.perf_counter() - started)
            trial.set_user_attr("seconds", round(self.durations[-1], 2))
        trial.set_user_attr("epochs", result.epochs)
        if result.pruned:
            raise optuna.TrialPruned(f"pruned at epoch {result.epochs}")
        return result.best

    def tracked_trial(self, trial: optuna.Trial) -> PruningCallback:
        """fit_trial, logged as a child MLflow run (its parameters, per-epoch metrics and outcome) with a tracker."""
        if self.tracker is None:
            return fit_trial(trial, self.s.base, self.space, self.s.out)
        with self.tracker.run(f"trial {trial.number}", {"trial": trial.number}, self.parent) as run_id:
            result = fit_trial(trial, self.s.base, self.space, self.s.out, [self.tracker.callback(run_id)])
            self.tracker.log_params(run_id, trial.params)
            self.tracker.log_metrics(run_id, {"best_val_accuracy": result.best, "epochs": result.epochs})
            self.tracker.tag(run_id, "state", "pruned" if result.pruned else "complete")
        return result

    def after_trial(self, study: optuna.Study, trial: FrozenTrial) -> None:
        self.current = None
        if trial.user_attrs.get("reason") == NO_POINT:
            study.stop()
            return
        self.progress(self.progress_line(trial))
        self.failures = self.failures + 1 if trial.state == TrialState.FAIL else 0
        if self.failures >= MAX_FAILURES_IN_A_ROW or self.next_step() != "run":
            study.stop()

    def progress_line(self, trial: FrozenTrial) -> str:
        """One line per finished trial: its outcome and params, the best so far, trials done and time left."""
        if trial.state == TrialState.FAIL:
            outcome = f"failed ({trial.user_attrs.get('reason', '')})"
        else:
            value = trial_value(trial)
            where = f" at epoch {trial.user_attrs.get('epochs')}" if trial.state == TrialState.PRUNED else ""
            outcome = f"{trial.state.name.lower()}{where}  val {percent(value) if value is not None else '—'}"
        trials = self.study.get_trials(deepcopy=False, states=DONE)
        complete = [t for t in trials if t.state == TrialState.COMPLETE]
        best = max(complete, key=lambda t: t.value or 0.0) if complete else None
        best_text = f"best {percent(best.value or 0.0)} (trial {best.number})" if best else "best —"
        left = max(0, self.budget - len(trials)) * statistics.mean(self.durations or [0.0])
        params = " ".join(f"{k}={v}" for k, v in trial.params.items())
        return (
            f"trial {trial.number} {outcome}  {params}  |  {best_text}  |"
            f"  {len(trials)}/{self.budget} done  ~{format_duration(left)} left"
        )

    def failed_elsewhere(self) -> bool:
        """Whether the trial running here was failed by another worker (its heartbeat was late), which Optuna answers
        with a ValueError when this worker reports the trial's end: told from other ValueErrors by the trial's state."""
        failed = self.study.get_trials(deepcopy=False, states=(TrialState.FAIL,))
        return self.current is not None and any(t.number == self.current for t in failed)

    def run(self, url: sqlalchemy.URL) -> None:
        """Run trials until the budget, the grid or the time is used up, or too many fail in a row."""
        deadline = None if self.s.timeout is None else time.monotonic() + self.s.timeout
        waiting = False
        callbacks: list[Callable[[optuna.Study, FrozenTrial], None]] = [
            MaxTrialsCallback(self.budget, states=(*DONE, TrialState.RUNNING)),
            self.after_trial,
        ]
        while deadline is None or time.monotonic() < deadline:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                with lock(url, "open"):
                    fail_unstarted(self.study)
                    if self.grid:
                        enqueue_missing(self.study, self.space, self.s.base.seed, retry_failed=False)
                optuna.storages.fail_stale_trials(self.study)
            step = self.next_step()
            if step == "stop" or self.failures >= MAX_FAILURES_IN_A_ROW:
                if self.failures >= MAX_FAILURES_IN_A_ROW:
                    self.progress(f"stopping: {self.failures} trials failed in a row; fix the cause and run again")
                return
            if step == "wait":
                if not waiting:
                    self.progress("waiting for trials running elsewhere (another worker's, or a killed one's)")
                waiting = True
                time.sleep(HEARTBEAT_INTERVAL)
                continue
            waiting = False
            timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                self.study.optimize(self.objective, timeout=timeout, callbacks=callbacks, catch=(Exception,))
            except ValueError:
                if not self.failed_elsewhere():
                    raise
                raise TuningError(
                    f"a trial running here was failed by another worker (its heartbeat was over {GRACE_PERIOD} s"
                    " late); it will be redone: run the command again"
                ) from None


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


def fit_trial(
    trial: optuna.Trial,
    base: TrainConfig,
    space: Space,
    out: Path,
    callbacks: Sequence[keras.callbacks.Callback] = (),
) -> PruningCallback:
    """Train the trial's configuration (no model file, only config.json and history.csv in trials/NNNN)."""
    callback = PruningCallback(trial)
    try:
        config = trial_config(base, space, {n: d.suggest(trial) for n, d in space.items()})
        folder = out / "trials" / f"{trial.number:04d}"
        train(config, folder, verbose=0, callbacks=[*callbacks, callback], save_model=False)
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
