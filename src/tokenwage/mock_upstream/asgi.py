"""The few raw ASGI pieces the mock needs: types, body reading, JSON and SSE responses.

No framework: every response is two or more ``send`` calls built here, so the mock adds as
little as possible on top of uvicorn (it is the baseline of the gateway benchmark).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, NoReturn

import orjson

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
Header = tuple[bytes, bytes]

_JSON_TYPE: Header = (b"content-type", b"application/json")
_SSE_HEADERS: tuple[Header, ...] = (
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
)


class DropConnection(Exception):
    """Raised after a partial response to make the server cut the connection (a fault)."""


async def read_body(receive: Receive) -> bytes:
    message = await receive()
    body: bytes = message.get("body", b"")
    if not message.get("more_body", False):
        return body
    parts = [body]
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise DropConnection("client went away while sending its request")
        parts.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(parts)


async def send_json(send: Send, status: int, body: bytes, headers: list[Header]) -> None:
    headers.append(_JSON_TYPE)
    headers.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def send_json_cut(send: Send, status: int, body: bytes, headers: list[Header]) -> NoReturn:
    """Promise the whole body, send half of it, then drop the connection."""
    headers.append(_JSON_TYPE)
    headers.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body[: len(body) // 2], "more_body": True})
    raise DropConnection("x-mock-fault: drop-mid-stream")


class EventStream:
    """A ``text/event-stream`` response written one event per ``send``."""

    __slots__ = ("_send", "_headers", "_chunk_delay_s")

    def __init__(self, send: Send, headers: list[Header], chunk_delay_ms: float) -> None:
        self._send = send
        self._headers = headers
        self._chunk_delay_s = chunk_delay_ms / 1000.0

    async def open(self) -> None:
        self._headers.extend(_SSE_HEADERS)
        await self._send({"type": "http.response.start", "status": 200, "headers": self._headers})

    async def data(self, payload: Any) -> None:
        """An unnamed event (OpenAI chat completions style)."""
        body = b"data: " + orjson.dumps(payload) + b"\n\n"
        await self._send({"type": "http.response.body", "body": body, "more_body": True})

    async def named(self, name: str, payload: Any) -> None:
        """A named event (Responses API and Anthropic style)."""
        body = b"event: " + name.encode() + b"\ndata: " + orjson.dumps(payload) + b"\n\n"
        await self._send({"type": "http.response.body", "body": body, "more_body": True})

    async def raw(self, body: bytes) -> None:
        await self._send({"type": "http.response.body", "body": body, "more_body": True})

    async def pause(self) -> None:
        """The configured delay between two content chunks."""
        if self._chunk_delay_s > 0:
            await asyncio.sleep(self._chunk_delay_s)

    async def close(self) -> None:
        await self._send({"type": "http.response.body", "body": b"", "more_body": False})


def drop_point(chunks: int, fail: bool) -> int:
    """Index of the content chunk after which a mid-stream fault strikes; -1 for none."""
    return (chunks - 1) // 2 if fail else -1


async def fail_mid_stream(stream: EventStream, drop: bool, error_event: bytes) -> None:
    """Cut the connection (``drop``) or end the stream with the provider's error event."""
    if drop:
        raise DropConnection("x-mock-fault: drop-mid-stream")
    await stream.raw(error_event)
    await stream.close()


class _HideDroppedConnections(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info
        return not (exc is not None and isinstance(exc[1], DropConnection))


_FILTER = _HideDroppedConnections()


def hide_dropped_connection_errors() -> None:
    """Keep uvicorn from logging a traceback for every connection the mock drops on purpose."""
    logger = logging.getLogger("uvicorn.error")
    if _FILTER not in logger.filters:
        logger.addFilter(_FILTER)
