"""FastAPI application: POST /predict, GET /model, GET /health, the docs, and the drawing page at /.

The model is loaded once (a Predictor) and called from one worker thread; requests that arrive
while it is busy are batched into its next call, so concurrent requests are safe and cheap.
Images are decoded in pools as large as the CPU count, never on the event loop, each within a
memory budget; small images (digits, photos that JPEG decodes reduced) have their own pool, so large ones
cannot delay them; when more requests are in flight than the queue holds, the server answers 503 at once.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import functools
import io
import json
import logging
import os
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

import anyio
import numpy as np
from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline
from PIL import Image
from pydantic import BaseModel, Field

from ..calibration import Calibration, overall, threshold, with_thresholds
from ..errors import ConfigError, ImageError, ImageTooLargeError, NotAnImageError
from ..inference import Judgement, Predictor, judgement
from ..preprocess import MAX_DECODE_BYTES, decoded_bytes, load_digits, open_image

STATIC = Path(__file__).parent / "static"
MAX_QUEUE = 64  # requests in flight at once (reading, decoding, waiting for the model); more get 503
MAX_BATCH = 64  # images in one call of the model
SMALL_IMAGE_BYTES = 4 * 2**20  # images that decode to at most this many bytes have a pool of their own
RETRY_AFTER_SECONDS = 1
log = logging.getLogger(__name__)


Verdict = Literal["digit", "uncertain", "not_a_digit"]  # calibration.VERDICTS
VERDICT = (
    "digit: answered; uncertain: a digit, but its calibrated confidence is below the confidence threshold (two"
    " classes close); not_a_digit: unlike the digits the model knows (typicality below the reject threshold)."
    " With reject=false, always digit."
)


class Digit(BaseModel):
    digit: str = Field(description="The most probable class.")
    verdict: Verdict = Field(description=VERDICT)
    confidence: float = Field(description="The digit's calibrated probability.")
    probabilities: list[float] = Field(description="Every class's calibrated probability (temperature-scaled).")
    input: str | None = Field(None, description="The 28x28 image fed to the model (base64 PNG), on request.")


class Number(BaseModel):
    number: str
    verdict: Verdict = Field(description="not_a_digit if any digit is, else uncertain if any digit is, else digit.")
    confidence: float = Field(description="The product of the digits' confidences.")
    digits: list[Digit]


class ModelInfo(BaseModel):
    name: str
    architecture: str
    dataset: str | None
    test_accuracy: float | None
    trained: str | None
    input_shape: list[int]
    classes: list[str]
    parameters: int
    calibrated: bool = Field(description="Whether the thresholds were fitted for this model (else defaults).")
    reject_threshold: float = Field(description="Not a digit below this typicality, unless a request gives its own.")
    confidence_threshold: float = Field(
        description="Not sure below this calibrated confidence, unless a request gives its own."
    )


class Health(BaseModel):
    status: str


class Problem(BaseModel):
    detail: str


def problem(description: str, headers: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"model": Problem, "description": description} | ({"headers": headers} if headers else {})


PREDICT_RESPONSES: dict[int | str, dict[str, Any]] = {
    413: problem("The body is over the upload limit, or its image would take more memory to decode than allowed."),
    415: problem("The content type is not an image, multipart or JSON, or the bytes are not an image."),
    422: problem("The image is corrupt or holds no digit (a blank image), or the JSON or a parameter is invalid."),
    500: problem("The model failed on the batch this request was in; the failure is logged."),
    503: problem(
        "Too many requests in flight; try again after Retry-After seconds.",
        {"Retry-After": {"description": "Seconds to wait before retrying.", "schema": {"type": "integer"}}},
    ),
}


class Busy(Exception):
    """The server holds as many requests as its queue allows."""


class BatchFailed(Exception):
    """The model (or assembling its batch) raised; every request of that batch gets 500."""


PREDICT_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {"file": {"type": "string", "format": "binary"}},
                    "required": ["file"],
                }
            },
            "application/json": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "image": {"type": "string", "description": "base64 image file (a data: URL works too)"},
                        "pixels": {
                            "type": "array",
                            "items": {"type": "array", "items": {"type": "number", "minimum": 0, "maximum": 1}},
                            "description": "28x28 array in [0, 1], light ink on black, used as is",
                        },
                        "multi_digit": {"type": "boolean"},
                        "deskew": {"type": "boolean"},
                        "reject": {"type": "boolean"},
                        "reject_threshold": {"type": "number", "minimum": 0, "maximum": 1},
                        "confidence_threshold": {"type": "number", "minimum": 0, "maximum": 1},
                    },
                }
            },
            "image/*": {"schema": {"type": "string", "format": "binary"}},
        },
    }
}


Assessed = tuple[np.ndarray, np.ndarray]  # calibrated probabilities (N, classes) and distances (N,): Predictor.assess


class Batcher:
    """Runs the model in one thread; calls that arrive while it is busy share its next batch (at most
    `max_batch` images). At most `max_pending` calls wait; one more raises Busy. Whatever goes wrong with a
    batch fails only that batch's calls, with BatchFailed, and is logged as one line."""

    def __init__(self, predictor: Predictor, max_pending: int = MAX_QUEUE, max_batch: int = MAX_BATCH) -> None:
        self.predictor = predictor
        self.max_pending, self.max_batch = max_pending, max_batch
        self.executor = ThreadPoolExecutor(1, thread_name_prefix="model")
        self.pending: list[tuple[np.ndarray, asyncio.Future[Assessed]]] = []
        self.task: asyncio.Task[None] | None = None

    async def assess(self, images: np.ndarray) -> Assessed:
        """The images' calibrated probabilities and distances (Predictor.assess with the stored temperature), from
        the batch they join."""
        if len(self.pending) >= self.max_pending:
            raise Busy(f"{len(self.pending)} requests are waiting for the model")
        future: asyncio.Future[Assessed] = asyncio.get_running_loop().create_future()
        self.pending.append((images, future))
        if self.task is None:
            self.task = asyncio.create_task(self.drain())
        return await future

    def next_batch(self) -> list[tuple[np.ndarray, asyncio.Future[Assessed]]]:
        """The oldest pending calls whose images fit in one batch (always at least one call)."""
        count, size = 1, len(self.pending[0][0])
        while count < len(self.pending) and size + len(self.pending[count][0]) <= self.max_batch:
            size += len(self.pending[count][0])
            count += 1
        batch, self.pending = self.pending[:count], self.pending[count:]
        return batch

    async def drain(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self.pending:
                batch = self.next_batch()
                try:
                    images = np.concatenate([scaled(images) for images, _ in batch])
                    temperature = self.predictor.calibration.temperature
                    probs, distances = await loop.run_in_executor(
                        self.executor, self.predictor.assess, images, temperature
                    )
                    if len(probs) != len(images) or len(distances) != len(images):
                        raise ValueError(f"the model returned {len(probs)} results for {len(images)} images")
                except BaseException as e:
                    failure = BatchFailed(f"{type(e).__name__}: {e}".splitlines()[0])
                    log.error("prediction failed for a batch of %d requests: %s", len(batch), failure)
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(failure)
                    if not isinstance(e, Exception):
                        raise
                    continue
                at = 0
                for images, future in batch:
                    if not future.done():  # a request whose client went away is cancelled
                        future.set_result((probs[at : at + len(images)], distances[at : at + len(images)]))
                    at += len(images)
        finally:
            self.task = None
            for _, future in self.pending:  # only when the loop itself is cancelled (shutdown)
                if not future.done():
                    future.set_exception(BatchFailed("the server is shutting down"))
            self.pending = []


def scaled(images: np.ndarray) -> np.ndarray:
    return images.astype(np.float32) / np.float32(255) if images.dtype == np.uint8 else images


def decode_threads() -> int:
    """The CPU cores this process may use: decoding more images at once only adds memory."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def create_app(
    predictor: Predictor,
    max_upload_bytes: int = 5 * 1024 * 1024,
    max_decode_bytes: int = MAX_DECODE_BYTES,
    threads: int | None = None,
    max_queue: int = MAX_QUEUE,
    max_batch: int = MAX_BATCH,
) -> FastAPI:
    """The API around one loaded model. Request bodies over `max_upload_bytes` get 413, and so do images whose
    decoded pixels would take more than `max_decode_bytes` (judged from their header); `threads` images (default:
    one per core) are decoded at once; beyond `max_queue` requests in flight, 503 with Retry-After; the model sees
    at most `max_batch` images a call."""
    batcher = Batcher(predictor, max_queue, max_batch)
    decoders = anyio.CapacityLimiter(threads or decode_threads())  # headers, and images up to SMALL_IMAGE_BYTES
    large_decoders = anyio.CapacityLimiter(threads or decode_threads())  # so large ones never delay small ones
    in_flight = 0

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        batcher.executor.shutdown(wait=True)

    app = FastAPIOffline(
        title="mnist-classifier",
        summary=f"Reads handwritten digits with the model {predictor.name}.",
        version="0.1.0",
        lifespan=lifespan,
    )
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.exception_handler(Busy)
    async def busy(request: Request, error: Busy) -> JSONResponse:
        return JSONResponse(
            {"detail": f"server busy ({error}); retry after {RETRY_AFTER_SECONDS} s"},
            503,
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )

    @app.exception_handler(BatchFailed)
    async def batch_failed(request: Request, error: BatchFailed) -> JSONResponse:
        return JSONResponse({"detail": "the model failed on this request's batch (logged); try again"}, 500)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, error: RequestValidationError) -> JSONResponse:
        first = error.errors()[0] if error.errors() else {}
        where = " ".join(str(part) for part in first.get("loc", ()))
        return JSONResponse({"detail": f"{where}: {first.get('msg', 'invalid')}".splitlines()[0]}, 422)

    @app.exception_handler(ImageError)
    async def image_error(request: Request, error: ImageError) -> JSONResponse:
        status = 413 if isinstance(error, ImageTooLargeError) else 415 if isinstance(error, NotAnImageError) else 422
        return JSONResponse({"detail": str(error)}, status)

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    @app.get("/health")
    async def health() -> Health:
        """Answers while the server runs with its model loaded."""
        return Health(status="ok")

    @app.get("/model")
    async def model() -> ModelInfo:
        """The served model: its name, dataset, test accuracy, training date and input shape."""
        metrics = predictor.metrics
        return ModelInfo(
            name=predictor.name,
            architecture=predictor.architecture,
            dataset=predictor.meta.get("dataset"),
            test_accuracy=metrics.get("accuracy") if metrics.get("split") == "test" else None,
            trained=predictor.meta.get("meta", {}).get("created"),
            input_shape=list(predictor.input_shape),
            classes=list(predictor.class_names),
            parameters=predictor.parameters,
            calibrated=predictor.calibration.fitted,
            reject_threshold=predictor.calibration.reject_threshold,
            confidence_threshold=predictor.calibration.confidence_threshold,
        )

    @app.post("/predict", openapi_extra=PREDICT_BODY, responses=PREDICT_RESPONSES, response_model_exclude_none=True)
    async def predict(
        request: Request,
        multi_digit: bool = Query(False, description="Read a number written in a row: one result per digit."),
        deskew: bool = Query(False, description="Straighten slanted digits before predicting."),
        include_input: bool = Query(False, description="Also return each 28x28 image fed to the model (base64 PNG)."),
        reject: bool = Query(
            True, description="Give verdicts (not_a_digit, uncertain); false: every verdict is digit (the argmax)."
        ),
        reject_threshold: float | None = Query(
            None,
            ge=0,
            le=1,
            description="Not a digit below this typicality (the share of validation digits that look as unusual);"
            " default: the model's (GET /model).",
        ),
        confidence_threshold: float | None = Query(
            None,
            ge=0,
            le=1,
            description="Not sure below this calibrated confidence; default: the model's (GET /model).",
        ),
    ) -> Digit | Number:
        """Read the digit in an uploaded image (multipart `file`, raw image body, or JSON `image` in base64),
        or in a JSON `pixels` 28x28 array; images are prepared MNIST-style first. Each digit carries a verdict.
        A JSON body may also carry the options: multi_digit and deskew true, reject false, the thresholds (a query
        parameter wins)."""
        nonlocal in_flight
        if in_flight >= max_queue:
            raise Busy(f"{in_flight} requests in flight")
        in_flight += 1
        try:
            options = Options(multi_digit, deskew, include_input, reject, reject_threshold, confidence_threshold)
            return await read_and_predict(request, options)
        finally:
            in_flight -= 1

    async def read_and_predict(request: Request, options: Options) -> Digit | Number:
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if kind not in ("multipart/form-data", "application/json", "application/octet-stream") and not kind.startswith(
            "image/"
        ):
            raise HTTPException(
                415, f"unsupported content type {kind or 'none'!r}; send multipart/form-data, JSON or image/*"
            )
        body = await read_body(request, max_upload_bytes)
        if not body:
            raise HTTPException(422, "empty request body; send an image or JSON")
        if kind == "application/json":
            document = parse_json(body)
            options = options.with_json(document)
            if "pixels" in document:
                return await answer(pixels_array(document["pixels"], predictor.input_shape)[None], options, False)
            body = decode_base64(document.get("image"))
        elif kind == "multipart/form-data":
            body = await uploaded_file(request, body)
        read = functools.partial(load_digits, body, True, options.multi_digit, options.deskew, max_decode_bytes)

        def read_if_small() -> list[np.ndarray] | None:
            """The image's digits if it is small once decoded (one thread hop for the common case), else None."""
            image = open_image(body, max_decode_bytes, load=False)
            return read() if decoded_bytes(image.mode, image.size) <= SMALL_IMAGE_BYTES else None

        digits = await anyio.to_thread.run_sync(read_if_small, limiter=decoders)
        if digits is None:
            digits = await anyio.to_thread.run_sync(read, limiter=large_decoders)
        return await answer(np.stack(digits), options, options.multi_digit)

    async def answer(images: np.ndarray, options: Options, multi_digit: bool) -> Digit | Number:
        """The images read by the model in a shared batch, then judged with this request's thresholds."""
        probs, distances = await batcher.assess(images)
        judged = judgement(probs, distances, options.calibration(predictor.calibration), options.reject)
        return respond(predictor, images, judged, multi_digit, options.include_input)

    return app


@dataclass(frozen=True)
class Options:
    """A request's options: its query parameters, then (Options.with_json) its JSON body's."""

    multi_digit: bool
    deskew: bool
    include_input: bool
    reject: bool
    reject_threshold: float | None
    confidence_threshold: float | None

    def with_json(self, document: dict[str, Any]) -> Options:
        """A JSON body's options added: true turns multi_digit/deskew on, false turns reject off; a threshold
        counts where the query gives none. Bad values get 422."""
        reject = document.get("reject", True)
        if not isinstance(reject, bool):
            raise HTTPException(422, '"reject" must be true or false')
        reject_threshold = json_threshold(document, "reject_threshold")
        confidence_threshold = json_threshold(document, "confidence_threshold")
        return replace(
            self,
            multi_digit=self.multi_digit or document.get("multi_digit") is True,
            deskew=self.deskew or document.get("deskew") is True,
            reject=self.reject and reject,
            reject_threshold=reject_threshold if self.reject_threshold is None else self.reject_threshold,
            confidence_threshold=(
                confidence_threshold if self.confidence_threshold is None else self.confidence_threshold
            ),
        )

    def calibration(self, stored: Calibration) -> Calibration:
        """The model's calibration, with this request's thresholds where it gives any."""
        if self.reject_threshold is None and self.confidence_threshold is None:
            return stored
        return with_thresholds(stored, self.reject_threshold, self.confidence_threshold)


def json_threshold(document: dict[str, Any], name: str) -> float | None:
    """A threshold from a JSON body: absent or null is None, a number in [0, 1] itself, anything else 422."""
    value = document.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float | None):
        raise HTTPException(422, f'"{name}" must be a number between 0 and 1')
    try:
        return threshold(f'"{name}"', value)
    except ConfigError as e:
        raise HTTPException(422, str(e)) from None


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refused with 413 as soon as its declared or counted size passes `limit`."""
    declared = request.headers.get("content-length")
    too_large = HTTPException(413, f"request body over the {limit:,}-byte limit; send a smaller image")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise too_large
    chunks = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)


async def uploaded_file(request: Request, body: bytes) -> bytes:
    """The bytes of the multipart field `file` of an already-read body; the parsed form (and any file it
    spooled to disk) is closed before returning."""

    async def replay() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    try:
        form = await Request(request.scope, replay).form(max_files=1, max_fields=8, max_part_size=64 * 1024)
    except Exception as e:  # the multipart parser raises several types for malformed bodies
        detail = getattr(e, "detail", None) or str(e) or type(e).__name__
        raise HTTPException(422, f"malformed multipart body ({detail})".splitlines()[0]) from None
    try:
        upload = form.get("file")
        if upload is None or isinstance(upload, str):
            raise HTTPException(422, "multipart body has no file field named 'file'")
        return await upload.read()
    finally:
        await form.close()


def parse_json(body: bytes) -> dict[str, Any]:
    try:
        document = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise HTTPException(422, f"body is not valid JSON ({e})") from None
    if not isinstance(document, dict) or ("image" in document) == ("pixels" in document):
        raise HTTPException(422, 'JSON body needs exactly one of "image" (base64 file) or "pixels" (28x28 array)')
    return document


def decode_base64(value: Any) -> bytes:
    if not isinstance(value, str):
        raise HTTPException(422, '"image" must be a base64 string')
    text = value.split(",", 1)[1] if value.startswith("data:") and "," in value else value
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise HTTPException(422, '"image" is not valid base64') from None


def pixels_array(value: Any, shape: tuple[int, ...]) -> np.ndarray:
    """A JSON array as float32 pixels, or 422 naming the first problem: shape, non-numbers, NaN, out of range."""
    expected = "x".join(map(str, shape))
    try:
        pixels = np.array(value, dtype=np.float32)
    except (ValueError, TypeError):
        raise HTTPException(422, f'"pixels" must be a {expected} array of numbers (ragged or not numeric)') from None
    if pixels.shape != shape:
        got = "x".join(map(str, pixels.shape)) or "a single number"
        raise HTTPException(422, f'"pixels" must be a {expected} array, got {got}')
    nan = np.argwhere(~np.isfinite(pixels))
    if len(nan):
        index = "".join(f"[{i}]" for i in nan[0])
        raise HTTPException(422, f'"pixels"{index} is {pixels[tuple(nan[0])]}; every value must be a finite number')
    outside = np.argwhere((pixels < 0) | (pixels > 1))
    if len(outside):
        index = "".join(f"[{i}]" for i in outside[0])
        raise HTTPException(
            422, f'"pixels"{index} = {pixels[tuple(outside[0])]:g} is outside [0, 1]; divide 0..255 values by 255'
        )
    return pixels


def respond(
    predictor: Predictor, images: np.ndarray, judged: Judgement, multi_digit: bool, include_input: bool
) -> Digit | Number:
    digits = [
        Digit(
            digit=predictor.class_names[int(p.argmax())],
            verdict=verdict,  # type: ignore[arg-type]  # one of VERDICTS
            confidence=float(p.max()),
            probabilities=p.tolist(),
            input=png_base64(image) if include_input else None,
        )
        for image, p, verdict in zip(images, judged.probabilities, judged.verdicts, strict=True)
    ]
    if not multi_digit:
        return digits[0]
    return Number(
        number="".join(d.digit for d in digits),
        verdict=overall(judged.verdicts),  # type: ignore[arg-type]
        confidence=float(np.prod([d.confidence for d in digits])),
        digits=digits,
    )


def png_base64(image: np.ndarray) -> str:
    pixels = image if image.dtype == np.uint8 else np.round(image * 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()
