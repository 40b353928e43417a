"""Jinja2 templates (pages, partials named _piece.html) with a few display filters."""

from __future__ import annotations

from pathlib import Path

from fastapi.templating import Jinja2Templates

from scribe.domain.transcript import format_timestamp


def make_templates(directory: Path) -> Jinja2Templates:
    templates = Jinja2Templates(directory=str(directory))
    templates.env.filters["ts"] = format_timestamp
    templates.env.filters["utc"] = lambda d: d.strftime("%Y-%m-%d %H:%M:%S UTC") if d else ""
    return templates
