"""Group commit: many requests settled in one transaction, before any of them sends its
last byte.

The event loop hands each finished request to :meth:`GroupCommitWriter.settle` and awaits
it. Settlements arriving in one turn of the loop are gathered and written together once the
turn ends: in ONE transaction their holds are released, each cost is split over own
allowance and team pool, the ledger debits appended, the usage records inserted and the
keys marked used; after the commit every waiting request is released to send its last byte.
Under load, batches grow and the cost per request shrinks; when idle, a lone request
commits at once.

On SQLite the batch is written right on the loop's thread when the write lock is free (no
thread switch: with the GIL, a writer thread's every statement would wait for the busy
loop to yield), on the writer's own driver connection below SQLAlchemy
(:mod:`tokenwage.gateway.settle_sqlite`). When the lock is taken (another worker process
is writing) the batch goes to the writer thread, which waits for the lock without blocking
the loop. PostgreSQL batches always go to the thread, through the repositories. Other
writes (allowance runs, imports) run in the thread too, each in its own transaction.

Settling is idempotent per request id: a request already recorded is skipped.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import Connection, delete, select, text, update

from tokenwage.core.money import Money
from tokenwage.gateway import settle_sqlite
from tokenwage.gateway.holds import Busy, immediate, own_sqlite_connection, read_funds
from tokenwage.gateway.settlement import KeyTouches, Settlement, book, leases_consumed
from tokenwage.storage.db import Database
from tokenwage.storage.ledger_repo import LedgerRepo
from tokenwage.storage.schema import holds, usage_records, virtual_keys
from tokenwage.storage.usage_rows import record_usage

log = logging.getLogger("tokenwage.gateway.writer")
T = TypeVar("T")
CHECKPOINT_EVERY_S = 1.0
_SHRINK_LEASE = text(
    "UPDATE holds SET amount_nanousd = GREATEST(amount_nanousd - :n, 0) WHERE request_id = :lease"
)


Outcome = Money | Exception
_Waiting = tuple[Settlement, "asyncio.Future[Money]", Callable[[Outcome], None] | None]


@dataclass(slots=True)
class _Job:
    settlements: list[Settlement] | None  # a batch gathered by the loop
    call: Callable[[Connection], Any] | None
    future: Future[Any]  # settlements: a list[Outcome]; call: what it returned


class GroupCommitWriter:
    def __init__(self, db: Database, *, max_batch: int = 512, checkpoint: bool = True) -> None:
        self.db = db
        self.max_batch = max_batch
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="tokenwage-writer", daemon=True)
        self._raw: Any = None  # SQLite: the writer's own driver connection
        self._busy = threading.Lock()  # held while a batch is written (thread or loop)
        self._pending: dict[asyncio.AbstractEventLoop, list[_Waiting]] = {}
        self._checkpoints = threading.Event()  # set: stop checkpointing
        self._checkpointer = threading.Thread(
            target=self._checkpoint, name="tokenwage-checkpoint", daemon=True
        )
        self._touches = KeyTouches()
        self.batches = 0
        self.settled = 0
        self.inline = 0  # batches written on the loop's thread
        self._checkpointing = checkpoint and db.is_sqlite  # off when the folder checkpoints

    def start(self) -> None:
        self._thread.start()
        if self._checkpointing:
            self._checkpointer.start()

    def stop(self) -> None:
        """Finish what is queued, then stop."""
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()
        if self._checkpointer.is_alive():
            self._checkpoints.set()
            self._checkpointer.join()
        if self._raw is not None:
            self._raw.close()
            self._raw = None

    async def settle(
        self, s: Settlement, on_done: Callable[[Outcome], None] | None = None
    ) -> Money:
        """Settle ``s`` with the others of this turn of the loop; returns what it charged
        once their transaction is committed. ``on_done`` is called on the loop with the
        outcome, even if the caller was cancelled while it waited."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[Money] = loop.create_future()
        pending = self._pending.get(loop)
        if pending is None:
            pending = self._pending[loop] = []
            loop.call_soon(self._flush, loop)
        pending.append((s, fut, on_done))
        return await fut

    async def call(self, fn: Callable[[Connection], T]) -> T:
        """Run ``fn`` in the writer's thread, in a transaction of its own (allowance runs,
        sweeps): writes never race the batches."""
        fut: Future[T] = Future()
        self._queue.put(_Job(None, fn, fut))
        return await asyncio.wrap_future(fut)

    # -- on the loop ----------------------------------------------------------------------
    def _flush(self, loop: asyncio.AbstractEventLoop) -> None:
        waiting = self._pending.pop(loop)
        batch = [w[0] for w in waiting]
        if self.db.is_sqlite and self._queue.empty() and self._busy.acquire(False):
            try:
                charged = self._commit_inline(batch)
            finally:
                self._busy.release()
            if charged is not None:
                _resolve(waiting, charged)
                return
        done: Future[list[Outcome]] = Future()
        done.add_done_callback(lambda f: loop.call_soon_threadsafe(_resolve, waiting, f.result()))
        self._queue.put(_Job(batch, None, done))

    def _commit_inline(self, batch: list[Settlement]) -> list[Money] | None:
        """Write ``batch`` now; None if the lock was taken or it failed (then the writer
        thread tries, and reports the failure)."""
        try:
            charged = self._commit(batch, wait=False)
        except Busy:
            return None
        except Exception:
            log.warning("settling a batch of %d inline failed; the writer retries", len(batch))
            return None
        self.inline += 1
        return charged

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

    def _checkpoint(self) -> None:
        """Copy the WAL back into the database file every second, off the request path
        (the writer's connections do not checkpoint on commit)."""
        raw = own_sqlite_connection(self.db)
        try:
            while not self._checkpoints.wait(CHECKPOINT_EVERY_S):
                try:
                    raw.cursor().execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                except Exception:
                    log.exception("WAL checkpoint failed")
        finally:
            raw.close()

    def _connection(self) -> Any:
        if self._raw is None:
            self._raw = own_sqlite_connection(self.db)
        return self._raw

    def _process(self, jobs: list[_Job]) -> None:
        with self._busy:
            self._process_jobs(jobs)

    def _process_jobs(self, jobs: list[_Job]) -> None:
        batches = [j for j in jobs if j.settlements is not None]
        if batches:
            everything = [s for j in batches for s in j.settlements or ()]
            outcomes: list[Outcome]
            try:
                outcomes = list(self._commit(everything))
            except Exception:  # find the bad one: settle each alone, so the rest land
                log.exception("settlement batch of %d failed; retrying one by one", len(everything))
                outcomes = [self._commit_alone(s) for s in everything]
            at = 0
            for j in batches:
                n = len(j.settlements or ())
                j.future.set_result(outcomes[at : at + n])
                at += n
        for j in jobs:
            if j.call is not None:
                try:
                    with self.db.begin() as conn:
                        j.future.set_result(j.call(conn))
                except Exception as exc:
                    j.future.set_exception(exc)

    def _commit_alone(self, s: Settlement) -> Outcome:
        try:
            return self._commit([s])[0]
        except Exception as exc:
            return exc

    def _commit(self, batch: list[Settlement], *, wait: bool = True) -> list[Money]:
        """Write ``batch`` in one transaction; ``wait=False`` (SQLite only) raises
        :class:`Busy` at once if the write lock is taken."""
        now = datetime.now(UTC)
        if self.db.is_sqlite:
            charged = self._commit_sqlite(batch, now, wait)
        else:
            with self.db.begin() as conn:
                charged = self._write_batch(conn, batch, now)
        self.batches += 1
        self.settled += len(batch)
        return charged

    def _commit_sqlite(self, batch: list[Settlement], now: datetime, wait: bool) -> list[Money]:
        with immediate(self._connection(), wait=wait) as cur:
            charged = settle_sqlite.write_batch(cur, batch, now, self._touches.due(batch))
        return charged

    def _write_batch(self, conn: Connection, batch: list[Settlement], now: datetime) -> list[Money]:
        ids = [s.ticket.facts.request_id for s in batch]
        held = [s.ticket.facts.request_id for s in batch if s.ticket.lease is None]
        if held:
            conn.execute(delete(holds).where(holds.c.request_id.in_(held)))
        done = set(
            conn.execute(
                select(usage_records.c.request_id).where(usage_records.c.request_id.in_(ids))
            ).scalars()
        )
        charged, drafts, records = book(
            batch, done, now, lambda payer: read_funds(conn, payer, now)
        )
        consumed = leases_consumed(batch, charged)
        if consumed:
            conn.execute(_SHRINK_LEASE, [{"n": n, "lease": lease} for lease, n in consumed.items()])
        LedgerRepo(conn).append(drafts, now)
        if records:
            record_usage(conn, records)
        touch = self._touches.due(batch)
        if touch:
            conn.execute(
                update(virtual_keys).where(virtual_keys.c.id.in_(touch)).values(last_used_utc=now)
            )
        return charged


def _resolve(waiting: list[_Waiting], outcomes: Sequence[Outcome]) -> None:
    """Release the requests waiting on a batch (on their loop)."""
    for (_, fut, on_done), outcome in zip(waiting, outcomes, strict=True):
        if on_done is not None:
            on_done(outcome)
        if fut.done():  # the request was cancelled while it waited
            continue
        if isinstance(outcome, Exception):
            fut.set_exception(outcome)
        else:
            fut.set_result(outcome)
