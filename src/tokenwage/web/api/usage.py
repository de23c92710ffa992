"""Usage: ``/api/v1/people/{id}/usage`` (by day, month or model), ``.../usage/records``
(one row per request, newest first) and ``/api/v1/usage`` (organisation-wide: finance and
admins).

The sums read ``usage_daily`` (:func:`tokenwage.services.dashboard.usage.usage_by`, as the
dashboard pages do): one row per org-local day, person, model and source, kept equal to
the records in the same transaction, so a year of a large organisation's usage is summed
from thousands of rows, not millions. Days and months are the organisation's local ones.
Unattributed records (no person) are not in it, so ``/api/v1/usage`` leaves them out, as
every dashboard page does. The record list reads ``usage_records`` one page at a time,
by the index on (person_id, used_utc).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from sqlalchemy import Connection, and_, or_, select

from tokenwage.core.errors import InvalidInput
from tokenwage.core.org import zone
from tokenwage.services.dashboard.usage import UsageTotals, model_label, usage_by
from tokenwage.storage.org_repo import OrgRepo
from tokenwage.storage.schema import people, usage_records
from tokenwage.web.api.common import (
    PREFIX,
    Cursor,
    Db,
    FinanceOrAdmin,
    Limit,
    Page,
    SeenPerson,
    decode_cursor,
    encode_cursor,
    money,
    paged,
)

router = APIRouter(prefix=PREFIX, tags=["usage"])

Group = Literal["day", "month", "model"]
_COLUMNS: dict[str, tuple[str, ...]] = {
    "day": ("day",),
    "month": ("day",),  # days summed into months here: a few hundred rows at most
    "model": ("provider", "model"),
}
Since = Annotated[date | None, Query(description="First local day, included.")]
Until = Annotated[date | None, Query(description="Last local day, included.")]
Source = Annotated[str | None, Query(description="gateway, claude_code, codex, ...")]


def totals_json(t: UsageTotals) -> dict[str, Any]:
    return {
        "requests": t.requests,
        "input_tokens": t.input_tokens,
        "output_tokens": t.output_tokens,
        "cache_read_tokens": t.cache_read_tokens,
        "cache_write_tokens": t.cache_write_tokens,
        "reasoning_tokens": t.reasoning_tokens,
        "total_tokens": t.tokens,
        **money("cost", t.cost_nanousd),
    }


def _label(group: Group, key: tuple[Any, ...]) -> str:
    if group == "model":
        return model_label(key[0], key[1])
    day: date = key[0]
    return day.isoformat() if group == "day" else day.strftime("%Y-%m")


def _report(
    conn: Connection,
    group: Group,
    person_ids: list[int] | None,
    source: str | None,
    since: date | None,
    until: date | None,
    limit: int,
    cursor: str | None,
) -> dict[str, Any]:
    if since and until and since > until:
        raise InvalidInput(f"since {since} is after until {until}")
    tz = OrgRepo(conn).get_org().timezone
    sums = usage_by(conn, _COLUMNS[group], since, until, person_ids=person_ids, source=source)
    by_label: dict[str, UsageTotals] = {}
    for key, totals in sums.items():
        label = _label(group, key)
        by_label[label] = by_label.get(label, UsageTotals()) + totals
    rows = [{group: label, **totals_json(t)} for label, t in by_label.items()]
    items, next_cursor = paged(rows, lambda r: (r[group],), limit, cursor)
    return {
        "group": group,
        "timezone": tz,
        "totals": totals_json(sum(by_label.values(), UsageTotals())),
        "items": items,
        "next_cursor": next_cursor,
    }


@router.get("/people/{person_id}/usage")
def person_usage(
    person: SeenPerson,
    db: Db,
    group: Group = "day",
    since: Since = None,
    until: Until = None,
    source: Source = None,
    limit: Limit = 100,
    cursor: Cursor = None,
) -> dict[str, Any]:
    """A person's usage summed per local day, month or model, with the period's totals."""
    assert person.id is not None
    with db.begin() as conn:
        return _report(conn, group, [person.id], source, since, until, limit, cursor)


@router.get("/usage")
def org_usage(
    viewer: FinanceOrAdmin,
    db: Db,
    group: Group = "day",
    team: Annotated[str | None, Query(description="Only this team's slug.")] = None,
    since: Since = None,
    until: Until = None,
    source: Source = None,
    limit: Limit = 100,
    cursor: Cursor = None,
) -> dict[str, Any]:
    """Everyone's usage (or one team's) per local day, month or model (finance, admin).
    Records attributed to nobody are left out."""
    with db.begin() as conn:
        ids = None
        if team is not None:
            team_id = OrgRepo(conn).team_id(team)
            ids = list(
                conn.execute(select(people.c.id).where(people.c.team_id == team_id)).scalars()
            )
        return _report(conn, group, ids, source, since, until, limit, cursor)


def _record_json(r: Any) -> dict[str, Any]:
    return {
        "id": r.id,
        "request_id": r.request_id,
        "used_utc": r.used_utc,
        "source": r.source,
        "provider": r.provider,
        "model": r.model,
        "endpoint": r.endpoint,
        "input_tokens": r.input_tokens,
        "output_tokens": r.output_tokens,
        "cache_read_tokens": r.cache_read_tokens,
        "cache_write_tokens": r.cache_write_tokens + r.cache_write_1h_tokens,
        "reasoning_tokens": r.reasoning_tokens,
        **money("cost", r.cost_nanousd),
        "estimated": bool(r.estimated),
        "stream": bool(r.stream),
        "status": r.status,
        "latency_ms": r.latency_ms,
        "charge_mode": r.charge_mode,
    }


@router.get("/people/{person_id}/usage/records", response_model=Page[dict[str, Any]])
def person_records(
    person: SeenPerson,
    db: Db,
    since: Since = None,
    until: Until = None,
    model: Annotated[str | None, Query(description="Only this model.")] = None,
    source: Source = None,
    limit: Limit = 100,
    cursor: Cursor = None,
) -> Page[dict[str, Any]]:
    """A person's requests, newest first (metadata only: tokenwage keeps no prompts)."""
    u = usage_records.c
    q = select(usage_records).where(u.person_id == person.id)
    with db.begin() as conn:
        tz = zone(OrgRepo(conn).get_org().timezone)
        if since is not None:
            q = q.where(u.used_utc >= datetime.combine(since, time(), tz).astimezone(UTC))
        if until is not None:
            end = datetime.combine(until + timedelta(days=1), time(), tz).astimezone(UTC)
            q = q.where(u.used_utc < end)
        if model is not None:
            q = q.where(u.model == model)
        if source is not None:
            q = q.where(u.source == source)
        after = decode_cursor(cursor)
        if after is not None:
            at, last_id = _cursor_key(after)
            q = q.where(or_(u.used_utc < at, and_(u.used_utc == at, u.id < last_id)))
        rows = conn.execute(q.order_by(u.used_utc.desc(), u.id.desc()).limit(limit + 1)).all()
    items = [_record_json(r) for r in rows[:limit]]
    next_cursor = None
    if len(rows) > limit:
        last = rows[limit - 1]
        next_cursor = encode_cursor([last.used_utc.isoformat(), last.id])
    return Page[dict[str, Any]](items=items, next_cursor=next_cursor)


def _cursor_key(after: list[Any]) -> tuple[datetime, int]:
    try:
        at, last_id = after
        instant = datetime.fromisoformat(at)
        if instant.tzinfo is None:
            raise ValueError("naive")
        return instant, int(last_id)
    except (TypeError, ValueError):
        raise InvalidInput("cursor is not one this API gave out") from None
