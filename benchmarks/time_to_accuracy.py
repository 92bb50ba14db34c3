"""Time to accuracy: the cnn presets, the default DNN, the augmented DNN and the Keras docs' "Simple MNIST convnet".

Usage: python benchmarks/time_to_accuracy.py [--only "cnn fast,reference"] [--skip-best] [--seeds N] [--keep DIR]
Each model trains in a fresh process on the same machine, once per seed (42, 43, ...); the table gives
parameters, then medians over the seeds of training seconds, test accuracy (with its range when there are
several seeds), the seconds until validation accuracy first reached 99.0% (checked at the end of each epoch)
and that time as a ratio to the reference's; then inference, on the first seed's model: test-set predictions
per second in batches of 1,024 and the median latency of one single-image prediction through
`inference.Predictor` (of 1,000).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

TARGET = 0.99
MODELS = {
    "cnn fast": ["--model", "cnn", "--preset", "fast"],
    "cnn default": ["--model", "cnn"],
    "cnn best": ["--model", "cnn", "--preset", "best"],
    "dnn default": ["--model", "dnn"],
    "dnn augmented": ["--model", "dnn", "--preset", "augmented"],
    "reference": [],
}


def train_reference(out: Path, seed: int) -> None:
    """The Keras documentation's "Simple MNIST convnet", as published, on the bundled MNIST."""
    import keras

    from mnist_classifier.data import load_dataset
    from mnist_classifier.evaluation import compute_metrics
    from mnist_classifier.utils import set_threads

    set_threads(os.cpu_count() or 1)
    keras.utils.set_random_seed(seed)
    data = load_dataset("mnist")
    x_train = np.expand_dims(data.x_train.astype("float32") / 255, -1)
    x_test = np.expand_dims(data.x_test.astype("float32") / 255, -1)
    y_train = keras.utils.to_categorical(data.y_train, 10)
    model = keras.Sequential(
        [
            keras.Input(shape=(28, 28, 1)),
            keras.layers.Conv2D(32, kernel_size=(3, 3), activation="relu"),
            keras.layers.MaxPooling2D(pool_size=(2, 2)),
            keras.layers.Conv2D(64, kernel_size=(3, 3), activation="relu"),
            keras.layers.MaxPooling2D(pool_size=(2, 2)),
            keras.layers.Flatten(),
            keras.layers.Dropout(0.5),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    model.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
    rows: list[dict[str, float]] = []
    started = time.perf_counter()
    record = keras.callbacks.LambdaCallback(
        on_epoch_end=lambda epoch, logs: rows.append(
            {"epoch": epoch + 1, "val_accuracy": logs["val_accuracy"], "elapsed": time.perf_counter() - started}
        )
    )
    model.fit(x_train, y_train, batch_size=128, epochs=15, validation_split=0.1, callbacks=[record], verbose=0)
    out.mkdir(parents=True, exist_ok=True)
    model.save(out / "model.keras")
    with (out / "history.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["epoch", "val_accuracy", "elapsed"])
        writer.writeheader()
        writer.writerows(rows)
    probs = model.predict(x_test, batch_size=1024, verbose=0)
    metrics = compute_metrics(data.y_test, probs, data.class_names)
    metrics = {"accuracy": metrics["accuracy"], "train_seconds": rows[-1]["elapsed"]}
    metrics["parameters"] = model.count_params()
    (out / "metrics.json").write_text(json.dumps(metrics))


def train(name: str, seed: int, out: Path) -> None:
    """Train one model in a fresh process."""
    if name == "reference":
        command = [sys.executable, __file__, "--train-reference", str(out), "--seed", str(seed)]
    else:
        command = [sys.executable, "-m", "mnist_classifier", "train", *MODELS[name], "--seed", str(seed)]
        command += ["--out", str(out)]
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=os.environ)


def seconds_to_target(run_dir: Path) -> float | None:
    """Training seconds until validation accuracy first reached the target; for an ensemble, its first member."""
    history = run_dir / "history.csv" if (run_dir / "history.csv").exists() else run_dir / "member-1" / "history.csv"
    for row in csv.DictReader(history.open()):
        if float(row["val_accuracy"]) >= TARGET:
            return float(row["elapsed"])
    return None


def model_files(run_dir: Path) -> list[Path]:
    members = sorted(run_dir.glob("member-*"))
    return members or [run_dir]


def inference(run_dir: Path, images: np.ndarray, repeats: int) -> tuple[float, float]:
    """Test-set predictions per second (best of three) and median single-image latency in milliseconds."""
    from mnist_classifier.inference import Predictor

    predictors = [Predictor(path) for path in model_files(run_dir)]
    x = images.reshape(len(images), *predictors[0].input_shape)

    def predict(batch: np.ndarray) -> np.ndarray:
        return np.mean([p.probabilities(batch) for p in predictors], axis=0)

    predict(x[:1024])
    batch_seconds = []
    for _ in range(3):
        start = time.perf_counter()
        predict(x)
        batch_seconds.append(time.perf_counter() - start)
    latencies = []
    for i in range(repeats):
        one = x[i % len(x) : i % len(x) + 1]
        start = time.perf_counter()
        predict(one)
        latencies.append(time.perf_counter() - start)
    return len(x) / min(batch_seconds), 1000 * statistics.median(latencies)


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help=f"comma-separated subset of: {', '.join(MODELS)}")
    parser.add_argument("--skip-best", action="store_true", help="leave out the cnn best preset (minutes)")
    parser.add_argument(
        "--keep",
        type=Path,
        help="keep the run directories in this folder; runs already there are reused, not retrained",
    )
    parser.add_argument("--seeds", type=int, default=1, help="train each model this many times (seeds 42, 43, ...)")
    parser.add_argument("--latency-repeats", type=int, default=1000)
    parser.add_argument("--train-reference", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, default=42, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.train_reference:
        train_reference(args.train_reference, args.seed)
        return
    if args.seeds < 1:
        parser.error(f"--seeds must be at least 1, got {args.seeds}")
    names = list(MODELS)
    if args.only:
        names = [n.strip() for n in args.only.split(",")]
        unknown = [n for n in names if n not in MODELS]
        if unknown:
            parser.error(f"--only: unknown model {unknown[0]!r}; choose from {', '.join(MODELS)}")
    if args.skip_best:
        names = [n for n in names if n != "cnn best"]
    if "reference" in names:
        names = ["reference", *[n for n in names if n != "reference"]]

    from mnist_classifier.data import load_dataset

    images = load_dataset("mnist").x_test.astype(np.float32) / 255
    console = Console(width=160)
    load_before = os.getloadavg()
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = args.keep or Path(tmp)
        for name in names:
            runs = []
            for seed in range(42, 42 + args.seeds):
                out = root / f"{name.replace(' ', '-')}-seed{seed}"
                if not (out / "metrics.json").exists():
                    console.print(f"training {name}, seed {seed} ...", highlight=False)
                    train(name, seed, out)
                runs.append(out)
            metrics = [json.loads((out / "metrics.json").read_text()) for out in runs]
            accuracies = [m["accuracy"] for m in metrics]
            to_target = [seconds_to_target(out) for out in runs]
            rows[name] = (
                metrics[0]["parameters"],
                statistics.median(m["train_seconds"] for m in metrics),
                statistics.median(accuracies),
                (min(accuracies), max(accuracies)) if len(runs) > 1 else None,
                statistics.median(float("inf") if t is None else t for t in to_target),
                *inference(runs[0], images, args.latency_repeats),
            )
    reference = rows["reference"][4] if "reference" in rows else float("inf")
    medians = f", medians of {args.seeds} seeds" if args.seeds > 1 else ""
    table = Table(title=f"MNIST time to accuracy: {os.cpu_count()} cores ({cpu_name()}), no GPU{medians}")
    for column in ("model", "parameters", "training s", "test accuracy", "s to 99.0% val", "vs reference",
                   "predictions/s", "latency ms"):  # fmt: skip
        table.add_column(column, justify="left" if column == "model" else "right")
    for name, (parameters, seconds, accuracy, spread, to_target, per_second, latency) in rows.items():
        reached = to_target != float("inf")
        ratio = f"{to_target / reference:.2f}" if reached and reference != float("inf") else "—"
        table.add_row(
            name,
            f"{parameters:,}",
            f"{seconds:.1f}",
            f"{accuracy:.2%}" + (f" ({spread[0]:.2%} to {spread[1]:.2%})" if spread else ""),
            f"{to_target:.1f}" if reached else "never",
            ratio,
            f"{per_second:,.0f}",
            f"{latency:.2f}",
        )
    console.print(table)
    load_after = os.getloadavg()
    console.print(f"load average (1 min) before {load_before[0]:.1f}, after {load_after[0]:.1f}", highlight=False)


if __name__ == "__main__":
    main()
