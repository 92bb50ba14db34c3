"""Render a page from templates/ through Jinja2, which escapes every value not marked safe (Markdown: none)."""

from __future__ import annotations

from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

ENV = Environment(
    loader=PackageLoader("mnist_classifier.report"),
    autoescape=select_autoescape(enabled_extensions=("html.j2",), disabled_extensions=("md.j2",), default=True),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
)


def card(label: str, value: str, sub: str = "", main: bool = False) -> dict[str, Any]:
    """One summary card for the base template's `cards` macro; the `main` one is wide and dark."""
    return {"label": label, "value": value, "sub": sub, "main": main}


def render(template: str, **data: Any) -> str:
    return ENV.get_template(template).render(**data)
