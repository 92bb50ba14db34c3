"""The training levers, each measured beside the current preset in one sitting: what to keep, with the deciding figure.

Usage: python benchmarks/levers.py [--quick] [--only steps|runs] [--repeats N] [--keep DIR]

Two tables. `steps`: seconds per training step of each model at its preset's batch size and four times it, float32
against bfloat16 (hidden layers in bfloat16, softmax and loss in float32) and with XLA, the candidates interleaved,
median of --repeats (3); and the seconds the tf.data feed alone takes to give one epoch's batches. `runs`: each lever
trains the preset (each in a fresh process, --repeats times interleaved: repeat i with seed 42 + i, so that a figure's
spread over seeds shows) and gives the medians of the train seconds, validation accuracy, the validation verdict figures
(clean digits answered and styled digits answered right, from calibration.json; the validation non-digits that are not
answered as digits, as the targets count "turned away") and the test accuracy (a final figure only: levers are chosen on
validation). --quick times fewer steps and trains only the fast CNN's levers once each, on a third of the training set:
a few minutes.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

SEED = 42  # the first repeat's; the next ones add 1 each
AWAY = ("letters", "hand letters", "scribbles", "shapes")  # validation non-digit kinds in the table

# model label -> the settings of its preset
MODELS: dict[str, dict[str, Any]] = {
    "dnn": {"model": "dnn"},
    "cnn fast": {"model": "cnn", "preset": "fast"},
    "cnn default": {"model": "cnn"},
}
# lever label -> settings changed from the preset (batch "x2" doubles the batch and the learning rate)
LEVERS: dict[str, dict[str, Any]] = {
    "preset (float32)": {"precision": "float32"},
    "preset": {},  # as the preset runs: bfloat16 where BF16_FASTER says so and the CPU has the units
    "epochs 1": {"epochs": 1},
    "epochs 4": {"epochs": 4},
    "epochs 5": {"epochs": 5},
    "label smoothing 0": {"precision": "float32", "label_smoothing": 0.0},
    "bfloat16": {"precision": "bfloat16"},
    "XLA": {"precision": "float32", "jit_compile": True},
    "batch x2 (lr x2)": {"batch": 2},
    "batch x2 (lr x2) + epochs 5": {"batch": 2, "epochs": 5},
    "outliers 0.25": {"precision": "float32", "outliers": 0.25},
    "outliers 0.5": {"precision": "float32", "outliers": 0.5},
    "outliers 0.9": {"precision": "float32", "outliers": 0.9},
    "photographed 0.1": {"precision": "float32", "photographed": 0.1},
    "printed digits 1000": {"precision": "float32", "printed_digits": 1000},
    "deskew": {"precision": "float32", "deskew": True},
    "deskew + outliers 0.25": {"precision": "float32", "deskew": True, "outliers": 0.25},
    "EMA 0.99": {"precision": "float32", "ema": 0.99},
    "EMA 0.999": {"precision": "float32", "ema": 0.999},
    "variants 0.4": {"variants": 0.4},
    # fewer, harder examples late: the last N epochs on the share of digits and non-digits read least surely
    "hard epochs 1 (half)": {"hard_epochs": 1, "hard_fraction": 0.5},
    "hard epochs 1 (a third)": {"hard_epochs": 1, "hard_fraction": 1 / 3},
    "hard epochs 2 (half)": {"hard_epochs": 2, "hard_fraction": 0.5},
    "hard epochs 3 (a third)": {"hard_epochs": 3, "hard_fraction": 1 / 3},
    "hard epochs 3 (a quarter)": {"hard_epochs": 3, "hard_fraction": 0.25},
    "hard epochs 4 (a third)": {"hard_epochs": 4, "hard_fraction": 1 / 3},
    "hard epochs 5 (a third)": {"hard_epochs": 5, "hard_fraction": 1 / 3},
}
QUICK_LEVERS = ("preset (float32)", "bfloat16", "XLA", "batch x2 (lr x2)")


def settings(model: str, lever: dict[str, Any], **extra: Any) -> Any:
    """The resolved TrainConfig of a model's preset with a lever applied."""
    from mnist_classifier.config import resolve

    preset = MODELS[model].get("preset")
    changes = {k: v for k, v in lever.items() if k != "batch"} | extra
    config = resolve(None, preset, model=MODELS[model]["model"], **changes)
    if "batch" in lever:
        factor = lever["batch"]
        config = dataclasses.replace(
            config, batch_size=config.batch_size * factor, learning_rate=config.learning_rate * factor
        )
    return config


def step_seconds(config: Any, steps: int) -> float:
    """Seconds per optimizer step of the model as training compiles it, on one random batch of the size training
    feeds (digits plus outlier-exposure non-digits), after a warm-up that compiles it."""
    import keras
    import numpy as np
    import tensorflow as tf

    from mnist_classifier.models import build_model
    from mnist_classifier.training import DigitAccuracy, make_optimizer

    keras.backend.clear_session()
    model = build_model(config, (28, 28), 10)
    model.compile(
        optimizer=make_optimizer(config, 1000),
        loss=keras.losses.CategoricalCrossentropy(label_smoothing=config.label_smoothing),
        metrics=[DigitAccuracy()],
        jit_compile=config.jit_compile,
    )
    n = round(config.batch_size * (1 + config.outliers))
    rng = np.random.default_rng(0)
    x = rng.random((n, 28, 28), dtype=np.float32)
    y = keras.utils.to_categorical(rng.integers(0, 10, n), 10)
    data = tf.data.Dataset.from_tensors((x, y)).repeat()
    model.fit(data, steps_per_epoch=5, epochs=1, verbose=0)
    start = time.perf_counter()
    model.fit(data, steps_per_epoch=steps, epochs=1, verbose=0)
    return (time.perf_counter() - start) / steps


def feed_seconds(config: Any) -> float:
    """Seconds the training feed (tf.data: gather, outliers, augmentation, prefetch) takes alone for one epoch."""
    import numpy as np

    from mnist_classifier.data import load_dataset
    from mnist_classifier.training import Splits, outlier_pool, prepare, training_data

    dataset = load_dataset("mnist")
    data: Splits = prepare(dataclasses.replace(config, photographed=0.0, variants=0.0), dataset)
    pool = outlier_pool(config, dataset, data)
    feed = training_data(dataclasses.replace(config, epochs=1), data.x_train, data.y_train, 10, 0, pool)
    start = time.perf_counter()
    for batch, _ in feed:
        np.asarray(batch[:1])
    return time.perf_counter() - start


def steps_table(console: Console, quick: bool, repeats: int) -> None:
    from mnist_classifier import hardware
    from mnist_classifier.utils import set_threads

    set_threads(os.cpu_count() or 1)
    steps = 20 if quick else 60
    cases: list[tuple[str, str, Any]] = []
    for model in MODELS:
        base = settings(model, LEVERS["preset (float32)"])
        for factor in (1, 4):
            batch = {"batch": factor} if factor > 1 else {}
            for label in ("float32", "bfloat16", "XLA"):
                lever = {"precision": "bfloat16" if label == "bfloat16" else "float32", **batch}
                if label == "XLA":
                    lever["jit_compile"] = True
                cases.append((model, f"{label}, batch {base.batch_size * factor}", settings(model, lever)))
    # the DNN's digits deskewed once before training (training.fit does so without augmentation): no layer in the step
    cases.append(("dnn", "deskewed once, batch 256", settings("dnn", {"precision": "float32", "deskew": False})))
    times: dict[tuple[str, str], list[float]] = {}
    for _ in range(repeats):  # interleaved: each candidate beside its reference in every round
        for model, label, config in cases:
            times.setdefault((model, label), []).append(step_seconds(config, steps))
    table = Table(title=f"Training step time ({hardware.processor()}; flags: {', '.join(hardware.relevant_flags())})")
    for column in ("model", "candidate", "ms/step (median)", "images/s", "vs float32 same batch"):
        table.add_column(column, justify="left" if column in ("model", "candidate") else "right")
    for model, label, config in cases:
        ms = 1000 * statistics.median(times[(model, label)])
        base_label = "float32, " + label.split(", ")[1]
        base_ms = 1000 * statistics.median(times[(model, base_label)])
        images = config.batch_size * (1 + config.outliers) / ms * 1000
        table.add_row(model, label, f"{ms:.1f}", f"{images:,.0f}", f"{base_ms / ms:.2f}x")
    console.print(table)
    feed = Table(title="The tf.data feed alone, one epoch (gather, outliers, augmentation)")
    feed.add_column("model")
    feed.add_column("seconds (median)", justify="right")
    for model in MODELS:
        config = settings(model, LEVERS["preset (float32)"])
        feed.add_row(model, f"{statistics.median(feed_seconds(config) for _ in range(repeats)):.2f}")
    console.print(feed)


def train_once(config: Any, out: Path) -> dict[str, Any]:
    """Train and evaluate one configuration in a fresh process; its figures from the run folder."""
    from mnist_classifier.config import to_dict

    config_file = out.parent / f"{out.name}.json"  # not with_suffix: a lever like "variants 0.4" has a dot
    config_file.write_text(json.dumps(to_dict(config)))
    command = [sys.executable, "-m", "mnist_classifier", "train", "--config", str(config_file), "--out", str(out)]
    done = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=os.environ)
    (out.parent / f"{out.name}.log").write_text(done.stderr)  # its notes: what it drew, what the hard epochs chose
    if done.returncode:
        raise SystemExit(f"{' '.join(command)} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    rows = list(csv.DictReader((out / "history.csv").open()))
    metrics = json.loads((out / "metrics.json").read_text())
    figures = json.loads((out / "calibration.json").read_text())["figures"]
    away = not_answered(out)
    return {
        "seconds": float(rows[-1]["elapsed"]),
        "val": max(float(r["val_accuracy"]) for r in rows),
        "test": metrics["accuracy"],
        "answered": figures["validation"]["digits"]["answered"],
        **styles_right(figures["validation"]),
        **{kind: away.get(kind, float("nan")) for kind in AWAY},
        "precision": metrics.get("precision", "float32"),
    }


def styles_right(validation: dict[str, dict[str, float]]) -> dict[str, float]:
    """The validation digits in users' styles (calibration's suite: low-resolution scans, pens, photographs...)
    answered and read right: the mean over the styles, and the worst style's."""
    right = [figures["answered_right"] for kind, figures in validation.items() if kind != "digits"]
    return {"styles right": statistics.mean(right), "worst style right": min(right)}


def not_answered(run: Path) -> dict[str, float]:
    """The share of each kind of validation non-digits (synthetic.validation_set, what calibration chose on) that the
    run does not answer as a digit: `not_a_digit` or `uncertain`, as the targets count "turned away"."""
    import numpy as np

    from mnist_classifier.data import synthetic
    from mnist_classifier.inference import load_predictor

    predictor = load_predictor(run)
    return {
        kind: float(np.mean(np.array(predictor.judge(images).verdicts) != "digit"))
        for kind, images in synthetic.validation_set().items()
    }


def median_figures(runs: list[dict[str, Any]]) -> dict[str, float]:
    """Each figure's median over a lever's runs (one per seed)."""
    return {k: statistics.median(r[k] for r in runs) for k in runs[0] if k != "precision"}


def runs_table(
    console: Console, quick: bool, repeats: int, keep: Path, models: list[str] | None, levers: list[str] | None
) -> None:
    """Each lever's run beside its preset's (the first lever), repeats interleaved."""
    models = models or (["cnn fast"] if quick else list(MODELS))
    levers = levers or list(QUICK_LEVERS if quick else LEVERS)
    extra = {"train_samples": 18_000} if quick else {}
    results: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for repeat in range(repeats):
        for model in models:
            for lever in levers:
                slug = "".join(c if c.isalnum() or c == "." else "-" for c in f"{model} {lever}")
                out = keep / f"{slug}-{repeat}"
                config = settings(model, LEVERS[lever], seed=SEED + repeat, **extra)
                results.setdefault((model, lever), []).append(train_once(config, out))
    title = f"Training levers (repeat i trains with seed {SEED} + i; each figure: the median over the repeats; vs"
    table = Table(title=f"{title} preset: the median of each repeat's ratio to the preset's run beside it)")
    columns = ["model", "lever", "train s", "vs preset", "val acc", "clean answered", "styles right",
               "worst style right", *(f"{kind} away" for kind in AWAY), "test acc", "verdict"]  # fmt: skip
    for column in columns:
        table.add_column(column, justify="left" if column in ("model", "lever", "verdict") else "right")
    for model in models:
        base = median_figures(results[(model, levers[0])])
        for lever in levers:
            rs = results[(model, lever)]
            paired = zip(rs, results[(model, levers[0])], strict=True)
            ratio = statistics.median(r["seconds"] / b["seconds"] for r, b in paired)
            got = median_figures(rs)
            faster = ratio < 0.95
            holds = got["val"] >= base["val"] - 0.0005 and got["answered"] >= base["answered"] - 0.005
            verdict = "reference" if lever == levers[0] else ("keep" if faster and holds else "not kept")
            verdict += f" ({ratio:.2f}x time, val {100 * (got['val'] - base['val']):+.2f} pt)"
            table.add_row(
                model, f"{lever} [{rs[0]['precision']}]", f"{got['seconds']:.1f}", f"{ratio:.2f}x",
                f"{got['val']:.2%}", f"{got['answered']:.1%}", f"{got['styles right']:.1%}",
                f"{got['worst style right']:.1%}", *(f"{kind_away:.1%}" for kind_away in (got[k] for k in AWAY)),
                f"{got['test']:.2%}", verdict,
            )  # fmt: skip
    console.print(table)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer steps, fast CNN levers once on a third of MNIST")
    parser.add_argument("--only", choices=("steps", "runs"), help="one of the two tables")
    parser.add_argument("--repeats", type=int, help="repeats of each measure (default 3; 1 for --quick runs)")
    parser.add_argument("--keep", type=Path, help="keep the trained runs in this folder")
    parser.add_argument("--models", help=f"runs of these models only, comma-separated ({', '.join(MODELS)})")
    parser.add_argument("--levers", help="these levers only, comma-separated; the first is the reference")
    args = parser.parse_args()
    console = Console(width=max(Console().width, 160))
    if args.only != "runs":
        steps_table(console, args.quick, args.repeats or 3)
    if args.only != "steps":
        repeats = args.repeats or (1 if args.quick else 3)
        models = args.models.split(",") if args.models else None
        levers = args.levers.split(",") if args.levers else None
        unknown = [name for name in [*(models or []), *(levers or [])] if name not in MODELS | LEVERS]
        if unknown:  # before the first run, not after an hour of them
            parser.error(f"no model or lever named {unknown[0]!r}: the models are {', '.join(MODELS)}; the levers "
                         f"{', '.join(LEVERS)}")  # fmt: skip
        if args.keep:
            args.keep.mkdir(parents=True, exist_ok=True)
            runs_table(console, args.quick, repeats, args.keep, models, levers)
        else:
            with tempfile.TemporaryDirectory() as tmp:
                runs_table(console, args.quick, repeats, Path(tmp), models, levers)


if __name__ == "__main__":
    main()
