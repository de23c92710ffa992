"""Lots: which credit each part of a balance came from, and when it lapses.

An account's balance is the sum of its entries. Lots explain that sum: every **positive**
entry (a grant, a positive adjustment, a positive reversal) opens a lot holding its amount,
its ``expires_utc`` and whether it is an allowance (``meta.source == "allowance"``). Every
**negative** entry takes money out of the lots:

* ``usage`` and negative ``adjustment`` entries take from the lot that expires soonest,
  lots that never expire last, ties by ``seq`` (oldest first);
* an ``expiry`` takes from exactly the lot named in ``meta.lot_seq``, never another one:
  if that lot holds less, the rest is debt (an expiry naming no known lot spends like
  usage). This is the only way debt and money left in lots can coexist;
* a negative ``reversal`` (undoing a grant) takes from the reversed lot
  (``meta.reverses_seq``) first, then like usage;
* ``rollover`` entries are notes (amount 0) and change nothing.

Whatever the lots cannot cover becomes **debt** (a negative balance, e.g. an overdraft). A
later positive entry repays debt first; only the rest becomes its lot's remaining amount.

Entries are processed in ``seq`` order (the order the ledger recorded them), so at every
point ``sum(lot.remaining_nanousd) - debt_nanousd == balance_nanousd == sum of amounts``;
no lot's remaining is ever negative or above its amount. Zero-remaining lots stay in
:attr:`LotState.lots` so history (what a lot was, how much is left) is always available.

:func:`lot_state` folds a chain at once; :class:`LotBook` does it entry by entry, and
:class:`LotReplay` gives the states at a series of moments (the allowance planner's view)
without refolding the whole chain each time.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Protocol

from tokenwage.core.errors import InvalidInput
from tokenwage.core.ledger import EntryKind, utc

ALLOWANCE_SOURCE = "allowance"


class Posting(Protocol):
    """What lot accounting reads from an entry. :class:`~tokenwage.core.ledger.Entry` has
    it; the allowance planner also passes drafts carrying the seq they will be given."""

    @property
    def seq(self) -> int: ...
    @property
    def kind(self) -> EntryKind: ...
    @property
    def amount_nanousd(self) -> int: ...
    @property
    def effective_utc(self) -> datetime: ...
    @property
    def expires_utc(self) -> datetime | None: ...
    @property
    def ref(self) -> str: ...
    @property
    def meta(self) -> Mapping[str, Any]: ...


@dataclass(frozen=True, slots=True)
class Lot:
    """The credit opened by one positive entry, and how much of it is left."""

    seq: int
    ref: str
    amount_nanousd: (
        int  # the part of the entry that opened the lot (after repaying debt: see below)
    )
    remaining_nanousd: int
    expires_utc: datetime | None
    is_allowance: bool
    effective_utc: datetime
    repaid_debt_nanousd: int = 0  # the entry's amount = amount_nanousd + repaid_debt_nanousd

    @property
    def open(self) -> bool:
        return self.remaining_nanousd > 0


@dataclass(frozen=True, slots=True)
class LotState:
    """An account's lots (in ``seq`` order), its debt and its balance."""

    lots: tuple[Lot, ...]
    debt_nanousd: int
    balance_nanousd: int

    def lot(self, seq: int) -> Lot | None:
        for lot in self.lots:
            if lot.seq == seq:
                return lot
        return None

    @property
    def open_lots(self) -> tuple[Lot, ...]:
        return tuple(lot for lot in self.lots if lot.open)

    @property
    def allowance_remaining_nanousd(self) -> int:
        return sum(lot.remaining_nanousd for lot in self.lots if lot.is_allowance)


@dataclass(slots=True)
class _OpenLot:
    seq: int
    ref: str
    amount: int
    remaining: int
    expires_utc: datetime | None
    is_allowance: bool
    effective_utc: datetime
    repaid: int

    def spending_order(self) -> tuple[bool, datetime, int]:
        expires = self.expires_utc
        return (expires is None, expires or self.effective_utc, self.seq)

    def frozen(self) -> Lot:
        return Lot(
            seq=self.seq,
            ref=self.ref,
            amount_nanousd=self.amount,
            remaining_nanousd=self.remaining,
            expires_utc=self.expires_utc,
            is_allowance=self.is_allowance,
            effective_utc=self.effective_utc,
            repaid_debt_nanousd=self.repaid,
        )


class LotBook:
    """Lot accounting one entry at a time, in ``seq`` order; :func:`lot_state` folds it.

    :meth:`copy` forks a book so a caller can add a few more entries to a shared base.
    """

    def __init__(self) -> None:
        self._lots: dict[int, _OpenLot] = {}  # every lot, in seq order
        self._open: dict[int, _OpenLot] = {}  # the lots with money left
        self.debt_nanousd = 0
        self.balance_nanousd = 0
        self.last_seq = 0

    def copy(self) -> LotBook:
        twin = LotBook()
        twin._lots = dict(self._lots)  # spent lots never change again: share them
        for seq, lot in self._open.items():
            twin._lots[seq] = twin._open[seq] = replace(lot)
        twin.debt_nanousd, twin.balance_nanousd = self.debt_nanousd, self.balance_nanousd
        twin.last_seq = self.last_seq
        return twin

    def state(self) -> LotState:
        return LotState(
            lots=tuple(lot.frozen() for lot in self._lots.values()),
            debt_nanousd=self.debt_nanousd,
            balance_nanousd=self.balance_nanousd,
        )

    def post(self, entry: Posting) -> None:
        if entry.seq <= self.last_seq:
            what = "share" if entry.seq == self.last_seq else "are out of order at"
            raise InvalidInput(f"two entries {what} seq {entry.seq}; pass one account's chain")
        self.last_seq = entry.seq
        amount = entry.amount_nanousd
        self.balance_nanousd += amount
        if amount > 0:
            repaid = min(self.debt_nanousd, amount)
            self.debt_nanousd -= repaid
            lot = _OpenLot(
                seq=entry.seq,
                ref=entry.ref,
                amount=amount,
                remaining=amount - repaid,
                expires_utc=entry.expires_utc,
                is_allowance=entry.meta.get("source") == ALLOWANCE_SOURCE,
                effective_utc=entry.effective_utc,
                repaid=repaid,
            )
            self._lots[entry.seq] = lot
            if lot.remaining:
                self._open[entry.seq] = lot
        elif amount < 0:
            self.debt_nanousd += self._spend(entry, -amount)

    def _spend(self, entry: Posting, wanted: int) -> int:
        """Take ``wanted`` by the entry's rule (module docstring); return the shortfall."""
        key = {EntryKind.EXPIRY: "lot_seq", EntryKind.REVERSAL: "reverses_seq"}.get(entry.kind)
        named = entry.meta.get(key) if key else None
        if isinstance(named, int) and not isinstance(named, bool) and named in self._lots:
            lot = self._open.get(named)
            if lot is not None:
                wanted -= self._take(lot, wanted)
            if entry.kind is EntryKind.EXPIRY:
                return wanted  # an expiry never touches another lot
        for lot in sorted(self._open.values(), key=_OpenLot.spending_order):
            if not wanted:
                break
            wanted -= self._take(lot, wanted)
        return wanted

    def _take(self, lot: _OpenLot, wanted: int) -> int:
        taken = min(lot.remaining, wanted)
        lot.remaining -= taken
        if not lot.remaining:
            del self._open[lot.seq]
        return taken


def lot_state(entries: Iterable[Posting], as_of: datetime | None = None) -> LotState:
    """The lots, debt and balance after ``entries`` (one account's chain).

    With ``as_of``, only entries effective strictly before it count. Entries are processed
    in ``seq`` order whatever order they are given in; two entries with one ``seq`` are
    refused.
    """
    cutoff = utc(as_of) if as_of is not None else None
    book = LotBook()
    for entry in sorted(entries, key=lambda e: e.seq):
        if cutoff is None or entry.effective_utc < cutoff:
            book.post(entry)
    return book.state()


Moment = tuple[datetime, int]  # an instant, and a rank among things happening at it


class LotReplay:
    """Lot states just before moments that only move forward, without refolding everything.

    Each entry happens at ``when(entry)``. The state before a moment is :func:`lot_state`
    of the entries that happened earlier, in ``seq`` order. Entries forming an unbroken
    ``seq`` prefix are folded once into a shared book; the few that happened early but
    were recorded after one that has not happened yet are replayed on a copy each time.
    """

    def __init__(self, when: Callable[[Posting], Moment]) -> None:
        self._when = when
        self._entries: list[Posting] = []
        self._pending: list[tuple[Moment, int]] = []  # not happened yet, by moment
        self._happened: set[int] = set()  # happened, not yet folded into the base
        self._base = LotBook()
        self._folded = 0
        self._moment: Moment | None = None

    def add(self, entry: Posting) -> None:
        """Add the next entry of the chain (entries come in ``seq`` order)."""
        index, moment = len(self._entries), self._when(entry)
        self._entries.append(entry)
        bisect.insort(self._pending, (moment, index))

    def before(self, moment: Moment) -> LotState:
        if self._moment is not None and moment < self._moment:
            raise ValueError(f"moments only move forward: {moment} is before {self._moment}")
        self._moment = moment
        cut = bisect.bisect_left(self._pending, (moment, -1))
        self._happened.update(index for _, index in self._pending[:cut])
        del self._pending[:cut]
        while self._folded in self._happened:
            self._happened.remove(self._folded)
            self._base.post(self._entries[self._folded])
            self._folded += 1
        if not self._happened:
            return self._base.state()
        book = self._base.copy()
        for index in sorted(self._happened):
            book.post(self._entries[index])
        return book.state()
