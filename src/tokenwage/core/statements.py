"""Monthly token statements (pure).

A statement is *posted* like a bank statement: a month holds the entries **recorded** in it
(``recorded_utc`` from local midnight on the 1st, org time zone, up to the next 1st). It is
sealed by the hash of the month's last entry, or by the opening seal when the month had
none, so a closed month never changes: later corrections are recorded, and therefore shown,
in a later month.

Sign convention: totals that move the balance (grants, usage, expired, adjustments,
reversals) are signed as in the ledger (credits positive, debits negative), so
``opening + grants + usage + expired + adjustments + reversals == closing``. Usage rows
(:class:`UsageSummary`) carry ``cost`` as a positive amount spent.

Meta keys that are missing count as 0 (token counts) or ``"unknown"`` (names). The ledger is
append-only, so a statement must always build: a token count that is not a whole number
counts as 0 too.
"""

from __future__ import annotations

import calendar
from collections import defaultdict
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, TypeVar

from tokenwage.core.errors import InvalidInput, LedgerTampered
from tokenwage.core.ledger import Entry, EntryKind, balance_of, entry_hash, utc
from tokenwage.core.money import Money
from tokenwage.core.periods import local_date, month_bounds

UNKNOWN = "unknown"
_K = TypeVar("_K", bound=Hashable)


@dataclass(frozen=True)
class StatementPeriod:
    year: int
    month: int
    tz: str
    start_utc: datetime  # local midnight on the 1st
    end_utc: datetime  # exclusive: local midnight on the next 1st

    @property
    def label(self) -> str:
        return self.first_day.strftime("%B %Y")

    @property
    def first_day(self) -> date:
        return date(self.year, self.month, 1)

    @property
    def last_day(self) -> date:
        return date(self.year, self.month, calendar.monthrange(self.year, self.month)[1])


@dataclass(frozen=True)
class UsageSummary:
    """Requests, tokens (``core/usage.py`` convention) and cost of some usage entries."""

    requests: int
    input_tokens: int
    output_tokens: int
    cache_read_tokens: int
    cache_write_tokens: int
    cache_write_1h_tokens: int
    reasoning_tokens: int
    cost: Money  # positive: what was spent

    @property
    def cache_write_total_tokens(self) -> int:
        """Both cache lifetimes (they never overlap, see ``core/usage.py``)."""
        return self.cache_write_tokens + self.cache_write_1h_tokens

    @classmethod
    def of(cls, entries: Sequence[Entry]) -> UsageSummary:
        def tokens(key: str) -> int:
            return sum(_meta_int(e.meta, key) for e in entries)

        return cls(
            requests=len(entries),
            input_tokens=tokens("input_tokens"),
            output_tokens=tokens("output_tokens"),
            cache_read_tokens=tokens("cache_read_tokens"),
            cache_write_tokens=tokens("cache_write_tokens"),
            cache_write_1h_tokens=tokens("cache_write_1h_tokens"),
            reasoning_tokens=tokens("reasoning_tokens"),
            cost=Money(-balance_of(entries)),
        )


@dataclass(frozen=True)
class ModelUsage:
    provider: str
    model: str
    usage: UsageSummary


@dataclass(frozen=True)
class SourceUsage:
    source: str
    usage: UsageSummary


@dataclass(frozen=True)
class GrantLine:
    seq: int
    day: date  # local date the grant took effect
    source: str  # allowance | one-off | pool | unknown
    reason: str  # meta.reason, else the memo
    amount: Money


@dataclass(frozen=True)
class MemoLine:
    """An adjustment or a reversal."""

    seq: int
    kind: EntryKind
    day: date  # local date recorded
    amount: Money
    memo: str
    reverses_seq: int | None  # reversals: the seq of the entry undone


@dataclass(frozen=True)
class Statement:
    period: StatementPeriod
    person_name: str
    person_email: str
    account: str
    opening_balance: Money
    allowance_total: Money  # grants with meta.source == "allowance"
    one_off_total: Money  # grants with meta.source == "one-off"
    other_grants_total: Money  # any other grant source
    grant_lines: tuple[GrantLine, ...]
    usage: UsageSummary
    usage_by_model: tuple[ModelUsage, ...]
    usage_by_source: tuple[SourceUsage, ...]
    rollover_carried: Money  # informational: rollover entries move no money
    expired_total: Money
    adjustments_total: Money
    reversals_total: Money
    memo_lines: tuple[MemoLine, ...]
    pool_usage: UsageSummary  # drawn from team pools: not part of this balance
    pool_usage_by_model: tuple[ModelUsage, ...]
    closing_balance: Money
    entry_count: int
    first_seq: int | None
    last_seq: int | None
    opening_seal: str
    seal_hash: str
    generated_utc: datetime

    @property
    def grants_total(self) -> Money:
        return self.allowance_total + self.one_off_total + self.other_grants_total

    @property
    def usage_total(self) -> Money:
        """Signed like the ledger: zero or negative."""
        return -self.usage.cost


def build_statement(
    *,
    person_name: str,
    person_email: str,
    account: str,
    year: int,
    month: int,
    tz: str,
    opening_balance_nanousd: int,
    opening_seal: str,
    entries: Sequence[Entry],
    pool_entries: Sequence[Entry] = (),
    generated_utc: datetime,
    closing_balance_nanousd: int | None = None,
) -> Statement:
    """Build one person's statement for a month.

    ``entries``: the account's entries recorded in the month, in ``seq`` order; they must
    chain on from ``opening_seal`` (the previous month's seal). ``pool_entries``: usage on
    team pool accounts attributed to this person. ``closing_balance_nanousd``, when given
    (the store's balance at month end), must equal opening + the month's entries.
    Raises :class:`LedgerTampered` if the chain or the balance does not hold.
    """
    start, end = month_bounds(year, month, tz)
    period = StatementPeriod(year, month, tz, start, end)
    _check_chain(account, opening_seal, entries, period)
    _check_pool(account, pool_entries, period)

    by_kind: dict[EntryKind, list[Entry]] = defaultdict(list)
    for e in entries:
        by_kind[e.kind].append(e)
    grants = by_kind[EntryKind.GRANT]
    usage = by_kind[EntryKind.USAGE]
    usage_summary = UsageSummary.of(usage)
    grant_by_source = _group(grants, _source)
    allowance = Money(balance_of(grant_by_source.pop("allowance", [])))
    one_off = Money(balance_of(grant_by_source.pop("one-off", [])))
    other_grants = Money(sum(balance_of(g) for g in grant_by_source.values()))
    expired = Money(balance_of(by_kind[EntryKind.EXPIRY]))
    adjustments = Money(balance_of(by_kind[EntryKind.ADJUSTMENT]))
    reversals = Money(balance_of(by_kind[EntryKind.REVERSAL]))

    opening = Money(opening_balance_nanousd)
    closing = opening + Money(balance_of(entries))
    lines = (allowance, one_off, other_grants, -usage_summary.cost, expired, adjustments, reversals)
    explained = opening + Money.total(lines)
    if explained != closing:
        raise LedgerTampered(
            f"{account} {year}-{month:02d}: opening {opening} plus the statement's lines is "
            f"{explained}, but opening plus all entries is {closing}: an entry moves money its "
            "kind may not (a rollover with an amount?)",
            account=account,
            entry_id=None,
            seq=None,
        )
    if closing_balance_nanousd is not None and closing_balance_nanousd != closing.nanousd:
        raise LedgerTampered(
            f"{account} {year}-{month:02d}: opening {opening} plus the month's entries is "
            f"{closing}, but the stored closing balance is {Money(closing_balance_nanousd)}",
            account=account,
            entry_id=None,
            seq=None,
        )

    return Statement(
        period=period,
        person_name=person_name,
        person_email=person_email,
        account=account,
        opening_balance=opening,
        allowance_total=allowance,
        one_off_total=one_off,
        other_grants_total=other_grants,
        grant_lines=tuple(_grant_line(e, tz) for e in grants),
        usage=usage_summary,
        usage_by_model=_by_model(usage),
        usage_by_source=tuple(
            sorted(
                (SourceUsage(src, UsageSummary.of(g)) for src, g in _group(usage, _source).items()),
                key=lambda r: (-r.usage.cost.nanousd, r.source),
            )
        ),
        rollover_carried=Money(
            sum(_meta_int(e.meta, "carried_nanousd") for e in by_kind[EntryKind.ROLLOVER])
        ),
        expired_total=expired,
        adjustments_total=adjustments,
        reversals_total=reversals,
        memo_lines=tuple(
            _memo_line(e, tz)
            for e in entries
            if e.kind in (EntryKind.ADJUSTMENT, EntryKind.REVERSAL)
        ),
        pool_usage=UsageSummary.of(pool_entries),
        pool_usage_by_model=_by_model(pool_entries),
        closing_balance=closing,
        entry_count=len(entries),
        first_seq=entries[0].seq if entries else None,
        last_seq=entries[-1].seq if entries else None,
        opening_seal=opening_seal,
        seal_hash=entries[-1].hash if entries else opening_seal,
        generated_utc=utc(generated_utc),
    )


def _check_chain(
    account: str, opening_seal: str, entries: Sequence[Entry], period: StatementPeriod
) -> None:
    prev_hash, prev_seq = opening_seal, None
    for e in entries:
        if e.account != account:
            raise InvalidInput(f"entry seq {e.seq} belongs to {e.account!r}, not {account!r}")
        _check_in_month(e, period)
        if prev_seq is not None and e.seq != prev_seq + 1:
            what = f"follows seq {prev_seq}: an entry is missing or out of order"
            raise LedgerTampered(
                f"{account}: seq {e.seq} {what}", account=account, entry_id=e.id, seq=e.seq
            )
        if e.prev_hash != prev_hash:
            what = (
                "does not link to the opening seal"
                if prev_seq is None
                else "does not link to the entry before it"
            )
            raise LedgerTampered(
                f"{account}: seq {e.seq} {what}", account=account, entry_id=e.id, seq=e.seq
            )
        if entry_hash(e.canonical()) != e.hash:
            raise LedgerTampered(
                f"{account}: seq {e.seq} does not match its hash (edited)",
                account=account,
                entry_id=e.id,
                seq=e.seq,
            )
        prev_hash, prev_seq = e.hash, e.seq


def _check_pool(account: str, pool_entries: Sequence[Entry], period: StatementPeriod) -> None:
    for e in pool_entries:
        if e.kind is not EntryKind.USAGE or e.account == account:
            raise InvalidInput(
                f"pool entry {e.account} seq {e.seq} is a {e.kind} entry; pass only usage "
                f"entries on team pool accounts, not on {account}"
            )
        _check_in_month(e, period)


def _check_in_month(e: Entry, period: StatementPeriod) -> None:
    if not period.start_utc <= e.recorded_utc < period.end_utc:
        raise InvalidInput(
            f"{e.account} seq {e.seq} was recorded {e.recorded_utc.isoformat()}, outside "
            f"{period.label} ({period.tz}); pass only the month's entries"
        )


def _group(entries: Sequence[Entry], key: Callable[[Entry], _K]) -> dict[_K, list[Entry]]:
    groups: dict[_K, list[Entry]] = defaultdict(list)
    for e in entries:
        groups[key(e)].append(e)
    return dict(groups)


def _by_model(entries: Sequence[Entry]) -> tuple[ModelUsage, ...]:
    groups = _group(entries, lambda e: (_meta_str(e.meta, "provider"), _meta_str(e.meta, "model")))
    rows = (ModelUsage(p, m, UsageSummary.of(g)) for (p, m), g in groups.items())
    return tuple(sorted(rows, key=lambda r: (-r.usage.cost.nanousd, r.provider, r.model)))


def _source(e: Entry) -> str:
    return _meta_str(e.meta, "source")


def _grant_line(e: Entry, tz: str) -> GrantLine:
    return GrantLine(
        seq=e.seq,
        day=local_date(e.effective_utc, tz),
        source=_source(e),
        reason=str(e.meta.get("reason") or e.memo),
        amount=Money(e.amount_nanousd),
    )


def _memo_line(e: Entry, tz: str) -> MemoLine:
    reverses = e.meta.get("reverses_seq", e.meta.get("reverses"))
    return MemoLine(
        seq=e.seq,
        kind=e.kind,
        day=local_date(e.recorded_utc, tz),
        amount=Money(e.amount_nanousd),
        memo=e.memo,
        reverses_seq=_as_int(reverses) if reverses is not None else None,
    )


def _meta_str(meta: Mapping[str, Any], key: str) -> str:
    value = meta.get(key)
    return str(value) if value not in (None, "") else UNKNOWN


def _meta_int(meta: Mapping[str, Any], key: str) -> int:
    return _as_int(meta.get(key)) or 0


def _as_int(value: Any) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    return None
