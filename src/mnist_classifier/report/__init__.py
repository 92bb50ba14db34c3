"""Figures and self-contained HTML reports of runs, ensembles and tuning studies, rendered from Jinja2 templates."""

from .figures import sample_grid
from .pages import card, render
from .run import notebook_html, write_report
from .text import format_duration, percent

__all__ = ["card", "format_duration", "notebook_html", "percent", "render", "sample_grid", "write_report"]
