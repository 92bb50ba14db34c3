"""How numbers, durations, dates and setting values read on a page and in the terminal."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from ..utils import format_duration

__all__ = ["format_date", "format_duration", "format_value", "percent"]


def percent(value: float) -> str:
    return f"{100 * value:.2f}%"


def format_date(text: str) -> str:
    try:
        return datetime.fromisoformat(text).strftime("%Y-%m-%d %H:%M %Z").strip()
    except ValueError:
        return text


def format_value(value: Any) -> str:
    """A setting as one line: lists comma-separated, dicts as JSON."""
    if isinstance(value, list | tuple):
        return ", ".join(map(str, value))
    return json.dumps(value) if isinstance(value, dict) else str(value)
