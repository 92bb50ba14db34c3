"""The HTTP API and the drawing page: `create_app(predictor)` gives the FastAPI application."""

from .app import create_app

__all__ = ["create_app"]
