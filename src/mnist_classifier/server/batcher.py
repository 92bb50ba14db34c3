"""The micro-batcher: the model is called on batches of the images that requests bring while it is busy; small batches
on the event loop, larger ones in one model thread."""

from __future__ import annotations

import asyncio
import logging
import math
import time
from concurrent.futures import ThreadPoolExecutor

import anyio
import numpy as np

from ..inference import Predictor

MAX_BATCH = 64  # images in one call of the model
# A batch of at most INLINE_IMAGES runs on the event loop while such a call takes under INLINE_SECONDS: handing it to a
# thread and back costs about 0.1 ms of CPU, as much as a small model's call (serving profile, docs/results/serving.md).
# A slower model (a large CNN, an ensemble) and larger batches run in the model thread and never hold the loop long.
INLINE_IMAGES = 8
INLINE_SECONDS = 1e-3
log = logging.getLogger(__name__)
Assessed = tuple[np.ndarray, np.ndarray]  # calibrated probabilities (N, classes) and distances (N,): Predictor.assess


class BatchFailed(Exception):
    """The model (or assembling its batch) raised; every request of that batch gets 500."""


class Batcher:
    """Runs the model on batches: calls that arrive while it is busy share its next batch (at most `max_batch`
    images), on the event loop when it holds at most INLINE_IMAGES and the last such call took under INLINE_SECONDS,
    else in one model thread (where the first call runs, its cost unknown). Whatever goes wrong with a batch fails
    only that batch's calls, with BatchFailed, and is logged as one line. How many calls may wait is bounded by the
    server's admission of requests, not here."""

    def __init__(self, predictor: Predictor, max_batch: int = MAX_BATCH) -> None:
        self.predictor = predictor
        self.max_batch = max_batch
        self.small_call_seconds = math.inf  # the last call's on at most INLINE_IMAGES images
        self.executor = ThreadPoolExecutor(1, thread_name_prefix="model")
        self.pending: list[tuple[np.ndarray, asyncio.Future[Assessed]]] = []
        self.task: asyncio.Task[None] | None = None

    async def assess(self, images: np.ndarray) -> Assessed:
        """The images' calibrated probabilities and distances (Predictor.assess with the stored temperature), from
        the batch they join."""
        future: asyncio.Future[Assessed] = asyncio.get_running_loop().create_future()
        self.pending.append((images, future))
        if self.task is None:
            self.task = asyncio.create_task(self.drain())
        return await future

    async def close(self) -> None:
        """Wait for the model thread to finish its batch, in a worker thread so the event loop keeps serving."""
        await anyio.to_thread.run_sync(self.executor.shutdown)

    def timed_assess(self, images: np.ndarray, temperature: float) -> tuple[Assessed, float]:
        """Predictor.assess, and the seconds it took."""
        start = time.perf_counter()
        assessed = self.predictor.assess(images, temperature)
        return assessed, time.perf_counter() - start

    def next_batch(self) -> list[tuple[np.ndarray, asyncio.Future[Assessed]]]:
        """The oldest pending calls whose images fit in one batch (always at least one call)."""
        count, size = 1, len(self.pending[0][0])
        while count < len(self.pending) and size + len(self.pending[count][0]) <= self.max_batch:
            size += len(self.pending[count][0])
            count += 1
        batch, self.pending = self.pending[:count], self.pending[count:]
        return batch

    async def drain(self) -> None:
        """Run the model on the pending calls, batch after batch, until none is left."""
        loop = asyncio.get_running_loop()
        try:
            while self.pending:
                await asyncio.sleep(0)  # the requests this pass of the event loop reads join the batch
                batch = self.next_batch()
                try:
                    images = np.concatenate([scaled(images) for images, _ in batch])
                    temperature = self.predictor.calibration.temperature
                    small = len(images) <= INLINE_IMAGES
                    if small and self.small_call_seconds < INLINE_SECONDS:
                        (probs, distances), seconds = self.timed_assess(images, temperature)
                    else:
                        call = loop.run_in_executor(self.executor, self.timed_assess, images, temperature)
                        (probs, distances), seconds = await call
                    if small:
                        self.small_call_seconds = seconds
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
    """Pixels in [0, 1] as float32: uint8 images divided by 255, float ones as they are."""
    return images.astype(np.float32) / np.float32(255) if images.dtype == np.uint8 else images
