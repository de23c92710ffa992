"""Leases: a worker process sets money aside for a person once, then holds in memory.

A per-request hold row costs a write transaction before every request, and on SQLite every
worker queues on the one write lock for it. Instead, each worker keeps one *lease* per
person it serves: a row in ``holds`` (id ``lease:<worker>:<person>``) reserving money for
that worker. A request whose worst case fits in the lease's free part is held in memory
(a few hundred nanoseconds, no I/O); otherwise the lease is grown in one transaction that
checks, against everything else held, that the worker's whole reservation (its requests in
flight plus a little room for the next ones) fits in what the person may spend.

The invariant that keeps two workers from ever overspending together: the row of a lease
always covers the worst cases of its worker's requests in flight plus its free part.

* Growing sets the row in the same transaction as the check (``HoldStore.set_lease``).
* When a request settles, the writer shrinks the row by what it used (its cost, at most its
  hold) in the transaction that debits the ledger; the worker then returns the request's
  hold to the free part and lowers its own figure by the same amount. Until it does, the
  row is lower but so is the worker's free part: still covered. With the settlement
  journal (SQLite) the writer is the folder, a few milliseconds later: when the request is
  journaled the worker frees only the unused part of its hold (``settling``); what it used
  stays counted until the folder has committed, and is given back then. A renewal in
  between rewrites the row with the worker's figure, which still includes it: the row can
  be too high for a moment, never too low.
* Idle leases are handed back (row deleted) after ``IDLE_S``; live ones are rewritten with
  a fresh expiry well before the sweeper would release them.

How much room a lease keeps: up to ``AHEAD`` worst cases of the request that grew it, and
never more than ``1/SHARE`` of what the person may spend, so small budgets fall back to
exact per-request reservations and another worker is never starved of more than that share.
Only people without a team pool get leases (the own/pool split of a pool is kept exact by
per-request hold rows). The state is guarded by a lock held across the database call, so
the in-memory figures and the row change in the same order.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta

from tokenwage.core.errors import AllowanceExhausted
from tokenwage.core.money import Money
from tokenwage.core.package import CapMode
from tokenwage.core.spending import Funds
from tokenwage.gateway.holds import HoldStore, Payer

AHEAD = 256
"""A grown lease keeps room for this many more requests like the one that grew it (each
grow is a write transaction on the event loop, which may wait for the folder's)..."""
SHARE = 16
"""... but never more than this fraction of what the person may spend."""
IDLE_S = 1.0
"""A lease with nothing in flight for this long is handed back."""
TTL = timedelta(seconds=30)
"""A lease row expires this long after its last renewal (a live worker renews it every
quarter of that), so the money of a worker that crashed is free again within about 30 s."""


class _Lease:
    __slots__ = ("payer", "granted", "inflight", "expires_monotonic", "idle_since")

    def __init__(self, payer: Payer) -> None:
        self.payer = payer
        self.granted = 0  # what this worker believes its row reserves (never more than it does)
        self.inflight = 0  # the holds of its requests in flight
        self.expires_monotonic = 0.0
        self.idle_since = 0.0


class Leases:
    def __init__(self, holds: HoldStore, ttl: timedelta = TTL) -> None:
        self._holds = holds
        self._ttl = ttl
        self._worker = uuid.uuid4().hex[:12]
        self._lock = threading.Lock()
        self._leases: dict[int, _Lease] = {}
        self._open: dict[str, tuple[int, int]] = {}  # request id -> (person id, hold)

    def lease_id(self, person_id: int) -> str:
        return f"lease:{self._worker}:{person_id}"

    def take(self, payer: Payer, request_id: str, amount: Money, now: datetime) -> str:
        """Hold ``amount`` for ``request_id`` in this worker's lease of ``payer``; returns the
        lease id. Raises ``AllowanceExhausted`` (hard cap) when it does not fit."""
        need = amount.nanousd
        with self._lock:
            lease = self._leases.get(payer.person_id)
            if lease is None:
                lease = self._leases[payer.person_id] = _Lease(payer)
            lease.payer = payer  # the allowance in force may have changed (cap, overdraft)
            if lease.granted - lease.inflight < need or time.monotonic() > lease.expires_monotonic:
                self._grow(lease, need, now)
            lease.inflight += need
            self._open[request_id] = (payer.person_id, need)
        return self.lease_id(payer.person_id)

    def _grow(self, lease: _Lease, need: int, now: datetime) -> None:
        inflight = lease.inflight

        def decide(funds: Funds) -> int:
            spendable = funds.spendable.nanousd  # everything else held is already deducted
            wanted = inflight + need
            if wanted > spendable:
                if funds.cap is CapMode.HARD:
                    raise AllowanceExhausted(
                        "not enough allowance",
                        available_nanousd=max(spendable - inflight, 0),
                        needed_nanousd=need,
                    )
                return wanted  # soft cap: allowed, flagged by the overspend
            room = min(need * AHEAD, spendable // SHARE)
            return min(max(wanted, inflight + room), spendable)

        lease_id = self.lease_id(lease.payer.person_id)
        lease.granted = self._holds.set_lease(lease.payer, lease_id, decide, now, self._ttl)
        lease.expires_monotonic = time.monotonic() + self._ttl.total_seconds() / 2

    def settling(self, request_id: str, consumed_nanousd: int) -> None:
        """The request is journaled, not yet folded into the ledger: the part of its hold
        it did not use is free again now; what it used stays held until :meth:`give_back`
        (the folder shrinks the row by it in the transaction that debits the ledger)."""
        with self._lock:
            opened = self._open.get(request_id)
            if opened is None:
                return
            person_id, hold = opened
            keep = min(max(consumed_nanousd, 0), hold)
            lease = self._leases.get(person_id)
            if lease is not None:
                lease.inflight -= hold - keep
            self._open[request_id] = (person_id, keep)

    def give_back(self, request_id: str, consumed_nanousd: int) -> None:
        """The request is settled (its row shrunk by ``consumed_nanousd``) or cancelled (0).
        Only the first call per request counts."""
        with self._lock:
            opened = self._open.pop(request_id, None)
            if opened is None:
                return
            lease = self._leases.get(opened[0])
            if lease is None:  # a hold of nothing, whose idle lease was handed back
                return
            lease.inflight -= opened[1]
            lease.granted -= consumed_nanousd
            if not lease.inflight:
                lease.idle_since = time.monotonic()

    def maintain(self, now: datetime) -> None:
        """Hand back idle leases; renew live ones before they could expire (run each second)."""
        with self._lock:
            clock = time.monotonic()
            for person_id, lease in list(self._leases.items()):
                if not lease.inflight and clock - lease.idle_since >= IDLE_S:
                    self._holds.set_lease(
                        lease.payer, self.lease_id(person_id), _fixed(0), now, self._ttl
                    )
                    del self._leases[person_id]
                elif clock > lease.expires_monotonic - self._ttl.total_seconds() / 4:
                    lease.granted = self._holds.set_lease(
                        lease.payer, self.lease_id(person_id), _fixed(lease.granted), now, self._ttl
                    )
                    lease.expires_monotonic = clock + self._ttl.total_seconds() / 2

    def close(self, now: datetime) -> None:
        """Hand every lease back (the worker stops; its requests are settled)."""
        with self._lock:
            for person_id, lease in self._leases.items():
                self._holds.set_lease(
                    lease.payer, self.lease_id(person_id), _fixed(0), now, self._ttl
                )
            self._leases.clear()


def _fixed(amount: int) -> Callable[[Funds], int]:
    """A lease decision that sets the row to ``amount`` whatever the funds."""
    return lambda _: amount
