"""catalog, mc.runs and `mnist-classifier runs` on hand-made run folders, broken ones included."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import mnist_classifier as mc
from mnist_classifier import catalog
from mnist_classifier.config import resolve, to_dict
from mnist_classifier.errors import RunError, SettingError
from mnist_classifier.runs import write_config, write_confusion, write_history
from mnist_classifier.utils import write_json

NAMES = [str(d) for d in range(10)]


def run_folder(
    path: Path,
    status: str = "evaluated",
    accuracy: float = 0.99,
    epochs_done: int | None = None,
    preset: str | None = None,
    **settings: Any,
) -> Path:
    """A run folder as training and evaluation write it (their own writers), stopped at `status`."""
    config = resolve(preset=preset, **settings)
    path.mkdir(parents=True)
    meta = {"created": "2026-01-02T03:04:05+00:00", "parameters": 1000, "class_names": NAMES}
    write_config(path, config, meta | {"status": "finished" if status != "unfinished" else "training"})
    done = config.epochs if epochs_done is None else epochs_done
    rows = [
        {"epoch": e, "loss": 1 / e, "accuracy": 0.9, "val_loss": 1 / e, "val_accuracy": accuracy - 0.01 / e,
         "learning_rate": 0.001, "seconds": 2.0, "elapsed": 2.0 * e}
        for e in range(1, done + 1)
    ]  # fmt: skip
    write_history(path, rows)
    if status == "evaluated":
        matrix = [[100 if i == j else (1 if j == (i + 1) % 10 else 0) for j in range(10)] for i in range(10)]
        write_confusion(path, matrix, NAMES)
        per_class = {n: {"precision": 0.99, "recall": 0.99, "f1": 0.99, "support": 101} for n in NAMES}
        write_json(
            path / "metrics.json",
            {"dataset": config.dataset, "split": "test", "n": 1010, "accuracy": accuracy, "loss": 0.05, "errors": 10,
             "per_class": per_class, "macro_avg": per_class["0"], "train_seconds": 2.0 * done, "epochs": done,
             "best_epoch": done, "best_val_accuracy": rows[-1]["val_accuracy"], "parameters": 1000},
        )  # fmt: skip
    return path


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """runs/ with runs in every state, and the things a runs folder also collects."""
    runs = tmp_path / "runs"
    run_folder(runs / "a-fast", model="cnn", preset="fast", accuracy=0.991)
    run_folder(runs / "b-fast-longer", model="cnn", preset="fast", epochs=3, accuracy=0.993)
    run_folder(runs / "c-dnn", accuracy=0.981, epochs=2)
    run_folder(runs / "d-trained", status="finished", epochs=2)
    run_folder(runs / "e-killed", status="unfinished", epochs=5, epochs_done=2)
    (runs / "f-half-written").mkdir()
    (runs / "f-half-written" / "config.json").write_text('{"model": "cnn", "datas')
    run_folder(runs / "g-bad-metrics", epochs=1)
    (runs / "g-bad-metrics" / "metrics.json").write_text("[1, 2]")
    (runs / "h-photos").mkdir()
    (runs / "h-photos" / "digit.png").write_bytes(b"\x89PNG")
    (runs / "tune-s").mkdir()
    (runs / "tune-s" / "study.db").write_bytes(b"")
    (runs / ".final-1234").mkdir()
    (runs / "comparison.html").write_text("<html></html>")
    return runs


def by_name(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {row["name"]: row for row in rows}


def test_every_folder_is_a_row_with_its_status(folder: Path) -> None:
    rows, total = catalog.list_runs(folder)
    found = by_name(rows)
    assert total == len(rows) == 9, "hidden folders and files are not listed"
    assert {name: row["status"] for name, row in found.items()} == {
        "a-fast": "evaluated",
        "b-fast-longer": "evaluated",
        "c-dnn": "evaluated",
        "d-trained": "finished",
        "e-killed": "unfinished",
        "f-half-written": "unreadable",
        "g-bad-metrics": "unreadable",
        "h-photos": "not a run",
        "tune-s": "not a run",
    }
    assert found["a-fast"] | {"path": None} == {
        "name": "a-fast", "status": "evaluated", "model": "cnn", "preset": "fast", "dataset": "mnist",
        "accuracy": 0.991, "val_accuracy": pytest.approx(0.986), "epochs": 2, "train_seconds": 4.0,
        "parameters": 1000, "created": "2026-01-02T03:04:05+00:00", "note": "", "path": None,
    }  # fmt: skip
    assert found["d-trained"]["train_seconds"] == 4.0 and found["d-trained"]["accuracy"] is None
    assert found["e-killed"]["epochs"] == 2 and "2 of 5 epochs" in found["e-killed"]["note"]
    assert found["f-half-written"]["note"].startswith("config.json: ")
    assert found["g-bad-metrics"]["note"] == "metrics.json: not a JSON object"
    assert found["tune-s"]["note"].startswith("a tuning study")
    assert found["h-photos"]["note"] == "no config.json"


def test_presets_are_recognised_from_the_settings() -> None:
    def preset(**settings: Any) -> str:
        return catalog.preset_of(json.loads(json.dumps(to_dict(resolve(**settings)))))

    assert preset(model="cnn", preset="fast") == "fast"
    assert preset(model="cnn", preset="fast", epochs=5) == "fast+"
    assert preset(model="cnn", preset="fast", epochs=5, seed=1) == "fast+", "the seed is no preset's setting"
    assert preset(model="cnn") == "default"
    assert preset(model="cnn", filters=[8, 8, 8], convs_per_stage=1, dropout=0.0, kernel_size=3) == ""
    assert preset(model="dnn", preset="augmented") == "augmented"
    assert preset(model="dnn") == ""
    assert catalog.preset_of({"model": ["not", "a", "name"]}) == ""


def test_sort_and_filter(folder: Path) -> None:
    rows, _ = catalog.list_runs(folder)
    best_first = [row["name"] for row in catalog.select(rows, sort="accuracy")]
    assert best_first[:3] == ["b-fast-longer", "a-fast", "c-dnn"], "best first, runs without accuracy last"
    assert [row["name"] for row in catalog.select(rows, sort="accuracy", reverse=True)][:3] == [
        "c-dnn", "a-fast", "b-fast-longer"
    ]  # fmt: skip
    assert [row["name"] for row in catalog.select(rows, model="cnn", status="evaluated", sort="time")] == [
        "a-fast", "b-fast-longer"
    ]  # fmt: skip
    assert {row["name"] for row in catalog.select(rows, preset="fast")} == {"a-fast", "b-fast-longer"}
    assert [row["name"] for row in catalog.select(rows, status="not a run")] == ["h-photos", "tune-s"]
    with pytest.raises(SettingError, match=r"sort must be one of name, created, accuracy"):
        catalog.select(rows, sort="speed")
    with pytest.raises(SettingError, match=r"status must be one of evaluated"):
        catalog.select(rows, status="done")
    with pytest.raises(RunError, match="cannot filter by 'colour'"):
        catalog.select(rows, colour="red")


def test_dataframe(folder: Path) -> None:
    table = mc.runs(folder, sort="accuracy")
    assert list(table.index[:3]) == ["b-fast-longer", "a-fast", "c-dnn"]
    assert table.loc["a-fast", "accuracy"] == 0.991 and table["accuracy"].isna().sum() == 6
    assert set(table.columns) == set(catalog.COLUMNS) - {"name"}
    assert list(mc.runs(folder, model="dnn", status="evaluated").index) == ["c-dnn"]
    assert list(mc.runs(folder / "a-fast").index) == ["a-fast"], "a run folder lists itself"


def test_oversized_files_and_many_folders_stay_bounded(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(catalog, "MAX_FILE_BYTES", 100)
    row = catalog.summarize(folder / "a-fast")
    assert row["status"] == "unreadable" and row["note"] == "config.json: over 100 bytes"
    paths, total = catalog.folders(folder, limit=2)
    assert [p.name for p in paths] == ["a-fast", "b-fast-longer"] and total == 9


def test_missing_folder_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(RunError, match="no such folder"):
        catalog.list_runs(tmp_path / "nowhere")
    (tmp_path / "file").write_text("")
    with pytest.raises(RunError, match="a file"):
        catalog.list_runs(tmp_path / "file")


def test_command(cli, folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    result = cli("runs", str(folder), "--sort", "accuracy")
    assert result.code == 0, result.err
    lines = result.out.splitlines()
    assert lines[0].split()[:7] == ["name", "model", "preset", "dataset", "accuracy", "time", "status"]
    assert lines[1].split()[:7] == ["b-fast-longer", "cnn", "fast+", "mnist", "99.30%", "6.0", "s"]
    assert "f-half-written" in result.out and "unreadable" in result.out
    assert lines[-1] == "9 folders: 3 evaluated, 1 finished, 1 unfinished, 2 unreadable, 2 not a run"
    filtered = cli("runs", "list", str(folder), "--status", "unfinished")
    assert filtered.code == 0 and "e-killed" in filtered.out and "a-fast" not in filtered.out
    monkeypatch.chdir(folder.parent)
    assert "c-dnn" in cli("runs").out, "runs/ by default"
    assert "c-dnn" in cli("runs", "--model", "dnn").out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["runs", "{tmp}/nowhere"], "{tmp}/nowhere: no such folder; give the folder that holds the run folders"),
        (["runs", "{folder}", "--sort", "speed"], "--sort must be one of name, created, accuracy"),
        (["runs", "{folder}", "--status", "done"], "--status must be one of evaluated, finished"),
        (["runs", "compare", "{folder}/a-fast"], "give 2 to 12 run folders to compare, got 1"),
        (["runs", "compare", "{folder}/a-fast", "{folder}/f-half-written"], "{folder}/f-half-written: unreadable"),
    ],
)
def test_mistakes_are_one_line_with_exit_code_2(cli, folder: Path, args: list[str], message: str) -> None:  # type: ignore[no-untyped-def]
    result = cli(*(a.format(tmp=folder.parent, folder=folder) for a in args))
    assert result.code == 2
    assert result.err.startswith("error: " + message.format(tmp=folder.parent, folder=folder))
    assert len(result.err.strip().splitlines()) == 1
