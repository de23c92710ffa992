"""Errors in the provider's own shape, and the raw ASGI sends of the gateway's own answers.

OpenAI: ``{"error": {"message", "type", "param", "code"}}``.
Anthropic: ``{"type": "error", "error": {"type", "message"}, "request_id"}``.

Every error response carries ``x-tokenwage-request-id``. Which status, ``type`` and ``code``
each domain error becomes is one table, :data:`EXCEPTION_SHAPES`, so the mapping that makes
agents stop (rather than retry) when an allowance is spent can be changed in one place. A
spent allowance (see docs/gateway.md): Anthropic clients get 402 ``billing_error`` (Claude
Code and the SDK never retry it); OpenAI clients get 429 ``usage_limit_reached`` with
``resets_at`` and ``x-codex-promo-message`` (what Codex CLI shows and stops on); both carry
``x-should-retry: false``, which the official SDKs obey before looking at the status.
"""

from __future__ import annotations

import itertools
import logging
import os
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

import orjson

from tokenwage.core.errors import (
    AllowanceExhausted,
    InvalidInput,
    ModelNotAllowed,
    StoreUnavailable,
    TokenwageError,
    Unauthenticated,
    UnknownModelPrice,
)
from tokenwage.gateway.config import ProviderKind

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
Header = tuple[bytes, bytes]

REQUEST_ID_HEADER = b"x-tokenwage-request-id"
_JSON: Header = (b"content-type", b"application/json")


@dataclass(frozen=True, slots=True)
class ErrorShape:
    """One kind of error in both dialects; ``should_retry`` sets ``x-should-retry`` when not
    None; ``anthropic_status`` (when set) is the Anthropic dialect's status."""

    status: int
    openai_type: str
    openai_code: str | None
    anthropic_type: str
    should_retry: bool | None = None
    anthropic_status: int | None = None

    def status_for(self, kind: ProviderKind) -> int:
        if kind == "anthropic" and self.anthropic_status is not None:
            return self.anthropic_status
        return self.status


EXCEPTION_SHAPES: tuple[tuple[type[TokenwageError], ErrorShape], ...] = (
    (
        Unauthenticated,
        ErrorShape(401, "invalid_request_error", "invalid_api_key", "authentication_error"),
    ),
    (ModelNotAllowed, ErrorShape(403, "permission_error", "model_not_allowed", "permission_error")),
    (
        AllowanceExhausted,
        ErrorShape(
            429,
            "usage_limit_reached",
            "usage_limit_reached",
            "billing_error",
            should_retry=False,
            anthropic_status=402,
        ),
    ),
    (
        UnknownModelPrice,
        ErrorShape(400, "invalid_request_error", "model_price_unknown", "invalid_request_error"),
    ),
    (StoreUnavailable, ErrorShape(503, "server_error", "store_unavailable", "api_error")),
    (InvalidInput, ErrorShape(400, "invalid_request_error", None, "invalid_request_error")),
)
"""Domain error -> shape, first ``isinstance`` match wins (subclasses before their bases)."""

INTERNAL = ErrorShape(500, "server_error", None, "api_error")
BAD_REQUEST = ErrorShape(400, "invalid_request_error", None, "invalid_request_error")
MODEL_NOT_SERVED = ErrorShape(404, "invalid_request_error", "model_not_found", "not_found_error")
NOT_FOUND = ErrorShape(404, "invalid_request_error", None, "not_found_error")
METHOD_NOT_ALLOWED = ErrorShape(405, "invalid_request_error", None, "invalid_request_error")
REQUEST_TOO_LARGE = ErrorShape(413, "invalid_request_error", None, "request_too_large")
UNSUPPORTED_ENCODING = ErrorShape(415, "invalid_request_error", None, "invalid_request_error")
UPSTREAM_UNREACHABLE = ErrorShape(502, "server_error", "upstream_unreachable", "api_error")
UPSTREAM_BROKEN = ErrorShape(502, "server_error", "upstream_error", "api_error")
UPSTREAM_TIMEOUT = ErrorShape(504, "server_error", "upstream_timeout", "timeout_error")


class StreamCut(Exception):
    """Raised once a stream was cut upstream, so the server cuts the client's connection too
    (a clean end would look like a complete answer)."""


class _HideStreamCuts(logging.Filter):
    """Keeps uvicorn from logging a traceback for every stream cut on purpose."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info is not None and isinstance(record.exc_info[1], StreamCut))


STREAM_CUT_FILTER = _HideStreamCuts()


class _RequestIds:
    """``twr_``, 16 random hex digits drawn once per process, and a 12-digit counter:
    unique across workers and restarts without a ``getrandom`` call per request."""

    def __init__(self) -> None:
        self.reset()
        os.register_at_fork(after_in_child=self.reset)

    def reset(self) -> None:
        self._prefix = "twr_" + os.urandom(8).hex()
        self._count = itertools.count()

    def next(self) -> str:
        return f"{self._prefix}{next(self._count):012x}"


_REQUEST_IDS = _RequestIds()


def new_request_id() -> str:
    """Ours, for every request: ``twr_`` and 28 hex digits, unique."""
    return _REQUEST_IDS.next()


class GatewayError(Exception):
    """A request the gateway itself refuses (bad JSON, unknown route, unreachable upstream)."""

    def __init__(self, shape: ErrorShape, message: str, *, param: str | None = None) -> None:
        super().__init__(message)
        self.shape = shape
        self.message = message
        self.param = param


def shape_of(exc: BaseException) -> ErrorShape:
    if isinstance(exc, GatewayError):
        return exc.shape
    for cls, shape in EXCEPTION_SHAPES:
        if isinstance(exc, cls):
            return shape
    return INTERNAL


def error_body(
    kind: ProviderKind,
    shape: ErrorShape,
    message: str,
    request_id: str,
    param: str | None = None,
    exc: BaseException | None = None,
) -> bytes:
    if kind == "anthropic":
        payload: dict[str, Any] = {
            "type": "error",
            "error": {"type": shape.anthropic_type, "message": message},
            "request_id": request_id,
        }
    else:
        payload = {
            "error": {
                "message": message,
                "type": shape.openai_type,
                "param": param,
                "code": shape.openai_code,
            }
        }
        if isinstance(exc, AllowanceExhausted) and exc.next_refill_utc is not None:
            payload["error"]["resets_at"] = int(exc.next_refill_utc.timestamp())
    return orjson.dumps(payload)


async def send_error(send: Send, kind: ProviderKind, exc: BaseException, request_id: str) -> int:
    """Answer with ``exc`` in the ``kind`` dialect; returns the status sent.

    Unexpected exceptions (bugs) say nothing about themselves beyond the request id.
    """
    shape = shape_of(exc)
    if shape is INTERNAL:
        message = f"The gateway failed to handle request {request_id}; it has been logged."
    else:
        message = str(exc)
    param = exc.param if isinstance(exc, GatewayError) else None
    headers = [(REQUEST_ID_HEADER, request_id.encode())]
    if shape.should_retry is not None:
        headers.append((b"x-should-retry", b"true" if shape.should_retry else b"false"))
    if kind == "openai" and isinstance(exc, AllowanceExhausted):
        # Codex shows it followed by ", or try again at <date>": no full stop of our own
        headers.append((b"x-codex-promo-message", _header_text(message.rstrip(". "))))
    body = error_body(kind, shape, message, request_id, param, exc)
    status = shape.status_for(kind)
    await send_json(send, status, body, headers)
    return status


def _header_text(text: str) -> bytes:
    """``text`` as a header value: one line of ASCII, at most 1 KB."""
    return " ".join(text.split()).encode("ascii", "replace")[:1024]


async def send_json(send: Send, status: int, body: bytes, headers: list[Header]) -> None:
    headers.append(_JSON)
    headers.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
