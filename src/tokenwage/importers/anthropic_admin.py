"""Anthropic Admin API reports (admin key ``sk-ant-admin...``) as imported usage.

Messages usage report: ``GET /v1/organizations/usage_report/messages``
    ``{"data": [bucket, ...], "has_more": bool, "next_page": str|null}``; a bucket is
    ``{"starting_at": RFC 3339, "ending_at": RFC 3339, "results": [row, ...]}`` and a row
    ``{"uncached_input_tokens", "cache_read_input_tokens", "cache_creation":
    {"ephemeral_5m_input_tokens", "ephemeral_1h_input_tokens"}, "output_tokens",
    "server_tool_use": {"web_search_requests"}, "api_key_id", "workspace_id", "model",
    "service_tier", "context_window", "inference_geo", "account_id", "service_account_id",
    "speed"}`` (group-by fields null unless grouped by; ``group_by[]=model`` is needed here).
    Anthropic's convention is ours already: uncached input, cache reads and 5-minute / 1-hour
    cache writes never overlap. The report has no request count (requests = 1). Key = bucket
    start + every group-by value; identities = API key id, then account id, then service
    account id; project = workspace id.

Cost report: ``GET /v1/organizations/cost_report``
    The same page and bucket shape; each row is ``{"amount": "123.45", "currency": "USD",
    "cost_type", "description", "model", "service_tier", "token_type", "context_window",
    "workspace_id"}`` with ``amount`` in **cents** as a decimal string. Cost-only records:
    no tokens, ``reported_cost`` = the amount, no identity (they land unattributed).

Claude Code usage report: ``GET /v1/organizations/usage_report/claude_code``
    ``{"data": [row, ...], "has_more", "next_page"}``; one row per actor and day: ``{"date":
    "YYYY-MM-DD", "actor": {"type": "user_actor", "email_address"} | {"type": "api_actor",
    "api_key_name"}, "organization_id", "customer_type": "api"|"subscription",
    "terminal_type", "core_metrics": {...}, "tool_actions": {...}, "model_breakdown":
    [{"model", "tokens": {"input", "output", "cache_read", "cache_creation"},
    "estimated_cost": {"amount": cents, "currency": "USD"}}]}``. One record per row x model,
    booked at noon UTC of its day; identity = the e-mail (or the API key *name*); the
    estimated cost is kept as ``reported_cost``.

Only buckets (days) that ended before ``complete_before`` are read. A file is one page or an
array of pages.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, time, timedelta
from typing import Any

from tokenwage.core.imported import Identity, IdentityKind, ImportedUsage
from tokenwage.core.usage import TokenUsage
from tokenwage.importers.report_json import (
    Report,
    bucket_key,
    cents,
    complete,
    load_json,
    merge_same_key,
    midpoint,
)

SOURCE_USAGE = "anthropic_usage"
SOURCE_COST = "anthropic_cost"
SOURCE_CLAUDE_CODE = "claude_code_report"
PROVIDER = "anthropic"
USAGE_GROUPS = (
    "api_key_id",
    "workspace_id",
    "model",
    "service_tier",
    "context_window",
    "inference_geo",
    "account_id",
    "service_account_id",
    "speed",
)
COST_GROUPS = (
    "workspace_id",
    "description",
    "cost_type",
    "model",
    "service_tier",
    "token_type",
    "context_window",
    "inference_geo",
    "speed",
)


def parse_usage(
    body: bytes, path: str, *, complete_before: datetime | None = None
) -> list[ImportedUsage]:
    """Records from a Messages usage report export."""
    return usage_from_document(load_json(body, path), path, complete_before=complete_before)


def parse_cost(
    body: bytes, path: str, *, complete_before: datetime | None = None
) -> list[ImportedUsage]:
    """Cost-only records from a Cost report export."""
    return cost_from_document(load_json(body, path), path, complete_before=complete_before)


def parse_claude_code(
    body: bytes, path: str, *, complete_before: datetime | None = None
) -> list[ImportedUsage]:
    """Records from a Claude Code usage report export."""
    return claude_code_from_document(load_json(body, path), path, complete_before=complete_before)


def usage_from_document(
    doc: Any, path: str, *, complete_before: datetime | None = None
) -> list[ImportedUsage]:
    report = Report(path)
    records = []
    for where, start, end, row in _rows(report, doc, complete_before):
        groups = _groups(report, row, where, USAGE_GROUPS)
        usage = _usage(report, row, where)
        if usage is None or not usage.total_tokens:
            continue
        if "model" not in groups:
            report.fail(f"{where}.model", "missing: export the report with group_by[]=model")
            continue
        kinds = (
            ("api_key_id", IdentityKind.API_KEY),
            ("account_id", IdentityKind.PROVIDER_USER),
            ("service_account_id", IdentityKind.PROVIDER_USER),
        )
        extra = {"bucket_end": end.isoformat()}
        searches = report.count(row.get("server_tool_use") or {}, "web_search_requests", where)
        if searches:
            extra["web_search_requests"] = str(searches)
        records.append(
            ImportedUsage(
                source=SOURCE_USAGE,
                key=bucket_key(start, groups),
                used_utc=midpoint(start, end),
                provider=PROVIDER,
                model=groups["model"],
                usage=usage,
                identities=tuple(Identity(kind, groups[g]) for g, kind in kinds if g in groups),
                project=groups.get("workspace_id"),
                extra=extra,
            )
        )
    report.done()
    return merge_same_key(records)


def cost_from_document(
    doc: Any, path: str, *, complete_before: datetime | None = None
) -> list[ImportedUsage]:
    report = Report(path)
    records = []
    for where, start, end, row in _rows(report, doc, complete_before):
        amount = report.amount(row, "amount", where, required=True)
        currency = report.text(row, "currency", where) or "USD"
        groups = _groups(report, row, where, COST_GROUPS)
        if currency.upper() != "USD":
            report.fail(f"{where}.currency", f"{currency!r} is not supported; expected USD")
            continue
        if amount is None or amount <= 0:
            continue
        model = groups.get("model") or groups.get("description") or groups.get("cost_type")
        records.append(
            ImportedUsage(
                source=SOURCE_COST,
                key=bucket_key(start, groups),
                used_utc=midpoint(start, end),
                provider=PROVIDER,
                model=model or "all costs",
                usage=TokenUsage(),
                project=groups.get("workspace_id"),
                reported_cost=cents(amount),
                extra={"bucket_end": end.isoformat(), "cost_only": "true"},
            )
        )
    report.done()
    return merge_same_key(records)


def claude_code_from_document(
    doc: Any, path: str, *, complete_before: datetime | None = None
) -> list[ImportedUsage]:
    report = Report(path)
    records = []
    for page_at, page in report.pages(doc, "Claude Code usage report"):
        for where, row in report.objects(page, "data", page_at):
            day = report.day(row, "date", where)
            actor = _actor(report, row.get("actor"), f"{where}.actor")
            breakdown = list(report.objects(row, "model_breakdown", where))
            if day is None or actor is None:
                continue
            start = datetime.combine(day, time(), UTC)
            if not complete(start + timedelta(days=1), complete_before):
                continue
            context = {"date": day.isoformat(), "actor": actor.value}
            for name in ("organization_id", "customer_type", "terminal_type"):
                value = report.text(row, name, where)
                if value is not None:
                    context[name] = value
            for at, item in breakdown:
                record = _claude_code_model(report, at, item, start, actor, context)
                if record is not None:
                    records.append(record)
    report.done()
    return merge_same_key(records)


def _claude_code_model(
    report: Report,
    where: str,
    item: Mapping[str, Any],
    start: datetime,
    actor: Identity,
    context: dict[str, str],
) -> ImportedUsage | None:
    model = report.text(item, "model", where, required=True)
    tokens = item.get("tokens")
    if not isinstance(tokens, Mapping):
        report.fail(f"{where}.tokens", 'missing: expected {"input", "output", ...}')
        return None
    at = f"{where}.tokens"
    usage = TokenUsage(
        input_tokens=report.count(tokens, "input", at),
        output_tokens=report.count(tokens, "output", at),
        cache_read_tokens=report.count(tokens, "cache_read", at),
        cache_write_tokens=report.count(tokens, "cache_creation", at),
    )
    cost = None
    estimated = item.get("estimated_cost")
    if isinstance(estimated, Mapping):
        amount = report.amount(estimated, "amount", f"{where}.estimated_cost")
        currency = report.text(estimated, "currency", f"{where}.estimated_cost") or "USD"
        if currency.upper() != "USD":
            report.fail(f"{where}.estimated_cost.currency", f"{currency!r} is not USD")
        elif amount is not None and amount > 0:
            cost = cents(amount)
    if model is None or not usage.total_tokens:
        return None
    return ImportedUsage(
        source=SOURCE_CLAUDE_CODE,
        key=bucket_key(start, {**context, "model": model}),
        used_utc=start + timedelta(hours=12),
        provider=PROVIDER,
        model=model,
        usage=usage,
        identities=(actor,),
        reported_cost=cost,
        extra={k: v for k, v in context.items() if k in ("customer_type", "terminal_type")},
    )


def _actor(report: Report, actor: Any, where: str) -> Identity | None:
    if not isinstance(actor, Mapping):
        report.fail(where, 'missing: expected {"type": "user_actor", "email_address": ...}')
        return None
    if actor.get("email_address"):
        email = report.text(actor, "email_address", where, required=True)
        return Identity(IdentityKind.EMAIL, email) if email else None
    if actor.get("api_key_name"):
        name = report.text(actor, "api_key_name", where, required=True)
        return Identity(IdentityKind.API_KEY, name) if name else None
    report.fail(where, "has neither email_address nor api_key_name")
    return None


def _rows(
    report: Report, doc: Any, complete_before: datetime | None
) -> list[tuple[str, datetime, datetime, Mapping[str, Any]]]:
    found = []
    for page_at, page in report.pages(doc, "Anthropic usage or cost report"):
        for where, bucket in report.objects(page, "data", page_at):
            start = report.rfc3339(bucket, "starting_at", where)
            end = report.rfc3339(bucket, "ending_at", where)
            rows = list(report.objects(bucket, "results", where))
            if start is None or end is None or not complete(end, complete_before):
                continue
            found += [(at, start, end, row) for at, row in rows]
    return found


def _groups(
    report: Report, row: Mapping[str, Any], where: str, names: tuple[str, ...]
) -> dict[str, str]:
    groups = {}
    for name in names:
        if row.get(name) is not None:
            text = report.text(row, name, where)
            if text is not None:
                groups[name] = text
    return groups


def _usage(report: Report, row: Mapping[str, Any], where: str) -> TokenUsage | None:
    creation = row.get("cache_creation")
    if creation is not None and not isinstance(creation, Mapping):
        report.fail(f"{where}.cache_creation", "expected an object")
        return None
    at = f"{where}.cache_creation"
    creation = creation or {}
    return TokenUsage(
        input_tokens=report.count(row, "uncached_input_tokens", where, required=True),
        output_tokens=report.count(row, "output_tokens", where, required=True),
        cache_read_tokens=report.count(row, "cache_read_input_tokens", where),
        cache_write_tokens=report.count(creation, "ephemeral_5m_input_tokens", at)
        or report.count(row, "cache_creation_5m_input_tokens", where),
        cache_write_1h_tokens=report.count(creation, "ephemeral_1h_input_tokens", at)
        or report.count(row, "cache_creation_1h_input_tokens", where),
    )
