"""The OTLP/HTTP receiver for Claude Code telemetry, as one plain async function to mount.

::

    status, body = await handle_otlp(request.path, await request.body(),
                                     request.headers["content-type"], book,
                                     content_encoding=request.headers.get("content-encoding"))
    return Response(body, status, media_type=response_content_type(content_type))

``book`` writes the records (``import_usage`` in one transaction) and returns how many were
new. Parsing, and why logs are booked and metrics by default are not, is in
:mod:`tokenwage.importers.otlp`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import Message
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)

from tokenwage.core.errors import InvalidInput, StoreUnavailable, TokenwageError
from tokenwage.importers.otlp import (
    LOGS_PATH,
    METRICS_PATH,
    Book,
    Parsed,
    decode,
    logs_from_request,
    media_kind,
    metrics_from_request,
)

__all__ = ["Book", "handle_otlp", "response_content_type"]


@dataclass(frozen=True)
class _Route:
    request: Callable[[], Message]
    response: Callable[[], Message]
    parse: Callable[[Any], Parsed]
    rejected_field: str


_ROUTES = {
    LOGS_PATH: _Route(
        request=ExportLogsServiceRequest,
        response=ExportLogsServiceResponse,
        parse=logs_from_request,
        rejected_field="rejected_log_records",
    ),
    METRICS_PATH: _Route(
        request=ExportMetricsServiceRequest,
        response=ExportMetricsServiceResponse,
        parse=metrics_from_request,
        rejected_field="rejected_data_points",
    ),
}


async def handle_otlp(
    path: str,
    body: bytes,
    content_type: str,
    book: Book,
    *,
    content_encoding: str | None = None,
    book_metrics: bool = False,
) -> tuple[int, bytes]:
    """Answer one OTLP/HTTP export: ``(status, body)``; send the body with
    :func:`response_content_type` of the request's content type.

    200 with an empty ``Export*ServiceResponse`` when everything was booked; 200 with
    ``partial_success`` (rejected count and the first reasons) when some items cannot be
    booked, or ``book`` refused them for a domain reason such as an unpriced model, since a
    retry would not help; 400 for an undecodable body, 404 for another path, 415 for another
    content type (those bodies are ``google.rpc.Status``); 503 when ``book`` raised
    :class:`StoreUnavailable`, which OTLP exporters retry with backoff.
    """
    try:
        kind = media_kind(content_type)
    except InvalidInput as exc:
        return 415, _status("json", 3, str(exc))
    route = _ROUTES.get(path.rstrip("/"))
    if route is None:
        return 404, _status(
            kind, 5, f"no OTLP endpoint at {path!r}; use {LOGS_PATH} or {METRICS_PATH}"
        )
    try:
        parsed = route.parse(decode(body, content_type, route.request(), content_encoding))
    except InvalidInput as exc:
        return 400, _status(kind, 3, str(exc))
    records = parsed.records if route is _ROUTES[LOGS_PATH] or book_metrics else []
    if records:
        try:
            await book(records)
        except StoreUnavailable as exc:
            return 503, _status(kind, 14, str(exc))
        except TokenwageError as exc:
            parsed.reject("booking", str(exc), len(records))
    response = route.response()
    if parsed.rejected:
        partial = getattr(response, "partial_success")  # noqa: B009 - both response types have it
        setattr(partial, route.rejected_field, parsed.rejected)
        partial.error_message = "; ".join(parsed.errors)
    return 200, _encode(response, kind)


def response_content_type(content_type: str) -> str:
    """The content type of :func:`handle_otlp`'s answer to a request of ``content_type``."""
    try:
        protobuf = media_kind(content_type) == "protobuf"
    except InvalidInput:
        protobuf = False
    return "application/x-protobuf" if protobuf else "application/json"


def _encode(message: Message, kind: str) -> bytes:
    if kind == "protobuf":
        return message.SerializeToString()
    return json_format.MessageToJson(message, indent=None).encode()


def _status(kind: str, code: int, message: str) -> bytes:
    """A ``google.rpc.Status`` (code, message) in protobuf or JSON."""
    if kind == "json":
        return json.dumps({"code": code, "message": message}).encode()
    text = message.encode()
    return b"\x08" + _varint(code) + b"\x12" + _varint(len(text)) + text


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        low, value = value & 0x7F, value >> 7
        out.append(low | (0x80 if value else 0))
        if not value:
            return bytes(out)
