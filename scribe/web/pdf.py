"""PDFs rendered by WeasyPrint from the same Jinja2 templates as the pages. Nothing is
fetched while rendering: every resource a template could name is refused, so a PDF can
never make a connection (the egress gateway is the only way out)."""

from __future__ import annotations

from typing import Any

from fastapi.templating import Jinja2Templates


def _no_fetching(url: str, *_args: Any, **_kwargs: Any) -> dict[str, Any]:
    raise ValueError("PDF templates are self-contained: no resource is fetched")


def render_pdf(templates: Jinja2Templates, name: str, context: dict[str, Any]) -> bytes:
    from weasyprint import HTML  # heavy: imported when a PDF is asked for

    html = templates.env.get_template(name).render(**context)
    pdf = HTML(string=html, url_fetcher=_no_fetching).write_pdf()
    assert pdf is not None  # noqa: S101 - narrows the type; never a guard
    return bytes(pdf)
