"""Sign-in and sign-out pages: ``GET/POST /login``, ``POST /logout``.

A failed sign-in says only "email or password is wrong" whatever went wrong (unknown email,
no login, disabled login, wrong password), so the form does not reveal who has an account.
The login form carries its own double-submit token (a cookie and the field ``csrf``) against login
CSRF, where another site signs a browser in as someone else.
"""

from __future__ import annotations

import hmac
import secrets
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from tokenwage.storage.web_repo import Account
from tokenwage.web import accounts
from tokenwage.web.auth import Viewer, page_viewer
from tokenwage.web.context import WebContext, web_context
from tokenwage.web.sessions import (
    SESSION_COOKIE,
    clear_session_cookie,
    create_session,
    end_session,
    is_https,
    set_session_cookie,
)
from tokenwage.web.templating import render

router = APIRouter(include_in_schema=False)

LOGIN_CSRF_COOKIE = "tokenwage_login_csrf"
BAD_LOGIN = "Email or password is wrong."


def safe_next(value: str | None) -> str:
    """A local path to go to after sign-in; anything else (other sites) becomes ``/me``."""
    if not value or not value.startswith("/") or value.startswith(("//", "/\\")):
        return "/me"
    return value


def client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def login_page(
    request: Request,
    ctx: WebContext,
    *,
    next_url: str,
    status_code: int = 200,
    error: str | None = None,
    email: str | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    token = secrets.token_urlsafe(24)
    response = render(
        request,
        "login.html",
        None,
        status_code=status_code,
        login_csrf=token,
        next_url=next_url,
        error=error,
        email=email,
        oidc_label=ctx.settings.oidc_label if ctx.oidc else None,
    )
    response.set_cookie(
        LOGIN_CSRF_COOKIE,
        token,
        max_age=3600,
        path="/login",
        httponly=True,
        samesite="lax",
        secure=is_https(request),
    )
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, next: str | None = None) -> Response:
    return login_page(request, web_context(request), next_url=safe_next(next))


@router.post("/login")
def login_submit(
    request: Request,
    email: Annotated[str, Form(max_length=320)],
    password: Annotated[str, Form(max_length=1024)],
    csrf: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "/me",
) -> Response:
    ctx = web_context(request)
    target = safe_next(next)
    cookie = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not cookie or not hmac.compare_digest(cookie.encode(), csrf.encode()):
        message = "The sign-in form expired; please sign in again."
        return login_page(request, ctx, next_url=target, status_code=400, error=message)
    key = email.strip().lower()
    ip = client_ip(request)
    wait_s = ctx.limiter.retry_after(key, ip)
    if wait_s:
        minutes = -(-wait_s // 60)
        message = f"Too many sign-in attempts. Try again in {minutes} minute(s)."
        headers = {"Retry-After": str(wait_s)}
        return login_page(
            request, ctx, next_url=target, status_code=429, error=message, email=email,
            headers=headers,
        )  # fmt: skip
    ctx.limiter.attempt(ip)
    now = datetime.now(UTC)
    with ctx.db.begin() as conn:
        account = accounts.authenticate(conn, email, password, now, ctx.settings)
    if account is None:
        ctx.limiter.failed(key)
        return login_page(
            request, ctx, next_url=target, status_code=401, error=BAD_LOGIN, email=email
        )
    ctx.limiter.succeeded(key)
    return start_session(request, ctx, account, target)


def start_session(request: Request, ctx: WebContext, account: Account, target: str) -> Response:
    """Sign ``account`` in: a new session, its cookie, and a redirect to ``target``."""
    with ctx.db.begin() as conn:
        token, _csrf = create_session(conn, account, ctx.settings, datetime.now(UTC))
    response = RedirectResponse(target, status_code=303)
    set_session_cookie(response, request, token, ctx.settings)
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/login")
    return response


@router.post("/logout")
async def logout(request: Request, viewer: Annotated[Viewer, Depends(page_viewer)]) -> Response:
    """End the session (page_viewer has checked the CSRF token)."""
    ctx = web_context(request)
    token = request.cookies.get(SESSION_COOKIE, "")

    def end() -> None:
        with ctx.db.begin() as conn:
            end_session(conn, token)

    await run_in_threadpool(end)
    response = RedirectResponse("/login", status_code=303)
    clear_session_cookie(response)
    return response


@router.get("/")
def root() -> RedirectResponse:
    return RedirectResponse("/me", status_code=303)
