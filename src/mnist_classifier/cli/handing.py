"""The commands that hand a model on: `serve` answers over HTTP, `export` writes it in another format."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ..config import Interval
from .common import ABOVE_ZERO, console, within

if TYPE_CHECKING:
    from ..server.processes import Settings

MAX_WORKERS = 2 * (os.cpu_count() or 1)  # more processes than that only share the same cores


def serve(
    model: Annotated[
        Path | None,
        typer.Argument(
            help="A run directory, an ensemble folder, a .keras file or bundled:NAME (default: the bundled fast CNN).",
            show_default=False,
        ),
    ] = None,
    host: Annotated[str, typer.Option(help="Address to listen on; 0.0.0.0 exposes it to the network.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.", callback=within(Interval(0, 65535)))] = 8000,
    max_upload_mb: Annotated[
        float,
        typer.Option("--max-upload-mb", help="Largest request body accepted.", callback=within(ABOVE_ZERO)),
    ] = 5.0,
    max_decode_mb: Annotated[
        float,
        typer.Option(
            "--max-decode-mb",
            callback=within(ABOVE_ZERO),
            help="Most memory one image may take once decoded, judged from its header before decoding (width x"
            " height x 1 byte for grey, 1-bit and palette, 2 for 16-bit, 4 for colour); larger ones get 413."
            " JPEGs decode reduced, so large photos fit.",
        ),
    ] = 64.0,
    access_log: Annotated[bool, typer.Option("--access-log", help="Log every request.")] = False,
    workers: Annotated[
        int,
        typer.Option(
            help="Processes answering on the port, each with its own model: for machines with more cores.",
            callback=within(Interval(1, MAX_WORKERS)),
        ),
    ] = 1,
    ray: Annotated[
        bool,
        typer.Option(
            "--ray",
            help="Run the app as a Ray Serve deployment (the extra mnist-classifier[ray]): replicas on this machine"
            " or on a Ray cluster (--address).",
        ),
    ] = False,
    replicas: Annotated[
        int | None,
        typer.Option(
            help="With --ray: this many replicas, each with its own model [default: 1].",
            callback=within(Interval(1)),
        ),
    ] = None,
    min_replicas: Annotated[
        int | None,
        typer.Option(
            "--min-replicas", help="With --ray: autoscale from this many replicas.", callback=within(Interval(0))
        ),
    ] = None,
    max_replicas: Annotated[
        int | None,
        typer.Option(
            "--max-replicas", help="With --ray: autoscale up to this many replicas.", callback=within(Interval(1))
        ),
    ] = None,
    address: Annotated[
        str | None,
        typer.Option(
            envvar="RAY_ADDRESS",
            help="With --ray: join the Ray cluster at this address (HOST:PORT, or auto for the one `ray start`"
            " began on this machine) instead of starting a local instance.",
        ),
    ] = None,
) -> None:
    """Serve the model over HTTP: POST /predict, GET /model, GET /health, docs at /docs, a drawing page at /.
    Without a MODEL, the bundled fast CNN answers."""
    from ..errors import ConfigError
    from ..server.processes import FACTORY, Settings
    from .models import chosen, label

    scaling = {"--replicas": replicas, "--min-replicas": min_replicas, "--max-replicas": max_replicas}
    if not ray and (given := [name for name, value in scaling.items() if value is not None]):
        raise ConfigError(f"{given[0]} needs --ray (replicas of Ray Serve); for processes on one machine use --workers")
    if ray and workers > 1:
        raise ConfigError("--workers is for one machine without Ray; with --ray give --replicas")
    if ray and (importlib.util.find_spec("ray") is None or importlib.util.find_spec("ray.serve") is None):
        raise ConfigError("--ray needs Ray Serve, which is not installed: pip install 'mnist-classifier[ray]'")

    named = model
    model = chosen(model, "serving")
    said = label(named, model)

    settings = Settings(str(model.resolve()), int(max_upload_mb * 2**20), int(max_decode_mb * 2**20))
    options = {"host": host, "port": port, "access_log": access_log, "log_level": "warning"}
    if workers > 1 or ray:
        from ..runs import ensemble_members, model_file

        for member in ensemble_members(model) or [model]:
            model_file(member)  # a path that holds no model is refused here, not by each process or replica
    if ray:
        serve_on_ray(settings, host, port, address, replicas, min_replicas, max_replicas, said)
        return
    import uvicorn

    if workers > 1:
        settings.pass_on()
        console.print(
            f"serving {said} on http://{host}:{port}/ with {workers} processes; Ctrl+C stops",
            highlight=False,
        )
        # a process loading TensorFlow on busy cores may answer uvicorn's health check late: 30 s, not 5
        uvicorn.run(FACTORY, factory=True, workers=workers, timeout_worker_healthcheck=30, **options)  # type: ignore[arg-type]
        return
    from ..server import create_app
    from ..server.app import served_predictor

    application = create_app(served_predictor(model), settings.max_upload_bytes, settings.max_decode_bytes)
    console.print(f"serving {said} on http://{host}:{port}/ (docs at /docs); Ctrl+C stops", highlight=False)
    uvicorn.run(application, **options)  # type: ignore[arg-type]


def serve_on_ray(
    settings: Settings,
    host: str,
    port: int,
    address: str | None,
    replicas: int | None,
    min_replicas: int | None,
    max_replicas: int | None,
    said: str,
) -> None:
    """`serve --ray`: Ray is imported only here (serve has said what to install where it is absent)."""
    from ..server import ray_serve

    scale = ray_serve.Scale(replicas, min_replicas, max_replicas)

    def say(line: str) -> None:
        console.print(f"{said}: {line}", highlight=False)
        console.file.flush()  # the line a script waits for, though the command runs on

    ray_serve.run(settings, host, port, scale, address, say)


def export(
    format: Annotated[str, typer.Option("--format", help="keras, savedmodel, onnx or tflite.")],
    out: Annotated[Path, typer.Option(help="File or folder to write (must not exist).")],
    run_dir: Annotated[
        Path | None,
        typer.Argument(
            help="A run directory written by train, or bundled:NAME (default: the bundled fast CNN).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Export a run's model, then check the export gives the original's predictions on the whole test set."""
    from ..api import load_run
    from .models import chosen

    check = load_run(chosen(run_dir, "exporting")).export(format, out)
    console.print(f"wrote {check.path} ({check.format})", highlight=False)
    console.print(
        f"check on the {check.dataset} test set: {check.agree:,} of {check.n:,} predictions equal the original's,"
        f" largest probability difference {check.max_difference:.1e}",
        highlight=False,
    )
