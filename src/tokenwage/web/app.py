"""The dashboard and REST API as one FastAPI app.

Endpoints are plain ``def`` functions where they touch the database, so FastAPI runs them in
its threadpool; the app holds one :class:`Database`. ``/openapi.json`` documents the REST
API (``/api/v1/...``); HTML pages are left out of it.

Page routers: a module ``tokenwage.web.pages`` (a package) exposing ``ROUTERS``, a sequence
of ``fastapi.APIRouter``, is included when it exists. Each router's routes should be
``include_in_schema=False`` and use :func:`tokenwage.web.auth.page_viewer`.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI
from fastapi.staticfiles import StaticFiles

from tokenwage import __version__
from tokenwage.storage import migrate
from tokenwage.storage.db import Database
from tokenwage.web import account, errors, login
from tokenwage.web.context import WebContext
from tokenwage.web.headers import SecurityHeaders
from tokenwage.web.ratelimit import LoginLimiter
from tokenwage.web.settings import WebSettings, load_web_settings
from tokenwage.web.templating import STATIC_DIR

PAGES_MODULE = "tokenwage.web.pages"
API_DESCRIPTION = """\
Script what the tokenwage CLI does: people and teams, packages, grants, virtual keys,
usage, balances, statements and ledger verification.

Authenticate with `Authorization: Bearer <API token>` (create one with
`tokenwage api-token create EMAIL --name NAME`, or `POST /api/v1/api-tokens`).
Amounts are integer nano-USD (`*_nanousd`) with a decimal string in USD (`*_usd`).
Lists take `limit` (at most 500) and the `cursor` of the previous page's `next_cursor`.
Errors are `{"error": {"type": "...", "message": "..."}}`.
"""


def page_routers() -> Sequence[APIRouter]:
    """The routers of ``tokenwage.web.pages``, if that package exists."""
    if importlib.util.find_spec(PAGES_MODULE) is None:
        return ()
    module = importlib.import_module(PAGES_MODULE)
    routers: Sequence[APIRouter] = getattr(module, "ROUTERS", ())
    return routers


def api_routers() -> Sequence[APIRouter]:
    from tokenwage.web.api import ROUTERS

    return ROUTERS


def create_web_app(database_url: str, *, settings: WebSettings | None = None) -> FastAPI:
    """The web app for ``database_url`` (its schema must be current)."""
    settings = settings or load_web_settings()
    settings.check()
    db = Database(database_url)
    migrate.require_current(db)
    oidc = None
    if settings.oidc_enabled:
        from tokenwage.web.oidc import OidcClient

        oidc = OidcClient(settings)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            db.dispose()

    app = FastAPI(
        title="tokenwage API",
        version=__version__,
        description=API_DESCRIPTION,
        openapi_url="/openapi.json",
        docs_url=None,  # served by pages/vendor.py from the installed Swagger UI, not a CDN
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.tokenwage = WebContext(
        db=db,
        settings=settings,
        limiter=LoginLimiter(
            failures_per_email=settings.login_failures_per_email,
            attempts_per_ip=settings.login_attempts_per_ip,
            window_s=settings.login_window_seconds,
        ),
        oidc=oidc,
    )
    errors.install(app)
    app.add_middleware(SecurityHeaders)
    app.include_router(login.router)
    app.include_router(account.router)
    if oidc is not None:
        from tokenwage.web.oidc import router as oidc_router

        app.include_router(oidc_router)
    for router in api_routers():
        app.include_router(router)
    for router in page_routers():
        app.include_router(router)
    # Last: routes are tried in order, and the mount would take every /static/ path,
    # hiding the chart library's route at /static/vendor/ (pages/vendor.py).
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app
