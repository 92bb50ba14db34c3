"""The Python API for notebooks and scripts: `Run`, one object for a trained run or ensemble, and `train`,
`load_run` and `tune`, which give one.

    import mnist_classifier as mc
    run = mc.train(model="cnn", preset="fast")
    run.metrics["accuracy"], run.history, run.predict(images).digits, run.report()
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .config import TrainConfig, resolve
from .errors import ConfigError, ImageError, RunError
from .runs import CONFIG, METRICS, check_run_dir, ensemble_members, new_run_dir, read_history, read_json, read_metrics

if TYPE_CHECKING:
    import pandas as pd

    from .inference import Predictor
    from .tuning import TuneResult

Images = np.ndarray | str | Path | Sequence[str | Path]


@dataclass(frozen=True)
class Predictions:
    """What a run read in some images: each one's digit (class name), its calibrated probability, all calibrated
    probabilities, and its verdict: "digit", "uncertain" (two classes close) or "not_a_digit"."""

    digits: list[str]
    confidence: np.ndarray
    probabilities: np.ndarray
    verdicts: list[str] = dataclasses.field(default_factory=list)

    def __len__(self) -> int:
        return len(self.digits)


@dataclass(frozen=True)
class Report:
    """A run's report.html; in Jupyter it shows the headline figures inline. `os.fspath(report)` is its path."""

    path: Path

    def __fspath__(self) -> str:
        return str(self.path)

    def __str__(self) -> str:
        return str(self.path)

    def _repr_html_(self) -> str:
        from .report import notebook_html

        return notebook_html(self.path.parent)


class Run:
    """A run folder that `train` wrote (or an ensemble folder): its settings, metrics and history, and its model."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        check_run_dir(self.path)

    def __repr__(self) -> str:
        metrics = read_json(self.path / METRICS, missing_ok=True)
        accuracy = (
            f", {metrics.get('split', 'test')} accuracy {metrics['accuracy']:.2%}" if "accuracy" in metrics else ""
        )
        return f"Run('{self.path}'{accuracy})"

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def config(self) -> dict[str, Any]:
        """config.json: every setting, and under "meta" the shapes, classes, parameters and versions."""
        return read_json(self.path / CONFIG)

    @property
    def metrics(self) -> dict[str, Any]:
        """metrics.json: accuracy, loss, errors, per-class precision/recall/F1, the most confused pairs."""
        return read_metrics(self.path)

    @property
    def history(self) -> pd.DataFrame | None:
        """One row per epoch (loss, accuracy, val_loss, val_accuracy, learning_rate, seconds); None for an ensemble."""
        import pandas as pd

        history = read_history(self.path)
        return None if history is None else pd.DataFrame(history).astype({"epoch": int}).set_index("epoch")

    @property
    def members(self) -> list[Run]:
        """An ensemble's member runs; [] for a single run."""
        return [Run(member) for member in ensemble_members(self.path) or []]

    @functools.cached_property
    def predictor(self) -> Predictor:
        """The model, loaded once (the members' mean for an ensemble)."""
        from .inference import load_predictor

        return load_predictor(self.path)

    def _arrays(self, images: Images, prepare: bool, deskew: bool) -> np.ndarray:
        if isinstance(images, np.ndarray):
            return images
        from .image_files import load_file

        paths = [Path(images)] if isinstance(images, str | Path) else [Path(p) for p in images]
        arrays = []
        for path in paths:
            loaded = load_file(path, prepare, False, deskew)
            if isinstance(loaded, str):
                raise ImageError(f"{path}: {loaded}")
            arrays += loaded
        return np.stack(arrays) if arrays else np.zeros((0, 28, 28), np.uint8)

    def probabilities(self, images: Images, prepare: bool = True, deskew: bool = False) -> np.ndarray:
        """The model's own class probabilities (N, classes), before calibration, of images: an array (N, 28, 28) or
        (28, 28), uint8 0..255 or float 0..1, or image files (each prepared MNIST-style unless `prepare` is False)."""
        return self.predictor.probabilities(self._arrays(images, prepare, deskew))

    def predict(
        self,
        images: Images,
        prepare: bool = True,
        deskew: bool = False,
        reject: bool = True,
        reject_threshold: float | None = None,
        confidence_threshold: float | None = None,
    ) -> Predictions:
        """The digit in each image with its calibrated probability and verdict; see `probabilities` for what images
        may be. The thresholds (0..1) replace the run's stored ones; without `reject` every verdict is "digit"."""
        from .verdicts import with_thresholds

        calibration = with_thresholds(self.predictor.calibration, reject_threshold, confidence_threshold)
        judged = self.predictor.judge(self._arrays(images, prepare, deskew), reject, calibration)
        probs, names = judged.probabilities, self.predictor.class_names
        return Predictions(
            [names[i] for i in probs.argmax(axis=1)], probs.max(axis=1, initial=0.0), probs, judged.verdicts
        )

    def evaluate(self, split: str = "test") -> dict[str, Any]:
        """Evaluate a single run on train, val or test; rewrite its metrics and report; return the metrics."""
        from .evaluation import evaluate_run
        from .report import write_report

        metrics = evaluate_run(self.path, split)
        write_report(self.path)
        return metrics

    def report(self) -> Report:
        """Draw the figures and write report.html (again, so it shows the latest evaluation)."""
        from .report import write_report

        return Report(write_report(self.path))


def load_run(path: str | Path) -> Run:
    """An existing run or ensemble folder."""
    return Run(path)


def train(
    config: TrainConfig | None = None,
    *,
    preset: str | None = None,
    out: str | Path | None = None,
    verbose: int | str = "auto",
    **settings: Any,
) -> Run:
    """Train, evaluate on the test set and write the run folder with its report; return the Run.

    Give a TrainConfig, or settings by name (`model="cnn", preset="fast", epochs=3`) as `train` takes them on the
    command line; settings given with a TrainConfig replace its values."""
    if config is not None:
        if preset is not None:
            raise ConfigError("preset goes with settings by name, not with a TrainConfig; use mc.resolve(preset=...)")
        unknown = sorted(set(settings) - {f.name for f in dataclasses.fields(TrainConfig)})
        if unknown:
            raise ConfigError(f"{unknown[0]} is not a setting; see mc.TrainConfig")
        config = dataclasses.replace(config, **settings).validate()
    else:
        config = resolve(None, preset, **settings)
    from .evaluation import evaluate_run
    from .report import write_report
    from .training import train as fit

    if config.ensemble > 1:
        from .ensemble import train_ensemble

        run_dir = train_ensemble(config, new_run_dir(Path(out) if out else None, config.model, config.dataset), verbose)
    else:
        run_dir = fit(config, Path(out) if out else None, verbose)
        evaluate_run(run_dir)
    write_report(run_dir)
    return Run(run_dir)


def resume(path: str | Path, verbose: int | str = "auto") -> Run:
    """Continue a run that was interrupted, from its last completed epoch (or, killed after training, from its
    evaluation); then evaluate it and write its report, as `train` would have."""
    from .evaluation import evaluate_run
    from .report import write_report
    from .training import resume as resume_training

    if (Path(path) / METRICS).is_file():
        raise RunError(f"{path}: its training finished and was evaluated; there is nothing to resume")
    run_dir = resume_training(Path(path), verbose)
    evaluate_run(run_dir)
    write_report(run_dir)
    return Run(run_dir)


def tune(
    space: dict[str, Any] | str | Path | None = None,
    *,
    sampler: str = "tpe",
    trials: int | None = None,
    pruner: str = "median",
    timeout: float | None = None,
    study: str | None = None,
    storage: str | None = None,
    out: str | Path | None = None,
    final_train: bool = True,
    config: TrainConfig | None = None,
    **settings: Any,
) -> TuneResult:
    """Search hyperparameters with Optuna, as `mnist-classifier tune` does. `space` maps settings to a list of
    values or a range {"low", "high", "log" or "step"} (or names a space TOML file); the settings it leaves fixed
    come from `config` or by name (`model="cnn", epochs=3`)."""
    from . import tuning

    base = dataclasses.replace(config, **settings).validate() if config is not None else resolve(None, **settings)
    space = Path(space) if isinstance(space, str) else space
    plan = tuning.settings(
        base, space, sampler, pruner, trials, timeout, study, storage, Path(out) if out else None, final_train
    )
    return tuning.tune(plan)


__all__ = ["Predictions", "Report", "Run", "load_run", "resume", "train", "tune"]
