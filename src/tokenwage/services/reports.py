"""Usage reports from ``usage_records``: by day, month, session or model, like ccusage's.

Every usage record counts, whether the gateway metered it or an importer booked it (filter
with ``source``). Days and months are local to ``timezone`` (default: the organisation's):
the database sums records per 15-minute UTC bucket (every real time zone offset is a
multiple of 15 minutes) and the buckets are then placed on local dates here, so the same
query works on SQLite and PostgreSQL and stays small however many records there are.

Token columns follow ccusage: ``input`` is uncached input, ``cache_write`` every cache write
(5-minute and 1-hour, both also given apart), ``cache_read``, ``output`` (reasoning
included), and ``total`` their sum. Money is exact: ``cost`` is a :class:`Money`.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal

from sqlalchemy import Connection, Integer, Select, cast, func, select

from tokenwage.core.errors import InvalidInput
from tokenwage.core.money import Money
from tokenwage.core.org import zone
from tokenwage.core.periods import local_midnight
from tokenwage.storage.org_repo import OrgRepo
from tokenwage.storage.schema import people, usage_records

ReportKind = Literal["daily", "monthly", "session", "models"]
KINDS: tuple[ReportKind, ...] = ("daily", "monthly", "session", "models")
BUCKET_SECONDS = 900
_SUMS = (
    "input_tokens",
    "output_tokens",
    "cache_write_tokens",
    "cache_write_1h_tokens",
    "cache_read_tokens",
    "reasoning_tokens",
    "cost_nanousd",
)


@dataclass(frozen=True)
class ReportFilter:
    """Which records: ``since``/``until`` are local dates, both included."""

    person_email: str | None = None
    team: str | None = None
    source: str | None = None
    since: date | None = None
    until: date | None = None
    timezone: str | None = None


@dataclass
class Totals:
    input_tokens: int = 0
    output_tokens: int = 0
    cache_write_tokens: int = 0  # 5-minute writes
    cache_write_1h_tokens: int = 0
    cache_read_tokens: int = 0
    reasoning_tokens: int = 0
    requests: int = 0
    cost_nanousd: int = 0

    @property
    def cache_create_tokens(self) -> int:
        """Every cache write, as ccusage's ``cacheCreationTokens``."""
        return self.cache_write_tokens + self.cache_write_1h_tokens

    @property
    def total_tokens(self) -> int:
        return (
            self.input_tokens + self.output_tokens + self.cache_create_tokens
        ) + self.cache_read_tokens

    @property
    def cost(self) -> Money:
        return Money(self.cost_nanousd)

    def add(self, other: Totals) -> None:
        for name in (*_SUMS, "requests"):
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def as_json(self) -> dict[str, Any]:
        return {
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cache_write_tokens": self.cache_create_tokens,
            "cache_write_5m_tokens": self.cache_write_tokens,
            "cache_write_1h_tokens": self.cache_write_1h_tokens,
            "cache_read_tokens": self.cache_read_tokens,
            "reasoning_tokens": self.reasoning_tokens,
            "total_tokens": self.total_tokens,
            "requests": self.requests,
            "cost_usd": self.cost.exact(),
        }


@dataclass
class ReportRow:
    """One day, month, session or model; ``by_model`` splits it per ``provider/model``."""

    label: str
    totals: Totals = field(default_factory=Totals)
    by_model: dict[str, Totals] = field(default_factory=dict)
    detail: dict[str, str] = field(default_factory=dict)

    @property
    def models(self) -> list[str]:
        return sorted(self.by_model)

    def add(self, model: str, totals: Totals) -> None:
        self.totals.add(totals)
        self.by_model.setdefault(model, Totals()).add(totals)


@dataclass
class UsageReport:
    kind: ReportKind
    timezone: str
    rows: list[ReportRow]
    total: Totals

    def as_json(self) -> dict[str, Any]:
        label = {"daily": "date", "monthly": "month", "session": "session", "models": "model"}
        return {
            "kind": self.kind,
            "timezone": self.timezone,
            "rows": [
                {
                    label[self.kind]: row.label,
                    **row.detail,
                    "models": row.models,
                    **row.totals.as_json(),
                    "breakdown": [
                        {"model": m, **t.as_json()} for m, t in sorted(row.by_model.items())
                    ],
                }
                for row in self.rows
            ],
            "totals": self.total.as_json(),
        }


def usage_report(conn: Connection, kind: ReportKind, flt: ReportFilter) -> UsageReport:
    """The report ``kind`` of the records that ``flt`` selects."""
    if kind not in KINDS:
        raise InvalidInput(f"report {kind!r} must be one of {', '.join(KINDS)}")
    tz = flt.timezone or OrgRepo(conn).get_org().timezone
    zone(tz)  # an unknown zone is InvalidInput before any query runs
    if flt.since and flt.until and flt.since > flt.until:
        raise InvalidInput(f"--since {flt.since} is after --until {flt.until}")
    if kind in ("daily", "monthly"):
        rows = _by_period(conn, kind, flt, tz)
    elif kind == "session":
        rows = _by_session(conn, flt, tz)
    else:
        rows = _by_model(conn, flt, tz)
    total = Totals()
    for row in rows:
        total.add(row.totals)
    return UsageReport(kind, tz, rows, total)


def _sums() -> list[Any]:
    cols = [func.coalesce(func.sum(usage_records.c[name]), 0).label(name) for name in _SUMS]
    return [*cols, func.count().label("requests")]


def _totals(r: Any) -> Totals:
    return Totals(**{name: int(getattr(r, name)) for name in (*_SUMS, "requests")})


def _model(r: Any) -> str:
    return f"{r.provider}/{r.model}"


def _filtered(conn: Connection, q: Select[Any], flt: ReportFilter, tz: str) -> Select[Any]:
    repo = OrgRepo(conn)
    if flt.person_email:
        q = q.where(usage_records.c.person_id == repo.person_id(flt.person_email))
    if flt.team:
        team_people = select(people.c.id).where(people.c.team_id == repo.team_id(flt.team))
        q = q.where(usage_records.c.person_id.in_(team_people))
    if flt.source:
        q = q.where(usage_records.c.source == flt.source)
    if flt.since:
        q = q.where(usage_records.c.used_utc >= local_midnight(flt.since, tz))
    if flt.until:
        q = q.where(usage_records.c.used_utc < local_midnight(flt.until + timedelta(days=1), tz))
    return q


def _bucket(conn: Connection) -> Any:
    """Seconds since the epoch of ``used_utc`` divided into 15-minute buckets."""
    if conn.dialect.name == "sqlite":
        return cast(func.strftime("%s", usage_records.c.used_utc), Integer) // BUCKET_SECONDS
    return func.floor(func.extract("epoch", usage_records.c.used_utc) / BUCKET_SECONDS)


def _by_period(conn: Connection, kind: ReportKind, flt: ReportFilter, tz: str) -> list[ReportRow]:
    bucket = _bucket(conn).label("bucket")
    q = select(bucket, usage_records.c.provider, usage_records.c.model, *_sums()).group_by(
        bucket, usage_records.c.provider, usage_records.c.model
    )
    rows: dict[str, ReportRow] = {}
    local = zone(tz)
    for r in conn.execute(_filtered(conn, q, flt, tz)):
        start = datetime.fromtimestamp(int(r.bucket) * BUCKET_SECONDS, UTC).astimezone(local)
        label = start.date().isoformat() if kind == "daily" else start.strftime("%Y-%m")
        rows.setdefault(label, ReportRow(label)).add(_model(r), _totals(r))
    return [rows[k] for k in sorted(rows)]


def _by_session(conn: Connection, flt: ReportFilter, tz: str) -> list[ReportRow]:
    u = usage_records.c
    q = select(
        u.session_id,
        u.source,
        u.provider,
        u.model,
        func.max(u.project).label("project"),
        func.min(u.used_utc).label("first_utc"),
        func.max(u.used_utc).label("last_utc"),
        *_sums(),
    ).group_by(u.session_id, u.source, u.provider, u.model)
    rows: dict[tuple[str, str], ReportRow] = {}
    last: dict[tuple[str, str], datetime] = {}
    first: dict[tuple[str, str], datetime] = {}
    for r in conn.execute(_filtered(conn, q, flt, tz)):
        key = (r.source, r.session_id or "(no session)")
        row = rows.setdefault(key, ReportRow(key[1], detail={"source": r.source}))
        row.add(_model(r), _totals(r))
        if r.project:
            row.detail["project"] = r.project
        first[key] = min(first.get(key, r.first_utc), r.first_utc)
        last[key] = max(last.get(key, r.last_utc), r.last_utc)
    local = zone(tz)
    for key, row in rows.items():
        row.detail["first_activity"] = first[key].astimezone(local).isoformat()
        row.detail["last_activity"] = last[key].astimezone(local).isoformat()
    return [rows[k] for k in sorted(rows, key=lambda k: (last[k], k))]


def _by_model(conn: Connection, flt: ReportFilter, tz: str) -> list[ReportRow]:
    u = usage_records.c
    q = select(u.provider, u.model, *_sums()).group_by(u.provider, u.model)
    found: dict[str, ReportRow] = defaultdict(lambda: ReportRow(""))
    for r in conn.execute(_filtered(conn, q, flt, tz)):
        name = _model(r)
        row = found[name]
        row.label = name
        row.add(name, _totals(r))
    return sorted(found.values(), key=lambda row: (-row.totals.cost_nanousd, row.label))
