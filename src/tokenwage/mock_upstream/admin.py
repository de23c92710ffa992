"""Fake admin (usage and cost reporting) endpoints, deterministic and paginated like the real ones.

OpenAI (``Authorization: Bearer``)
    ``GET /v1/organization/usage/completions`` ``?start_time&end_time&bucket_width=1h|1d
    &group_by=..&limit&page``; ``GET /v1/organization/costs`` (``1d``; group by
    ``project_id``, ``line_item``). Pages: ``{"object": "page", "data", "has_more",
    "next_page"}``.
Anthropic (``x-api-key`` + ``anthropic-version``)
    ``GET /v1/organizations/usage_report/messages`` ``?starting_at&ending_at&bucket_width
    &group_by[]=..&limit&page``; ``GET /v1/organizations/cost_report`` (amounts in cents as
    strings); ``GET /v1/organizations/usage_report/claude_code?starting_at=YYYY-MM-DD&limit
    &page`` (one row per actor and day).
Cursor (HTTP Basic, the key as user name)
    ``POST /teams/filtered-usage-events`` ``{"startDate", "endDate", "page", "pageSize",
    "email"}`` (milliseconds, both ends inclusive, at most 30 days).

The simulated organisation, its usage and its costs are in :mod:`.admin_data`: the same
numbers for the same window on every run. Auth, ``x-mock-fault`` and
``MockConfig.error_rate`` faults work as on the other endpoints.
"""

from __future__ import annotations

import base64
import hashlib
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl

import orjson

from tokenwage.mock_upstream.admin_data import (
    anthropic_hour,
    claude_code_rows,
    cost_usd,
    cursor_events_between,
    openai_hour,
)
from tokenwage.mock_upstream.asgi import Header, Receive, Scope, Send, read_body, send_json
from tokenwage.mock_upstream.config import MockConfig
from tokenwage.mock_upstream.exchange import Exchange
from tokenwage.mock_upstream.faults import (
    FAULT_HEADER,
    NO_FAULTS,
    ForcedFaults,
    RandomFaults,
    UnknownFault,
)
from tokenwage.mock_upstream.providers import ANTHROPIC, OPENAI, ApiError, Provider

ADMIN_PREFIXES = ("/v1/organization/", "/v1/organizations/", "/teams/")
_OPENAI_DIMS = ("project_id", "user_id", "api_key_id", "model", "batch", "service_tier")
_ANTHROPIC_DIMS = (
    "api_key_id",
    "workspace_id",
    "model",
    "service_tier",
    "context_window",
    "account_id",
)
_WIDTHS = {"1h": (3600, 24, 168), "1d": (86400, 7, 31)}  # seconds, default limit, max limit


class _Cursor(Provider):
    name = "cursor"
    request_id_header = b"x-request-id"
    fault_statuses = (500, 503, 429)
    invalid_json_message = "Invalid JSON body"

    def authenticate(self, exchange: Exchange) -> None:
        value = exchange.headers.get("authorization", "")
        try:
            key = base64.b64decode(value[6:]).decode().split(":", 1)[0]
        except (ValueError, UnicodeDecodeError):
            key = ""
        if value[:6].lower() != "basic " or not key:
            raise ApiError(401, "Unauthorized: use HTTP Basic auth with your admin API key")
        if not self.check_key(key, exchange):
            raise ApiError(401, "Unauthorized: invalid API key")

    def error_body(self, error: ApiError, exchange: Exchange) -> bytes:
        return orjson.dumps({"error": error.message})

    def fault(self, status: int) -> ApiError:
        return ApiError(status, f"Simulated HTTP {status} from mock-upstream.")


CURSOR = _Cursor()


class _Query:
    def __init__(self, raw: bytes) -> None:
        self.pairs = parse_qsl(raw.decode("latin-1"), keep_blank_values=True)

    def get(self, name: str) -> str | None:
        return next((v for k, v in self.pairs if k == name), None)

    def all(self, name: str) -> list[str]:
        return [v for k, v in self.pairs if k in (name, f"{name}[]")]

    def int(self, name: str, default: int | None = None) -> int:
        value = self.get(name)
        if value is None and default is not None:
            return default
        if value is None or not value.lstrip("-").isdigit():
            raise ApiError(400, f"{name} must be an integer, got {value!r}", param=name)
        return int(value)


def _aggregate(
    rows: Iterable[dict[str, Any]], dims: tuple[str, ...], groups: list[str], counters: list[str]
) -> list[dict[str, Any]]:
    found: dict[tuple[Any, ...], dict[str, Any]] = {}
    for row in rows:
        key = tuple(row[d] if d in groups else None for d in dims)
        total = found.setdefault(
            key, {**dict(zip(dims, key, strict=True)), **{c: 0 for c in counters}}
        )
        for c in counters:
            total[c] += row[c]
    return list(found.values())


# -- bucketed reports (OpenAI and Anthropic) ----------------------------------------------------
@dataclass(frozen=True)
class _Window:
    starts: list[int]
    width: int
    next_start: int | None


def _window(
    start: int, end: int, width_name: str, limit: int | None, page: str | None, most: int = 0
) -> _Window:
    """Bucket starts of one page; ``most`` overrides the width's maximum limit."""
    if width_name not in _WIDTHS:
        raise ApiError(400, f"bucket_width {width_name!r} is not supported by the mock: 1h or 1d")
    width, default, most = (
        _WIDTHS[width_name][0],
        _WIDTHS[width_name][1],
        most or _WIDTHS[width_name][2],
    )
    limit = default if limit is None else limit
    if not 1 <= limit <= most:
        raise ApiError(400, f"limit must be between 1 and {most} for {width_name}", param="limit")
    at = start - start % width
    if page:
        try:
            at = int(base64.urlsafe_b64decode(page.removeprefix("page_")).decode())
        except ValueError:
            raise ApiError(400, f"invalid page {page!r}", param="page") from None
    starts: list[int] = []
    while at < end and len(starts) < limit:
        starts.append(at)
        at += width
    return _Window(starts, width, at if at < end else None)


def _page_token(at: int | None) -> str | None:
    return None if at is None else "page_" + base64.urlsafe_b64encode(str(at).encode()).decode()


def _hours(
    seed: int, start: int, width: int, per_hour: Callable[[int, int], list[dict[str, Any]]]
) -> list[dict[str, Any]]:
    return [row for h in range(start // 3600, (start + width) // 3600) for row in per_hour(seed, h)]


def _groups(query: _Query, allowed: tuple[str, ...]) -> list[str]:
    groups = query.all("group_by")
    for g in groups:
        if g not in allowed:
            raise ApiError(400, f"group_by {g!r} is not one of {', '.join(allowed)}")
    return groups


def _openai_report(exchange: Exchange, query: _Query, costs: bool) -> dict[str, Any]:
    start = query.int("start_time")
    end = query.int("end_time", int(time.time()))
    width = query.get("bucket_width") or "1d"
    if costs and width != "1d":
        raise ApiError(400, "Costs support only bucket_width=1d", param="bucket_width")
    limit = query.get("limit")
    page = query.get("page")
    window = _window(start, end, width, int(limit) if limit else None, page, 180 if costs else 0)
    groups = _groups(query, ("project_id", "line_item") if costs else _OPENAI_DIMS)
    seed, data = exchange.config.seed, []
    for at in window.starts:
        rows = _hours(seed, at, window.width, openai_hour)
        results = (
            _openai_costs(rows, groups)
            if costs
            else [
                {"object": "organization.usage.completions.result", **r}
                for r in _aggregate(
                    rows,
                    _OPENAI_DIMS,
                    groups,
                    ["input_tokens", "input_cached_tokens", "output_tokens", "num_model_requests"],
                )
            ]
        )
        data.append(
            {
                "object": "bucket",
                "start_time": at,
                "end_time": at + window.width,
                "results": results,
            }
        )
    token = _page_token(window.next_start)
    return {"object": "page", "data": data, "has_more": token is not None, "next_page": token}


def _openai_costs(rows: list[dict[str, Any]], groups: list[str]) -> list[dict[str, Any]]:
    items = []
    for r in rows:
        cached = r["input_cached_tokens"]
        for part, value in (
            ("input", cost_usd(r["input_tokens"], cached, 0)),
            ("output", cost_usd(0, 0, r["output_tokens"])),
        ):
            items.append(
                {
                    "project_id": r["project_id"],
                    "line_item": f"{r['model']}, {part}",
                    "value": value,
                }
            )
    return [
        {
            "object": "organization.costs.result",
            "amount": {"value": float(r["value"].quantize(Decimal("0.000001"))), "currency": "usd"},
            "line_item": r["line_item"],
            "project_id": r["project_id"],
        }
        for r in _aggregate(items, ("project_id", "line_item"), groups, ["value"])
    ]


def _instant(query: _Query, name: str, default: datetime | None = None) -> int:
    value = query.get(name)
    if value is None and default is not None:
        return int(default.timestamp())
    try:
        return int(datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp())
    except ValueError:
        raise ApiError(400, f"{name}: invalid RFC 3339 datetime {value!r}") from None


def _anthropic_report(exchange: Exchange, query: _Query, costs: bool) -> dict[str, Any]:
    start = _instant(query, "starting_at")
    end = _instant(query, "ending_at", datetime.now(UTC))
    limit = query.get("limit")
    window = _window(
        start,
        end,
        query.get("bucket_width") or "1d",
        int(limit) if limit else None,
        query.get("page"),
    )
    groups = _groups(query, ("workspace_id", "description") if costs else _ANTHROPIC_DIMS)
    data = []
    for at in window.starts:
        rows = _hours(exchange.config.seed, at, window.width, anthropic_hour)
        results = (
            _anthropic_costs(rows, groups)
            if costs
            else [
                _anthropic_row(r)
                for r in _aggregate(
                    rows,
                    _ANTHROPIC_DIMS,
                    groups,
                    [
                        "uncached_input_tokens",
                        "cache_read_input_tokens",
                        "ephemeral_5m_input_tokens",
                        "ephemeral_1h_input_tokens",
                        "output_tokens",
                        "web_search_requests",
                    ],
                )
            ]
        )
        data.append(
            {"starting_at": _iso(at), "ending_at": _iso(at + window.width), "results": results}
        )
    token = _page_token(window.next_start)
    return {"data": data, "has_more": token is not None, "next_page": token}


def _anthropic_row(r: dict[str, Any]) -> dict[str, Any]:
    row = {
        k: v for k, v in r.items() if not k.startswith("ephemeral") and k != "web_search_requests"
    }
    row["cache_creation"] = {
        k: r[k] for k in ("ephemeral_5m_input_tokens", "ephemeral_1h_input_tokens")
    }
    row["server_tool_use"] = {"web_search_requests": r["web_search_requests"]}
    return row


def _anthropic_costs(rows: list[dict[str, Any]], groups: list[str]) -> list[dict[str, Any]]:
    items = []
    for r in rows:
        prompt = r["uncached_input_tokens"] + r["cache_read_input_tokens"]
        for kind, usd in (
            ("Input Tokens", cost_usd(prompt, r["cache_read_input_tokens"], 0)),
            ("Output Tokens", cost_usd(0, 0, r["output_tokens"])),
        ):
            items.append(
                {
                    "workspace_id": r["workspace_id"],
                    "model": r["model"],
                    "description": f"{r['model']} Usage - {kind}",
                    "cents": usd * 100,
                }
            )
    described = "description" in groups
    return [
        {
            "amount": str(r["cents"].quantize(Decimal("0.0001"))),
            "currency": "USD",
            "workspace_id": r["workspace_id"],
            "description": r["description"],
            "cost_type": "tokens" if described else None,
            "model": r["model"] if described else None,
            "service_tier": "standard" if described else None,
            "token_type": None,
            "context_window": None,
        }
        for r in _aggregate(
            items,
            ("workspace_id", "description", "model"),
            groups + (["model"] if described else []),
            ["cents"],
        )
    ]


def _iso(at: int) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _claude_code(exchange: Exchange, query: _Query) -> dict[str, Any]:
    try:
        day = date.fromisoformat(query.get("starting_at") or "")
    except ValueError:
        raise ApiError(400, "starting_at must be a UTC date like 2026-01-31") from None
    limit = query.int("limit", 20)
    offset = int(query.get("page") or "0")
    rows = claude_code_rows(exchange.config.seed, day)
    more = offset + limit < len(rows)
    return {
        "data": rows[offset : offset + limit],
        "has_more": more,
        "next_page": str(offset + limit) if more else None,
    }


def _cursor_events(exchange: Exchange, query: _Query) -> dict[str, Any]:
    body = CURSOR.parse(exchange)
    now_ms = int(time.time() * 1000)
    start, end = (
        int(body.get("startDate", now_ms - 7 * 86_400_000)),
        int(body.get("endDate", now_ms)),
    )
    if end - start > 30 * 86_400_000:
        raise ApiError(400, "Date range cannot exceed 30 days")
    page, size = int(body.get("page", 1)), int(body.get("pageSize", 10))
    events = cursor_events_between(exchange.config.seed, start, end)
    if body.get("email"):
        events = [e for e in events if e["userEmail"] == body["email"]]
    pages = max(1, -(-len(events) // size))
    return {
        "totalUsageEventsCount": len(events),
        "pagination": {
            "numPages": pages,
            "currentPage": page,
            "pageSize": size,
            "hasNextPage": page < pages,
            "hasPreviousPage": page > 1,
        },
        "usageEvents": events[(page - 1) * size : page * size],
        "period": {"startDate": start, "endDate": end},
    }


_Handler = Callable[[Exchange, _Query], dict[str, Any]]
_ROUTES: Mapping[tuple[str, str], tuple[Provider, _Handler]] = {
    ("GET", "/v1/organization/usage/completions"): (
        OPENAI,
        lambda e, q: _openai_report(e, q, False),
    ),
    ("GET", "/v1/organization/costs"): (OPENAI, lambda e, q: _openai_report(e, q, True)),
    ("GET", "/v1/organizations/usage_report/messages"): (
        ANTHROPIC,
        lambda e, q: _anthropic_report(e, q, False),
    ),
    ("GET", "/v1/organizations/cost_report"): (
        ANTHROPIC,
        lambda e, q: _anthropic_report(e, q, True),
    ),
    ("GET", "/v1/organizations/usage_report/claude_code"): (ANTHROPIC, _claude_code),
    ("POST", "/teams/filtered-usage-events"): (CURSOR, _cursor_events),
}


async def serve_admin(
    config: MockConfig, faults: RandomFaults, scope: Scope, receive: Receive, send: Send
) -> None:
    """Answer one request to an admin path (one of :data:`ADMIN_PREFIXES`)."""
    method, path = scope["method"], scope["path"]
    body = await read_body(receive)
    id_hex = hashlib.blake2b(
        repr((method, path, scope["query_string"], body)).encode(), digest_size=12
    ).hexdigest()
    exchange = Exchange.build(config, scope, body, id_hex, NO_FAULTS)
    provider, handler = _ROUTES.get((method, path), (_provider_for(path), None))
    headers: list[Header]
    try:
        exchange.faults = ForcedFaults.parse(exchange.headers.get(FAULT_HEADER))
        provider.authenticate(exchange)
        status = exchange.faults.status or faults.draw_status(provider.fault_statuses)
        if status is not None:
            raise provider.fault(status)
        if handler is None:
            raise ApiError(404, f"Invalid URL ({method} {path})")
        payload = handler(exchange, _Query(scope["query_string"]))
        await send_json(send, 200, orjson.dumps(payload), provider.headers(exchange))
    except (ApiError, UnknownFault) as error:
        api = error if isinstance(error, ApiError) else ApiError(400, str(error))
        headers = provider.error_headers(api, exchange)
        await send_json(send, api.status, provider.error_body(api, exchange), headers)


def _provider_for(path: str) -> Provider:
    if path.startswith("/teams/"):
        return CURSOR
    return ANTHROPIC if path.startswith("/v1/organizations/") else OPENAI


__all__ = ["ADMIN_PREFIXES", "serve_admin"]
