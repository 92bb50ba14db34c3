"""Time `mnist-classifier COMMAND --help` for every command, each in a fresh process (the target: under 1 second).

    python benchmarks/cli.py [--repeats 5]

Prints one row per command: the median and the slowest wall-clock time of the whole process, start-up included.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

from mnist_classifier.cli import command_words


def seconds(words: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "mnist_classifier", *words, "--help"], capture_output=True, check=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="Fresh processes per command.")
    repeats = parser.parse_args().repeats
    print(f"{'command':<16} {'median s':>9} {'slowest s':>10}")
    for words in [[], *command_words()]:
        times = [seconds(words) for _ in range(repeats)]
        print(f"{' '.join(words) or '(none)':<16} {statistics.median(times):>9.2f} {max(times):>10.2f}")


if __name__ == "__main__":
    main()
