"""report.write_report on synthetic run directories in the fixed file formats."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mnist_classifier.errors import RunError
from mnist_classifier.report import sample_grid, write_report

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
FIGURES = ["training_curves", "confusion_matrix", "confusion_matrix_normalized", "misclassified"]


def make_run(run_dir: Path, names: list[str], wrong: int = 20, history: bool = True) -> Path:
    """Write config, history, metrics, confusion matrix and misclassified digits as training and evaluation do."""
    rng = np.random.default_rng(0)
    k = len(names)
    run_dir.mkdir()
    matrix = rng.integers(0, 4, (k, k)) + np.diag(rng.integers(950, 1000, k))
    meta = {
        "created": "2024-05-01T12:30:00",
        "versions": {"python": "3.11.2", "keras": "3.3.3", "numpy": "1.26"},
        "parameters": 669706,
        "input_shape": [28, 28],
        "num_classes": k,
        "class_names": names,
    }
    config = {
        "model": "dnn",
        "dataset": "mnist",
        "epochs": 12,
        "batch_size": 128,
        "learning_rate": 0.001,
        "optimizer": "adam",
        "hidden_units": [512, 512],
        "dropout": 0.2,
        "seed": 42,
        "meta": meta,
    }
    (run_dir / "config.json").write_text(json.dumps(config))
    if history:
        with (run_dir / "history.csv").open("w", newline="") as f:
            out = csv.writer(f)
            out.writerow(
                ["epoch", "loss", "accuracy", "val_loss", "val_accuracy", "learning_rate", "seconds", "elapsed"]
            )
            for e in range(1, 13):
                out.writerow([e, 0.5 / e, 1 - 0.1 / e, 0.55 / e + 0.002 * e, 0.985 - 0.1 / e**2, 0.001, 1.8, 1.8 * e])
    per_class = {
        n: {"precision": 0.98, "recall": 0.97, "f1": 0.975, "support": int(matrix[i].sum())}
        for i, n in enumerate(names)
    }
    per_class[names[3]]["f1"] = 0.91
    metrics = {
        "dataset": "mnist",
        "split": "test",
        "n": int(matrix.sum()),
        "accuracy": 0.98531,
        "loss": 0.051,
        "errors": int(matrix.sum() - np.trace(matrix)),
        "per_class": per_class,
        "macro_avg": {"precision": 0.98, "recall": 0.97, "f1": 0.97, "support": int(matrix.sum())},
        "most_confused": [{"true": names[4], "predicted": names[-1], "count": 12}],
        "train_seconds": 21.3,
        "epochs": 12,
        "best_epoch": 11,
        "best_val_accuracy": 0.985,
        "parameters": 669706,
        "evaluated": "2024-05-01T12:31:00+00:00",
    }
    (run_dir / "metrics.json").write_text(json.dumps(metrics))
    with (run_dir / "confusion_matrix.csv").open("w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["true\\predicted", *names])
        out.writerows([name, *map(int, row)] for name, row in zip(names, matrix, strict=True))
    images = np.zeros((wrong, 28, 28), np.uint8)
    images[:, 6:22, 12:16] = 255
    np.savez(
        run_dir / "misclassified.npz",
        images=images,
        true=np.arange(wrong) % k,
        predicted=(np.arange(wrong) + 1) % k,
        confidence=np.linspace(0.99, 0.4, wrong),
        index=np.arange(wrong),
    )
    return run_dir


def assert_pngs(run_dir: Path, names: list[str]) -> None:
    for name in names:
        path = run_dir / f"{name}.png"
        assert path.read_bytes().startswith(PNG_SIGNATURE)
        with Image.open(path) as image:
            image.verify()


def assert_no_temp_files(run_dir: Path) -> None:
    assert not [p.name for p in run_dir.iterdir() if ".tmp" in p.name]


def test_full_run_writes_self_contained_report(tmp_path: Path) -> None:
    run = make_run(tmp_path / "run", [str(d) for d in range(10)])
    report = write_report(run)
    assert report == run / "report.html"
    page = report.read_text()
    assert page.count("data:image/png;base64,") == 4
    assert "98.53%" in page and "weakest" in page and "hidden_units" in page and "512, 512" in page
    assert "3.11.2" in page and "<link" not in page and "<script" not in page and "http" not in page
    assert_pngs(run, FIGURES)
    assert_no_temp_files(run)


def test_run_without_history_skips_curves(tmp_path: Path) -> None:
    run = make_run(tmp_path / "run", [str(d) for d in range(10)], history=False)
    page = write_report(run).read_text()
    assert page.count("data:image/png;base64,") == 3
    assert not (run / "training_curves.png").exists()
    assert_pngs(run, FIGURES[1:])


def test_zero_misclassified_writes_no_grid(tmp_path: Path) -> None:
    run = make_run(tmp_path / "run", [str(d) for d in range(10)], wrong=0)
    (run / "misclassified.png").write_bytes(b"left by an earlier evaluation")
    page = write_report(run).read_text()
    assert page.count("data:image/png;base64,") == 3
    assert not (run / "misclassified.png").exists()
    assert_no_temp_files(run)


def test_word_class_names_are_escaped(tmp_path: Path) -> None:
    names = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "<Ankle> boot"]
    run = make_run(tmp_path / "run", names)
    page = write_report(run).read_text()
    assert "&lt;Ankle&gt; boot" in page and "<Ankle>" not in page
    assert '<tr class="weak"><td>Dress<span' in page
    assert_pngs(run, FIGURES)


def test_hostile_settings_and_ensemble_members_are_escaped(tmp_path: Path) -> None:
    run = make_run(tmp_path / "run", [str(d) for d in range(10)])
    config = json.loads((run / "config.json").read_text())
    (run / "config.json").write_text(json.dumps(config | {"note": "<script>alert(1)</script>"}))
    metrics = json.loads((run / "metrics.json").read_text())
    members = [{"run": "runs/<img src=x onerror=alert(2)>", "seed": 42, "accuracy": 0.98, "train_seconds": 75}]
    (run / "metrics.json").write_text(json.dumps(metrics | {"members": members, "tta": True}))
    page = write_report(run).read_text()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "<script" not in page
    assert "&lt;img src=x onerror=alert(2)&gt;" in page and "<img src=x" not in page
    assert "<h2>Ensemble members</h2>" in page and "<td>ensemble (with TTA)</td>" in page and "1 min 15 s" in page


def test_missing_metrics_raises_run_error_naming_the_file(tmp_path: Path) -> None:
    run = make_run(tmp_path / "run", [str(d) for d in range(10)])
    (run / "metrics.json").unlink()
    with pytest.raises(RunError, match=r"metrics\.json is missing"):
        write_report(run)
    assert not (run / "report.html").exists()


def test_corrupt_confusion_matrix_raises_run_error(tmp_path: Path) -> None:
    run = make_run(tmp_path / "run", [str(d) for d in range(10)])
    (run / "confusion_matrix.csv").write_text("true\\predicted,0,1\n0,5\n")
    with pytest.raises(RunError, match=r"confusion_matrix\.csv is unreadable"):
        write_report(run)


def test_sample_grid_writes_one_row_per_class(tmp_path: Path) -> None:
    x = np.zeros((40, 28, 28), np.uint8)
    x[:, 8:20, 10:18] = 255
    y = np.arange(40) % 10
    out = sample_grid(tmp_path / "samples.png", x, y, [f"class {i}" for i in range(10)], per_class=3)
    assert out.read_bytes().startswith(PNG_SIGNATURE)
    with Image.open(out) as image:
        assert image.height > 2 * image.width
    assert_no_temp_files(tmp_path)
