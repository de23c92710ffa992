"""Errors at the web edge, and their rendering: JSON under ``/api/``, an HTML page elsewhere.

Every API error has the shape ``{"error": {"type": "not_found", "message": "..."}}``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from tokenwage.core.errors import (
    Conflict,
    InvalidInput,
    LedgerTampered,
    NotFound,
    PolicyDenied,
    StoreUnavailable,
    TokenwageError,
    Unauthenticated,
)


class Forbidden(TokenwageError):
    """The viewer is signed in but their role does not allow this."""


class CsrfFailed(Forbidden):
    """A cookie-authenticated change came without the session's CSRF token."""


class LoginRequired(Exception):
    """A page needs a signed-in viewer; the handler redirects to the sign-in page."""

    def __init__(self, next_url: str) -> None:
        super().__init__(next_url)
        self.next_url = next_url


# (class, HTTP status, type name), most specific first
STATUSES: tuple[tuple[type[TokenwageError], int, str], ...] = (
    (CsrfFailed, 403, "csrf_failed"),
    (Forbidden, 403, "forbidden"),
    (Unauthenticated, 401, "unauthenticated"),
    (NotFound, 404, "not_found"),
    (Conflict, 409, "conflict"),
    (InvalidInput, 400, "invalid_input"),
    (PolicyDenied, 422, "policy_denied"),
    (LedgerTampered, 409, "ledger_tampered"),
    (StoreUnavailable, 503, "store_unavailable"),
)

_HTTP_TYPES = {
    400: "invalid_input",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    422: "invalid_input",
    429: "rate_limited",
}


def status_of(exc: TokenwageError) -> tuple[int, str]:
    for cls, status, name in STATUSES:
        if isinstance(exc, cls):
            return status, name
    return 500, "error"


def is_api(request: Request) -> bool:
    return request.url.path.startswith("/api/")


def error_json(
    status: int, kind: str, message: str, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(
        {"error": {"type": kind, "message": message}}, status_code=status, headers=headers
    )


def _html_error(request: Request, status: int, message: str) -> Response:
    from tokenwage.web.templating import render_error

    return render_error(request, status, message)


def install(app: FastAPI) -> None:
    """Register the handlers that turn errors into responses."""

    @app.exception_handler(LoginRequired)
    async def _login_required(request: Request, exc: LoginRequired) -> Response:
        return RedirectResponse(f"/login?next={quote(exc.next_url, safe='/')}", status_code=303)

    @app.exception_handler(TokenwageError)
    async def _domain(request: Request, exc: TokenwageError) -> Response:
        status, kind = status_of(exc)
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        if is_api(request) or status == 401:
            return error_json(status, kind, str(exc), headers)
        return _html_error(request, status, str(exc))

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> Response:
        message = "; ".join(_describe(e) for e in exc.errors())
        if is_api(request):
            return error_json(422, "invalid_input", message)
        return _html_error(request, 400, message)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        """A bug: the server logs it with its traceback (Starlette re-raises it after this
        answer); the answer says nothing about it."""
        message = "the server failed to handle this request; it has been logged"
        if is_api(request):
            return error_json(500, "internal", message)
        return _html_error(request, 500, message)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        kind = _HTTP_TYPES.get(exc.status_code, "error")
        if is_api(request) or exc.status_code == 405:
            return error_json(exc.status_code, kind, str(exc.detail), exc.headers)
        return _html_error(request, exc.status_code, str(exc.detail))


def _describe(error: Any) -> str:
    where = ".".join(str(p) for p in error.get("loc", ()) if p not in ("body", "query", "path"))
    return f"{where}: {error.get('msg', 'invalid')}" if where else str(error.get("msg"))
