"""`serve --ray`: the same FastAPI app (create_app) as a Ray Serve deployment of replicas, each with its own model.

Imported only when `--ray` is given (Ray is the optional extra `mnist-classifier[ray]`). Each replica builds the app
at its start through Serve's late-bound ingress (`__serve_build_asgi_app__`), so the model is loaded once per replica
and never pickled; every answer carries the replica's id in the `X-Replica` header (GET /model has its process id).
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import ray
from fastapi import FastAPI
from ray import serve
from ray.serve import Application
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .. import bundled
from ..errors import ConfigError, MnistClassifierError, first_line
from ..preprocess import MAX_DECODE_BYTES
from ..runs import ensemble_members, model_file
from .admission import MAX_IN_FLIGHT
from .processes import Settings

APP_NAME = "mnist-classifier"
REPLICA_HEADER = "x-replica"
# A replica takes its admission's limit of POST /predict requests and a few GETs beside; the proxies queue at most as
# many again before answering 503, so the requests held anywhere stay bounded.
MAX_ONGOING = MAX_IN_FLIGHT + 8
MAX_QUEUED = MAX_IN_FLIGHT
REACH_SECONDS = 5
BUILD_DEFAULTS = {"max_upload_mb": 5.0, "max_decode_mb": MAX_DECODE_BYTES / 2**20}  # `serve`'s defaults


class ReplicaHeader:
    """ASGI middleware: adds `X-Replica: ID` to every HTTP answer, so a client sees which replica answered."""

    def __init__(self, app: ASGIApp, replica: str) -> None:
        self.app, self.replica = app, replica

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_marked(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message).append(REPLICA_HEADER, self.replica)
            await send(message)

        await self.app(scope, receive, send_marked)


class Replica:
    """One replica: the app of `serve` around its own model (served_predictor), built once at the replica's start."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def __serve_build_asgi_app__(self) -> FastAPI:
        from .app import create_app, served_predictor

        settings = self.settings
        app = create_app(served_predictor(Path(settings.model)), settings.max_upload_bytes, settings.max_decode_bytes)
        app.add_middleware(ReplicaHeader, replica=serve.get_replica_context().replica_id.unique_id)
        return app


# serve.deployment(cls) returns a Deployment, though its annotation says it returns a decorator
DEPLOYMENT = cast(serve.Deployment, serve.deployment(serve.ingress()(Replica), name="Replica"))


@dataclass(frozen=True)
class Scale:
    """How many replicas: a fixed number, or autoscaling bounds (Serve's autoscaler on requests in flight)."""

    replicas: int | None = None
    min_replicas: int | None = None
    max_replicas: int | None = None

    def __post_init__(self) -> None:
        bounds = (self.min_replicas, self.max_replicas)
        if self.replicas is not None and any(b is not None for b in bounds):
            raise ConfigError("give --replicas N or --min-replicas/--max-replicas, not both")
        if None not in bounds and bounds[0] > bounds[1]:  # type: ignore[operator]
            raise ConfigError(f"--min-replicas {bounds[0]} is above --max-replicas {bounds[1]}")

    @property
    def autoscaling(self) -> bool:
        return self.min_replicas is not None or self.max_replicas is not None

    @property
    def most(self) -> int:
        """The most replicas this scale may run."""
        if self.autoscaling:
            return self.max_replicas if self.max_replicas is not None else max(self.min_replicas or 1, 1)
        return self.replicas or 1

    def options(self) -> dict[str, Any]:
        if not self.autoscaling:
            return {"num_replicas": self.replicas or 1}
        low = self.min_replicas if self.min_replicas is not None else 1
        return {"autoscaling_config": {"min_replicas": low, "max_replicas": self.most, "initial_replicas": max(low, 1)}}

    def describe(self) -> str:
        if not self.autoscaling:
            n = self.replicas or 1
            return f"{n} replica{'s' * (n != 1)}"
        return f"{self.min_replicas if self.min_replicas is not None else 1} to {self.most} replicas (autoscaling)"


def application(settings: Settings, scale: Scale | None = None) -> Application:
    """The deployment bound to its settings, with the request bounds of MAX_ONGOING and MAX_QUEUED and, when given,
    the scale (else the one a Serve config file sets, or one replica)."""
    options = scale.options() if scale is not None else {}
    deployment = DEPLOYMENT.options(max_ongoing_requests=MAX_ONGOING, max_queued_requests=MAX_QUEUED, **options)
    return deployment.bind(settings)


def build(args: dict[str, str]) -> Application:
    """The application for Ray's own tools (`serve run`, `serve deploy`, a KubeRay RayService): import path
    `mnist_classifier.server.ray_serve:build`; args `model` (bundled:NAME, the default bundled:cnn-fast, or a path
    readable on every node), `max_upload_mb`, `max_decode_mb`; replicas come from the config's deployment `Replica`."""
    if unknown := sorted(set(args) - {"model", *BUILD_DEFAULTS}):
        raise ConfigError(f"unknown argument {unknown[0]!r}; give model, max_upload_mb or max_decode_mb")
    try:
        upload, decode = (float(args.get(name, default)) for name, default in BUILD_DEFAULTS.items())
    except ValueError as e:
        raise ConfigError(f"max_upload_mb and max_decode_mb are numbers of MiB ({first_line(e)})") from None
    model = bundled.resolve(args.get("model"))
    for member in ensemble_members(model) or [model]:
        model_file(member)  # a path that holds no model is refused here, not by each replica
    return application(Settings(str(model.resolve()), int(upload * 2**20), int(decode * 2**20)))


def check_port_free(host: str, port: int) -> None:
    """A local instance's proxy would retry a taken port forever: refuse it before starting Ray."""
    with socket.socket() as s:
        try:
            s.bind((host, port))
        except OSError as e:
            raise ConfigError(f"cannot listen on {host}:{port} ({first_line(e)}); choose another --port") from None


def check_reachable(address: str) -> None:
    """Ray waits minutes for a cluster that does not answer: try its port first (`auto` is looked up locally)."""
    if address == "auto":
        return
    host, _, port = address.removeprefix("ray://").rpartition(":")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=REACH_SECONDS).close()
    except (OSError, ValueError) as e:
        raise ConfigError(
            f"cannot reach the Ray cluster at {address!r} ({first_line(e)}); give HOST:PORT of a running"
            " `ray start --head`, or auto"
        ) from None


def start(address: str | None, scale: Scale) -> bool:
    """Join the Ray cluster at `address`, else start a local instance with room for every replica (each reserves
    one CPU, Serve's default; a machine with fewer cores shares them). True when the instance is our own."""
    own = address is None
    extra = {"num_cpus": max(os.cpu_count() or 1, scale.most), "include_dashboard": False} if own else {}
    try:
        ray.init(address=address or "local", logging_level=logging.WARNING, configure_logging=True, **extra)  # type: ignore[arg-type]
    except (ConnectionError, ValueError, RuntimeError) as e:
        where = "start a local Ray instance" if own else f"join the Ray cluster at {address!r}"
        raise ConfigError(f"cannot {where} ({first_line(e)})") from None
    return own


def run(
    settings: Settings, host: str, port: int, scale: Scale, address: str | None, say: Callable[[str], None]
) -> None:
    """Deploy the app with `scale` replicas on Ray (a local instance, or the cluster at `address`) listening on
    host:port, `say` where once it answers, and keep it up until SIGINT or SIGTERM; then delete it and, if nothing
    else is served there, stop Serve (and the local instance)."""
    if address is None:
        check_port_free(host, port)
    else:
        check_reachable(address)
    own = start(address, scale)
    stop = threading.Event()  # set by SIGINT or SIGTERM, whose handlers are ours once Ray has installed its own
    previous = {sig: signal.signal(sig, lambda signum, frame: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    logging.getLogger("ray.serve").setLevel(logging.WARNING)
    try:
        serve.start(http_options={"host": host, "port": port}, logging_config={"log_level": "WARNING"})
        try:
            serve.run(
                application(settings, scale), name=APP_NAME, route_prefix="/", logging_config={"log_level": "WARNING"}
            )
        except Exception as e:  # Serve reports a replica that fails to start as one of several types
            raise MnistClassifierError(f"Ray Serve could not start the replicas ({first_line(e)})") from None
        say(f"serving on http://{host}:{port}/ with {scale.describe()} on Ray Serve; Ctrl+C stops")
        stop.wait()
    finally:
        shutdown(own)
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def shutdown(own: bool) -> None:
    """Delete our application; stop Serve when no other application is left, and the Ray instance if it is ours."""
    try:
        serve.delete(APP_NAME)
        if own or not serve.status().applications:
            serve.shutdown()
    finally:
        ray.shutdown()
