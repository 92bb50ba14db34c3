"""TensorBoard logs, read back from the event files as TensorBoard reads them."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from mnist_classifier.api import finish
from mnist_classifier.runs import read_history, read_metrics

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def events(folder: Path) -> Any:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    return EventAccumulator(str(folder), size_guidance={"tensors": 0}).Reload()


def scalars(folder: Path) -> dict[str, list[tuple[int, float]]]:
    """Each scalar tag's (step, value) points, in the order written."""
    from tensorboard.util.tensor_util import make_ndarray

    found = events(folder)
    return {
        tag: [(e.step, float(make_ndarray(e.tensor_proto))) for e in found.Tensors(tag)]
        for tag in found.Tags()["tensors"]
        if not found.Tensors(tag)[0].tensor_proto.string_val
    }


def assert_epochs_logged(run_dir: Path) -> None:
    """train/ and validation/ hold one point per epoch (steps from 0) of what history.csv recorded."""
    history = read_history(run_dir)
    assert history is not None
    steps = list(range(len(history["epoch"])))
    train, validation = scalars(run_dir / "tensorboard" / "train"), scalars(run_dir / "tensorboard" / "validation")
    for tag, column in (("epoch_loss", "loss"), ("epoch_accuracy", "accuracy"), ("epoch_learning_rate", None)):
        assert [step for step, _ in train[tag]] == steps, tag
        if column:
            assert [v for _, v in train[tag]] == pytest.approx(list(history[column]), rel=1e-5)
    assert [v for _, v in train["epoch_learning_rate"]] == pytest.approx(list(history["learning_rate"]), rel=1e-5)
    for tag, column in (("epoch_loss", "val_loss"), ("epoch_accuracy", "val_accuracy")):
        assert [step for step, _ in validation[tag]] == steps
        assert [v for _, v in validation[tag]] == pytest.approx(list(history[column]), rel=1e-5)


def test_each_epoch_is_logged(tiny_run: Path) -> None:
    assert_epochs_logged(tiny_run)
    assert not list((tiny_run / "tensorboard").rglob("*.trace.json.gz")), "no profile by default"
    train = events(tiny_run / "tensorboard" / "train").Tags()
    assert set(train["tensors"]) == {"epoch_loss", "epoch_accuracy", "epoch_learning_rate"}, "no weights, no batches"
    assert not train["graph"]


def test_the_evaluation_is_logged_at_the_last_epoch(tiny_run: Path, tmp_path: Path) -> None:
    """What train, evaluate and ensemble finish with (api.finish): the report, then its figures in TensorBoard."""
    run_dir = Path(shutil.copytree(tiny_run, tmp_path / "run"))
    finish(run_dir)
    metrics = read_metrics(run_dir)
    found = scalars(run_dir / "tensorboard" / "evaluation")
    last = metrics["epochs"] - 1
    assert found["test/accuracy"] == [(last, pytest.approx(metrics["accuracy"]))]
    assert found["test/errors"] == [(last, metrics["errors"])]
    assert found["test/verdicts/ece_after"] == [(last, pytest.approx(metrics["verdicts"]["ece_after"]))]
    assert found["test/verdicts/held_out/letters/auroc"][0][1] == pytest.approx(
        metrics["verdicts"]["held_out"]["letters"]["auroc"]
    )
    assert not [tag for tag in found if tag.endswith("/n")], "image counts are no figures"
    images = events(run_dir / "tensorboard" / "evaluation")
    [confusion] = images.Tensors("test/confusion_matrix")
    width, height, png = confusion.tensor_proto.string_val
    assert png.startswith(PNG_SIGNATURE) and int(width) > 300 and int(height) > 300
    [mistakes] = images.Tensors("test/mistakes")
    width, height, *pngs = mistakes.tensor_proto.string_val
    assert (int(width), int(height), len(pngs)) == (112, 112, min(8, metrics["errors"]))
    description = images.SummaryMetadata("test/mistakes").summary_description
    assert description.count(" → ") == len(pngs) and "most confident" in description


def test_a_trained_run_shows_its_epochs_in_tensorboard(dnn_run: Path) -> None:
    """Two epochs of the default DNN: two points of each curve, at steps 0 and 1, as history.csv has them."""
    assert_epochs_logged(dnn_run)
    assert len(scalars(dnn_run / "tensorboard" / "validation")["epoch_accuracy"]) == 2
