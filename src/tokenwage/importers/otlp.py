"""Claude Code's OpenTelemetry export (OTLP/HTTP, protobuf or JSON) as imported usage.

Logs, ``POST /v1/logs`` (``ExportLogsServiceRequest``): every log record whose event is
``claude_code.api_request`` (attribute ``event.name`` = ``api_request``, or the record's
``event_name`` / string body = ``claude_code.api_request``) is one request, with attributes
``model``, ``input_tokens`` (uncached), ``output_tokens``, ``cache_read_tokens``,
``cache_creation_tokens`` (all cache writes, booked as 5-minute writes), ``cost_usd`` /
``cost_usd_micros``, ``duration_ms``, ``request_id`` (Anthropic's ``req_...``, when the API
gave one), ``client_request_id``, ``session.id``, ``event.sequence``, ``event.timestamp``.
Its key is the request id (else the client request id, else session id + event sequence),
and the request id is kept as ``upstream_request_id`` so usage that passed through the
gateway is not charged again. Other events are ignored.

Metrics, ``POST /v1/metrics`` (``ExportMetricsServiceRequest``): the counters
``claude_code.token.usage`` (attribute ``type`` = ``input`` | ``output`` | ``cacheRead`` |
``cacheCreation``, plus ``model``) and ``claude_code.cost.usage`` (USD). The points of one
series and time window (every attribute but ``type``) add up to one record. Only **delta**
temporality can be booked (``OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE=delta``): a
cumulative point is a running total, and is rejected with that advice.

Who: the first of ``user.email`` (EMAIL), ``user.account_uuid`` (ACCOUNT),
``user.account_id`` (PROVIDER_USER, the ``user_01...`` id of Anthropic's admin APIs) and
``host.name`` (HOSTNAME), from the record's attributes, else its resource's.

**Logs are preferred.** Claude Code sends both signals when both exporters are on, and the
metrics are the same requests summed, so booking both would count every request twice.
:func:`tokenwage.importers.otlp_receiver.handle_otlp` books logs and acknowledges metrics
without booking them unless it is mounted with ``book_metrics=True``, for installations that
export metrics only (``OTEL_LOGS_EXPORTER`` unset).
"""

from __future__ import annotations

import zlib
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar

from google.protobuf import json_format
from google.protobuf.message import DecodeError, Message
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
)
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.common.v1.common_pb2 import KeyValue
from opentelemetry.proto.metrics.v1.metrics_pb2 import AggregationTemporality

from tokenwage.core.errors import InvalidInput
from tokenwage.core.imported import Identity, IdentityKind, ImportedUsage
from tokenwage.core.money import Money
from tokenwage.core.usage import TokenUsage
from tokenwage.importers.report_json import digest_key

SOURCE_LOGS = "claude_code_otel"
SOURCE_METRICS = "claude_code_otel_metrics"
PROVIDER = "anthropic"
LOGS_PATH = "/v1/logs"
METRICS_PATH = "/v1/metrics"
TOKEN_METRIC = "claude_code.token.usage"
COST_METRIC = "claude_code.cost.usage"
MAX_BODY_BYTES = 64 * 1024 * 1024  # after gunzip

Book = Callable[[list[ImportedUsage]], Awaitable[int]]
_M = TypeVar("_M", bound=Message)
_TOKEN_TYPES = {
    "input": "input_tokens",
    "output": "output_tokens",
    "cacheRead": "cache_read_tokens",
    "cacheCreation": "cache_write_tokens",
}
_IDENTITIES = (
    ("user.email", IdentityKind.EMAIL),
    ("user.account_uuid", IdentityKind.ACCOUNT),
    ("user.account_id", IdentityKind.PROVIDER_USER),
    ("host.name", IdentityKind.HOSTNAME),
)
_EXTRA = (
    "duration_ms",
    "query_source",
    "speed",
    "effort",
    "terminal.type",
    "organization.id",
    "client_request_id",
    "prompt.id",
)


class _Bad(Exception):
    """One record or point that cannot be booked (the rest of the request still can)."""


@dataclass
class Parsed:
    """What one export request holds: bookable records, and how many items were rejected."""

    records: list[ImportedUsage] = field(default_factory=list)
    rejected: int = 0
    errors: list[str] = field(default_factory=list)

    def reject(self, where: str, why: str, count: int = 1) -> None:
        self.rejected += count
        if len(self.errors) < 5:
            self.errors.append(f"{where}: {why}")

    def strict(self) -> list[ImportedUsage]:
        if self.rejected:
            raise InvalidInput(
                f"{self.rejected} OTLP item(s) cannot be booked: " + "; ".join(self.errors)
            )
        return self.records


# -- public parsing -----------------------------------------------------------------------------
def parse_otlp_logs(
    body: bytes, content_type: str, *, content_encoding: str | None = None
) -> list[ImportedUsage]:
    """One record per ``claude_code.api_request`` event; a malformed one is InvalidInput."""
    request = decode(body, content_type, ExportLogsServiceRequest(), content_encoding)
    return logs_from_request(request).strict()


def parse_otlp_metrics(
    body: bytes, content_type: str, *, content_encoding: str | None = None
) -> list[ImportedUsage]:
    """One record per token-usage series and delta window; cumulative points are InvalidInput."""
    request = decode(body, content_type, ExportMetricsServiceRequest(), content_encoding)
    return metrics_from_request(request).strict()


def decode(body: bytes, content_type: str, message: _M, content_encoding: str | None = None) -> _M:
    """``body`` (protobuf or JSON by ``content_type``, gzip by ``content_encoding``) into
    ``message``; anything undecodable is :class:`InvalidInput` naming what was wrong."""
    encoding = (content_encoding or "").strip().lower()
    if encoding == "gzip":
        body = _gunzip(body)
    elif encoding not in ("", "identity"):
        raise InvalidInput(f"Content-Encoding {content_encoding!r} is not supported; use gzip")
    kind = media_kind(content_type)
    name = type(message).__name__
    if kind == "protobuf":
        try:
            message.ParseFromString(body)
        except DecodeError as exc:
            raise InvalidInput(f"the body is not a protobuf {name}: {exc}") from None
        return message
    try:
        json_format.Parse(body.decode("utf-8"), message, ignore_unknown_fields=True)
    except (json_format.ParseError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"the body is not an OTLP/JSON {name}: {exc}") from None
    return message


def media_kind(content_type: str) -> str:
    """``"protobuf"`` or ``"json"``; any other content type is InvalidInput."""
    media = content_type.split(";", 1)[0].strip().lower()
    if media in ("application/x-protobuf", "application/protobuf"):
        return "protobuf"
    if media == "application/json":
        return "json"
    raise InvalidInput(
        f"Content-Type {content_type!r} is not OTLP; send application/x-protobuf or "
        "application/json"
    )


def _gunzip(body: bytes) -> bytes:
    inflater = zlib.decompressobj(wbits=31)
    try:
        data = inflater.decompress(body, MAX_BODY_BYTES)
    except zlib.error as exc:
        raise InvalidInput(f"the body is not gzip: {exc}") from None
    if inflater.unconsumed_tail:
        raise InvalidInput(f"the body inflates to more than {MAX_BODY_BYTES} bytes")
    return data


# -- logs --------------------------------------------------------------------------------------
def logs_from_request(request: ExportLogsServiceRequest) -> Parsed:
    parsed = Parsed()
    for i, resource_logs in enumerate(request.resource_logs):
        resource = _attributes(resource_logs.resource.attributes)
        for j, scope_logs in enumerate(resource_logs.scope_logs):
            for k, log in enumerate(scope_logs.log_records):
                attrs = _attributes(log.attributes)
                name = str(attrs.get("event.name") or log.event_name or log.body.string_value)
                if name.removeprefix("claude_code.") != "api_request":
                    continue
                try:
                    parsed.records.append(
                        _api_request(
                            log.time_unix_nano or log.observed_time_unix_nano, attrs, resource
                        )
                    )
                except _Bad as exc:
                    parsed.reject(f"resource_logs[{i}].scope_logs[{j}].log_records[{k}]", str(exc))
    return parsed


def _api_request(
    time_ns: int, attrs: dict[str, object], resource: dict[str, object]
) -> ImportedUsage:
    model = _text(attrs, "model")
    if model is None:
        raise _Bad("no model attribute")
    usage = TokenUsage(
        input_tokens=_count(attrs, "input_tokens"),
        output_tokens=_count(attrs, "output_tokens"),
        cache_read_tokens=_count(attrs, "cache_read_tokens"),
        cache_write_tokens=_count(attrs, "cache_creation_tokens"),
    )
    used = _event_time(attrs) if "event.timestamp" in attrs else None
    used = used or (_from_nanos(time_ns) if time_ns else None)
    if used is None:
        raise _Bad("no time: neither event.timestamp nor time_unix_nano")
    request_id, session = _text(attrs, "request_id"), _text(attrs, "session.id")
    sequence, client_id = _text(attrs, "event.sequence"), _text(attrs, "client_request_id")
    if request_id:
        key = request_id
    elif client_id:
        key = f"client:{client_id}"
    elif session and sequence:
        key = f"seq:{session}:{sequence}"
    else:
        key = digest_key(
            "h",
            {
                "session": session,
                "at": used.isoformat(),
                "model": model,
                "prompt": _text(attrs, "prompt.id"),
                "usage": repr(usage),
            },
        )
    if len(key) > 80:
        key = digest_key("d", {"key": key})
    merged = {**resource, **attrs}
    return ImportedUsage(
        source=SOURCE_LOGS,
        key=key,
        used_utc=used,
        provider=PROVIDER,
        model=model,
        usage=usage,
        identities=_identities(merged),
        session_id=session,
        hostname=_text(merged, "host.name"),
        upstream_request_id=request_id,
        reported_cost=_cost(attrs),
        extra={name: str(merged[name]) for name in _EXTRA if name in merged},
    )


def _event_time(attrs: Mapping[str, object]) -> datetime:
    text = str(attrs["event.timestamp"])
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise _Bad(f"event.timestamp {text!r} is not an ISO 8601 time") from None
    if value.tzinfo is None:
        raise _Bad(f"event.timestamp {text!r} has no time zone")
    return value.astimezone(UTC)


def _cost(attrs: Mapping[str, object]) -> Money | None:
    micros = attrs.get("cost_usd_micros")
    if micros is not None:
        return Money(_count(attrs, "cost_usd_micros") * 1000)
    return _usd(attrs.get("cost_usd"), "cost_usd")


def _usd(value: object, name: str) -> Money | None:
    if value is None:
        return None
    try:
        amount = Decimal(repr(value) if isinstance(value, float) else str(value))
    except InvalidOperation:
        raise _Bad(f"{name} {value!r} is not a number") from None
    if not amount.is_finite() or amount < 0:
        raise _Bad(f"{name} {value!r} is not a cost")
    return Money.from_decimal(amount)


# -- metrics -----------------------------------------------------------------------------------
@dataclass
class _Window:
    attrs: dict[str, object]
    start_ns: int
    end_ns: int
    tokens: dict[str, int] = field(default_factory=dict)
    cost: Money | None = None


def metrics_from_request(request: ExportMetricsServiceRequest) -> Parsed:
    parsed = Parsed()
    windows: dict[tuple[object, ...], _Window] = {}
    for i, resource_metrics in enumerate(request.resource_metrics):
        resource = _attributes(resource_metrics.resource.attributes)
        for j, scope in enumerate(resource_metrics.scope_metrics):
            for k, metric in enumerate(scope.metrics):
                if metric.name not in (TOKEN_METRIC, COST_METRIC):
                    continue
                where = f"resource_metrics[{i}].scope_metrics[{j}].metrics[{k}] ({metric.name})"
                if metric.WhichOneof("data") != "sum":
                    parsed.reject(where, "expected a Sum (counter)")
                    continue
                points = metric.sum.data_points
                if (
                    metric.sum.aggregation_temporality
                    != AggregationTemporality.AGGREGATION_TEMPORALITY_DELTA
                ):
                    parsed.reject(
                        where,
                        "cumulative points cannot be booked; set "
                        "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE=delta",
                        len(points),
                    )
                    continue
                for n, point in enumerate(points):
                    try:
                        _add_point(windows, metric.name, point, resource)
                    except _Bad as exc:
                        parsed.reject(f"{where}.data_points[{n}]", str(exc))
    for window in windows.values():
        try:
            record = _window_record(window)
        except _Bad as exc:
            parsed.reject("data points", str(exc))
            continue
        if record is not None:
            parsed.records.append(record)
    return parsed


def _add_point(
    windows: dict[tuple[object, ...], _Window], metric: str, point: Any, resource: dict[str, object]
) -> None:
    attrs = _attributes(point.attributes)
    token_type = attrs.pop("type", None) if metric == TOKEN_METRIC else None
    merged = {**resource, **attrs}
    series = (
        tuple(sorted((k, repr(v)) for k, v in merged.items())),
        point.start_time_unix_nano,
        point.time_unix_nano,
    )
    window = windows.setdefault(
        series, _Window(merged, point.start_time_unix_nano, point.time_unix_nano)
    )
    value: object = point.as_int if point.WhichOneof("value") == "as_int" else point.as_double
    if metric == COST_METRIC:
        cost = _usd(value, COST_METRIC)
        window.cost = cost if window.cost is None or cost is None else window.cost + cost
        return
    kind = _TOKEN_TYPES.get(str(token_type))
    if kind is None:
        raise _Bad(f"token type {token_type!r} is not one of {', '.join(_TOKEN_TYPES)}")
    window.tokens[kind] = window.tokens.get(kind, 0) + _count({"value": value}, "value")


def _window_record(window: _Window) -> ImportedUsage | None:
    usage = TokenUsage(**window.tokens)
    if not usage.total_tokens:
        return None
    model = _text(window.attrs, "model")
    if model is None:
        raise _Bad(f"{TOKEN_METRIC} points without a model attribute")
    if not window.end_ns:
        raise _Bad(f"{TOKEN_METRIC} points without time_unix_nano")
    end = _from_nanos(window.end_ns)
    series = {k: repr(v) for k, v in window.attrs.items()}
    return ImportedUsage(
        source=SOURCE_METRICS,
        key=digest_key(
            end.strftime("%Y%m%dT%H%M%S"),
            {"series": series, "start": window.start_ns, "end": window.end_ns},
        ),
        used_utc=end,
        provider=PROVIDER,
        model=model,
        usage=usage,
        identities=_identities(window.attrs),
        session_id=_text(window.attrs, "session.id"),
        hostname=_text(window.attrs, "host.name"),
        reported_cost=window.cost,
        extra={name: str(window.attrs[name]) for name in _EXTRA if name in window.attrs},
    )


# -- attributes --------------------------------------------------------------------------------
def _attributes(pairs: Sequence[KeyValue]) -> dict[str, object]:
    """Scalar attributes (string, int, double, bool); arrays, maps and bytes are skipped."""
    found: dict[str, object] = {}
    for pair in pairs:
        which = pair.value.WhichOneof("value")
        if which in ("string_value", "int_value", "double_value", "bool_value"):
            found[pair.key] = getattr(pair.value, which)
    return found


def _text(attrs: Mapping[str, object], name: str) -> str | None:
    value = attrs.get(name)
    if value is None or isinstance(value, bool) or str(value).strip() == "":
        return None
    return str(value).strip()


def _count(attrs: Mapping[str, object], name: str) -> int:
    """A token count: an int, a whole double or digits in a string; missing is 0."""
    value = attrs.get(name)
    if value is None:
        return 0
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    elif isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise _Bad(f"{name} {value!r} is not a count of tokens")
    return value


def _identities(attrs: Mapping[str, object]) -> tuple[Identity, ...]:
    found = []
    for name, kind in _IDENTITIES:
        value = _text(attrs, name)
        if value is not None:
            found.append(Identity(kind, value))
    return tuple(found)


def _from_nanos(nanos: int) -> datetime:
    return datetime.fromtimestamp(nanos // 1_000_000_000, UTC) + timedelta(
        microseconds=nanos % 1_000_000_000 // 1000
    )
