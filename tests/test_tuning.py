"""Hyperparameter search on slices of the real MNIST: grid, random, pruning, and workers (started together, joining,
killed, frozen) in real processes on SQLite and PostgreSQL. A test whose trials train asks for `trainer` (the slow
tier) though `tune` calls train itself; one that starts workers uses `python_process` (integration)."""

from __future__ import annotations

import contextlib
import csv
import functools
import itertools
import json
import os
import random
import shutil
import signal
import socket
import sqlite3
import subprocess
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import optuna
import pytest
from optuna.storages import RDBStorage
from optuna.trial import TrialState

from mnist_classifier import resolve, tuning
from mnist_classifier.errors import ConfigError, TuningError
from mnist_classifier.models import MODELS
from mnist_classifier.tuning.report import write_tuning_report
from mnist_classifier.tuning.study import PruningCallback

from .conftest import Forked, PythonProcess, require

trains = pytest.mark.usefixtures("trainer")  # its trials train: the slow tier

SPACE = "hidden_units = [[32], [64]]\nlearning_rate = [3e-3, 1e-2]\n"
BASE = "epochs = 2\ntrain_samples = 3000\nbatch_size = 64\n"


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    """A 2x2 grid space and base settings small enough for seconds per trial."""
    (tmp_path / "space.toml").write_text(SPACE)
    (tmp_path / "base.toml").write_text(BASE)
    return tmp_path / "space.toml", tmp_path / "base.toml"


def tune_args(space: Path, base: Path, out: Path, *extra: str) -> list[str]:
    return ["tune", "--space", str(space), "--config", str(base), "--sampler", "grid", "--out", str(out), *extra]


def trials(out: Path, study: str = "dnn-mnist-grid", storage: str | None = None) -> list[optuna.trial.FrozenTrial]:
    return optuna.load_study(study_name=study, storage=storage or f"sqlite:///{out / 'study.db'}").trials


def grid_params() -> set[tuple[str, float]]:
    return set(itertools.product(["[32]", "[64]"], [3e-3, 1e-2]))


def evaluated(found: list[optuna.trial.FrozenTrial]) -> list[tuple[str, float]]:
    """The grid points of the trials that finished training (complete or pruned)."""
    done = (TrialState.COMPLETE, TrialState.PRUNED)
    return [(t.params["hidden_units"], t.params["learning_rate"]) for t in found if t.state in done]


@trains
def test_grid_search_evaluates_each_point_once_and_its_best_config_trains(cli, files, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    space, base = files
    out = tmp_path / "out"
    result = cli(*tune_args(space, base, out, "--pruner", "none"))
    assert result.code == 0, result.err
    assert len([line for line in result.out.splitlines() if line.startswith("trial ")]) == 4
    assert "~" in result.out and "left" in result.out and "best " in result.out
    found = trials(out)
    assert sorted(evaluated(found)) == sorted(grid_params()), "every grid point exactly once"

    rows = list(csv.DictReader((out / "leaderboard.csv").open()))
    values = [float(r["val_accuracy"]) for r in rows]
    assert len(rows) == 4 and values == sorted(values, reverse=True) and values[0] > 0.8
    best = max((t for t in found if t.state == TrialState.COMPLETE), key=lambda t: t.value or 0)
    assert int(rows[0]["trial"]) == best.number

    final = json.loads((out / "final" / "metrics.json").read_text())
    assert final["best_val_accuracy"] == pytest.approx(best.value, abs=1e-6), "the final retrain reproduces the best"
    assert final["split"] == "test" and final["accuracy"] > 0.8
    page = (out / "report.html").read_text()
    assert page.count("Plotly.newPlot") == 4 and "<script src" not in page and 'href="final/report.html"' in page

    result = cli("train", "--config", str(out / "best_config.toml"), "--out", str(tmp_path / "retrain"))
    assert result.code == 0, result.err
    assert (tmp_path / "retrain" / "model.keras").is_file()

    mtime = (out / "final" / "metrics.json").stat().st_mtime
    again = cli(*tune_args(space, base, out, "--pruner", "none"))
    assert again.code == 0, again.err
    assert len(trials(out)) == 4 and not any(line.startswith("trial ") for line in again.out.splitlines())
    assert (out / "final" / "metrics.json").stat().st_mtime == mtime, "a finished final run is kept"

    (tmp_path / "other.toml").write_text("dropout = [0.1, 0.3]\n")
    changed = cli(*tune_args(tmp_path / "other.toml", base, out))
    assert changed.code == 2 and "was started with another space" in changed.err


@trains
def test_random_search_counts_trials_across_runs(cli, files, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _, base = files
    space = tmp_path / "ranges.toml"
    space.write_text("learning_rate = { low = 1e-3, high = 3e-2, log = true }\ndropout = [0.0, 0.3]\n")
    out = tmp_path / "out"
    args = ["tune", "--space", str(space), "--config", str(base), "--sampler", "random", "--out", str(out)]
    assert cli(*args, "--trials", "2", "--no-final-train").code == 0
    assert cli(*args, "--trials", "2", "--no-final-train").code == 0
    found = optuna.load_study(study_name="dnn-mnist-random", storage=f"sqlite:///{out / 'study.db'}").trials
    assert len(found) == 2, "a re-run with the same budget adds nothing"
    assert cli(*args, "--trials", "3", "--no-final-train").code == 0
    found = optuna.load_study(study_name="dnn-mnist-random", storage=f"sqlite:///{out / 'study.db'}").trials
    rates = [t.params["learning_rate"] for t in found]
    assert len(found) == 3 and len(set(rates)) == 3 and all(1e-3 <= r <= 3e-2 for r in rates)
    assert not (out / "final").exists()


@trains
def test_trial_claimed_before_its_first_heartbeat_is_failed_and_redone(  # type: ignore[no-untyped-def]
    cli, files, tmp_path: Path
) -> None:
    """A worker killed between claiming a trial and its first heartbeat leaves a running trial Optuna never
    calls stale; past the grace period the next worker fails it instead of waiting for it forever."""
    space, base = files
    out = tmp_path / "out"
    assert cli(*tune_args(space, base, out, "--pruner", "none", "--trials", "1", "--no-final-train")).code == 0
    optuna.load_study(study_name="dnn-mnist-grid", storage=f"sqlite:///{out / 'study.db'}").ask()
    with sqlite3.connect(out / "study.db") as db:
        db.execute(
            "UPDATE trials SET datetime_start = datetime('now', 'localtime', '-1 minute') WHERE state = 'RUNNING'"
        )
    result = cli(*tune_args(space, base, out, "--pruner", "none", "--no-final-train"))
    assert result.code == 0, result.err
    found = trials(out)
    assert [t.state for t in found].count(TrialState.FAIL) == 1
    assert sorted(evaluated(found)) == sorted(grid_params())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def postgres() -> Iterator[str]:
    """A throwaway PostgreSQL server on 127.0.0.1 (as the postgres user when run as root); its URL."""
    initdb = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    require(bool(initdb), "PostgreSQL is not installed (Debian's postgresql package)")
    bindir = initdb[-1].parent
    root = Path(tempfile.mkdtemp(prefix="mnist-classifier-pg-"))
    as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    if as_user:
        shutil.chown(root, "postgres")
    port = str(free_port())

    def run(tool: str, *args: str) -> None:
        subprocess.run([*as_user, str(bindir / tool), *args], cwd=root, check=True, capture_output=True)

    try:
        run("initdb", "-D", str(root / "data"), "-A", "trust", "-U", "postgres", "--no-sync")
        options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off"
        run("pg_ctl", "-D", str(root / "data"), "-l", str(root / "log"), "-o", options, "-w", "start")
        try:
            run("createdb", "-h", "127.0.0.1", "-p", port, "-U", "postgres", "tune")
            yield f"postgresql://postgres@127.0.0.1:{port}/tune"
        finally:
            run("pg_ctl", "-D", str(root / "data"), "-m", "immediate", "-w", "stop")
    finally:
        shutil.rmtree(root, ignore_errors=True)


SPACE12 = "hidden_units = [[16], [32]]\nlearning_rate = [3e-3, 1e-2]\ndropout = [0.0, 0.1, 0.2]\n"
TINY = "epochs = 1\ntrain_samples = 1000\nbatch_size = 100\nthreads = 1\n"
GATE = (
    "import sys\nimport tensorflow\nimport mnist_classifier.tuning\nfrom mnist_classifier.cli import main\n"
    "print('ready', flush=True)\nsys.stdin.readline()\nsys.argv[0] = 'mnist-classifier'\nmain()\n"
)


@pytest.fixture
def grid12(tmp_path: Path) -> tuple[Path, Path]:
    """A 12-point grid and base settings of about a second per trial."""
    (tmp_path / "space12.toml").write_text(SPACE12)
    (tmp_path / "tiny.toml").write_text(TINY)
    return tmp_path / "space12.toml", tmp_path / "tiny.toml"


def worker(space: Path, base: Path, out: Path, *extra: str) -> list[str]:
    """The arguments of Python running a `tune` worker."""
    return ["-m", "mnist_classifier", *tune_args(space, base, out, "--pruner", "none", *extra)]


def start_together(python: PythonProcess, commands: list[list[str]]) -> list[tuple[int, str, str]]:
    """Start the workers behind a barrier (each imports TensorFlow, reports ready, then waits for the go on its
    stdin) so they open the study at the same instant; their exit codes and outputs."""
    env = os.environ | {"PYTHONUNBUFFERED": "1"}
    gated = [["-c", GATE, *c[2:]] for c in commands]
    pipes = subprocess.PIPE
    workers = [python.start(*c, stdin=pipes, stdout=pipes, stderr=pipes, text=True, env=env) for c in gated]
    for w in workers:
        assert w.stdout is not None and w.stdout.readline() == "ready\n"
    for w in workers:
        assert w.stdin is not None
        w.stdin.write("go\n")
        w.stdin.flush()
    outputs = [w.communicate(timeout=600) for w in workers]
    return [(w.returncode, out, err) for w, (out, err) in zip(workers, outputs, strict=True)]


def by_point(found: list[optuna.trial.FrozenTrial], states: tuple[TrialState, ...]) -> Counter[str]:
    return Counter(json.dumps(t.params, sort_keys=True) for t in found if t.state in states)


def assert_grid_done_once(found: list[optuna.trial.FrozenTrial], points: int = 12) -> None:
    complete = by_point(found, (TrialState.COMPLETE, TrialState.PRUNED))
    assert len(complete) == points and set(complete.values()) == {1}, f"each point once: {complete}"
    assert not [t.number for t in found if t.state in (TrialState.RUNNING, TrialState.WAITING)]


@functools.cache
def reader(storage: str) -> RDBStorage:
    """The test's one connection pool to a study database, opened under the workers' lock, as they open it (a pool
    per poll would exhaust PostgreSQL's connections)."""
    url = tuning.storage.parse_url(storage)
    with tuning.storage.lock(url, "open"):
        return tuning.storage.open_storage(url)


def running_in(storage: str, study: str, pid: int) -> bool:
    """Whether the worker `pid` runs a trial."""
    try:
        found = optuna.load_study(study_name=study, storage=reader(storage)).get_trials(deepcopy=False)
    except KeyError:
        return False
    return any(t.state == TrialState.RUNNING and t.user_attrs.get("worker", "").endswith(f":{pid}") for t in found)


def wait_for(condition: Callable[[], bool], process: subprocess.Popen[bytes] | Forked, seconds: float = 120) -> None:
    """Poll until `condition` holds (the process may exit first: then there is nothing to wait for)."""
    deadline = time.monotonic() + seconds
    while not condition() and process.poll() is None:
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.2)


def four_workers_share_a_new_grid(
    python: PythonProcess, grid12: tuple[Path, Path], tmp_path: Path, storage: str | None
) -> str:
    space, base = grid12
    options = ["--no-final-train"] + (["--storage", storage] if storage else [])
    results = start_together(python, [worker(space, base, tmp_path / "out", *options) for _ in range(4)])
    assert [code for code, _, _ in results] == [0, 0, 0, 0], [err[-2000:] for _, _, err in results]
    storage = storage or f"sqlite:///{tmp_path / 'out' / 'study.db'}"
    found = trials(tmp_path, storage=storage)
    assert len([t for t in found if t.state == TrialState.COMPLETE]) == 12
    assert_grid_done_once(found)
    assert len({t.user_attrs["worker"] for t in found}) >= 2, "the workers shared the grid"
    return storage


def test_four_workers_started_together_evaluate_each_grid_point_once(  # type: ignore[no-untyped-def]
    python_process: PythonProcess, grid12, tmp_path: Path
) -> None:
    storage = four_workers_share_a_new_grid(python_process, grid12, tmp_path, None)

    from optuna_dashboard import wsgi

    dashboard = httpx.Client(transport=httpx.WSGITransport(app=wsgi(storage)), base_url="http://dashboard")
    studies = dashboard.get("/api/studies").json()["study_summaries"]
    assert [s["study_name"] for s in studies] == ["dnn-mnist-grid"]
    shown = dashboard.get(f"/api/studies/{studies[0]['study_id']}").json()["trials"]
    values = {t.number: t.value for t in trials(tmp_path, storage=storage) if t.state == TrialState.COMPLETE}
    assert {t["number"]: t["values"][0] for t in shown if t["state"] == "Complete"} == values


def test_worker_with_other_threads_and_output_folder_joins_a_running_study(  # type: ignore[no-untyped-def]
    python_process: PythonProcess, cli, grid12, tmp_path: Path
) -> None:
    space, base = grid12
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    options = ["--storage", storage, "--no-final-train"]
    first = python_process.start(*worker(space, base, tmp_path / "a", *options), stdout=subprocess.DEVNULL)
    wait_for(lambda: running_in(storage, "dnn-mnist-grid", first.pid), first)
    other = tmp_path / "other.toml"
    other.write_text(TINY.replace("threads = 1", "threads = 2"))
    second = python_process.run(*worker(space, other, tmp_path / "b", *options))
    first.wait(300)
    assert (first.returncode, second.returncode) == (0, 0), second.stderr[-2000:]
    found = trials(tmp_path, storage=storage)
    assert_grid_done_once(found)
    assert len({t.user_attrs["worker"] for t in found}) == 2, "the joining worker did trials too"

    other.write_text(TINY.replace("epochs = 1", "epochs = 2"))
    refused = cli(*tune_args(space, other, tmp_path / "c", "--storage", storage))
    assert refused.code == 2 and "was started with another epochs (1, now 2)" in refused.err


def kill_ten_times(python: PythonProcess, space: Path, base: Path, out: Path, storage: str) -> None:
    """SIGKILL a worker at a random moment of a trial, ten times over one study, then let a worker finish it: every
    grid point is complete exactly once and no completed trial is lost. The killed workers are forks of a process that
    imported Keras and Optuna (each imports the project itself, so it is a worker of its own pid); the one that
    finishes is a process of its own."""
    command = worker(space, base, out, "--storage", storage, "--study", "killed", "--no-final-train")
    rng = random.Random(7)
    completed: dict[int, float | None] = {}
    with python.warm("keras", "optuna") as launcher:
        for _ in range(10):
            process = launcher.start(*command)
            wait_for(lambda p=process: running_in(storage, "killed", p.pid), process)  # type: ignore[misc]
            time.sleep(rng.uniform(0, 2))
            process.kill()
            process.wait()
            found = optuna.load_study(study_name="killed", storage=storage).trials
            now = {t.number: t.value for t in found if t.state == TrialState.COMPLETE}
            assert {n: now.get(n) for n in completed} == completed, "no completed trial lost"
            completed |= now
    final = python.run(*command, timeout=600)
    assert final.returncode == 0, final.stderr[-2000:]
    found = optuna.load_study(study_name="killed", storage=storage).trials
    assert {n: t.value for t in found if (n := t.number) in completed} == completed
    assert_grid_done_once(found)
    assert sum(t.state == TrialState.FAIL for t in found) >= 3, "kills hit running trials, redone later"


def test_workers_killed_ten_times_leave_every_grid_point_complete_once(  # type: ignore[no-untyped-def]
    python_process: PythonProcess, grid12, tmp_path: Path
) -> None:
    space, base = grid12
    kill_ten_times(python_process, space, base, tmp_path / "out", f"sqlite:///{tmp_path / 'study.db'}")


def test_slow_heartbeat_within_the_grace_period_never_fails_a_live_trial(  # type: ignore[no-untyped-def]
    python_process: PythonProcess, grid12, tmp_path: Path
) -> None:
    """A worker frozen (SIGSTOP) for most of the grace period, its heartbeat that late, while another worker
    checks for stale trials: its trial is not failed, and it completes it once it goes on."""
    space, base = grid12
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    command = worker(space, base, tmp_path / "out", "--storage", storage, "--no-final-train")
    frozen, other = (
        python_process.start(*command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for _ in range(2)
    )
    wait_for(lambda: running_in(storage, "dnn-mnist-grid", frozen.pid), frozen)
    with contextlib.closing(sqlite3.connect(tmp_path / "study.db", 30, isolation_level=None)) as db:
        db.execute("BEGIN IMMEDIATE")  # so the worker is frozen between transactions, holding no lock of SQLite
        frozen.send_signal(signal.SIGSTOP)
    time.sleep(tuning.storage.GRACE_PERIOD - tuning.storage.HEARTBEAT_INTERVAL - 6)
    frozen.send_signal(signal.SIGCONT)
    assert [frozen.wait(300), other.wait(300)] == [0, 0]
    found = trials(tmp_path, storage=storage)
    assert not [t.number for t in found if t.state == TrialState.FAIL]
    assert_grid_done_once(found)


def test_two_workers_reaching_the_end_make_one_final_run(  # type: ignore[no-untyped-def]
    python_process: PythonProcess, files, tmp_path: Path
) -> None:
    space, base = files
    out = tmp_path / "out"
    results = start_together(python_process, [worker(space, base, out) for _ in range(2)])
    assert [code for code, _, _ in results] == [0, 0], [err[-2000:] for _, _, err in results]
    outputs = "".join(out for _, out, _ in results)
    assert outputs.count("retraining the best configuration") == 1
    final = json.loads((out / "final" / "metrics.json").read_text())
    assert final["split"] == "test" and final["accuracy"] > 0.8
    page = (out / "report.html").read_text()
    assert page.count("Plotly.newPlot") == 4 and 'href="final/report.html"' in page
    assert not list(out.glob(".final-*")), "no staging folder left"


def test_four_workers_started_together_share_a_grid_through_postgresql(  # type: ignore[no-untyped-def]
    python_process: PythonProcess, grid12, tmp_path: Path, postgres: str
) -> None:
    four_workers_share_a_new_grid(python_process, grid12, tmp_path, postgres)


def test_workers_killed_ten_times_through_postgresql(  # type: ignore[no-untyped-def]
    python_process: PythonProcess, grid12, tmp_path: Path, postgres: str
) -> None:
    space, base = grid12
    kill_ten_times(python_process, space, base, tmp_path / "out", postgres)


def study_with(values: list[float], epochs: int) -> optuna.Study:
    """An in-memory study whose three earlier trials reported `values` at every epoch."""
    study = optuna.create_study(direction="maximize", pruner=tuning.make_pruner("median"))
    for value in values:
        steps = {step: value for step in range(1, epochs + 1)}
        study.add_trial(optuna.trial.create_trial(value=value, intermediate_values=steps))
    return study


def test_report_escapes_names_and_notes_the_plots_it_cannot_draw(tmp_path: Path) -> None:
    study = study_with([0.9], 2)
    plan = tuning.settings(resolve(), sampler="tpe", study="<b>x</b>", storage="sqlite:///:memory:", out=tmp_path)
    (tmp_path / "best_config.toml").write_text("note = '<script>alert(1)</script>'\n")
    rows = [{"rank": 1, "trial": 0, "state": "complete", "reason": "<i>why</i>"}]
    page = write_tuning_report(study, plan, rows, list(rows[0]), study.best_trial, None).read_text()
    body = page.split("</head>")[1]
    assert "<h1>Study &lt;b&gt;x&lt;/b&gt;</h1>" in body and "<td>&lt;i&gt;why&lt;/i&gt;</td>" in body
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body and "<script" not in body
    assert body.count("Not drawn: needs at least two complete trials.") == 4 and "final/report.html" not in body
    assert page.count("<script>") == 1 and "Plotly" in page, "Plotly.js inline, once"


@trains
def test_median_pruner_stops_a_trial_clearly_worse_than_the_median(tmp_path: Path) -> None:
    base = resolve(epochs=5, train_samples=2000, learning_rate=1e-5, optimizer="sgd", hidden_units=[32])
    study = study_with([0.95, 0.96, 0.97], 5)
    bad = tuning.fit_trial(study.ask(), base, {}, tmp_path / "bad")
    assert bad.pruned and bad.epochs == 2, "pruned at the first epoch after the warm-up"
    assert len((tmp_path / "bad" / "trials" / "0003" / "history.csv").read_text().splitlines()) == 3

    study = study_with([0.0, 0.0, 0.0], 5)
    kept = tuning.fit_trial(study.ask(), base, {}, tmp_path / "kept")
    assert not kept.pruned and kept.epochs == 5, "the same trial runs to the end when it beats the median"


@trains
def test_failed_trial_is_recorded_and_the_study_goes_on(files, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    space, base = files
    real = tuning.study.train

    def train(config, out, **kwargs):  # type: ignore[no-untyped-def]
        if config.hidden_units == [64] and config.learning_rate == 1e-2:
            raise MemoryError("out of memory (simulated)")
        return real(config, out, **kwargs)

    monkeypatch.setattr(tuning.study, "train", train)
    lines: list[str] = []
    plan = tuning.settings(resolve(base, epochs=1), space, "grid", "none", out=tmp_path / "out")
    result = tuning.tune(plan, lines.append)
    assert result.counts["complete"] == 3 and result.counts["fail"] == 1
    failed = [t for t in trials(tmp_path / "out") if t.state == TrialState.FAIL]
    assert failed[0].user_attrs["reason"] == "MemoryError: out of memory (simulated)"
    assert any("failed (MemoryError: out of memory (simulated))" in line for line in lines)
    assert result.rows[-1]["state"] == "fail" and result.rows[-1]["reason"].startswith("MemoryError")


@pytest.mark.parametrize(
    ("space", "sampler", "message"),
    [
        ("neurons = [1, 2]\n", "tpe", "'neurons' is not a setting"),
        ("dropout = []\n", "tpe", "'dropout' has an empty list"),
        ("learning_rate = { low = 0.1, high = 0.01 }\n", "tpe", "'learning_rate': low 0.1 is above high 0.01"),
        ("dropout = [0.1, 'high']\n", "tpe", "'dropout' must be a number, got 'high'"),
        ("dropout = 0.2\n", "tpe", "'dropout' must be a list of values or a range"),
        ("learning_rate = { low = 1e-4, high = 1e-2 }\n", "grid", "'learning_rate' is a range; the grid sampler"),
        ("dropout = [0.2, 1.5]\n", "random", "'dropout': dropout must be in [0, 1), got 1.5"),
        ("optimizer = { low = 1, high = 2 }\n", "tpe", "'optimizer' is not numeric"),
        ("model = ['dnn']\n", "tpe", "'model' cannot be tuned; set it with --model"),
        ("batch_size = [64, 64]\n", "grid", "'batch_size' lists 64 twice"),
        ("dropout = [0.1\n", "tpe", "not valid TOML"),
    ],
)
def test_malformed_space_is_rejected_naming_the_key(
    cli, tmp_path: Path, space: str, sampler: str, message: str
) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "space.toml"
    path.write_text(space)
    result = cli("tune", "--space", str(path), "--sampler", sampler, "--out", str(tmp_path / "out"))
    assert result.code == 2 and message in result.err, result.err
    assert len(result.err.strip().splitlines()) == 1
    assert not (tmp_path / "out" / "study.db").exists(), "rejected before any trial"


@pytest.mark.parametrize(
    ("storage", "message"),
    [
        ("postgresql://nobody@127.0.0.1:1/none", "--storage: cannot open postgresql://nobody@127.0.0.1:1/none"),
        ("postgresql://nobody:secret@127.0.0.1:1/none", "postgresql://nobody:***@127.0.0.1:1/none"),
        ("mysql://localhost/db", "--storage: mysql is not supported"),
        ("not a url", "is not a database URL"),
    ],
)
def test_bad_storage_is_one_line_and_exit_code_2(cli, tmp_path: Path, storage: str, message: str) -> None:  # type: ignore[no-untyped-def]
    result = cli("tune", "--storage", storage, "--out", str(tmp_path / "out"))
    assert result.code == 2 and message in result.err, result.err
    assert len(result.err.strip().splitlines()) == 1 and "secret" not in result.err


@pytest.mark.parametrize("path", sorted(tuning.SPACES.glob("*.toml")), ids=lambda p: p.name)
def test_shipped_spaces_are_valid(path: Path) -> None:
    model = path.stem.removesuffix("-grid")
    if model not in MODELS:
        pytest.skip(f"model {model!r} is not on this branch")
    sampler = "grid" if path.stem.endswith("-grid") else "tpe"
    space = tuning.read_space(path, resolve(model=model), sampler)
    if path.name == "dnn-grid.toml":
        assert len(tuning.grid_points(space, 42)) == 12


def test_unknown_sampler_names_the_option() -> None:
    with pytest.raises(ConfigError, match="--sampler: unknown value 'bayes'"):
        tuning.settings(resolve(), sampler="bayes")


@trains
def test_space_given_as_a_dict_is_checked_and_searched(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="space: 'neurons' is not a setting"):
        tuning.read_space({"neurons": [1, 2]}, resolve(), "grid")
    base = resolve(epochs=1, train_samples=1000, hidden_units=[16])
    space = {"learning_rate": [1e-3, 3e-3]}
    plan = tuning.settings(base, space=space, sampler="grid", trials=2, out=tmp_path, final_train=False)
    result = tuning.tune(plan)
    assert result.counts["complete"] == 2 and sorted(r["learning_rate"] for r in result.rows) == [1e-3, 3e-3]
    assert "given in Python" in (tmp_path / "report.html").read_text()


@pytest.mark.filterwarnings("ignore:Heartbeat of storage is supposed to be used with Study.optimize")
def test_a_trial_failed_by_another_worker_is_told_by_its_state_not_by_optunas_words(
    files: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another worker fails a trial running here when its heartbeat is late, and Optuna refuses the trial's end with a
    ValueError whose words are Optuna's to change: the worker reads the trial's state. Any other ValueError stays."""
    failed_elsewhere = True

    def optimize(study: optuna.Study, func: Callable[[optuna.Trial], float], **kwargs: object) -> None:
        trial = study.ask()
        func(trial)
        if failed_elsewhere:
            study.tell(trial, state=TrialState.FAIL)  # as the other worker's fail_stale_trials does
        raise ValueError(f"trial {trial.number} was already finished")  # not Optuna 5's words

    monkeypatch.setattr(optuna.Study, "optimize", optimize)
    monkeypatch.setattr(tuning.study, "fit_trial", lambda trial, *args: PruningCallback(trial))  # no training
    space, base = files
    plan = tuning.settings(resolve(base), space, "grid", "none", out=tmp_path / "out")
    with pytest.raises(TuningError, match="a trial running here was failed by another worker"):
        tuning.tune(plan)
    failed_elsewhere = False
    with pytest.raises(ValueError, match="already finished"):
        tuning.tune(plan)


def test_the_postgresql_lock_disposes_of_its_engine_when_its_block_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    disposed: list[bool] = []

    class Connection(contextlib.nullcontext[None]):
        def execute(self, *args: object) -> None:
            pass

    class Engine:
        def connect(self) -> Connection:
            return Connection()

        def dispose(self) -> None:
            disposed.append(True)

    monkeypatch.setattr(tuning.storage.sqlalchemy, "create_engine", lambda *args, **kwargs: Engine())
    url = tuning.storage.parse_url("postgresql://nobody@127.0.0.1/tune")
    with pytest.raises(RuntimeError, match="the block failed"), tuning.storage.lock(url, "open"):
        raise RuntimeError("the block failed")
    assert disposed == [True]
