"""comparison, mc.compare and `mnist-classifier runs compare` on hand-made run folders."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import mnist_classifier as mc
from mnist_classifier.comparison import MAX_RUNS, compare_runs
from mnist_classifier.errors import RunError

from .test_catalog import run_folder


@pytest.fixture
def pair(tmp_path: Path) -> tuple[Path, Path]:
    return (
        run_folder(tmp_path / "runs" / "fast", model="cnn", preset="fast", accuracy=0.991),
        run_folder(tmp_path / "runs" / "slower", model="cnn", preset="fast", epochs=4, learning_rate=0.04,
                   accuracy=0.993),
    )  # fmt: skip


def test_settings_that_differ_and_metrics_side_by_side(pair: tuple[Path, Path]) -> None:
    comparison = compare_runs(pair)
    assert comparison.names == ["fast", "slower"]
    assert comparison.settings == {
        "epochs": [2, 4],
        "learning_rate": [0.02, 0.04],
        "preset (recognised)": ["fast", "fast+"],
    }
    assert comparison.figures["test accuracy"] == [0.991, 0.993]
    assert comparison.figures["epochs"] == [2, 4] and comparison.figures["training time"] == [4.0, 8.0]
    assert comparison.figures["status"] == ["evaluated", "evaluated"]
    table = comparison.table()
    assert list(table.columns) == ["fast", "slower"] and table.loc["learning_rate", "slower"] == 0.04


def test_a_run_not_evaluated_compares_with_blanks(pair: tuple[Path, Path], tmp_path: Path) -> None:
    trained = run_folder(tmp_path / "runs" / "trained", status="finished", model="cnn", preset="fast")
    comparison = compare_runs([pair[0], trained])
    assert comparison.figures["test accuracy"] == [0.991, None]
    assert comparison.figures["training time"] == [4.0, 4.0], "from history.csv"
    assert comparison.runs[1].confusion is None


def test_page(pair: tuple[Path, Path], tmp_path: Path) -> None:
    comparison = mc.compare(*pair)
    assert comparison.page == pair[0].parent / "comparison.html"
    page = comparison.page.read_text()
    assert page.count("data:image/png;base64,") == 2, "the curves overlaid and the confusion matrices"
    assert re.search(r"<td>test accuracy</td><td>99\.10%</td><td>99\.30%</td>", page)
    assert re.search(r"<td>learning_rate</td><td>0\.02</td><td>0\.04</td>", page)
    assert 'href="slower/report.html"' not in page, "no link to a report that does not exist"
    (pair[1] / "report.html").write_text("")
    out = tmp_path / "elsewhere" / "page.html"
    assert mc.compare(*pair, out=out).page == out
    assert 'href="../runs/slower/report.html"' in out.read_text()


def test_refusals(pair: tuple[Path, Path], tmp_path: Path) -> None:
    with pytest.raises(RunError, match="give 2 to 12 run folders to compare, got 1"):
        compare_runs(pair[:1])
    with pytest.raises(RunError, match="the same run folder is given twice"):
        compare_runs([pair[0], pair[0].parent / ".." / "runs" / "fast"])
    with pytest.raises(RunError, match=r"nowhere: not a run \(no config.json\)"):
        compare_runs([pair[0], tmp_path / "nowhere"])
    with pytest.raises(RunError, match=f"got {MAX_RUNS + 1}"):
        compare_runs([pair[0]] * (MAX_RUNS + 1))
    (pair[1] / "confusion_matrix.csv").write_text("true\\predicted,0,1\n0,1\n")
    with pytest.raises(RunError, match=r"confusion_matrix.csv is unreadable"):
        compare_runs(pair)


def test_same_names_are_told_apart_by_path(tmp_path: Path) -> None:
    a = run_folder(tmp_path / "one" / "run", model="cnn", preset="fast")
    b = run_folder(tmp_path / "two" / "run", model="cnn", preset="fast", seed=7)
    assert compare_runs([a, b]).names == [str(a), str(b)]


def test_command(cli, pair: tuple[Path, Path], tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    result = cli("runs", "compare", *map(str, pair), "--out", str(tmp_path / "page.html"))
    assert result.code == 0, result.err
    assert "settings that differ" in result.out and "learning_rate" in result.out
    assert re.search(r"test accuracy\s*│\s*99\.10%\s*│\s*99\.30%", result.out)
    assert result.out.rstrip().endswith(f"comparison page: {tmp_path / 'page.html'}")
    assert (tmp_path / "page.html").is_file()
