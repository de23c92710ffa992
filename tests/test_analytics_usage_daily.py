"""``usage_daily`` always equals the usage records summed per org-local day: after writes
through ``record_usage`` (gateway and importers), after an import, and after migration
0005 backfilled it from records written before it existed. On SQLite and PostgreSQL."""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from alembic import command
from sqlalchemy import Connection, select

from tokenwage.core.org import Org, Person, Team
from tokenwage.services.people import add_person, add_team
from tokenwage.storage import migrate
from tokenwage.storage.bulk import insert_rows
from tokenwage.storage.db import Database
from tokenwage.storage.org_repo import OrgRepo
from tokenwage.storage.schema import usage_daily, usage_records
from tokenwage.storage.usage_rows import record_usage

TZ = "America/Los_Angeles"
MODELS = (("openai", "gpt-5"), ("anthropic", "claude-sonnet-4-5"), ("openai", "gpt-5-mini"))


def _org(conn: Connection) -> list[int]:
    OrgRepo(conn).save_org(Org("Acme", TZ))
    add_team(conn, Team("platform", "Platform"))
    return [
        add_person(conn, Person(f"p{i}@acme.example", f"P {i}", team_slug="platform"))
        for i in range(3)
    ]


def _records(people: list[int], n: int, seed: int, prefix: str) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    start = datetime(2026, 10, 30, 20, 0, tzinfo=UTC)  # crosses local midnight and DST's end
    rows = []
    for i in range(n):
        provider, model = rng.choice(MODELS)
        rows.append(
            {
                "request_id": f"{prefix}-{i}",
                "person_id": rng.choice([*people, None]),
                "key_id": None,
                "source": rng.choice(("gateway", "claude_code")),
                "provider": provider,
                "model": model,
                "input_tokens": rng.randrange(5000),
                "output_tokens": rng.randrange(3000),
                "cache_read_tokens": rng.randrange(90_000),
                "cache_write_tokens": rng.randrange(2000),
                "cache_write_1h_tokens": rng.randrange(500),
                "reasoning_tokens": rng.randrange(800),
                "cost_nanousd": rng.randrange(10**8),
                "estimated": 0,
                "stream": 0,
                "status": 200,
                "used_utc": start + timedelta(minutes=rng.randrange(60 * 24 * 5)),
                "recorded_utc": start,
            }
        )
    return rows


def records_summed(conn: Connection, tz: str = TZ) -> dict[tuple[Any, ...], tuple[int, ...]]:
    """The records summed per local day in Python, straight from usage_records."""
    zone = ZoneInfo(tz)
    sums: dict[tuple[Any, ...], list[int]] = defaultdict(lambda: [0] * 7)
    for r in conn.execute(select(usage_records).where(usage_records.c.person_id.is_not(None))):
        key = (r.used_utc.astimezone(zone).date(), r.person_id, r.provider, r.model, r.source)
        acc = sums[key]
        acc[0] += 1
        acc[1] += r.input_tokens
        acc[2] += r.output_tokens
        acc[3] += r.cache_read_tokens
        acc[4] += r.cache_write_tokens + r.cache_write_1h_tokens
        acc[5] += r.reasoning_tokens
        acc[6] += r.cost_nanousd
    return {k: tuple(v) for k, v in sums.items()}


def daily_rows(conn: Connection) -> dict[tuple[Any, ...], tuple[int, ...]]:
    out: dict[tuple[Any, ...], tuple[int, ...]] = {}
    for r in conn.execute(select(usage_daily)):
        day = r.day if isinstance(r.day, date) else date.fromisoformat(r.day)
        out[(day, r.person_id, r.provider, r.model, r.source)] = (
            r.requests,
            r.input_tokens,
            r.output_tokens,
            r.cache_read_tokens,
            r.cache_write_tokens,
            r.reasoning_tokens,
            r.cost_nanousd,
        )
    assert out, "usage_daily is empty"
    return out


def test_record_usage_keeps_the_daily_sums(db: Database) -> None:
    with db.begin() as conn:
        people = _org(conn)
    for batch in range(4):  # several transactions adding into the same days
        with db.begin() as conn:
            record_usage(conn, _records(people, 150, batch, f"b{batch}"))
    with db.begin() as conn:
        assert daily_rows(conn) == records_summed(conn)
        days = {k[0] for k in daily_rows(conn)}
        assert date(2026, 10, 30) in days  # 20:00 UTC on Oct 30 is still Oct 30 in LA


def test_migration_0005_backfills_records_written_before_it(db: Database) -> None:
    cfg = migrate.alembic_config(db)
    with db.engine.connect() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0004_web_accounts")
        conn.commit()
    try:
        with db.begin() as conn:
            people = _org(conn)
            insert_rows(conn, usage_records, _records(people, 400, 11, "old"))
    finally:
        migrate.upgrade(db)
    with db.begin() as conn:
        assert daily_rows(conn) == records_summed(conn)
        # and writers carry on from there
        record_usage(conn, _records(people, 50, 12, "new"))
        assert daily_rows(conn) == records_summed(conn)
