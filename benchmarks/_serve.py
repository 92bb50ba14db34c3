"""What the serving benchmarks share: the command line, a default DNN to serve, `serve` (or a bare FastAPI app that only
reads the upload) started on 127.0.0.1, and the hostile PNGs both send.

Not a benchmark itself (`make bench` leaves out benchmarks/_*.py)."""

from __future__ import annotations

import contextlib
import io
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from fastapi import FastAPI, UploadFile
from PIL import Image, ImageDraw

CLI = [sys.executable, "-m", "mnist_classifier"]
HOST = "127.0.0.1"


def train_model(folder: Path) -> Path:
    """The default DNN, trained through the command line into folder/dnn."""
    run = folder / "dnn"
    subprocess.run([*CLI, "train", "--out", str(run)], check=True, stdout=subprocess.DEVNULL)
    return run


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def bare_app() -> FastAPI:
    """The HTTP stack alone, for comparison: a FastAPI app whose POST /predict only reads the multipart `file`
    (FastAPI's own UploadFile handling) and answers a small JSON, and whose GET /health answers."""
    app = FastAPI()

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/predict")
    async def predict(file: UploadFile) -> dict[str, int]:
        return {"bytes": len(await file.read())}

    return app


BARE = (
    "import uvicorn, sys; uvicorn.run('_serve:bare_app', factory=True, host=sys.argv[1], port=int(sys.argv[2]),"
    " access_log=False, log_level='warning')"
)  # the uvicorn settings of `serve` (cli/handing.py)


@contextlib.contextmanager
def served(run: Path | None, port: int, *options: str) -> Iterator[subprocess.Popen[bytes]]:
    """`mnist-classifier serve RUN OPTIONS` on HOST:port (with no run, the bare app served the same way), yielded once
    /health answers (at most 2 minutes); stopped after."""
    if run is None:
        here = str(Path(__file__).parent)
        env = os.environ | {"PYTHONPATH": os.pathsep.join(filter(None, [here, os.environ.get("PYTHONPATH")]))}
        command = [sys.executable, "-c", BARE, HOST, str(port)]
    else:
        env, command = None, [*CLI, "serve", str(run), "--port", str(port), *options]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, env=env)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                urllib.request.urlopen(f"http://{HOST}:{port}/health", timeout=1)
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError("the server did not start") from None
                time.sleep(0.2)
        yield server
    finally:
        server.terminate()
        server.wait(30)


def png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def hostile_pngs() -> dict[str, bytes]:
    """A 7000x7000 transparent RGBA PNG (200 KB; refused from its header) and a 16-megapixel 1-bit PNG (a few KB;
    decoded within the budget, reduced, read)."""
    rgba = Image.new("RGBA", (7000, 7000), (0, 0, 0, 0))
    ImageDraw.Draw(rgba).line([(2500, 1500), (3500, 5500)], fill=(20, 20, 20, 255), width=60)
    bits = Image.new("1", (4000, 4000), 0)
    ImageDraw.Draw(bits).line([(2000, 1000), (2000, 3000)], fill=1, width=40)
    return {"rgba-7000x7000": png(rgba), "1bit-16mp": png(bits)}
