"""The FastAPI application: `create_app(predictor)` wires the routes, the static page and the error answers, and its
lifespan owns what requests share (the predictor, its batcher, the decoding pools, the admission of requests).

The model is loaded once (a Predictor); requests that arrive while it is busy are batched into its next call, which
runs on the event loop when the batch is small and in one model thread otherwise (batcher.py). Images are decoded
in pools as large as the CPU count, each within a memory budget (a small file that already is an MNIST digit is read
on the event loop: reading.py); beyond `max_queue` requests in flight, the server answers 503 at once.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.metadata import version
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline

from ..errors import ImageError, ImageTooLargeError, NotAnImageError
from ..inference import Predictor, load_predictor
from ..preprocess import MAX_DECODE_BYTES
from .admission import MAX_IN_FLIGHT, RETRY_AFTER_SECONDS, Admission, Busy
from .batcher import MAX_BATCH, Batcher, BatchFailed
from .reading import Decoding
from .routes import STATIC, Serving, router


def served_predictor(model: Path) -> Predictor:
    """The model as a server runs it: its ONNX copy in onnxruntime (TensorFlow only to convert it the first time, or
    where it cannot be converted), one thread a call, which does not spin between calls: a server's many one-image
    calls cost least that way, and concurrent requests are batched (batcher.py) rather than split over threads."""
    return load_predictor(model, fast=True, threads=1)


def create_app(
    predictor: Predictor,
    max_upload_bytes: int = 5 * 1024 * 1024,
    max_decode_bytes: int = MAX_DECODE_BYTES,
    threads: int | None = None,
    max_queue: int = MAX_IN_FLIGHT,
    max_batch: int = MAX_BATCH,
) -> FastAPI:
    """The API around one loaded model. Request bodies over `max_upload_bytes` get 413, and so do images whose
    decoded pixels would take more than `max_decode_bytes` (judged from their header); `threads` images (default:
    one per core) are decoded at once; beyond `max_queue` requests in flight, 503 with Retry-After; the model sees
    at most `max_batch` images a call."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        batcher = Batcher(predictor, max_batch)
        app.state.predictor = predictor
        app.state.admission = Admission(max_queue)
        app.state.serving = Serving(
            predictor, batcher, Decoding.pools(max_decode_bytes, threads), app.state.admission, max_upload_bytes
        )
        try:
            yield
        finally:
            await batcher.close()

    app = FastAPIOffline(
        title="mnist-classifier",
        summary=f"Reads handwritten digits with the model {predictor.name}.",
        version=version("mnist-classifier"),  # pyproject.toml's, as installed
        lifespan=lifespan,
    )
    app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.add_exception_handler(Busy, busy)
    app.add_exception_handler(BatchFailed, batch_failed)
    app.add_exception_handler(RequestValidationError, invalid_request)
    app.add_exception_handler(ImageError, image_error)
    return app


async def busy(request: Request, error: Exception) -> JSONResponse:
    return JSONResponse(
        {"detail": f"server busy ({error}); retry after {RETRY_AFTER_SECONDS} s"},
        503,
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


async def batch_failed(request: Request, error: Exception) -> JSONResponse:
    return JSONResponse({"detail": "the model failed on this request's batch (logged); try again"}, 500)


async def invalid_request(request: Request, error: Exception) -> JSONResponse:
    """422 with the first problem of the query or the JSON body (bodies.parse_json) as one line: where it is, then
    what is wrong."""
    assert isinstance(error, RequestValidationError)
    first = error.errors()[0] if error.errors() else {}
    where = " ".join(str(part) for part in first.get("loc", ()))
    return JSONResponse({"detail": f"{where}: {first.get('msg', 'invalid')}".splitlines()[0]}, 422)


async def image_error(request: Request, error: Exception) -> JSONResponse:
    status = 413 if isinstance(error, ImageTooLargeError) else 415 if isinstance(error, NotAnImageError) else 422
    return JSONResponse({"detail": str(error)}, status)
