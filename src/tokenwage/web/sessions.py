"""Browser sessions: a random 256-bit token in an HttpOnly cookie, its SHA-256 in the table.

A session ends at its absolute expiry, after ``session_idle_minutes`` without a request, or
at logout (which deletes the row). ``last_seen_utc`` is written at most once a minute so
reading pages does not queue behind SQLite's one writer.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection
from starlette.requests import HTTPConnection
from starlette.responses import Response

from tokenwage.storage.web_repo import Account, WebRepo
from tokenwage.web.settings import WebSettings

SESSION_COOKIE = "tokenwage_session"
TOUCH_EVERY = timedelta(minutes=1)


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class Session:
    account: Account
    csrf_token: str


def create_session(
    conn: Connection, account: Account, settings: WebSettings, now: datetime
) -> tuple[str, str]:
    """A new session for ``account``: the cookie token and the CSRF token."""
    token = secrets.token_urlsafe(32)
    csrf = secrets.token_urlsafe(32)
    expires = now + timedelta(hours=settings.session_max_age_hours)
    repo = WebRepo(conn)
    repo.delete_expired_sessions(now)
    repo.add_session(digest(token), account.person_id, csrf, now, expires)
    return token, csrf


def resolve_session(
    conn: Connection, token: str, settings: WebSettings, now: datetime
) -> Session | None:
    """The live session behind a cookie token, or None (unknown, expired, idle, disabled)."""
    repo = WebRepo(conn)
    key = digest(token)
    row = repo.session(key)
    if row is None:
        return None
    idle = timedelta(minutes=settings.session_idle_minutes)
    if now >= row.expires_utc or now - row.last_seen_utc >= idle:
        repo.delete_session(key)
        return None
    if now - row.last_seen_utc >= TOUCH_EVERY:
        repo.touch_session(key, now)
    return Session(row.account, row.csrf_token)


def end_session(conn: Connection, token: str) -> None:
    WebRepo(conn).delete_session(digest(token))


def is_https(request: HTTPConnection) -> bool:
    return request.url.scheme == "https"


def set_session_cookie(
    response: Response, request: HTTPConnection, token: str, settings: WebSettings
) -> None:
    secure = settings.cookie_secure == "always" or (
        settings.cookie_secure == "auto" and is_https(request)
    )
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=settings.session_max_age_hours * 3600,
        path="/",
        httponly=True,
        samesite="lax",
        secure=secure,
    )


def clear_session_cookie(response: Response) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="lax")
