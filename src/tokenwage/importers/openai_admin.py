"""OpenAI organisation Usage and Costs API exports (admin key) as imported usage.

Completions usage: ``GET /v1/organization/usage/completions``
    ``{"object": "page", "data": [bucket, ...], "has_more": bool, "next_page": str|null}``;
    each bucket is ``{"object": "bucket", "start_time": unix_s, "end_time": unix_s,
    "results": [result, ...]}`` and each result ``{"object":
    "organization.usage.completions.result", "input_tokens", "output_tokens",
    "input_cached_tokens", "input_cache_write_tokens", "input_cache_write_12h_tokens",
    "input_audio_tokens", "output_audio_tokens", "num_model_requests", "project_id",
    "user_id", "api_key_id", "model", "batch", "service_tier", "api_source"}`` where the
    group-by fields are null unless the request grouped by them (``group_by=model`` is needed
    here: a row without a model cannot be priced).

    ``input_tokens`` is the whole prompt (text, audio and image; cached and cache-write tokens
    included), so uncached input = input - cached - cache writes. Audio and image tokens are
    not told apart from text in our :class:`TokenUsage` and are priced as text. 30-minute cache
    writes become ``cache_write_tokens``, 12-hour writes ``cache_write_1h_tokens`` (the
    long-lived kind). Each bucket x result is one record: key = bucket start + every group-by
    value, requests = ``num_model_requests``, identities = API key id, then OpenAI user id.

Costs: ``GET /v1/organization/costs``
    The same page and bucket shape; each result is ``{"object": "organization.costs.result",
    "amount": {"value": number, "currency": "usd"}, "line_item": str|null,
    "project_id": str|null}``. Costs carry no tokens and no user, so each row is a
    *cost-only* record: no tokens, ``reported_cost`` = the amount, model = the line item,
    project = the project id, no identity (it lands unattributed). Rows of zero or less
    (credits) are left out: they are not usage.

A file is one page or a JSON array of pages. Buckets that have not ended by
``complete_before`` are left out, so a later import books them whole. Import the same export
with the same ``group_by`` every time: a differently grouped export has other keys.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from tokenwage.core.imported import Identity, IdentityKind, ImportedUsage
from tokenwage.core.money import Money
from tokenwage.core.usage import TokenUsage
from tokenwage.importers.report_json import (
    Report,
    bucket_key,
    complete,
    load_json,
    merge_same_key,
    midpoint,
)

SOURCE_USAGE = "openai_usage"
SOURCE_COSTS = "openai_costs"
PROVIDER = "openai"
USAGE_GROUPS = (
    "project_id",
    "user_id",
    "api_key_id",
    "model",
    "batch",
    "service_tier",
    "api_source",
)
COST_GROUPS = ("project_id", "line_item")


def parse_usage(
    body: bytes, path: str, *, complete_before: datetime | None = None
) -> list[ImportedUsage]:
    """Records from a completions Usage API export (one page or an array of pages)."""
    return usage_from_document(load_json(body, path), path, complete_before=complete_before)


def parse_costs(
    body: bytes, path: str, *, complete_before: datetime | None = None
) -> list[ImportedUsage]:
    """Cost-only records from a Costs API export (one page or an array of pages)."""
    return costs_from_document(load_json(body, path), path, complete_before=complete_before)


def usage_from_document(
    doc: Any, path: str, *, complete_before: datetime | None = None
) -> list[ImportedUsage]:
    report = Report(path)
    records = []
    for where, start, end, result in _results(report, doc, complete_before):
        record = _usage(report, where, start, end, result)
        if record is not None:
            records.append(record)
    report.done()
    return merge_same_key(records)


def costs_from_document(
    doc: Any, path: str, *, complete_before: datetime | None = None
) -> list[ImportedUsage]:
    report = Report(path)
    records = []
    for where, start, end, result in _results(report, doc, complete_before):
        record = _cost(report, where, start, end, result)
        if record is not None:
            records.append(record)
    report.done()
    return merge_same_key(records)


def _results(
    report: Report, doc: Any, complete_before: datetime | None
) -> list[tuple[str, datetime, datetime, Mapping[str, Any]]]:
    found = []
    for page_at, page in report.pages(doc, "OpenAI usage or costs"):
        for where, bucket in report.objects(page, "data", page_at):
            start = report.unix_seconds(bucket, "start_time", where)
            end = report.unix_seconds(bucket, "end_time", where)
            results = list(report.objects(bucket, "results", where))
            if start is None or end is None or not complete(end, complete_before):
                continue
            found += [(at, start, end, result) for at, result in results]
    return found


def _groups(
    report: Report, result: Mapping[str, Any], where: str, names: tuple[str, ...]
) -> dict[str, str]:
    groups = {}
    for name in names:
        value = result.get(name)
        if isinstance(value, bool):
            groups[name] = str(value).lower()
        elif value is not None:
            text = report.text(result, name, where)
            if text is not None:
                groups[name] = text
    return groups


def _usage(
    report: Report, where: str, start: datetime, end: datetime, result: Mapping[str, Any]
) -> ImportedUsage | None:
    prompt = report.count(result, "input_tokens", where, required=True)
    output = report.count(result, "output_tokens", where, required=True)
    requests = report.count(result, "num_model_requests", where, required=True)
    cached = report.count(result, "input_cached_tokens", where)
    write = report.count(result, "input_cache_write_tokens", where)
    write_long = report.count(result, "input_cache_write_12h_tokens", where)
    groups = _groups(report, result, where, USAGE_GROUPS)
    if not (prompt or output or requests):
        return None
    model = groups.get("model")
    if model is None:
        report.fail(f"{where}.model", "missing: export the usage with group_by=model")
        return None
    if cached + write + write_long > prompt:
        report.fail(
            f"{where}.input_tokens",
            f"{prompt} is less than its cached ({cached}) and cache-write "
            f"({write} + {write_long}) tokens, which it should include",
        )
        return None
    identities = []
    if "api_key_id" in groups:
        identities.append(Identity(IdentityKind.API_KEY, groups["api_key_id"]))
    if "user_id" in groups:
        identities.append(Identity(IdentityKind.PROVIDER_USER, groups["user_id"]))
    extra = {"bucket_end": end.isoformat()}
    for name in ("batch", "service_tier", "api_source"):
        if name in groups:
            extra[name] = groups[name]
    for name in ("input_audio_tokens", "output_audio_tokens"):
        if result.get(name):
            extra[name] = str(report.count(result, name, where))
    return ImportedUsage(
        source=SOURCE_USAGE,
        key=bucket_key(start, groups),
        used_utc=midpoint(start, end),
        provider=PROVIDER,
        model=model,
        usage=TokenUsage(
            input_tokens=prompt - cached - write - write_long,
            output_tokens=output,
            cache_read_tokens=cached,
            cache_write_tokens=write,
            cache_write_1h_tokens=write_long,
        ),
        identities=tuple(identities),
        project=groups.get("project_id"),
        requests=max(requests, 1),
        extra=extra,
    )


def _cost(
    report: Report, where: str, start: datetime, end: datetime, result: Mapping[str, Any]
) -> ImportedUsage | None:
    amount = result.get("amount")
    if not isinstance(amount, Mapping):
        report.fail(f"{where}.amount", 'missing: expected {"value": ..., "currency": "usd"}')
        return None
    value = report.amount(amount, "value", f"{where}.amount", required=True)
    currency = report.text(amount, "currency", f"{where}.amount") or "usd"
    groups = _groups(report, result, where, COST_GROUPS)
    if currency.lower() != "usd":
        report.fail(f"{where}.amount.currency", f"{currency!r} is not supported; expected usd")
        return None
    if value is None or value <= 0:
        return None
    return ImportedUsage(
        source=SOURCE_COSTS,
        key=bucket_key(start, groups),
        used_utc=midpoint(start, end),
        provider=PROVIDER,
        model=groups.get("line_item", "all line items"),
        usage=TokenUsage(),
        project=groups.get("project_id"),
        reported_cost=Money.from_decimal(value),
        extra={"bucket_end": end.isoformat(), "cost_only": "true"},
    )
