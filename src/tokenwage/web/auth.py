"""Who is asking: the signed-in :class:`Viewer`, as FastAPI dependencies.

* :func:`page_viewer` for HTML pages: no session redirects to ``/login?next=...``.
* :func:`api_viewer` for ``/api/``: a session cookie or ``Authorization: Bearer <token>``;
  neither is a JSON 401.
* :func:`require` narrows either to some roles (403 otherwise).

A change (POST, PUT, PATCH, DELETE) authenticated by the session cookie must carry the
session's CSRF token, as the form field ``csrf_token`` or the header ``X-CSRF-Token``.
Bearer tokens need none: a browser never sends them on its own.
"""

from __future__ import annotations

import hmac
import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool

from tokenwage.core.errors import Unauthenticated
from tokenwage.core.org import Role
from tokenwage.storage.web_repo import Account
from tokenwage.web import accounts
from tokenwage.web.context import SAFE_METHODS, web_context
from tokenwage.web.errors import CsrfFailed, Forbidden, LoginRequired
from tokenwage.web.sessions import SESSION_COOKIE, resolve_session

CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf_token"


@dataclass(frozen=True)
class Viewer:
    """The signed-in person. ``csrf_token`` is None when authenticated by an API token."""

    person_id: int
    email: str
    name: str
    role: Role
    csrf_token: str | None

    @classmethod
    def of(cls, account: Account, csrf_token: str | None) -> Viewer:
        return cls(account.person_id, account.email, account.name, account.role, csrf_token)

    @property
    def actor(self) -> str:
        """How audit entries name this viewer."""
        via = "web" if self.csrf_token is not None else "api"
        return f"{self.email} ({via})"


def _now() -> datetime:
    return datetime.now(UTC)


async def _session_viewer(request: Request) -> Viewer | None:
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    ctx = web_context(request)

    def lookup() -> Viewer | None:
        with ctx.db.begin() as conn:
            found = resolve_session(conn, token, ctx.settings, _now())
        return Viewer.of(found.account, found.csrf_token) if found else None

    return await run_in_threadpool(lookup)


async def _bearer_viewer(request: Request, raw: str) -> Viewer:
    ctx = web_context(request)

    def lookup() -> Account | None:
        with ctx.db.begin() as conn:
            return accounts.account_for_token(conn, raw, _now())

    account = await run_in_threadpool(lookup)
    if account is None:
        raise Unauthenticated("the API token is unknown, revoked or expired; create a new one")
    return Viewer.of(account, None)


async def check_csrf(request: Request, viewer: Viewer) -> None:
    """Refuse a cookie-authenticated change without the session's CSRF token."""
    if request.method in SAFE_METHODS or viewer.csrf_token is None:
        return
    sent = request.headers.get(CSRF_HEADER)
    content_type = request.headers.get("content-type", "")
    if sent is None and content_type.startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        value = (await request.form()).get(CSRF_FIELD)
        sent = value if isinstance(value, str) else None
    if not sent or not hmac.compare_digest(sent.encode(), viewer.csrf_token.encode()):
        raise CsrfFailed(
            "this change needs the page's CSRF token (form field csrf_token or header "
            "X-CSRF-Token); reload the page and try again"
        )


async def page_viewer(request: Request) -> Viewer:
    """The signed-in viewer of an HTML page; otherwise a redirect to the sign-in page."""
    viewer = await _session_viewer(request)
    if viewer is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise LoginRequired(target)
    request.state.viewer = viewer  # error pages show the nav
    await check_csrf(request, viewer)
    return viewer


async def api_viewer(request: Request) -> Viewer:
    """The caller of an API endpoint: bearer token or session cookie; otherwise 401."""
    header = request.headers.get("authorization")
    if header is not None:
        scheme, _, raw = header.partition(" ")
        if scheme.lower() != "bearer" or not raw.strip():
            raise Unauthenticated("use 'Authorization: Bearer <API token>'")
        return await _bearer_viewer(request, raw.strip())
    viewer = await _session_viewer(request)
    if viewer is None:
        raise Unauthenticated(
            "sign in, or send an API token as 'Authorization: Bearer <token>' "
            "(create one with `tokenwage api-token create`)"
        )
    await check_csrf(request, viewer)
    return viewer


def require(*roles: Role, page: bool = False) -> Callable[..., Awaitable[Viewer]]:
    """A dependency giving the viewer if their role is one of ``roles``, else 403.

    ``page=True`` for HTML pages (sign-in redirect), otherwise the API's 401.
    """
    allowed = frozenset(roles)
    source = page_viewer if page else api_viewer

    async def dependency(viewer: Viewer) -> Viewer:
        if viewer.role not in allowed:
            names = ", ".join(sorted(r.value for r in allowed))
            raise Forbidden(f"this needs the role {names}; you are {viewer.role.value}")
        return viewer

    # The annotation names a local (``source``), which FastAPI cannot resolve from a string
    # under ``from __future__ import annotations``: give it the signature as objects.
    parameter = inspect.Parameter(
        "viewer",
        inspect.Parameter.POSITIONAL_OR_KEYWORD,
        annotation=Annotated[Viewer, Depends(source)],
    )
    dependency.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [parameter], return_annotation=Viewer
    )
    return dependency
