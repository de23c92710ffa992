"""Ledger (``/ledger``, finance and admin): every chain's head, the last verification and
the monthly seals.

Verifying walks every entry (seconds on a big ledger), so it is an action, not part of the
page: :func:`verify_ledger` runs it and records the outcome, per chain, in the audit log;
the page shows the latest outcome. Monthly seals come from index lookups: for each chain,
its last entry recorded before each month's end (recording time never goes backwards within
a chain, so that entry's ``seq`` counts the chain's entries up to then).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import orjson
from sqlalchemy import Connection, desc, literal, select, union_all

from tokenwage.core import analytics
from tokenwage.core.money import Money
from tokenwage.core.periods import local_date, month_bounds
from tokenwage.storage.ledger_repo import LedgerRepo
from tokenwage.storage.schema import accounts, audit_log, ledger_entries, people, teams
from tokenwage.storage.web_repo import WebRepo

VERIFY_ACTION = "ledger.verify"
MAX_PROBLEMS_KEPT = 50


@dataclass(frozen=True)
class Chain:
    key: str
    label: str  # the person's name or the team's
    entries: int
    balance: Money
    head_hash: str
    last_recorded_utc: datetime | None
    problem: str | None  # the first problem the last verification found, if any


@dataclass(frozen=True)
class Verification:
    at_utc: datetime
    actor: str
    ok: bool
    entries: int
    chains: int
    problems: list[tuple[str, str]]  # (account, what is wrong), first problems first
    heads: dict[str, int]  # each chain's head seq when verified

    def covers(self, chain: Chain) -> bool:
        """Was ``chain`` verified at its current length?"""
        return self.heads.get(chain.key) == chain.entries


@dataclass(frozen=True)
class MonthSeal:
    month: str  # YYYY-MM
    entries: int  # recorded in the month, all chains
    chains: int  # chains with an entry in the month
    seal: str  # analytics.month_seal over every chain's head at the month's end
    closed: bool  # the month is over


@dataclass(frozen=True)
class LedgerPage:
    chains: list[Chain]
    last: Verification | None
    seals: list[MonthSeal]

    @property
    def entries(self) -> int:
        return sum(c.entries for c in self.chains)

    @property
    def unverified(self) -> list[Chain]:
        """Chains that grew (or appeared) since the last verification."""
        return [c for c in self.chains if self.last is None or not self.last.covers(c)]


def ledger_page(conn: Connection, now: datetime, tz: str) -> LedgerPage:
    last = last_verification(conn)
    problems: dict[str, str] = {}
    for account, what in last.problems if last else []:
        problems.setdefault(account, what)
    rows = conn.execute(
        select(
            accounts.c.id,
            accounts.c.key,
            accounts.c.head_seq,
            accounts.c.head_hash,
            accounts.c.balance_nanousd,
            accounts.c.head_recorded_utc,
            people.c.name.label("person_name"),
            teams.c.name.label("team_name"),
        )
        .outerjoin(people, people.c.id == accounts.c.person_id)
        .outerjoin(teams, teams.c.id == accounts.c.team_id)
        .order_by(accounts.c.id)
    ).all()
    chains = [
        Chain(
            key=r.key,
            label=r.person_name or r.team_name or r.key,
            entries=int(r.head_seq),
            balance=Money(int(r.balance_nanousd)),
            head_hash=r.head_hash,
            last_recorded_utc=r.head_recorded_utc,
            problem=problems.get(r.key),
        )
        for r in rows
    ]
    return LedgerPage(chains, last, monthly_seals(conn, now, tz))


def monthly_seals(conn: Connection, now: datetime, tz: str) -> list[MonthSeal]:
    """Per month, newest first, from the first entry's month to this one."""
    e = ledger_entries.c
    first: datetime | None = conn.execute(select(e.recorded_utc).order_by(e.id).limit(1)).scalar()
    if first is None:
        return []
    months = _months(local_date(first, tz), local_date(now, tz))
    ends = [month_bounds(year, month, tz)[1] for year, month in months]
    heads = _heads_at(conn, ends)
    before: dict[str, int] = {}  # each chain's head seq at the previous month's end
    out = []
    for i, (year, month) in enumerate(months):
        at_end = heads.get(i, {})
        recorded = {k: seq - before.get(k, 0) for k, (seq, _) in at_end.items()}
        out.append(
            MonthSeal(
                month=f"{year}-{month:02d}",
                entries=sum(recorded.values()),
                chains=sum(1 for n in recorded.values() if n > 0),
                seal=analytics.month_seal((k, s, h) for k, (s, h) in at_end.items()),
                closed=ends[i] <= now,
            )
        )
        before = {k: seq for k, (seq, _) in at_end.items()}
    return out[::-1]


def _heads_at(conn: Connection, ends: Sequence[datetime]) -> dict[int, dict[str, tuple[int, str]]]:
    """Every chain's last entry recorded before each of ``ends``, in two statements: the
    last recording time per chain and month (one step back along the index on account and
    recording time), then the entries recorded at those times (a batch may share one; the
    highest seq is the head)."""
    e = ledger_entries.alias("e")
    parts = []
    for i, end in enumerate(ends):
        last_at = (
            select(e.c.recorded_utc)
            .where(e.c.account_id == accounts.c.id, e.c.recorded_utc < end)
            .order_by(desc(e.c.recorded_utc))
            .limit(1)
            .scalar_subquery()
        )
        parts.append(
            select(
                literal(i).label("month"),
                accounts.c.id.label("account_id"),
                accounts.c.key.label("key"),
                last_at.label("last_at"),
            )
        )
    found = [r for r in conn.execute(union_all(*parts)) if r.last_at is not None]
    if not found:
        return {}
    at = {(r.account_id, _utc(r.last_at)) for r in found}
    le = ledger_entries.c
    q = select(le.account_id, le.recorded_utc, le.seq, le.hash).where(
        le.account_id.in_(sorted({a for a, _ in at})),
        le.recorded_utc.in_(sorted({t for _, t in at})),
    )
    best: dict[tuple[int, datetime], tuple[int, str]] = {}
    for r in conn.execute(q):
        key = (r.account_id, r.recorded_utc)
        if key in at and r.seq > best.get(key, (0, ""))[0]:
            best[key] = (int(r.seq), r.hash)
    out: dict[int, dict[str, tuple[int, str]]] = {}
    for r in found:
        out.setdefault(int(r.month), {})[r.key] = best[(r.account_id, _utc(r.last_at))]
    return out


def _utc(value: datetime | str) -> datetime:
    """A union's column loses its type on SQLite: parse the stored text back to UTC."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _months(first: date, last: date) -> list[tuple[int, int]]:
    out, (y, m) = [], (first.year, first.month)
    while (y, m) <= (last.year, last.month):
        out.append((y, m))
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return out


def last_verification(conn: Connection) -> Verification | None:
    row = conn.execute(
        select(audit_log)
        .where(audit_log.c.action == VERIFY_ACTION)
        .order_by(desc(audit_log.c.id))
        .limit(1)
    ).first()
    if row is None:
        return None
    detail: dict[str, Any] = orjson.loads(row.detail)
    return Verification(
        at_utc=row.at_utc,
        actor=row.actor,
        ok=bool(detail.get("ok")),
        entries=int(detail.get("entries", 0)),
        chains=int(detail.get("chains", 0)),
        problems=[(str(p["account"]), str(p["what"])) for p in detail.get("problems", [])],
        heads={str(k): int(v) for k, v in detail.get("heads", {}).items()},
    )


def verify_ledger(conn: Connection, actor: str, now: datetime) -> Verification:
    """Walk every chain (``LedgerRepo.verify``) and record the outcome in the audit log."""
    repo = LedgerRepo(conn)
    heads = {a.key: a.head.seq for a in repo.all_accounts()}
    problems = [{"account": p.account, "what": str(p)} for p in repo.verify()]
    detail = {
        "ok": not problems,
        "entries": sum(heads.values()),
        "chains": len(heads),
        "problems": problems[:MAX_PROBLEMS_KEPT],
        "heads": heads,
    }
    WebRepo(conn).audit(actor, VERIFY_ACTION, detail, now)
    found = last_verification(conn)
    assert found is not None
    return found
