"""Monthly token statements and ledger export."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import datetime

import orjson
from sqlalchemy import Connection, func, select

from tokenwage.core.ledger import Entry
from tokenwage.core.money import Money
from tokenwage.core.periods import month_bounds
from tokenwage.core.statements import Statement, build_statement
from tokenwage.storage.ledger_repo import LedgerRepo
from tokenwage.storage.org_repo import OrgRepo, person_account
from tokenwage.storage.schema import ledger_entries


def statement_for(conn: Connection, email: str, year: int, month: int, now: datetime) -> Statement:
    repo, ledger = OrgRepo(conn), LedgerRepo(conn)
    tz = repo.get_org().timezone
    person = repo.get_person(email)
    assert person.id is not None
    key = person_account(person.id)
    start, end = month_bounds(year, month, tz)
    opening, seal = ledger.balance_before(key, start)
    return build_statement(
        person_name=person.name,
        person_email=person.email,
        account=key,
        year=year,
        month=month,
        tz=tz,
        opening_balance_nanousd=opening,
        opening_seal=seal,
        entries=ledger.entries(key, recorded_from=start, recorded_to=end),
        pool_entries=ledger.usage_entries_for_person(person.id, start, end),
        generated_utc=now,
    )


def last_recorded_utc(conn: Connection) -> datetime | None:
    """When the newest ledger entry was recorded. Statements are posted by recording time,
    so new entries must not be recorded before it."""
    last: datetime | None = conn.execute(select(func.max(ledger_entries.c.recorded_utc))).scalar()
    return last


EXPORT_COLUMNS = (
    "id",
    "account",
    "seq",
    "kind",
    "amount_nanousd",
    "amount_usd",
    "effective_utc",
    "recorded_utc",
    "ref",
    "memo",
    "expires_utc",
    "meta",
    "prev_hash",
    "hash",
)


def _export_row(e: Entry) -> dict[str, object]:
    return {
        "id": e.id,
        "account": e.account,
        "seq": e.seq,
        "kind": str(e.kind),
        "amount_nanousd": e.amount_nanousd,
        "amount_usd": Money(e.amount_nanousd).exact(),
        "effective_utc": e.effective_utc.isoformat(),
        "recorded_utc": e.recorded_utc.isoformat(),
        "ref": e.ref,
        "memo": e.memo,
        "expires_utc": e.expires_utc.isoformat() if e.expires_utc else None,  # CSV: empty
        "meta": dict(e.meta),
        "prev_hash": e.prev_hash,
        "hash": e.hash,
    }


def export_entries(
    conn: Connection,
    fmt: str,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
) -> Iterator[str]:
    """The whole ledger (or a recorded-time window) as CSV or a JSON array, chunk by chunk."""
    rows = (
        _export_row(e)
        for e in LedgerRepo(conn).iter_all_entries()
        if (since is None or e.recorded_utc >= since) and (until is None or e.recorded_utc < until)
    )
    if fmt == "json":  # one JSON array, streamed
        sep = "[\n"
        for row in rows:
            yield sep + orjson.dumps(row).decode()
            sep = ",\n"
        yield "[]\n" if sep == "[\n" else "\n]\n"
        return
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=EXPORT_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({**row, "meta": orjson.dumps(row["meta"]).decode()})
        if buf.tell() > 1 << 16:
            yield buf.getvalue()
            buf.seek(0)
            buf.truncate()
    yield buf.getvalue()
