"""The app of each process of `serve --workers N`: built by uvicorn's app factory from settings the command passes on.

Uvicorn starts several processes on one port only from an import string (`uvicorn.run("module:factory",
factory=True, workers=N)`), so the command cannot hand them the app it built: it puts the model's path and the limits
in an environment variable, which the processes it spawns inherit, and each builds its own app around its own model.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from fastapi import FastAPI

from ..errors import ConfigError
from .app import create_app

ENVIRONMENT = "MNIST_CLASSIFIER_SERVE"
FACTORY = f"{__name__}:worker_app"


@dataclass(frozen=True)
class Settings:
    """What each process needs to build its app: the model and the request limits (create_app's)."""

    model: str
    max_upload_bytes: int
    max_decode_bytes: int

    def pass_on(self) -> None:
        """Put these settings where the worker processes that uvicorn spawns will read them."""
        os.environ[ENVIRONMENT] = json.dumps(asdict(self))

    @classmethod
    def passed(cls) -> Settings:
        text = os.environ.get(ENVIRONMENT)
        if not text:
            raise ConfigError(f"{ENVIRONMENT} is not set; start the server with `mnist-classifier serve`")
        return cls(**json.loads(text))


def worker_app() -> FastAPI:
    """The app of one worker process: its own model loaded as `serve` loads it (served_predictor)."""
    from .app import served_predictor

    settings = Settings.passed()
    return create_app(served_predictor(Path(settings.model)), settings.max_upload_bytes, settings.max_decode_bytes)
