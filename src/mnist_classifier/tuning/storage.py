"""The study database: Optuna's RDBStorage with heartbeats, and locks that every worker of the database shares.

SQLite runs each transaction as BEGIN IMMEDIATE, so reading a WAITING trial and marking it RUNNING is one atomic
step (in sqlite3's default mode two workers can pop the same trial, optuna#4002). A lock is released by the
operating system (SQLite: a lock held on a file beside the database) or by the server (PostgreSQL: an advisory
lock) when its holder dies, so a killed worker never blocks the others.
"""

from __future__ import annotations

import contextlib
import hashlib
import sqlite3
import warnings
from collections.abc import Iterator
from typing import Any

import optuna
import sqlalchemy
from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback

from ..errors import ConfigError, TuningError

HEARTBEAT_INTERVAL = 2
LOCK_TIMEOUT = 10
GRACE_PERIOD = 25
OPEN_WAIT = 120

with warnings.catch_warnings():
    warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
    retry_stale = RetryHeartbeatStaleTrialCallback()


def parse_url(url: str) -> sqlalchemy.URL:
    """A SQLite file or PostgreSQL URL; anything else is one line naming --storage."""
    try:
        parsed = sqlalchemy.make_url(url)
    except sqlalchemy.exc.ArgumentError:
        raise ConfigError(
            f"--storage: {url!r} is not a database URL; use sqlite:///FILE or postgresql://HOST/DB"
        ) from None
    backend = parsed.get_backend_name()
    if backend not in ("sqlite", "postgresql"):
        raise ConfigError(f"--storage: {backend} is not supported; use sqlite:///FILE or postgresql://HOST/DB")
    if backend == "sqlite" and parsed.database in (None, "", ":memory:"):
        raise ConfigError("--storage: give SQLite a database file, as in sqlite:///runs/study.db")
    return parsed


def cannot_open(url: sqlalchemy.URL, error: BaseException) -> TuningError:
    reason = str(getattr(error, "orig", None) or error).strip().splitlines()[0]
    shown = url.render_as_string(hide_password=True)
    return TuningError(f"--storage: cannot open {shown} ({reason}); check the URL and that the server runs")


def open_storage(url: sqlalchemy.URL) -> RDBStorage:
    """Optuna's storage with heartbeats, its tables created if missing (call it under `lock(url, "open")`, so
    workers starting together do not race to create them). A heartbeat waits at most LOCK_TIMEOUT for a lock, so a
    live trial is at most HEARTBEAT_INTERVAL + LOCK_TIMEOUT behind, well inside GRACE_PERIOD."""
    sqlite = url.get_backend_name() == "sqlite"
    connect_args: dict[str, Any] = (
        {"timeout": LOCK_TIMEOUT, "isolation_level": None}
        if sqlite
        else {"connect_timeout": 10, "options": f"-c lock_timeout={LOCK_TIMEOUT * 1000}"}
    )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            storage = RDBStorage(
                url.render_as_string(hide_password=False),
                engine_kwargs={"connect_args": connect_args},
                heartbeat_interval=HEARTBEAT_INTERVAL,
                grace_period=GRACE_PERIOD,
                heartbeat_stale_trial_callback=retry_stale,
            )
    except (sqlalchemy.exc.SQLAlchemyError, optuna.exceptions.StorageInternalError, RuntimeError) as e:
        raise cannot_open(url, e) from None
    if sqlite:
        sqlalchemy.event.listen(storage.engine, "begin", lambda c: c.exec_driver_sql("BEGIN IMMEDIATE"))
    return storage


@contextlib.contextmanager
def lock(url: sqlalchemy.URL, name: str, wait: bool = True) -> Iterator[bool]:
    """Hold the database's lock `name` for the block; yield False at once when `wait` is off and another holds it."""
    try:
        if url.get_backend_name() == "sqlite":
            connection = sqlite3.connect(f"{url.database}.{name}.lock", OPEN_WAIT if wait else 0, isolation_level=None)
        else:
            engine = sqlalchemy.create_engine(url, poolclass=sqlalchemy.NullPool, connect_args={"connect_timeout": 10})
            pg = engine.connect()
    except (sqlite3.Error, sqlalchemy.exc.SQLAlchemyError) as e:
        raise cannot_open(url, e) from None
    if url.get_backend_name() == "sqlite":
        with contextlib.closing(connection):
            try:
                connection.execute("BEGIN EXCLUSIVE")
            except sqlite3.OperationalError as e:
                if wait:
                    raise cannot_open(url, e) from None
                yield False
                return
            yield True
        return
    key = int.from_bytes(hashlib.sha256(f"mnist-classifier {name}".encode()).digest()[:8], "big", signed=True)
    try:
        with pg:
            if wait:
                pg.execute(sqlalchemy.text("SELECT pg_advisory_lock(:key)"), {"key": key})
                yield True
            else:
                yield bool(pg.execute(sqlalchemy.text("SELECT pg_try_advisory_lock(:key)"), {"key": key}).scalar())
    finally:
        engine.dispose()
