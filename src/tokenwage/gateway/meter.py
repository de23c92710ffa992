"""The real meter: keys, holds, pricing and settlement on the organisation's database.

See :mod:`tokenwage.gateway.ticket` for the contract. Hot-path reads (keys, who pays) are
cached in memory for a few seconds; a revoked key stops working within ``KEY_TTL_S``.
Background tasks release the holds of requests that died, credit allowance periods as they
start, and reload the org's pricing rules.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from functools import partial

from tokenwage.core import keys as keyfmt
from tokenwage.core.allowances import allowance_in_force, next_refill
from tokenwage.core.errors import (
    AllowanceExhausted,
    ModelNotAllowed,
    Unauthenticated,
)
from tokenwage.core.imported import ChargeMode, Identity, IdentityKind, ImportedUsage
from tokenwage.core.keys import KeyInfo
from tokenwage.core.money import Money
from tokenwage.core.org import zone
from tokenwage.core.package import CapMode
from tokenwage.core.periods import local_date
from tokenwage.core.pricing import Pricer
from tokenwage.core.usage import TokenUsage
from tokenwage.gateway.config import GatewayConfig
from tokenwage.gateway.folder import sqlite_journal_dir
from tokenwage.gateway.holds import HoldStore, Payer
from tokenwage.gateway.journaled import JournalSettler
from tokenwage.gateway.leases import TTL as LEASE_TTL
from tokenwage.gateway.leases import Leases
from tokenwage.gateway.settlement import Settlement, hold_used
from tokenwage.gateway.ticket import RequestFacts, Ticket
from tokenwage.gateway.writer import GroupCommitWriter
from tokenwage.services import books
from tokenwage.services.importing import import_usage
from tokenwage.services.pricing import pricer_for
from tokenwage.storage import migrate
from tokenwage.storage.db import Database
from tokenwage.storage.keys_repo import KeysRepo
from tokenwage.storage.org_repo import OrgRepo, person_account, pool_account

log = logging.getLogger("tokenwage.gateway.meter")
KEY_TTL_S = 5.0
PAYER_TTL_S = 30.0
SWEEP_EVERY_S = 15.0
LEASES_EVERY_S = 1.0
ALLOWANCES_EVERY_S = 30.0
PRICING_EVERY_S = 60.0
FOLDED_EVERY_S = 0.02
FLUSH_TIMEOUT_S = 30.0


class _PayerInfo:
    __slots__ = ("payer", "email", "allowance_text", "next_refill", "tz")

    def __init__(
        self, payer: Payer, email: str, allowance_text: str, next_refill: datetime | None, tz: str
    ) -> None:
        self.payer, self.email, self.allowance_text = payer, email, allowance_text
        self.next_refill, self.tz = next_refill, tz


class DbMeter:
    def __init__(self, database_url: str, config: GatewayConfig) -> None:
        self.config = config
        self.db = Database(database_url, sqlite_synchronous=config.sqlite_synchronous)
        migrate.require_current(self.db)
        self.hold_db = Database(database_url, sqlite_synchronous="NORMAL")
        self.holds = HoldStore(self.hold_db)
        self._ttl = timedelta(seconds=config.holds.ttl_seconds)
        self.leases = Leases(self.holds, min(self._ttl, LEASE_TTL))
        # SQLite without fsync: settlements go to the journal, the folder books them
        # (tokenwage.gateway.journal); else the group-commit writer books them itself
        self._journal_dir = sqlite_journal_dir(self.db) if config.journaled else None
        self.journal: JournalSettler | None = None
        self.database_url = database_url
        self.writer = GroupCommitWriter(self.db, checkpoint=self._journal_dir is None)
        self._keys: dict[str, tuple[KeyInfo | None, float]] = {}
        self._payers: dict[int, tuple[_PayerInfo, float]] = {}
        with self.db.begin() as conn:
            self.pricer: Pricer = pricer_for(conn)
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        self.writer.start()
        jobs: list[tuple[float, Callable[[], Awaitable[None]]]] = [
            (SWEEP_EVERY_S, self._sweep),
            (LEASES_EVERY_S, self._maintain_leases),
            (ALLOWANCES_EVERY_S, self._run_allowances),
            (PRICING_EVERY_S, self._reload_pricing),
        ]
        if self._journal_dir is not None:
            self.journal = JournalSettler(self.database_url, self._journal_dir, self.leases)
            jobs.append((FOLDED_EVERY_S, self._booked))
        for every, job in jobs:
            self._tasks.append(asyncio.create_task(self._every(every, job)))
        await self._run_allowances()

    async def aclose(self) -> None:
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t
        booked = True
        if self.journal is not None:
            booked = await self.journal.close(FLUSH_TIMEOUT_S)
            if not booked:
                log.warning("stopping with settlements not yet in the ledger")
        await asyncio.to_thread(self.writer.stop)
        if booked:  # else the lease rows keep covering them until they expire (30 s)
            self.leases.close(datetime.now(UTC))
        self.holds.close()
        self.db.dispose()
        self.hold_db.dispose()

    # -- the contract -----------------------------------------------------------------
    async def authenticate(self, raw_key: str | None) -> KeyInfo:
        if not raw_key:
            raise Unauthenticated(
                "no API key: set your tokenwage key as the provider API key "
                "(Authorization: Bearer or x-api-key)"
            )
        digest = keyfmt.digest(raw_key)
        cached = self._keys.get(digest)
        if cached is None or cached[1] < time.monotonic():
            with self.db.engine.connect() as conn:
                info = KeysRepo(conn).by_digest(digest)
                conn.rollback()
            cached = (info, time.monotonic() + KEY_TTL_S)
            if len(self._keys) > 100_000:
                self._keys.clear()
            self._keys[digest] = cached
        info = cached[0]
        if info is None:
            raise Unauthenticated("invalid API key: this is not a tokenwage key that exists")
        now = datetime.now(UTC)
        if not info.usable_at(now):
            what = "revoked" if info.revoked_utc else "expired"
            raise Unauthenticated(f"API key {info.prefix} was {what}; create a new one")
        return info

    def allowed_models(self, key: KeyInfo, models: list[str]) -> list[str]:
        return [m for m in models if key.allows(m)]

    async def authorize(self, raw_key: str | None, facts: RequestFacts) -> Ticket:
        key = await self.authenticate(raw_key)
        if not key.allows(facts.model):
            allowed = ", ".join(key.allowed_models or ())
            raise ModelNotAllowed(
                f"key {key.prefix} may not use {facts.model!r} (allowed: {allowed})"
            )
        info = self._payer(key.person_id)
        now = datetime.now(UTC)
        model = facts.model
        amount = self._worst_case(facts, model, now)
        target = self.config.downgrade.target(model)
        if target and self.holds.funds(info.payer, now).spendable < self.config.downgrade.below:
            model, amount = target, self._worst_case(facts, target, now)
        lease = None
        try:
            if info.payer.pool_key is None:
                lease = self.leases.take(info.payer, facts.request_id, amount, now)
            else:  # a team pool: the own/pool split is kept exact per request
                self.holds.place(info.payer, facts.request_id, amount, now, self._ttl)
        except AllowanceExhausted as exc:
            raise self._exhausted(info, exc) from None
        started = time.monotonic()
        return Ticket(facts, key, key.person_id, model, amount.nanousd, started, lease)

    async def settle(
        self,
        ticket: Ticket,
        usage: TokenUsage | None,
        *,
        status: int,
        estimated: bool = False,
        upstream_request_id: str | None = None,
    ) -> Money:
        latency_ms = int((time.monotonic() - ticket.started_monotonic) * 1000)
        used = datetime.now(UTC) - timedelta(milliseconds=latency_ms)
        priced = (
            self.pricer.price(usage, ticket.facts.provider, ticket.model, used)
            if usage is not None
            else None
        )
        settlement = Settlement(
            ticket=ticket,
            payer=self._payer(ticket.person_id).payer,
            usage=usage,
            priced=priced,
            status=status,
            estimated=estimated,
            latency_ms=latency_ms,
            used_utc=used,
            upstream_request_id=upstream_request_id,
        )
        if self.journal is not None:
            return self.journal.settle(settlement)
        on_done = None if ticket.lease is None else partial(self._settled, ticket)
        return await self.writer.settle(settlement, on_done)

    def journal_status(self) -> tuple[int, int] | None:
        return None if self.journal is None else self.journal.status()

    async def flush(self, timeout_s: float = FLUSH_TIMEOUT_S) -> None:
        """Wait until everything this meter settled is in the ledger (shutdown, tests)."""
        if self.journal is not None:
            await self.journal.flush(timeout_s)

    async def _booked(self) -> None:
        if self.journal is not None:
            self.journal.apply_booked()

    def _settled(self, ticket: Ticket, outcome: Money | Exception) -> None:
        """Return a settled request's hold to its lease, which the writer shrank by what it
        used (nothing if its transaction failed)."""
        used = 0 if isinstance(outcome, Exception) else hold_used(ticket, outcome)
        self.leases.give_back(ticket.facts.request_id, used)

    async def cancel(self, ticket: Ticket, *, status: int) -> None:
        if ticket.lease is not None:
            self.leases.give_back(ticket.facts.request_id, 0)
        else:
            self.holds.release(ticket.facts.request_id)

    async def book_imported(self, key: KeyInfo, records: list[ImportedUsage]) -> int:
        owner = Identity(IdentityKind.EMAIL, self._payer(key.person_id).email)
        mine = [replace(r, identities=(*r.identities, owner)) for r in records]
        mode, now, pricer = ChargeMode(self.config.reported_mode), datetime.now(UTC), self.pricer
        summary = await self.writer.call(
            lambda conn: import_usage(conn, mine, mode=mode, pricer=pricer, now=now)
        )
        return summary.new

    # -- helpers ----------------------------------------------------------------------
    def _worst_case(self, facts: RequestFacts, model: str, now: datetime) -> Money:
        policy = self.config.holds
        out = facts.max_output_tokens or policy.default_max_output_tokens
        if policy.max_hold_output_tokens is not None:
            out = min(out, policy.max_hold_output_tokens)
        return self.pricer.worst_case_cost(
            facts.provider,
            model,
            now,
            prompt_tokens_estimate=facts.prompt_tokens_estimate,
            max_output_tokens=out,
        ).cost

    def _payer(self, person_id: int) -> _PayerInfo:
        cached = self._payers.get(person_id)
        if cached is not None and cached[1] > time.monotonic():
            return cached[0]
        now = datetime.now(UTC)
        with self.db.engine.connect() as conn:
            repo = OrgRepo(conn)
            person = repo.get_person_by_id(person_id)
            tz = repo.get_org().timezone
            packages = repo.packages_for(person_id)
            pools = {p.team_slug for p in repo.pools()}
            conn.rollback()
        allowance = allowance_in_force(packages, local_date(now, tz))
        has_pool = person.team_slug is not None and person.team_slug in pools
        payer = Payer(
            person_id=person_id,
            account_key=person_account(person_id),
            pool_key=pool_account(person.team_slug or "") if has_pool else None,
            cap=allowance.cap if allowance else CapMode.HARD,
            overdraft=allowance.overdraft if allowance else Money(0),
        )
        text = f"{allowance.amount.readable()} per {allowance.period}" if allowance else "none"
        info = _PayerInfo(payer, person.email, text, next_refill(packages, tz, now), tz)
        self._payers[person_id] = (info, time.monotonic() + PAYER_TTL_S)
        return info

    def _exhausted(self, info: _PayerInfo, exc: AllowanceExhausted) -> AllowanceExhausted:
        refill = "no refill is scheduled"
        if info.next_refill is not None:
            local = info.next_refill.astimezone(zone(info.tz))
            refill = f"it next refills {local:%Y-%m-%d %H:%M} {info.tz}"
        available = Money(exc.available_nanousd)
        needed = Money(exc.needed_nanousd)
        message = (
            f"tokenwage: token allowance exhausted for {info.email}. "
            f"Available {available.readable()} (balance, team pool and overdraft, less requests in "
            f"flight); this request may cost up to {needed.readable()}. Allowance: "
            f"{info.allowance_text}; {refill}. Ask your manager for a grant if you need more."
        )
        return AllowanceExhausted(
            message,
            available_nanousd=exc.available_nanousd,
            needed_nanousd=exc.needed_nanousd,
            next_refill_utc=info.next_refill,
        )

    async def _every(self, seconds: float, job: Callable[[], Awaitable[None]]) -> None:
        while True:
            await asyncio.sleep(seconds)
            try:
                await job()
            except Exception:
                log.exception("background job %s failed", getattr(job, "__name__", job))

    async def _sweep(self) -> None:
        released = await asyncio.to_thread(self.holds.sweep, datetime.now(UTC))
        if released:
            log.info("released %d expired holds", released)

    async def _maintain_leases(self) -> None:
        if self.journal is not None:
            self.journal.folder.ensure()  # serve's folder process died: fold here from now on
        self.leases.maintain(datetime.now(UTC))

    async def _run_allowances(self) -> None:
        result = await self.writer.call(lambda conn: books.run_allowances(conn, datetime.now(UTC)))
        if result.entries:
            self._payers.clear()  # refills change who can pay
            log.info("allowance run: %d entries", result.entries)

    async def _reload_pricing(self) -> None:
        self.pricer = await self.writer.call(pricer_for)


async def open_meter(database_url: str, config: GatewayConfig) -> DbMeter:
    meter = DbMeter(database_url, config)
    await meter.start()
    return meter
