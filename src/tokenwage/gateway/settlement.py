"""A finished request on its way to the ledger, and what both dialects' batch writers share."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tokenwage.core.charges import usage_drafts
from tokenwage.core.ledger import EntryDraft
from tokenwage.core.money import Money
from tokenwage.core.pricing import PricedUsage
from tokenwage.core.spending import Funds
from tokenwage.core.usage import TokenUsage
from tokenwage.gateway.holds import Payer
from tokenwage.gateway.pacing import no_pause
from tokenwage.gateway.ticket import Ticket


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


TOUCH_EVERY_S = 1.0
_ZERO = Money(0)


class KeyTouches:
    """Which keys' ``last_used_utc`` a batch writer updates: at most once per key per
    ``TOUCH_EVERY_S`` (a page written per batch, for a date kept to the second)."""

    def __init__(self) -> None:
        self._due: dict[int, float] = {}  # key id -> when its last_used_utc is due again

    def due(self, batch: list[Settlement]) -> list[int]:
        clock = time.monotonic()
        due = []
        for key_id in {s.ticket.key.id for s in batch}:
            if self._due.get(key_id, 0.0) <= clock:
                self._due[key_id] = clock + TOUCH_EVERY_S
                due.append(key_id)
        if len(self._due) > 100_000:
            self._due.clear()
        return sorted(due)


def leases_consumed(batch: list[Settlement], charged: list[Money]) -> dict[str, int]:
    """How much each lease in ``batch`` shrinks: what its newly charged requests used of
    their holds (a request settled before charges nothing and shrinks nothing)."""
    consumed: dict[str, int] = {}
    for s, amount in zip(batch, charged, strict=True):
        lease = s.ticket.lease
        if lease is not None and amount:
            consumed[lease] = consumed.get(lease, 0) + hold_used(s.ticket, amount)
    return consumed


def hold_used(ticket: Ticket, charged: Money) -> int:
    """What a settled request used of its hold: what it was charged, at most the hold. The
    writer shrinks the lease row by it and the worker lowers its own figure by the same."""
    return min(charged.nanousd, ticket.hold_nanousd)


def book(
    batch: list[Settlement],
    done: set[str],
    now: datetime,
    pool_funds: Callable[[Payer], Funds],
    pace: Callable[[], None] = no_pause,
) -> tuple[list[Money], list[EntryDraft], list[dict[str, Any]]]:
    """(what each settlement charges, the ledger drafts, the usage records) of ``batch``.

    Requests in ``done`` (already recorded) are skipped; an upstream error without usage is
    recorded and never charged. ``pool_funds`` reads the funds of a person with a team pool
    (the split between own account and pool depends on them), once per person per batch.
    ``pace`` is called once per settlement (the folder's :class:`~tokenwage.gateway.pacing.Pacer`).
    """
    charged: list[Money] = []
    funds: dict[int, Funds] = {}
    drafts: list[EntryDraft] = []
    records: list[dict[str, Any]] = []
    for s in batch:
        pace()
        facts = s.ticket.facts
        rid = facts.request_id
        if rid in done:
            charged.append(_ZERO)
            continue
        done.add(rid)
        records.append(usage_record(s, now))
        usage, priced, payer = s.usage, s.priced, s.payer
        if usage is None or priced is None:
            charged.append(_ZERO)
            continue
        f = funds.get(payer.person_id)
        if f is None:
            f = pool_funds(payer) if payer.pool_key else _own_funds(payer)
        new = usage_drafts(
            priced,
            usage,
            f,
            person_id=payer.person_id,
            own_account=payer.account_key,
            pool_account=payer.pool_key,
            provider=facts.provider,
            model=s.ticket.model,
            used_utc=s.used_utc,
            source="gateway",
            request_id=rid,
            extra_meta={"estimated": True} if s.estimated else None,
        )
        drafts += new
        # without a pool everything is booked to the own account whatever the funds
        funds[payer.person_id] = _funds_after(f, new, payer) if payer.pool_key else f
        charged.append(priced.cost)
    return charged, drafts, records


def _own_funds(payer: Payer) -> Funds:
    """Funds for splitting the charge of a person without a team pool: everything goes to
    their own account whatever its balance, so no balance needs reading."""
    return Funds(own_balance=Money(0), overdraft=payer.overdraft, cap=payer.cap)


def _funds_after(f: Funds, drafts: list[EntryDraft], payer: Payer) -> Funds:
    """``f`` after booking ``drafts`` (for the next request of the same person in a batch)."""
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


def usage_record(s: Settlement, now: datetime) -> dict[str, Any]:
    """The usage record row of one settlement."""
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
