"""Process-level helpers the modules share: durable file writes, starting TensorFlow quietly with its threads, and
how a duration reads (here, not in report/, so that the light commands such as `runs` can say it without importing
the report's plotting)."""

from __future__ import annotations

import contextlib
import json
import math
import os
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .errors import ConfigError, WriteError


def fsync(path: Path) -> None:
    """Flush a file's or a folder's content to the disk, so that a power cut cannot lose or empty it."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it onto `path` only if the block succeeds. The file is on the
    disk before the rename and the rename is on the disk after it (fsync of the file, then of its folder), so after a
    power cut `path` holds the old content or the new, never an empty or partial file."""
    tmp_path = path.with_name(f".{path.stem}.{uuid.uuid4().hex[:8]}.tmp{path.suffix}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        yield tmp_path
        fsync(tmp_path)
        os.replace(tmp_path, path)
        fsync(path.parent)
    except OSError as e:  # a full disk, a read-only folder: one line, and nothing half-written left
        raise WriteError(
            f"cannot write {path} ({e.strerror or e}); free some space or choose a folder you can write to"
        ) from None
    finally:
        tmp_path.unlink(missing_ok=True)


def create_folder(path: Path, option: str, exist_ok: bool = True) -> None:
    """mkdir -p for a folder a user named with `option`; a file in the way or no permission is one line. With
    `exist_ok` False an existing folder raises FileExistsError (to pick another name)."""
    try:
        path.mkdir(parents=True, exist_ok=exist_ok)
    except FileExistsError:
        if not exist_ok and path.is_dir():
            raise
        raise ConfigError(f"{option}: {path} is a file; choose a folder") from None
    except OSError as e:
        raise ConfigError(f"{option}: cannot create {path} ({e.strerror}); choose a folder you can write to") from None


def write_bytes(path: Path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_text(path: Path, text: str) -> None:
    write_bytes(path, text.encode())


def write_json(path: Path, obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=2) + "\n")


def import_tensorflow_quietly() -> None:
    """Import TensorFlow and Keras with its C++ logging off (TF_CPP_MIN_LOG_LEVEL=3 unless the user set it) and file
    descriptor 2 closed: their C++ start-up writes lines to stderr (absl's "before InitializeLog" warning, oneDNN's
    notice) that TF_CPP_MIN_LOG_LEVEL does not silence. A Python exception from the import still surfaces, after
    stderr is back."""
    if "tensorflow" in sys.modules:
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sys.stderr.flush()
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        import keras  # noqa: F401
        import tensorflow  # noqa: F401
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def set_threads(threads: int) -> bool:
    """Run TensorFlow's ops on `threads` cores; False when TensorFlow has already started in this process, which
    fixes its thread pools for good."""
    import_tensorflow_quietly()
    import tensorflow as tf

    threading = tf.config.threading
    if threading.get_intra_op_parallelism_threads() == threads == threading.get_inter_op_parallelism_threads():
        return True
    try:
        threading.set_intra_op_parallelism_threads(threads)
        threading.set_inter_op_parallelism_threads(threads)
    except RuntimeError:
        return False
    return True


def format_duration(seconds: float | None) -> str:
    """A duration as pages and the terminal show it: 38.2 s, 4 min 05 s, 1 h 02 min; "—" for none (None or NaN)."""
    if seconds is None or math.isnan(seconds):
        return "—"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes} min {secs:02d} s" if minutes < 60 else f"{minutes // 60} h {minutes % 60:02d} min"
