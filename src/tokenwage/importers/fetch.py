"""Live fetch from the providers' admin APIs, paging through to the same parsers as files.

Each function pages one report over ``[since, until)`` and returns its records and how many
pages it read; buckets still open at ``now`` are left out (see ``report_json.complete``).
The base URL is configurable so tests (and proxies) can point it elsewhere.

==================  ===============================================  =====================
report              request (pagination)                             auth
==================  ===============================================  =====================
OpenAI usage        GET /v1/organization/usage/completions           Bearer admin key
                    ?start_time&end_time&bucket_width=1d&group_by=..
                    &limit&page (``has_more``/``next_page``)
OpenAI costs        GET /v1/organization/costs (same paging)         Bearer admin key
Anthropic usage     GET /v1/organizations/usage_report/messages      x-api-key admin key,
                    ?starting_at&ending_at&bucket_width=1d            anthropic-version
                    &group_by[]=..&limit&page (same paging)
Anthropic cost      GET /v1/organizations/cost_report (same)         same
Claude Code report  GET /v1/organizations/usage_report/claude_code   same
                    ?starting_at=YYYY-MM-DD&limit&page, one day a call
Cursor events       POST /teams/filtered-usage-events                HTTP Basic (key, "")
                    {startDate, endDate, page, pageSize}
                    (``pagination.hasNextPage``), 30 days a call
==================  ===============================================  =====================

429, 5xx and 529 answers and dropped connections are retried (``retry-after`` honoured, at
most :attr:`AdminApi.retries` times); a refused key is :class:`Unauthenticated`, another 4xx
:class:`InvalidInput` with the provider's message, and a provider still failing
:class:`AdminApiUnavailable`. Keys are sent only in headers, never logged or put in errors.
"""

from __future__ import annotations

import base64
import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock
from typing import Any

from tokenwage.core.errors import InvalidInput, TokenwageError, Unauthenticated
from tokenwage.core.imported import ImportedUsage
from tokenwage.importers import anthropic_admin, cursor, openai_admin
from tokenwage.importers.report_json import load_json

OPENAI_BASE_URL = "https://api.openai.com"
ANTHROPIC_BASE_URL = "https://api.anthropic.com"
CURSOR_BASE_URL = "https://api.cursor.com"
ANTHROPIC_VERSION = "2023-06-01"
OPENAI_USAGE_GROUPS = ("project_id", "user_id", "api_key_id", "model")
OPENAI_COST_GROUPS = ("project_id", "line_item")
ANTHROPIC_USAGE_GROUPS = ("api_key_id", "workspace_id", "model", "service_tier", "context_window")
ANTHROPIC_COST_GROUPS = ("workspace_id", "description")
MAX_PAGES = 10_000
CURSOR_WINDOW = timedelta(days=30)
_RETRY_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504, 529})


class AdminApiUnavailable(TokenwageError):
    """A provider's admin API kept failing (network, 5xx, rate limits) after the retries."""


@dataclass(frozen=True)
class AdminApi:
    """Where and how to call one provider's admin API."""

    base_url: str
    api_key: str = field(repr=False)
    page_size: int | None = None  # None: the API's maximum
    timeout_s: float = 60.0
    retries: int = 4
    sleep: Callable[[float], None] = time.sleep

    def __post_init__(self) -> None:
        if not self.api_key.strip():
            raise InvalidInput("an admin API key is needed to fetch; pass --admin-key")
        if not self.base_url.startswith(("http://", "https://")):
            raise InvalidInput(f"base URL {self.base_url!r} must start with http:// or https://")


@dataclass(frozen=True)
class Fetched:
    records: list[ImportedUsage]
    pages: int


# -- OpenAI -----------------------------------------------------------------------------------
def openai_usage(api: AdminApi, since: datetime, until: datetime, now: datetime) -> Fetched:
    """Completions usage in daily buckets grouped by project, user, API key and model."""
    params = _openai_params(since, until, OPENAI_USAGE_GROUPS, api.page_size or 31)
    pages = list(_cursor_pages(api, "/v1/organization/usage/completions", params, _openai))
    where = f"{api.base_url}/v1/organization/usage/completions"
    return Fetched(openai_admin.usage_from_document(pages, where, complete_before=now), len(pages))


def openai_costs(api: AdminApi, since: datetime, until: datetime, now: datetime) -> Fetched:
    """Daily costs grouped by project and line item (cost-only records)."""
    params = _openai_params(since, until, OPENAI_COST_GROUPS, api.page_size or 180)
    pages = list(_cursor_pages(api, "/v1/organization/costs", params, _openai))
    where = f"{api.base_url}/v1/organization/costs"
    return Fetched(openai_admin.costs_from_document(pages, where, complete_before=now), len(pages))


def _openai_params(
    since: datetime, until: datetime, groups: Sequence[str], limit: int
) -> list[tuple[str, str]]:
    params = [
        ("start_time", str(int(since.timestamp()))),
        ("end_time", str(int(until.timestamp()))),
    ]
    params += [("bucket_width", "1d"), ("limit", str(limit))]
    return params + [("group_by", g) for g in groups]


def _openai(api: AdminApi) -> dict[str, str]:
    return {"Authorization": f"Bearer {api.api_key}"}


# -- Anthropic --------------------------------------------------------------------------------
def anthropic_usage(api: AdminApi, since: datetime, until: datetime, now: datetime) -> Fetched:
    """Messages usage in daily buckets grouped by API key, workspace, model, tier, window."""
    path = "/v1/organizations/usage_report/messages"
    params = _anthropic_params(since, until, ANTHROPIC_USAGE_GROUPS, api.page_size or 31)
    pages = list(_cursor_pages(api, path, params, _anthropic))
    where = f"{api.base_url}{path}"
    return Fetched(
        anthropic_admin.usage_from_document(pages, where, complete_before=now), len(pages)
    )


def anthropic_cost(api: AdminApi, since: datetime, until: datetime, now: datetime) -> Fetched:
    """Daily costs grouped by workspace and description (cost-only records)."""
    path = "/v1/organizations/cost_report"
    params = _anthropic_params(since, until, ANTHROPIC_COST_GROUPS, api.page_size or 31)
    pages = list(_cursor_pages(api, path, params, _anthropic))
    where = f"{api.base_url}{path}"
    return Fetched(
        anthropic_admin.cost_from_document(pages, where, complete_before=now), len(pages)
    )


def claude_code_report(api: AdminApi, since: datetime, until: datetime, now: datetime) -> Fetched:
    """The Claude Code report, one call (and its pages) per UTC day in ``[since, until)``."""
    path = "/v1/organizations/usage_report/claude_code"
    pages: list[Any] = []
    for day in _days(since, until):
        params = [("starting_at", day.isoformat()), ("limit", str(api.page_size or 1000))]
        pages += _cursor_pages(api, path, params, _anthropic)
    where = f"{api.base_url}{path}"
    records = anthropic_admin.claude_code_from_document(pages, where, complete_before=now)
    return Fetched(records, len(pages))


def _anthropic_params(
    since: datetime, until: datetime, groups: Sequence[str], limit: int
) -> list[tuple[str, str]]:
    params = [("starting_at", _rfc3339(since)), ("ending_at", _rfc3339(until))]
    params += [("bucket_width", "1d"), ("limit", str(limit))]
    return params + [("group_by[]", g) for g in groups]


def _anthropic(api: AdminApi) -> dict[str, str]:
    return {"x-api-key": api.api_key, "anthropic-version": ANTHROPIC_VERSION}


def _rfc3339(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _days(since: datetime, until: datetime) -> Iterator[date]:
    day = since.astimezone(UTC).date()
    while datetime.combine(day, clock(), UTC) < until:
        yield day
        day += timedelta(days=1)


# -- Cursor -----------------------------------------------------------------------------------
def cursor_events(api: AdminApi, since: datetime, until: datetime, now: datetime) -> Fetched:
    """Every usage event in ``[since, until)``, 30 days a request window, page by page."""
    pages: list[Any] = []
    token = base64.b64encode(f"{api.api_key}:".encode()).decode()
    headers = {"Authorization": f"Basic {token}"}
    start = since
    while start < until:
        end = min(start + CURSOR_WINDOW, until)
        for page in range(1, MAX_PAGES + 1):
            body = {
                "startDate": int(start.timestamp() * 1000),
                "endDate": int(end.timestamp() * 1000) - 1,  # inclusive on Cursor's side
                "page": page,
                "pageSize": api.page_size or 500,
            }
            doc = _call(api, "POST", "/teams/filtered-usage-events", [], headers, body)
            pages.append(doc)
            more = doc.get("pagination") if isinstance(doc, Mapping) else None
            if not (isinstance(more, Mapping) and more.get("hasNextPage") is True):
                break
        start = end
    where = f"{api.base_url}/teams/filtered-usage-events"
    return Fetched(cursor.events_from_document(pages, where), len(pages))


# -- HTTP -------------------------------------------------------------------------------------
def _cursor_pages(
    api: AdminApi,
    path: str,
    params: list[tuple[str, str]],
    auth: Callable[[AdminApi], dict[str, str]],
) -> Iterator[Any]:
    """Pages of a ``has_more`` / ``next_page`` report; a cursor seen twice is an error."""
    seen: set[str] = set()
    page: str | None = None
    for _ in range(MAX_PAGES):
        doc = _call(api, "GET", path, params + ([("page", page)] if page else []), auth(api), None)
        yield doc
        if not (isinstance(doc, Mapping) and doc.get("has_more") is True):
            return
        page = doc.get("next_page")
        if not isinstance(page, str) or not page or page in seen:
            raise AdminApiUnavailable(
                f"{api.base_url}{path} says it has more pages but gave next_page {page!r} "
                "(missing or repeated); stopping rather than looping"
            )
        seen.add(page)
    raise AdminApiUnavailable(f"{api.base_url}{path} had more than {MAX_PAGES} pages")


def _call(
    api: AdminApi,
    method: str,
    path: str,
    params: list[tuple[str, str]],
    headers: dict[str, str],
    body: Mapping[str, Any] | None,
) -> Any:
    query = f"?{urllib.parse.urlencode(params)}" if params else ""
    url = f"{api.base_url.rstrip('/')}{path}{query}"
    data = json.dumps(body).encode() if body is not None else None
    headers = {**headers, "Accept": "application/json", "User-Agent": "tokenwage"}
    if data is not None:
        headers["Content-Type"] = "application/json"
    shown = f"{method} {api.base_url.rstrip('/')}{path}"
    failure = ""
    for attempt in range(api.retries + 1):
        request = urllib.request.Request(url, data=data, headers=headers, method=method)
        delay = min(2.0**attempt, 30.0)
        try:
            with urllib.request.urlopen(request, timeout=api.timeout_s) as response:
                return load_json(response.read(), shown)
        except urllib.error.HTTPError as exc:
            message = _error_message(exc)
            if exc.code in (401, 403):
                raise Unauthenticated(
                    f"{shown} refused the admin key (HTTP {exc.code}: {message}); check "
                    "--admin-key or its environment variable"
                ) from None
            if exc.code not in _RETRY_STATUSES:
                raise InvalidInput(f"{shown} answered HTTP {exc.code}: {message}") from None
            failure = f"HTTP {exc.code}: {message}"
            delay = _retry_after(exc.headers.get("retry-after"), delay)
        except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
            failure = str(getattr(exc, "reason", exc))
        if attempt < api.retries:
            api.sleep(delay)
    raise AdminApiUnavailable(f"{shown} failed {api.retries + 1} times; last: {failure}")


def _error_message(exc: urllib.error.HTTPError) -> str:
    raw = exc.read()[:2000]
    try:
        doc = json.loads(raw)
    except ValueError:
        return raw.decode("utf-8", "replace").strip() or exc.reason
    found = doc.get("error", doc) if isinstance(doc, dict) else doc
    if isinstance(found, dict):
        found = found.get("message", found)
    return str(found)


def _retry_after(header: str | None, default: float) -> float:
    try:
        return min(max(float(header), 0.0), 60.0) if header else default
    except ValueError:
        return default
