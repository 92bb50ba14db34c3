"""Load shedding: at most so many POST /predict requests in flight; one more is refused at once with 503.

The one mechanism the server sheds load with. A request counts from its arrival (before its body is read) to its
answer, so the limit bounds the memory of bodies being read, images being decoded and calls waiting for the model.
Uvicorn's own `limit_concurrency` is not used: it counts every connection (idle keep-alive ones too) and task,
refuses GET /health with the rest, and answers a plain-text 503 without Retry-After.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

MAX_IN_FLIGHT = 64  # requests in flight at once (reading, decoding, waiting for the model); more get 503
RETRY_AFTER_SECONDS = 1


class Busy(Exception):
    """The server holds as many requests as it admits; the client should retry after RETRY_AFTER_SECONDS."""


class Admission:
    """Counts the requests in flight and refuses one more than `limit`."""

    def __init__(self, limit: int = MAX_IN_FLIGHT) -> None:
        self.limit = limit
        self.in_flight = 0

    @contextmanager
    def slot(self) -> Iterator[None]:
        """Hold one of the `limit` places while the request runs; raise Busy when none is free."""
        if self.in_flight >= self.limit:
            raise Busy(f"{self.in_flight} requests in flight")
        self.in_flight += 1
        try:
            yield
        finally:
            self.in_flight -= 1
