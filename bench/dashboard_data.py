"""The dashboard benchmark's database: a demo organisation plus a million usage records.

The organisation (teams, people, packages, allowances, grants and the ledger) comes from the
demo seeding, ``tokenwage.services.demo.seed_demo``. The usage records are generated in
bulk on top, in time order, shaped like the gateway's and the importers' (sources gateway,
claude_code and codex; the demo's models; token counts of coding-agent turns, each priced
with genai-prices), and written with ``tokenwage.storage.usage_rows.record_usage`` in big
batches, one transaction each, so ``usage_daily`` is kept exactly as in production. On
PostgreSQL the planner's statistics are then refreshed (``ANALYZE``), as autovacuum would
within a minute of such a load.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, func, select, text

from tokenwage.core.org import zone
from tokenwage.core.pricing import Pricer, PricingPolicy
from tokenwage.core.usage import TokenUsage
from tokenwage.services.dashboard.me import SharingSettings, save_sharing_settings
from tokenwage.services.demo import DEMO_TZ, STYLES, seed_demo
from tokenwage.storage.db import Database
from tokenwage.storage.org_repo import OrgRepo
from tokenwage.storage.schema import usage_records
from tokenwage.storage.usage_rows import record_usage

SOURCES = (("gateway", 6), ("claude_code", 3), ("codex", 1))
ENDPOINTS = {"openai": "/v1/chat/completions", "anthropic": "/v1/messages"}
TEMPLATES_PER_MODEL = 64  # priced usage shapes per model, reused by the generated records

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class Built:
    people: int
    days: int
    usage_records: int  # in the database, the demo's own included
    logins: dict[str, str]  # role -> email
    person_ids: dict[str, int]  # role -> person id
    seconds_seed: float
    seconds_usage: float


@dataclass(frozen=True)
class _Template:
    counts: dict[str, int]
    cost_nanousd: int
    price_source: str


def build(
    db: Database,
    *,
    records: int,
    people: int,
    days: int,
    batch: int,
    seed: int,
    now: datetime,
    on_seed: Progress,
    on_usage: Progress,
) -> Built:
    """Seed the demo org into ``db`` (migrated, empty), then top its usage records up to
    ``records``."""
    import time

    t0 = time.perf_counter()
    with db.begin() as conn:
        summary = seed_demo(conn, now=now, people=people, days=days, seed=seed, progress=on_seed)
        have = int(conn.execute(select(func.count()).select_from(usage_records)).scalar_one())
        repo = OrgRepo(conn)
        ids = {role: repo.person_id(email) for role, email in summary.logins.items()}
        _join_leaderboard(conn, [p.id for p in repo.list_people() if p.id is not None], now)
    t1 = time.perf_counter()
    todo = max(records - have, 0)
    gen = _Generator(db, people=people, days=days, seed=seed, now=now)
    done = 0
    on_usage(0, todo)
    for rows in gen.batches(todo, batch):
        with db.begin() as conn:
            record_usage(conn, rows, zone(DEMO_TZ))
        done += len(rows)
        on_usage(done, todo)
    if db.dialect == "postgresql":
        with db.begin() as conn:  # what autovacuum does within a minute of the bulk load
            conn.execute(text("ANALYZE"))
    t2 = time.perf_counter()
    return Built(summary.people, days, have + done, summary.logins, ids, t1 - t0, t2 - t1)


def _join_leaderboard(conn: Connection, person_ids: list[int], now: datetime) -> None:
    """Four people in five take part in the leaderboard, every other one under their name."""
    for i, person_id in enumerate(person_ids):
        if i % 5 != 4:
            shown = SharingSettings(leaderboard_opt_in=True, leaderboard_show_name=i % 2 == 0)
            save_sharing_settings(conn, person_id, shown, now)


class _Generator:
    """Usage records in time order over the last ``days`` days, most on workdays in office
    hours, spread over people by a per-person intensity (a few heavy users)."""

    def __init__(self, db: Database, *, people: int, days: int, seed: int, now: datetime) -> None:
        self.rng = random.Random(seed)
        self.now = now
        self.start = now - timedelta(days=days)
        with db.begin() as conn:
            persons = OrgRepo(conn).list_people()
        self.people = [p.id for p in persons if p.id is not None]
        self.weights = [self.rng.choice((1, 1, 2, 3, 8)) for _ in self.people]
        styles = list(STYLES.values())
        self.models = {pid: styles[pid % len(styles)] for pid in self.people}
        self.templates = self._templates()

    def _templates(self) -> dict[str, list[_Template]]:
        pricer = Pricer(PricingPolicy())
        out: dict[str, list[_Template]] = {}
        for options in STYLES.values():
            for provider, model, _ in options:
                if model in out:
                    continue
                out[model] = []
                for _ in range(TEMPLATES_PER_MODEL):
                    usage = _turn_usage(self.rng, model)
                    priced = pricer.price(usage, provider, model, self.now)
                    out[model].append(_Template(usage.counts(), priced.cost.nanousd, priced.source))
        return out

    def batches(self, total: int, size: int) -> Iterator[list[dict[str, Any]]]:
        if total <= 0:
            return
        span = (self.now - self.start).total_seconds()
        step = span / total
        rng = self.rng
        source_names = [s for s, _ in SOURCES]
        source_weights = [w for _, w in SOURCES]
        rows: list[dict[str, Any]] = []
        for i in range(total):
            used = self.start + timedelta(seconds=step * i + rng.random() * step)
            person = rng.choices(self.people, self.weights)[0]
            options = self.models[person]
            provider, model, _ = rng.choices(options, [w for *_, w in options])[0]
            t = rng.choice(self.templates[model])
            source = rng.choices(source_names, source_weights)[0]
            gateway = source == "gateway"
            rows.append(
                {
                    "request_id": f"bench-{i:08d}",
                    "person_id": person,
                    "key_id": None,
                    "source": source,
                    "provider": provider,
                    "model": model,
                    "endpoint": ENDPOINTS[provider] if gateway else None,
                    **t.counts,
                    "cost_nanousd": t.cost_nanousd,
                    "price_source": t.price_source,
                    "estimated": 0,
                    "stream": 1,
                    "status": 200,
                    "latency_ms": rng.randrange(400, 30_000) if gateway else None,
                    "used_utc": used,
                    "recorded_utc": used,
                    "session_id": None if gateway else f"s-{person}-{i // 40}",
                    "charge_mode": "charge" if gateway else "track",
                }
            )
            if len(rows) == size:
                yield rows
                rows = []
        if rows:
            yield rows


def _turn_usage(rng: random.Random, model: str) -> TokenUsage:
    """One request of a coding agent: a large cached prompt, a little fresh input, some output."""
    out = rng.randint(80, 2_500)
    return TokenUsage(
        input_tokens=rng.randint(200, 6_000),
        output_tokens=out,
        cache_read_tokens=rng.randint(5_000, 120_000),
        cache_write_tokens=rng.randint(0, 3_000) if model.startswith("claude") else 0,
        reasoning_tokens=out // 3 if model.startswith(("gpt-5", "o3")) else 0,
    )


def utc_now() -> datetime:
    return datetime.now(UTC)
