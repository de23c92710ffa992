"""What one web app holds for its requests: the database, settings, sign-in limits, OIDC."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from starlette.requests import HTTPConnection

from tokenwage.storage.db import Database
from tokenwage.web.ratelimit import LoginLimiter
from tokenwage.web.settings import WebSettings

if TYPE_CHECKING:
    from tokenwage.web.oidc import OidcClient


@dataclass
class WebContext:
    db: Database
    settings: WebSettings
    limiter: LoginLimiter
    oidc: OidcClient | None


def web_context(request: HTTPConnection) -> WebContext:
    """The app's context (FastAPI dependency); ``create_web_app`` puts it on ``app.state``."""
    ctx = request.app.state.tokenwage
    assert isinstance(ctx, WebContext)
    return ctx


SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def database(request: HTTPConnection) -> Database:
    """The app's one :class:`Database` (FastAPI dependency): read-only for GET and HEAD, so
    reads never queue behind, or hold up, the gateway's writes."""
    db = web_context(request).db
    return db.reading() if request.scope.get("method") in SAFE_METHODS else db
