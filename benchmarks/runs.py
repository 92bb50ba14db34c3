"""Time `mnist-classifier runs` over 200 run folders (the target: under 2 seconds), each call a fresh process.

    python benchmarks/runs.py [--run RUN] [--folders 200] [--repeats 5]

The folders are copies of one real run's small files (config.json, metrics.json, history.csv,
confusion_matrix.csv), every tenth left unfinished and every twentieth with a truncated config.json, as a runs folder
collects them; without --run, a tiny run (one epoch on 2,000 images) is trained first into a temporary folder. Prints
the median and slowest wall-clock time of the whole process, start-up included, for the listing, a sorted and
filtered listing, and `mc.runs()` (the DataFrame), and fails if any of them imported TensorFlow.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

FILES = ("config.json", "metrics.json", "history.csv", "confusion_matrix.csv")
CLI = (
    "import sys, json\nfrom mnist_classifier.cli import main\n"
    "sys.argv = ['mnist-classifier', *json.loads(sys.argv[1])]\n"
    "try:\n    main()\nexcept SystemExit as e:\n    assert e.code in (0, None), e.code\n"
    "print('tensorflow' in sys.modules, file=sys.stderr)"
)
API = (
    "import sys\nimport mnist_classifier as mc\ntable = mc.runs(sys.argv[1])\nassert len(table) >= 200, len(table)\n"
    "print('tensorflow' in sys.modules, file=sys.stderr)"
)


def make_folders(run: Path, out: Path, count: int) -> None:
    """`count` run folders copied from `run`'s small files, some unfinished or half-written."""
    for i in range(count):
        folder = out / f"{run.name}-{i:04d}"
        folder.mkdir(parents=True)
        for name in FILES:
            if (run / name).is_file():
                shutil.copyfile(run / name, folder / name)
        if i % 10 == 9:
            config = json.loads((folder / "config.json").read_text())
            config["meta"]["status"] = "training"
            (folder / "config.json").write_text(json.dumps(config))
            (folder / "metrics.json").unlink(missing_ok=True)
        if i % 20 == 19:
            (folder / "config.json").write_text((folder / "config.json").read_text()[:100])


def tiny_run(out: Path) -> Path:
    import mnist_classifier as mc

    return mc.train(epochs=1, train_samples=2000, out=out / "tiny", verbose=0).path


def timed(args: list[str]) -> float:
    start = time.perf_counter()
    done = subprocess.run([sys.executable, *args], capture_output=True, text=True)
    took = time.perf_counter() - start
    if done.returncode or done.stderr.strip().splitlines()[-1:] != ["False"]:
        raise SystemExit(f"{args[2:]}: exit {done.returncode}, TensorFlow imported or an error: {done.stderr[-500:]}")
    return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, help="A run folder to copy (default: train a tiny one).")
    parser.add_argument("--folders", type=int, default=200, help="Run folders to list.")
    parser.add_argument("--repeats", type=int, default=5, help="Fresh processes per case.")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        run = args.run or tiny_run(Path(tmp))
        folder = Path(tmp) / "runs"
        make_folders(run, folder, args.folders)
        cases = {
            "runs FOLDER": ["-c", CLI, json.dumps(["runs", str(folder)])],
            "runs FOLDER --sort accuracy --status evaluated": [
                "-c", CLI, json.dumps(["runs", str(folder), "--sort", "accuracy", "--status", "evaluated"])
            ],
            "mc.runs(FOLDER)": ["-c", API, str(folder)],
        }  # fmt: skip
        print(f"{args.folders} run folders copied from {run.name}")
        print(f"{'case':<48} {'median s':>9} {'slowest s':>10}")
        for name, case in cases.items():
            times = [timed(case) for _ in range(args.repeats)]
            print(f"{name:<48} {statistics.median(times):>9.2f} {max(times):>10.2f}")


if __name__ == "__main__":
    main()
