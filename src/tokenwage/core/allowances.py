"""Allowance runs: the grants, expiries and rollovers an account is due, as ledger drafts.

:func:`plan_allowance_run` replays time from ``since_utc`` (exclusive; ``None`` = from the
first package on) up to ``now_utc`` (inclusive) and returns the drafts the store should
append, in order. It is idempotent: every draft has a deterministic ``ref``, and a ref that
is already in the ledger is never planned again. So it can be called twice, with an
overlapping ``since``, or once after ten days of downtime, and the ledger ends up the same
as if it had run every day (as long as no other entries arrive in between).

The rules, at each instant, in this order:

1. **Lot expiry.** A lot (see :mod:`tokenwage.core.lots`) whose ``expires_utc`` has come
   and that still has money lapses: ``expiry`` of ``-remaining``, effective at
   ``expires_utc``, ref ``expiry:{account}:{lot_seq}``, meta ``lot_seq`` and ``lot_ref``.
2. **Period end** (capped and unlimited rollover only). With ``capped:N``, allowance money
   above ``N x amount`` lapses, oldest lot first: one ``expiry`` per lot, ref
   ``rollover-cap:{account}:{period_end}:{lot_seq}``. Then a ``rollover`` note (amount 0,
   meta ``carried_nanousd``, ref ``rollover:{account}:{period_end}``) when anything is
   carried.
3. **Period start.** When the package active on that local date (org time zone) allows a
   non-zero amount and the person is employed that day: a ``grant`` of the amount, ref
   ``allowance:{account}:{period_start}``, meta ``source="allowance"``, ``period``,
   ``period_start``, ``period_end``. It expires at the period end with no rollover, at
   ``expiry_days`` local days after the start when set (the earlier of the two with no
   rollover), else never.

Each decision reads the lots as they stood at that instant: the entries and drafts that
happened before it (ordered by the rules above at a tie), processed in ``seq`` order
(:class:`~tokenwage.core.lots.LotReplay`). Drafts get provisional seqs continuing the
chain, matching what the store assigns when it appends them in order.

Usage recorded while the planner was down was taken from the lots that existed when it was
recorded. If it took money from a lot that should already have lapsed, the expiry planned
later exceeds what is left in that lot; the shortfall becomes debt that the next grant
repays, so the grant pays for the usage as it would have. If it took money from a lot that
does not lapse (a one-off grant), that lot stays spent and the allowance lapses in full, so
catching up leaves less than running on time: run the planner before charging when a
refill is due (``next_refill(...) <= now``).

Periods (:mod:`tokenwage.core.periods`) are not prorated: a package starting mid-month
first pays on the next 1st. Packages for one person must not overlap (:class:`Conflict`).
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import partial
from itertools import count
from typing import Any

from tokenwage.core.errors import Conflict, InvalidInput
from tokenwage.core.ledger import Entry, EntryDraft, EntryKind, iso, utc
from tokenwage.core.lots import (
    ALLOWANCE_SOURCE,
    LotReplay,
    LotState,
    Moment,
    Posting,
    lot_state,
)
from tokenwage.core.money import Money
from tokenwage.core.package import Package, RolloverKind, TokenAllowance
from tokenwage.core.periods import local_date, local_midnight, next_start, period_end, start_days

ONE_OFF_SOURCE = "one-off"
POOL_SOURCE = "pool"

# The order of things happening at one instant.
_EXPIRE, _PERIOD_END, _GRANT = 0, 1, 2
# How far before ``since`` a period can start and still end after it (a month, with slack).
_LONGEST_PERIOD = timedelta(days=35)


def plan_allowance_run(
    *,
    account: str,
    packages: Sequence[Package],
    employed_from: date | None,
    employed_to: date | None,
    tz: str,
    entries: Sequence[Entry],
    since_utc: datetime | None,
    now_utc: datetime,
) -> list[EntryDraft]:
    """The drafts due on ``account`` between ``since_utc`` and ``now_utc`` (module rules).

    ``entries`` is the account's whole chain (seq 1, 2, ...). Lots that expired at or before
    ``since_utc`` are looked at again only while they still hold money (overdue expiries).
    """
    schedule = _checked_packages(packages)
    if employed_from and employed_to and employed_to < employed_from:
        raise InvalidInput(f"employment ends {employed_to} before it starts {employed_from}")
    now = utc(now_utc)
    since = utc(since_utc) if since_utc is not None else None
    planner = _Planner(account, entries, now)
    if schedule:
        first = schedule[0].effective_from
        if since is not None:
            first = max(first, local_date(since - _LONGEST_PERIOD, tz))
        for period in _periods(
            schedule, employed_from, employed_to, tz, first, local_date(now, tz)
        ):
            if since is None or period.start_utc > since:
                planner.at(period.start_utc, _GRANT, 0, partial(planner.grant, period))
            if (
                period.allowance.rollover.kind is not RolloverKind.NONE
                and period.end_utc <= now
                and (since is None or period.end_utc > since)
            ):
                planner.at(period.end_utc, _PERIOD_END, 0, partial(planner.period_end, period))
    planner.expire_recorded_lots(since)
    return planner.run()


def plan_expiries(
    account: str, entries: Sequence[Entry], now_utc: datetime, *, since_utc: datetime | None = None
) -> list[EntryDraft]:
    """The periodic sweep: expiry drafts for lots whose ``expires_utc`` is at or before now.

    Use it for accounts the allowance run does not cover (pools, one-off grants). On a
    person's account run :func:`plan_allowance_run` first: it applies rollover caps, and an
    expiry planned ahead of a cap it has not applied yet would lapse the same money twice.
    ``since_utc`` (the last sweep) skips lots that expired before it and hold nothing now.
    """
    planner = _Planner(account, entries, utc(now_utc))
    planner.expire_recorded_lots(utc(since_utc) if since_utc is not None else None)
    return planner.run()


def one_off_grant(
    account: str,
    amount: Money,
    reason: str,
    effective_utc: datetime,
    ref: str,
    expires_utc: datetime | None = None,
) -> EntryDraft:
    """An award outside the allowance (or a pool top-up on a ``pool:`` account).

    It never expires with a period: only at ``expires_utc`` when given. Its meta ``source``
    is ``"pool"`` on a pool account and ``"one-off"`` otherwise.
    """
    if amount.nanousd <= 0:
        raise InvalidInput(f"a one-off grant must be more than $0, got {amount}")
    if not reason.strip():
        raise InvalidInput("a one-off grant needs a reason (it is shown on the statement)")
    effective = utc(effective_utc)
    expires = utc(expires_utc) if expires_utc is not None else None
    if expires is not None and expires <= effective:
        raise InvalidInput(
            f"grant expires {iso(expires)}, not after it takes effect {iso(effective)}"
        )
    source = POOL_SOURCE if account.startswith("pool:") else ONE_OFF_SOURCE
    return EntryDraft(
        account=account,
        kind=EntryKind.GRANT,
        amount_nanousd=amount.nanousd,
        effective_utc=effective,
        ref=ref,
        memo=reason,
        expires_utc=expires,
        meta={"source": source, "reason": reason},
    )


def reverse(entry: Entry, reason: str, now: datetime) -> EntryDraft:
    """A ``reversal`` that exactly undoes ``entry`` (amount negated), effective ``now``.

    Ref ``reversal:{account}:{seq}``, so an entry can be reversed only once. A reversed
    grant takes its own lot first (see :mod:`tokenwage.core.lots`); reversed usage opens a
    lot that does not expire.
    """
    if entry.amount_nanousd == 0:
        raise InvalidInput(
            f"{entry.account} seq {entry.seq} ({entry.kind}) moves no money; nothing to reverse"
        )
    if not reason.strip():
        raise InvalidInput("a reversal needs a reason (it is shown on the statement)")
    return EntryDraft(
        account=entry.account,
        kind=EntryKind.REVERSAL,
        amount_nanousd=-entry.amount_nanousd,
        effective_utc=utc(now),
        ref=f"reversal:{entry.account}:{entry.seq}",
        memo=reason,
        meta={"reverses_seq": entry.seq, "reverses_ref": entry.ref, "reason": reason},
    )


def allowance_in_force(packages: Sequence[Package], day: date) -> TokenAllowance | None:
    """The allowance of the package active on local date ``day``, if any."""
    for package in _checked_packages(packages):
        if package.active_on(day):
            return package.allowance
    return None


def next_refill(packages: Sequence[Package], tz: str, now_utc: datetime) -> datetime | None:
    """The first period start strictly after ``now_utc`` with a non-zero allowance grant."""
    now = utc(now_utc)
    for package in _checked_packages(packages):
        if package.allowance.amount.nanousd == 0:
            continue
        begins = local_midnight(package.effective_from, tz) - timedelta(microseconds=1)
        candidate = next_start(package.allowance.period, max(now, begins), tz)
        if package.effective_to is None or local_date(candidate, tz) <= package.effective_to:
            return candidate
    return None


# -- internals ---------------------------------------------------------------------------


def _checked_packages(packages: Sequence[Package]) -> list[Package]:
    ordered = sorted(packages, key=lambda p: p.effective_from)
    for earlier, later in zip(ordered, ordered[1:], strict=False):
        if earlier.overlaps(later):
            raise Conflict(
                f"packages overlap: {_span(earlier)} and {_span(later)}; "
                "end the earlier one the day before the later one starts"
            )
    return ordered


def _span(package: Package) -> str:
    return f"{package.effective_from}..{package.effective_to or 'open-ended'}"


@dataclass(frozen=True)
class _Period:
    start_utc: datetime
    end_utc: datetime
    allowance: TokenAllowance
    grant_expires_utc: datetime | None


def _periods(
    schedule: Sequence[Package],
    employed_from: date | None,
    employed_to: date | None,
    tz: str,
    first: date,
    last: date,
) -> Iterable[_Period]:
    """Periods starting between local dates ``first`` and ``last`` while employed."""
    for package in schedule:
        lo = max(d for d in (package.effective_from, employed_from, first) if d is not None)
        hi = min(d for d in (package.effective_to, employed_to, last) if d is not None)
        allowance = package.allowance
        for day in start_days(allowance.period, lo, hi):
            start = local_midnight(day, tz)
            end = period_end(allowance.period, start, tz)
            expires: datetime | None = None
            if allowance.expiry_days is not None:
                # in local days: granted at a local midnight, it lapses at a local midnight
                expires = local_midnight(day + timedelta(days=allowance.expiry_days), tz)
            if allowance.rollover.kind is RolloverKind.NONE:
                expires = end if expires is None else min(expires, end)
            yield _Period(start, end, allowance, expires)


@dataclass(frozen=True, eq=False)
class _Provisional:
    """A planned draft with the seq the store will give it (a :class:`Posting`)."""

    seq: int
    kind: EntryKind
    amount_nanousd: int
    effective_utc: datetime
    expires_utc: datetime | None
    ref: str
    meta: Mapping[str, Any]


def _when(entry: Posting) -> Moment:
    """When an entry happened, ranked by the planner's order of things at one instant.

    Cap expiries (ref ``rollover-cap:``) and rollover notes belong to the period end; other
    expiries come first; grants, usage and everything else last.
    """
    if entry.kind is EntryKind.EXPIRY and not entry.ref.startswith("rollover-cap:"):
        return (entry.effective_utc, _EXPIRE)
    if entry.kind in (EntryKind.EXPIRY, EntryKind.ROLLOVER):
        return (entry.effective_utc, _PERIOD_END)
    return (entry.effective_utc, _GRANT)


class _Planner:
    """Replays events in time order, planning drafts and tracking their provisional seqs."""

    def __init__(self, account: str, entries: Sequence[Entry], now: datetime) -> None:
        self.account = account
        self.now = now
        self.recorded = sorted(entries, key=lambda e: e.seq)
        for expected, entry in enumerate(self.recorded, start=1):
            if entry.account != account or entry.seq != expected:
                raise InvalidInput(
                    f"entries must be {account}'s whole chain in seq order: got "
                    f"{entry.account} seq {entry.seq} where seq {expected} belongs"
                )
        self.refs = {e.ref for e in self.recorded}
        self.replay = LotReplay(_when)
        for entry in self.recorded:
            self.replay.add(entry)
        self.seq = len(self.recorded)
        self.drafts: list[EntryDraft] = []
        self._queue: list[tuple[datetime, int, int, int, Callable[[], None]]] = []
        self._order = count()

    def at(self, when: datetime, phase: int, tie: int, action: Callable[[], None]) -> None:
        heapq.heappush(self._queue, (when, phase, tie, next(self._order), action))

    def run(self) -> list[EntryDraft]:
        while self._queue:
            *_, action = heapq.heappop(self._queue)
            action()
        return self.drafts

    def view(self, when: datetime, phase: int) -> LotState:
        """The lots just before ``phase`` at ``when``."""
        return self.replay.before((when, phase))

    def plan(
        self,
        kind: EntryKind,
        amount_nanousd: int,
        when: datetime,
        ref: str,
        memo: str,
        meta: dict[str, Any],
        expires_utc: datetime | None = None,
    ) -> None:
        """Plan a draft unless its ref is already in the ledger or planned."""
        if ref in self.refs:
            return
        draft = EntryDraft(self.account, kind, amount_nanousd, when, ref, memo, expires_utc, meta)
        self.seq += 1
        posting = _Provisional(self.seq, kind, amount_nanousd, when, expires_utc, ref, meta)
        self.replay.add(posting)
        self.drafts.append(draft)
        self.refs.add(ref)
        self._watch(posting)

    def _watch(self, lot: Posting) -> None:
        """Schedule the lapse of ``lot`` if it opens a lot that expires by now."""
        expires = lot.expires_utc
        if lot.amount_nanousd > 0 and expires is not None and expires <= self.now:
            self.at(expires, _EXPIRE, lot.seq, partial(self.expire, lot.seq, expires))

    def expire_recorded_lots(self, since: datetime | None) -> None:
        holding = {lot.seq for lot in lot_state(self.recorded).open_lots}
        for entry in self.recorded:
            expires = entry.expires_utc
            if f"expiry:{self.account}:{entry.seq}" in self.refs or expires is None:
                continue
            if since is None or expires > since or entry.seq in holding:
                self._watch(entry)

    def expire(self, lot_seq: int, when: datetime) -> None:
        ref = f"expiry:{self.account}:{lot_seq}"
        lot = None if ref in self.refs else self.view(when, _EXPIRE).lot(lot_seq)
        if lot is not None and lot.open:
            left = lot.remaining_nanousd
            memo = f"Unused {Money(left)} of {lot.ref} expired"
            meta = {"lot_seq": lot_seq, "lot_ref": lot.ref}
            self.plan(EntryKind.EXPIRY, -left, when, ref, memo, meta)

    def period_end(self, period: _Period) -> None:
        end, allowance = period.end_utc, period.allowance
        end_iso = iso(end)
        lots = [lot for lot in self.view(end, _PERIOD_END).open_lots if lot.is_allowance]
        carried = sum(lot.remaining_nanousd for lot in lots)
        cap_periods = allowance.rollover.cap_periods
        if allowance.rollover.kind is RolloverKind.CAPPED and cap_periods is not None:
            cap = allowance.amount.nanousd * cap_periods
            for lot in lots:  # oldest first: open_lots are in seq order
                lapsed = min(lot.remaining_nanousd, carried - cap)
                if lapsed <= 0:
                    break
                carried -= lapsed
                ref = f"rollover-cap:{self.account}:{end_iso}:{lot.seq}"
                memo = f"{Money(lapsed)} of {lot.ref} above the rollover cap of {Money(cap)}"
                meta = {"lot_seq": lot.seq, "lot_ref": lot.ref, "cap_nanousd": cap}
                self.plan(EntryKind.EXPIRY, -lapsed, end, ref, memo, meta)
        if carried > 0:
            ref = f"rollover:{self.account}:{end_iso}"
            memo = f"{Money(carried)} of allowance carried into the next period"
            self.plan(EntryKind.ROLLOVER, 0, end, ref, memo, {"carried_nanousd": carried})

    def grant(self, period: _Period) -> None:
        allowance, start = period.allowance, period.start_utc
        if allowance.amount.nanousd == 0:
            return
        start_iso = iso(start)
        meta = {
            "source": ALLOWANCE_SOURCE,
            "period": allowance.period.value,
            "period_start": start_iso,
            "period_end": iso(period.end_utc),
        }
        memo = f"{allowance.period.value.capitalize()} allowance"
        ref = f"allowance:{self.account}:{start_iso}"
        amount = allowance.amount.nanousd
        self.plan(EntryKind.GRANT, amount, start, ref, memo, meta, period.grant_expires_utc)
