"""Group commit: one thread settles many requests in one transaction.

The event loop hands each finished request to :meth:`GroupCommitWriter.settle` and awaits
it. The writer thread takes every settlement waiting (up to ``max_batch``), and in ONE
transaction releases their holds, splits each cost over own allowance and team pool,
appends the ledger debits, inserts the usage records and marks the keys used; after the
commit (one fsync for the whole batch) every waiting request is released to send its last
byte. Under load, batches grow and the cost of durability per request shrinks; when idle,
a lone request commits at once.

Settling is idempotent per request id: a request already recorded is skipped.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import Connection, delete, select, update

from tokenwage.core.charges import usage_drafts
from tokenwage.core.money import Money
from tokenwage.core.pricing import PricedUsage
from tokenwage.core.spending import Funds
from tokenwage.core.usage import TokenUsage
from tokenwage.gateway.holds import Payer, read_funds
from tokenwage.gateway.ticket import Ticket
from tokenwage.storage.db import Database
from tokenwage.storage.ledger_repo import LedgerRepo
from tokenwage.storage.schema import holds, usage_records, virtual_keys
from tokenwage.storage.usage_rows import record_usage

log = logging.getLogger("tokenwage.gateway.writer")
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Settlement:
    ticket: Ticket
    payer: Payer
    usage: TokenUsage | None
    priced: PricedUsage | None
    status: int
    estimated: bool
    latency_ms: int
    used_utc: datetime
    upstream_request_id: str | None = None


@dataclass(slots=True)
class _Job:
    settlement: Settlement | None
    call: Callable[[Connection], Any] | None
    future: Future[Any]


class GroupCommitWriter:
    def __init__(self, db: Database, *, max_batch: int = 512) -> None:
        self.db = db
        self.max_batch = max_batch
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="tokenwage-writer", daemon=True)
        self.batches = 0
        self.settled = 0

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Finish what is queued, then stop."""
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()

    async def settle(self, s: Settlement) -> None:
        fut: Future[None] = Future()
        self._queue.put(_Job(s, None, fut))
        await asyncio.wrap_future(fut)

    async def call(self, fn: Callable[[Connection], T]) -> T:
        """Run ``fn`` in the writer's thread, in a transaction of its own (allowance runs,
        sweeps): writes never race the batches."""
        fut: Future[T] = Future()
        self._queue.put(_Job(None, fn, fut))
        return await asyncio.wrap_future(fut)

    # -- the writer thread ----------------------------------------------------------------
    def _run(self) -> None:
        stopping = False
        while not stopping:
            first = self._queue.get()
            if first is None:
                break
            jobs = [first]
            while len(jobs) < self.max_batch:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    stopping = True
                    break
                jobs.append(nxt)
            self._process(jobs)

    def _process(self, jobs: list[_Job]) -> None:
        settles = [j for j in jobs if j.settlement is not None]
        if settles:
            try:
                self._commit(settles)
            except Exception:  # find the bad one: settle each alone, so the rest land
                log.exception("settlement batch of %d failed; retrying one by one", len(settles))
                for j in settles:
                    try:
                        self._commit([j])
                    except Exception as exc:
                        j.future.set_exception(exc)
        for j in jobs:
            if j.call is not None:
                try:
                    with self.db.begin() as conn:
                        j.future.set_result(j.call(conn))
                except Exception as exc:
                    j.future.set_exception(exc)

    def _commit(self, settles: list[_Job]) -> None:
        with self.db.begin() as conn:
            self._write_batch(conn, [j.settlement for j in settles if j.settlement])
        self.batches += 1
        self.settled += len(settles)
        for j in settles:
            j.future.set_result(None)

    def _write_batch(self, conn: Connection, batch: list[Settlement]) -> None:
        now = datetime.now(UTC)
        ids = [s.ticket.facts.request_id for s in batch]
        conn.execute(delete(holds).where(holds.c.request_id.in_(ids)))
        done = set(
            conn.execute(
                select(usage_records.c.request_id).where(usage_records.c.request_id.in_(ids))
            ).scalars()
        )
        funds: dict[int, Funds] = {}
        drafts = []
        records = []
        for s in batch:
            rid = s.ticket.facts.request_id
            if rid in done:
                continue
            done.add(rid)
            records.append(_record(s, now))
            if s.usage is None or s.priced is None:
                continue  # an upstream error without usage: recorded, never charged
            f = funds.get(s.payer.person_id) or read_funds(conn, s.payer, now)
            new = usage_drafts(
                s.priced,
                s.usage,
                f,
                person_id=s.payer.person_id,
                own_account=s.payer.account_key,
                pool_account=s.payer.pool_key,
                provider=s.ticket.facts.provider,
                model=s.ticket.model,
                used_utc=s.used_utc,
                source="gateway",
                request_id=rid,
                extra_meta={"estimated": True} if s.estimated else None,
            )
            drafts += new
            funds[s.payer.person_id] = _after(f, new, s.payer)
        LedgerRepo(conn).append(drafts, now)
        if records:
            record_usage(conn, records)
            key_ids = sorted({s.ticket.key.id for s in batch})
            conn.execute(
                update(virtual_keys).where(virtual_keys.c.id.in_(key_ids)).values(last_used_utc=now)
            )


def _after(f: Funds, drafts: list[Any], payer: Payer) -> Funds:
    own = sum(d.amount_nanousd for d in drafts if d.account == payer.account_key)
    pool = sum(d.amount_nanousd for d in drafts if d.account != payer.account_key)
    return Funds(
        own_balance=f.own_balance + Money(own),
        own_held=f.own_held,
        pool_balance=f.pool_balance + Money(pool),
        pool_held=f.pool_held,
        overdraft=f.overdraft,
        cap=f.cap,
    )


def _record(s: Settlement, now: datetime) -> dict[str, Any]:
    u = s.usage or TokenUsage()
    f = s.ticket.facts
    return {
        "request_id": f.request_id,
        "person_id": s.payer.person_id,
        "key_id": s.ticket.key.id,
        "source": "gateway",
        "provider": f.provider,
        "model": s.ticket.model,
        "requested_model": f.model if f.model != s.ticket.model else None,
        "endpoint": f.endpoint,
        **u.counts(),
        "cost_nanousd": s.priced.cost.nanousd if s.priced and s.usage else 0,
        "price_source": s.priced.source if s.priced and s.usage else None,
        "estimated": int(s.estimated),
        "stream": int(f.stream),
        "status": s.status,
        "latency_ms": s.latency_ms,
        "used_utc": s.used_utc,
        "recorded_utc": now,
        "upstream_request_id": (s.upstream_request_id or "")[:200] or None,
    }
