"""Render Jinja templates with what every page needs: the viewer, the nav, the CSRF token.

``render(request, "pages/me.html", viewer, balance=...)`` is the one helper pages use.
Templates extend ``base.html`` and fill the blocks ``title``, ``content`` and ``scripts``.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

from fastapi.templating import Jinja2Templates
from starlette.requests import Request
from starlette.responses import HTMLResponse

from tokenwage.core.money import Money
from tokenwage.web.access import nav_items
from tokenwage.web.auth import Viewer

TEMPLATES_DIR = Path(__file__).parent / "templates"
STATIC_DIR = Path(__file__).parent / "static"


def usd(value: Money | int | None, places: int = 2) -> str:
    """``$1,234.50`` from Money or nano-USD, rounded for display only."""
    if value is None:
        return "–"
    nanousd = value.nanousd if isinstance(value, Money) else int(value)
    sign = "-" if nanousd < 0 else ""
    scale = 10 ** (9 - places)
    units = (abs(nanousd) + scale // 2) // scale  # half up, display only
    whole, frac = divmod(units, 10**places)
    return f"{sign}${whole:,}" + (f".{frac:0{places}d}" if places else "")


@cache
def templates() -> Jinja2Templates:
    env = Jinja2Templates(directory=str(TEMPLATES_DIR))
    env.env.filters["usd"] = usd
    env.env.globals["nav_items"] = nav_items
    return env


def render(
    request: Request, name: str, viewer: Viewer | None, *, status_code: int = 200, **ctx: Any
) -> HTMLResponse:
    """The page ``name`` for ``viewer``; ``ctx`` is available to the template as variables."""
    context = {
        "viewer": viewer,
        "csrf_token": viewer.csrf_token if viewer else None,
        "nav": nav_items(viewer) if viewer else [],
        "current_path": request.url.path,
        **ctx,
    }
    return templates().TemplateResponse(request, name, context, status_code=status_code)


def render_error(request: Request, status: int, message: str) -> HTMLResponse:
    """An error page; it shows the nav only if the request state carries a viewer."""
    viewer = getattr(request.state, "viewer", None)
    return render(
        request,
        "error.html",
        viewer if isinstance(viewer, Viewer) else None,
        status_code=status,
        status=status,
        message=message,
    )
