"""The real meter on SQLite and PostgreSQL: keys, holds, settlement and their edge cases."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from tokenwage.core.errors import AllowanceExhausted, ModelNotAllowed, Unauthenticated
from tokenwage.core.ledger import EntryKind
from tokenwage.core.money import Money
from tokenwage.core.pricing import Pricer, PricingPolicy
from tokenwage.core.usage import TokenUsage
from tokenwage.gateway.config import DowngradePolicy, GatewayConfig
from tokenwage.gateway.leases import TTL as LEASE_TTL
from tokenwage.gateway.meter import DbMeter, open_meter
from tokenwage.gateway.ticket import RequestFacts
from tokenwage.services.keys import create_key, revoke_key
from tokenwage.services.sandbox import one_person_org
from tokenwage.storage.db import Database
from tokenwage.storage.ledger_repo import LedgerRepo
from tokenwage.storage.schema import holds, usage_records

MODEL = "claude-sonnet-4"
SMALL = TokenUsage(input_tokens=100, output_tokens=10)


def _org(db: Database, allowance_usd: int) -> tuple[str, str]:
    now = datetime.now(UTC)
    with db.begin() as conn:
        raw = one_person_org(conn, Money.parse(allowance_usd), now=now)
        _, narrow = create_key(
            conn, email="ada@acme.example", name="ci", now=now, allowed_models=["gpt-*"]
        )
    return raw, narrow


def _facts(rid: str, *, max_out: int | None = 1000, model: str = MODEL) -> RequestFacts:
    return RequestFacts(rid, "anthropic.messages", "anthropic", model, False, 1000, max_out)


def _fits_in_a_dollar(*, max_out: int) -> int:
    """How many worst cases of ``_facts(max_out=...)`` fit in $1."""
    worst = Pricer(PricingPolicy()).worst_case_cost(
        "anthropic",
        MODEL,
        datetime.now(UTC),
        prompt_tokens_estimate=1000,
        max_output_tokens=max_out,
    )
    return Money.parse(1).nanousd // worst.cost.nanousd


@asynccontextmanager
async def running(db_url: str, config: GatewayConfig | None = None) -> AsyncIterator[DbMeter]:
    m = await open_meter(db_url, config or GatewayConfig())
    try:
        yield m
    finally:
        await m.aclose()


async def test_keys_are_checked(db: Database, db_url: str) -> None:
    raw, _ = _org(db, 100)
    m = await open_meter(db_url, GatewayConfig())
    try:
        assert (await m.authenticate(raw)).name == "laptop"
        for bad in (None, "", "sk-not-ours", raw[:-1] + "x"):
            with pytest.raises(Unauthenticated):
                await m.authenticate(bad)
        with db.begin() as conn:
            revoke_key(conn, raw, datetime.now(UTC))
        m._keys.clear()  # the cache would notice within KEY_TTL_S; don't wait in a test
        with pytest.raises(Unauthenticated, match="revoked"):
            await m.authenticate(raw)
    finally:
        await m.aclose()


async def test_settle_charges_exactly_the_price_and_releases_the_hold(
    db: Database, db_url: str
) -> None:
    raw, _ = _org(db, 100)
    m = await open_meter(db_url, GatewayConfig())
    usage = TokenUsage(input_tokens=1200, output_tokens=350, cache_read_tokens=5000)
    try:
        ticket = await m.authorize(raw, _facts("twr_1"))
        assert ticket.hold_nanousd > 0
        charged = await m.settle(ticket, usage, status=200)
        again = await m.settle(ticket, usage, status=200)  # idempotent per request id
    finally:
        await m.aclose()
    with db.begin() as conn:
        entries = [e for e in LedgerRepo(conn).entries("person:1") if e.kind is EntryKind.USAGE]
        n_holds = conn.execute(select(func.count()).select_from(holds)).scalar_one()
        record = conn.execute(select(usage_records)).one()
    expected = Pricer(PricingPolicy()).price(usage, "anthropic", MODEL, datetime.now(UTC)).cost
    assert [e.amount_nanousd for e in entries] == [-expected.nanousd]
    assert (charged, again) == (expected, Money(0))
    assert entries[0].meta["source"] == "gateway" and entries[0].meta["request_id"] == "twr_1"
    assert n_holds == 0
    assert record.cost_nanousd == expected.nanousd and record.cache_read_tokens == 5000


async def test_upstream_error_is_recorded_but_not_charged(db: Database, db_url: str) -> None:
    raw, _ = _org(db, 100)
    async with running(db_url) as meter:
        ticket = await meter.authorize(raw, _facts("twr_err"))
        await meter.settle(ticket, None, status=529)
    with db.begin() as conn:
        assert LedgerRepo(conn).balance("person:1") == Money.parse(100).nanousd
        assert conn.execute(select(usage_records.c.status)).scalar_one() == 529


async def test_exhausted_allowance_is_refused_with_a_readable_message(
    db: Database, db_url: str
) -> None:
    raw, _ = _org(db, 1)
    # 1000 prompt + 100k output tokens of sonnet at $15/MTok: $1.50 > $1
    async with running(db_url) as meter:
        with pytest.raises(AllowanceExhausted) as info:
            await meter.authorize(raw, _facts("twr_big", max_out=100_000))
    text = str(info.value)
    assert "ada@acme.example" in text and "$1.00 per month" in text
    assert "next refills" in text and "UTC" in text
    with db.begin() as conn:
        assert conn.execute(select(func.count()).select_from(holds)).scalar_one() == 0


async def test_model_allow_list(db: Database, db_url: str) -> None:
    _, narrow = _org(db, 100)
    async with running(db_url) as meter:
        with pytest.raises(ModelNotAllowed, match="gpt-"):
            await meter.authorize(narrow, _facts("twr_m"))


async def test_concurrent_holds_never_exceed_what_may_be_spent(db: Database, db_url: str) -> None:
    raw, _ = _org(db, 1)
    m = await open_meter(db_url, GatewayConfig())
    allowed = _fits_in_a_dollar(max_out=10_000)
    results: list[bool] = []

    def worker(i: int) -> None:
        async def one() -> bool:
            try:
                await m.authorize(raw, _facts(f"twr_c{i}", max_out=10_000))
                return True
            except AllowanceExhausted:
                return False

        results.append(asyncio.run(one()))

    try:
        threads = [threading.Thread(target=worker, args=(i,)) for i in range(24)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        await m.aclose()
    assert sum(results) == allowed  # each hold is the worst case; no more fit in $1


async def test_sweeper_releases_holds_of_dead_requests(db: Database, db_url: str) -> None:
    raw, _ = _org(db, 100)
    async with running(db_url) as meter:
        await meter.authorize(raw, _facts("twr_dead"))
        assert meter.holds.sweep(datetime.now(UTC)) == 0
        assert meter.holds.sweep(datetime.now(UTC) + timedelta(seconds=601)) == 1


async def test_downgrade_below_threshold(db: Database, db_url: str) -> None:
    raw, _ = _org(db, 5)
    config = GatewayConfig(
        downgrade=DowngradePolicy(below_usd="10", models={"claude-opus-4-1": "claude-haiku-4-5"})
    )
    m = await open_meter(db_url, config)
    try:
        ticket = await m.authorize(raw, _facts("twr_d", model="claude-opus-4-1"))
        assert ticket.model == "claude-haiku-4-5"
        await m.settle(ticket, TokenUsage(input_tokens=10, output_tokens=10), status=200)
    finally:
        await m.aclose()
    with db.begin() as conn:
        row = conn.execute(select(usage_records.c.model, usage_records.c.requested_model)).one()
    assert tuple(row) == ("claude-haiku-4-5", "claude-opus-4-1")


async def test_usage_charged_at_the_gateway_is_not_charged_again_by_an_import(
    db: Database, db_url: str
) -> None:
    from tokenwage.core.imported import ChargeMode, ImportedUsage
    from tokenwage.services.importing import import_usage

    raw, _ = _org(db, 100)
    async with running(db_url) as meter:
        ticket = await meter.authorize(raw, _facts("twr_gw"))
        await meter.settle(ticket, SMALL, status=200, upstream_request_id="req_provider_1")
    seen_in_logs = ImportedUsage(
        source="claude_code",
        key="msg_1:req_provider_1",
        used_utc=datetime.now(UTC),
        provider="anthropic",
        model=MODEL,
        usage=SMALL,
        upstream_request_id="req_provider_1",
    )
    with db.begin() as conn:
        before = LedgerRepo(conn).balance("person:1")
        summary = import_usage(
            conn,
            [seen_in_logs],
            mode=ChargeMode.CHARGE,
            pricer=Pricer(PricingPolicy()),
            now=datetime.now(UTC),
        )
        assert (summary.via_gateway, summary.new) == (1, 0)
        assert LedgerRepo(conn).balance("person:1") == before


async def test_two_workers_leases_never_overspend_together(db: Database, db_url: str) -> None:
    """Two meters on one database, as two worker processes: each holds requests in its own
    lease; together they never hold more than may be spent, and settling frees the room."""
    raw, _ = _org(db, 1)
    fit = _fits_in_a_dollar(max_out=1000)
    async with running(db_url) as one, running(db_url) as two:
        tickets = []
        refused = 0
        for i in range(fit + 10):
            meter = (one, two)[i % 2]
            try:
                tickets.append((meter, await meter.authorize(raw, _facts(f"twr_l{i}"))))
            except AllowanceExhausted:
                refused += 1
            with db.begin() as conn:
                held = conn.execute(select(func.sum(holds.c.amount_nanousd))).scalar_one()
            assert held <= Money.parse(1).nanousd
        assert fit - 2 <= len(tickets) <= fit and refused >= 10
        assert all(t.lease is not None for _, t in tickets)
        usage = TokenUsage(input_tokens=1000, output_tokens=100)  # well under the worst case
        for meter, ticket in tickets:
            await meter.settle(ticket, usage, status=200)
        await one.authorize(raw, _facts("twr_after"))  # what was not used is free again
    with db.begin() as conn:
        assert LedgerRepo(conn).balance("person:1") >= 0
        assert conn.execute(select(func.count()).select_from(holds)).scalar_one() == 0


async def test_a_lease_row_expires_soon_so_a_crashed_worker_frees_its_money(
    db: Database, db_url: str
) -> None:
    raw, _ = _org(db, 100)
    async with running(db_url) as meter:
        ticket = await meter.authorize(raw, _facts("twr_short"))
        assert ticket.lease is not None
        with db.begin() as conn:
            (expires,) = conn.execute(
                select(holds.c.expires_utc).where(holds.c.request_id.like("lease:%"))
            ).one()
        assert expires - datetime.now(UTC) <= LEASE_TTL  # not the 600 s of a request hold
        await meter.settle(ticket, SMALL, status=200)


# The group-commit writer: PostgreSQL, and SQLite with fsync (without, the journal settles)
DIRECT = GatewayConfig(sqlite_synchronous="FULL")


async def test_settlements_of_one_turn_share_one_transaction(db: Database, db_url: str) -> None:
    raw, _ = _org(db, 100)
    async with running(db_url, DIRECT) as meter:
        tickets = [await meter.authorize(raw, _facts(f"twr_g{i}")) for i in range(20)]
        before = meter.writer.batches
        charged = await asyncio.gather(*(meter.settle(t, SMALL, status=200) for t in tickets))
        assert meter.writer.batches == before + 1
    price = Pricer(PricingPolicy()).price(SMALL, "anthropic", MODEL, datetime.now(UTC)).cost
    assert charged == [price] * 20
    with db.begin() as conn:
        assert conn.execute(select(func.count()).select_from(usage_records)).scalar_one() == 20
        assert LedgerRepo(conn).balance("person:1") == Money.parse(100).nanousd - 20 * price.nanousd


async def test_a_request_cancelled_while_settling_still_returns_its_hold(
    db: Database, db_url: str
) -> None:
    raw, _ = _org(db, 100)
    async with running(db_url, DIRECT) as meter:
        ticket = await meter.authorize(raw, _facts("twr_cancelled"))
        waiting = asyncio.create_task(meter.settle(ticket, SMALL, status=200))
        await asyncio.sleep(0)  # queued for this turn's batch
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        for _ in range(500):  # the batch still commits, then the hold goes back to the lease
            if "twr_cancelled" not in meter.leases._open:
                break
            await asyncio.sleep(0.01)
        (lease,) = meter.leases._leases.values()
        assert lease.inflight == 0
    with db.begin() as conn:
        assert conn.execute(select(usage_records.c.request_id)).scalars().all() == ["twr_cancelled"]
