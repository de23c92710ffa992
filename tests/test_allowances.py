"""Allowance runs: grants, expiries, rollover caps, catch-up and idempotency."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tokenwage.core.allowances import (
    allowance_in_force,
    next_refill,
    one_off_grant,
    plan_allowance_run,
    plan_expiries,
    reverse,
)
from tokenwage.core.errors import Conflict, InvalidInput
from tokenwage.core.ledger import Entry, EntryDraft, EntryKind, Head, append, verify_chain
from tokenwage.core.lots import lot_state
from tokenwage.core.money import Money
from tokenwage.core.package import Package, Period, Rollover, TokenAllowance

ACCOUNT = "person:1"
NY = "America/New_York"
BERLIN = "Europe/Berlin"
D100 = Money.parse("100")


def pkg(
    amount: str = "100",
    period: Period = Period.MONTH,
    rollover: str = "none",
    *,
    expiry_days: int | None = None,
    start: date = date(2024, 1, 1),
    end: date | None = None,
) -> Package:
    allowance = TokenAllowance(
        Money.parse(amount), period, Rollover.parse(rollover), expiry_days=expiry_days
    )
    return Package(Money.parse("150000"), allowance, start, end)


def local(y: int, m: int, d: int, tz: str = NY, hour: int = 0) -> datetime:
    return datetime(y, m, d, hour, tzinfo=ZoneInfo(tz)).astimezone(UTC)


class Book:
    """One account's chain, appended to with the real ``ledger.append``."""

    def __init__(self, packages: Sequence[Package], tz: str = NY, **employment: date) -> None:
        self.packages, self.tz, self.employment = list(packages), tz, employment
        self.entries: list[Entry] = []
        self.head = Head()

    def add(self, drafts: Sequence[EntryDraft], recorded: datetime) -> list[Entry]:
        new, self.head = append(self.head, drafts, recorded)
        self.entries += new
        return new

    def plan(self, now: datetime, since: datetime | None = None) -> list[EntryDraft]:
        return plan_allowance_run(
            account=ACCOUNT,
            packages=self.packages,
            employed_from=self.employment.get("employed_from"),
            employed_to=self.employment.get("employed_to"),
            tz=self.tz,
            entries=self.entries,
            since_utc=since,
            now_utc=now,
        )

    def run(self, now: datetime, since: datetime | None = None) -> list[Entry]:
        return self.add(self.plan(now, since), now)

    def spend(self, dollars: str, when: datetime) -> None:
        amount = -Money.parse(dollars).nanousd
        self.add([EntryDraft(ACCOUNT, EntryKind.USAGE, amount, when, f"req:{when}")], when)

    @property
    def balance(self) -> int:
        return self.head.balance_nanousd

    def of(self, kind: EntryKind) -> list[Entry]:
        return [e for e in self.entries if e.kind is kind]

    def rows(self) -> list[tuple[int, EntryKind, int, datetime, str]]:
        return [(e.seq, e.kind, e.amount_nanousd, e.effective_utc, e.ref) for e in self.entries]


def usd(n: int | str) -> int:
    return Money.parse(n).nanousd


def test_a_monthly_allowance_without_rollover_lapses_at_month_end() -> None:
    book = Book([pkg()])
    book.run(local(2024, 1, 10))
    book.spend("30", local(2024, 1, 15))
    book.run(local(2024, 3, 15), since=local(2024, 1, 10))

    jan, feb, mar = local(2024, 1, 1), local(2024, 2, 1), local(2024, 3, 1)
    assert book.rows() == [
        (1, EntryKind.GRANT, usd(100), jan, f"allowance:{ACCOUNT}:2024-01-01T05:00:00.000000Z"),
        (2, EntryKind.USAGE, -usd(30), local(2024, 1, 15), f"req:{local(2024, 1, 15)}"),
        (3, EntryKind.EXPIRY, -usd(70), feb, f"expiry:{ACCOUNT}:1"),
        (4, EntryKind.GRANT, usd(100), feb, f"allowance:{ACCOUNT}:2024-02-01T05:00:00.000000Z"),
        (5, EntryKind.EXPIRY, -usd(100), mar, f"expiry:{ACCOUNT}:4"),
        (6, EntryKind.GRANT, usd(100), mar, f"allowance:{ACCOUNT}:2024-03-01T05:00:00.000000Z"),
    ]
    first = book.entries[0]
    assert first.expires_utc == feb
    assert first.meta == {
        "source": "allowance",
        "period": "month",
        "period_start": "2024-01-01T05:00:00.000000Z",
        "period_end": "2024-02-01T05:00:00.000000Z",
    }
    assert book.entries[4].meta == {"lot_seq": 4, "lot_ref": book.entries[3].ref}
    assert book.balance == usd(100)
    assert list(verify_chain(ACCOUNT, book.entries, book.head)) == []


def test_daily_allowance_follows_berlin_midnight_across_the_dst_change() -> None:
    book = Book([pkg("10", Period.DAY, start=date(2024, 3, 30))], tz=BERLIN)
    book.run(local(2024, 4, 1, BERLIN, hour=12))
    grants = book.of(EntryKind.GRANT)
    assert [(g.effective_utc, g.expires_utc) for g in grants] == [
        (datetime(2024, 3, 29, 23, tzinfo=UTC), datetime(2024, 3, 30, 23, tzinfo=UTC)),
        (datetime(2024, 3, 30, 23, tzinfo=UTC), datetime(2024, 3, 31, 22, tzinfo=UTC)),  # 23 h
        (datetime(2024, 3, 31, 22, tzinfo=UTC), datetime(2024, 4, 1, 22, tzinfo=UTC)),
    ]
    assert [e.effective_utc for e in book.of(EntryKind.EXPIRY)] == [
        g.expires_utc for g in grants[:2]
    ]
    assert book.balance == usd(10)


def test_workday_allowance_skips_weekends_and_ends_friday_night() -> None:
    book = Book([pkg("20", Period.WORKDAY, start=date(2024, 3, 1))])  # a Friday
    book.run(local(2024, 3, 5, hour=9))  # Tuesday morning
    grants = book.of(EntryKind.GRANT)
    assert [g.effective_utc for g in grants] == [local(2024, 3, d) for d in (1, 4, 5)]
    assert grants[0].expires_utc == local(2024, 3, 2)  # Saturday midnight, not Monday
    expired = [e.effective_utc for e in book.of(EntryKind.EXPIRY)]
    assert expired == [local(2024, 3, 2), local(2024, 3, 5)]


def test_capped_rollover_carries_two_periods_and_lapses_the_oldest_money_above() -> None:
    book = Book([pkg(rollover="capped:2")])
    book.run(local(2024, 1, 2))
    book.spend("40", local(2024, 1, 20))
    book.run(local(2024, 4, 2), since=local(2024, 1, 2))
    kinds = [(e.kind, e.amount_nanousd, e.effective_utc) for e in book.entries[2:]]
    assert kinds == [
        (EntryKind.ROLLOVER, 0, local(2024, 2, 1)),
        (EntryKind.GRANT, usd(100), local(2024, 2, 1)),
        (EntryKind.ROLLOVER, 0, local(2024, 3, 1)),
        (EntryKind.GRANT, usd(100), local(2024, 3, 1)),
        (EntryKind.EXPIRY, -usd(60), local(2024, 4, 1)),  # 260 held, cap 200: January's 60
        (EntryKind.ROLLOVER, 0, local(2024, 4, 1)),
        (EntryKind.GRANT, usd(100), local(2024, 4, 1)),
    ]
    carried = [e.meta["carried_nanousd"] for e in book.of(EntryKind.ROLLOVER)]
    assert carried == [usd(60), usd(160), usd(200)]
    cap = book.entries[6]
    assert cap.ref == f"rollover-cap:{ACCOUNT}:2024-04-01T04:00:00.000000Z:1"
    assert cap.meta["lot_seq"] == 1 and cap.expires_utc is None
    assert all(e.expires_utc is None for e in book.of(EntryKind.GRANT))
    assert book.balance == usd(300)


def test_a_lower_cap_lapses_several_lots_oldest_first() -> None:
    book = Book(
        [
            pkg(rollover="capped:2", end=date(2024, 2, 29)),
            pkg("10", rollover="capped:1", start=date(2024, 3, 1)),
        ]
    )
    book.run(local(2024, 4, 1))
    caps = [(e.meta["lot_seq"], e.amount_nanousd) for e in book.of(EntryKind.EXPIRY)]
    assert caps == [(1, -usd(100)), (3, -usd(100))]  # January's and February's lots
    assert book.balance == usd(20)


def test_unlimited_rollover_keeps_everything() -> None:
    book = Book([pkg("50", Period.WEEK, "unlimited", start=date(2024, 1, 1))])
    book.run(local(2024, 2, 1))
    assert not book.of(EntryKind.EXPIRY)
    carried = [e.meta["carried_nanousd"] for e in book.of(EntryKind.ROLLOVER)]
    assert carried == [usd(50), usd(100), usd(150), usd(200)]
    assert book.balance == usd(250)


def test_expiry_days_count_local_days_from_the_grant() -> None:
    book = Book([pkg("50", Period.WEEK, "unlimited", expiry_days=10)])
    book.run(local(2024, 1, 20))
    assert book.entries[0].expires_utc == local(2024, 1, 11)
    expired = [(e.effective_utc, e.meta["lot_seq"]) for e in book.of(EntryKind.EXPIRY)]
    assert expired == [(local(2024, 1, 11), 1), (local(2024, 1, 18), 3)]
    for days, expires in ((10, local(2024, 1, 11)), (45, local(2024, 2, 1))):
        no_rollover = Book([pkg(expiry_days=days)])  # the earlier of the two wins
        assert no_rollover.run(local(2024, 1, 5))[0].expires_utc == expires


def test_lots_lapsing_at_a_period_end_are_not_carried_or_capped() -> None:
    book = Book([pkg("50", Period.WEEK, "capped:1", expiry_days=14)])
    book.run(local(2024, 1, 22))
    rows = [(e.kind, e.ref.split(":")[0], e.amount_nanousd) for e in book.entries[1:]]
    assert rows == [
        (EntryKind.ROLLOVER, "rollover", 0),  # Jan 8: 50 carried
        (EntryKind.GRANT, "allowance", usd(50)),
        (EntryKind.EXPIRY, "expiry", -usd(50)),  # Jan 15: the first week lapses first,
        (EntryKind.ROLLOVER, "rollover", 0),  # so only the second week is carried
        (EntryKind.GRANT, "allowance", usd(50)),
        (EntryKind.EXPIRY, "expiry", -usd(50)),
        (EntryKind.ROLLOVER, "rollover", 0),
        (EntryKind.GRANT, "allowance", usd(50)),
    ]
    assert all(e.meta.get("carried_nanousd", usd(50)) == usd(50) for e in book.entries)


def test_overdraft_debt_is_repaid_by_the_next_grant() -> None:
    book = Book([pkg("10", Period.DAY)])
    book.run(local(2024, 1, 1, hour=8))
    book.spend("15", local(2024, 1, 1, hour=9))
    book.run(local(2024, 1, 3, hour=8), since=local(2024, 1, 1, hour=8))
    assert [(e.kind, e.amount_nanousd) for e in book.entries] == [
        (EntryKind.GRANT, usd(10)),
        (EntryKind.USAGE, -usd(15)),
        (EntryKind.GRANT, usd(10)),  # nothing left of day 1 to expire; repays 5
        (EntryKind.EXPIRY, -usd(5)),  # day 2 kept only the other 5
        (EntryKind.GRANT, usd(10)),
    ]
    assert book.entries[3].meta["lot_seq"] == 3
    assert book.balance == usd(10)


def test_one_off_grants_do_not_lapse_with_the_period_and_are_spent_last() -> None:
    book = Book([pkg()])
    book.add(
        [one_off_grant(ACCOUNT, Money.parse("25"), "hackathon", local(2024, 1, 3), "h1")],
        local(2024, 1, 3),
    )
    book.run(local(2024, 1, 4))
    book.spend("110", local(2024, 1, 10))
    book.run(local(2024, 2, 2), since=local(2024, 1, 4))
    state = lot_state(book.entries)
    assert {lot.ref: lot.remaining_nanousd for lot in state.lots} == {
        "h1": usd(15),
        f"allowance:{ACCOUNT}:2024-01-01T05:00:00.000000Z": 0,
        f"allowance:{ACCOUNT}:2024-02-01T05:00:00.000000Z": usd(100),
    }
    assert not book.of(EntryKind.EXPIRY)  # January was used up


def test_planning_twice_or_with_an_overlapping_since_plans_nothing_new() -> None:
    book = Book([pkg(rollover="capped:1")])
    book.run(local(2024, 4, 15))
    assert book.plan(local(2024, 4, 15)) == []
    assert book.plan(local(2024, 4, 15), since=local(2024, 2, 10)) == []
    assert book.plan(local(2024, 4, 20), since=local(2024, 4, 15)) == []


def test_drafts_are_numbered_the_way_the_store_appends_them() -> None:
    book = Book([pkg("10", Period.DAY)])
    book.add(
        [one_off_grant(ACCOUNT, Money.parse("5"), "welcome", local(2023, 12, 1), "w")],
        local(2023, 12, 1),
    )
    drafts = book.plan(local(2024, 1, 4))
    appended = book.add(drafts, local(2024, 1, 4))
    by_seq = {e.seq: e for e in book.entries}
    for expiry in (e for e in appended if e.kind is EntryKind.EXPIRY):
        lot = by_seq[expiry.meta["lot_seq"]]
        assert lot.kind is EntryKind.GRANT and lot.ref == expiry.meta["lot_ref"]
        assert expiry.effective_utc == lot.expires_utc
        assert expiry.seq > lot.seq


def test_catch_up_after_ten_days_of_downtime_matches_running_daily() -> None:
    packages = [pkg("10", Period.DAY, "capped:3", expiry_days=2)]
    daily, late = Book(packages, BERLIN), Book(packages, BERLIN)
    down = local(2024, 3, 25, BERLIN, hour=1)  # ten days across the DST change
    for book in (daily, late):
        book.run(down)
    for day in range(1, 11):
        daily.run(down + timedelta(days=day), since=down + timedelta(days=day - 1))
    late.run(down + timedelta(days=10), since=down)
    assert late.rows() == daily.rows()
    assert len(late.entries) > 30


def test_usage_recorded_during_downtime_leaves_the_balance_a_daily_run_would() -> None:
    daily, late = Book([pkg()]), Book([pkg()])
    for book in (daily, late):
        book.run(local(2024, 1, 20))
    daily.run(local(2024, 2, 10), since=local(2024, 1, 20))
    for book in (daily, late):
        book.spend("30", local(2024, 2, 10, hour=12))
    daily.run(local(2024, 3, 15), since=local(2024, 2, 10))
    late.run(local(2024, 3, 15), since=local(2024, 1, 20))
    assert late.balance == daily.balance == usd(100)
    expired = [[e.amount_nanousd for e in book.of(EntryKind.EXPIRY)] for book in (late, daily)]
    assert expired == [[-usd(100), -usd(70)]] * 2  # February paid for the usage either way


def test_grants_follow_employment_and_since_is_exclusive() -> None:
    book = Book(
        [pkg("10", Period.DAY)], employed_from=date(2024, 1, 3), employed_to=date(2024, 1, 4)
    )
    book.run(local(2024, 1, 10))
    assert [e.effective_utc for e in book.of(EntryKind.GRANT)] == [
        local(2024, 1, d) for d in (3, 4)
    ]
    fresh = Book([pkg("10", Period.DAY)])
    assert fresh.plan(local(2024, 1, 2), since=local(2024, 1, 2)) == []
    assert Book([pkg("0", Period.DAY, "unlimited")]).plan(local(2024, 1, 9)) == []


def test_overlapping_packages_and_foreign_entries_are_refused() -> None:
    with pytest.raises(Conflict, match="2024-01-01..open-ended and 2024-03-01..open-ended"):
        Book([pkg(), pkg(start=date(2024, 3, 1))]).plan(local(2024, 4, 1))
    book = Book([pkg()])
    book.run(local(2024, 1, 2))
    with pytest.raises(InvalidInput, match="whole chain"):
        plan_allowance_run(account="person:2", packages=[pkg()], employed_from=None,
                           employed_to=None, tz=NY, entries=book.entries, since_utc=None,
                           now_utc=local(2024, 2, 2))  # fmt: skip


def test_an_overdue_lot_from_before_since_still_lapses() -> None:
    book = Book([])
    late = one_off_grant(ACCOUNT, D100, "x", local(2024, 1, 1), "x", expires_utc=local(2024, 1, 5))
    book.add([late], local(2024, 1, 1))
    (expiry,) = book.plan(local(2024, 1, 12), since=local(2024, 1, 10))
    assert (expiry.amount_nanousd, expiry.effective_utc) == (-usd(100), local(2024, 1, 5))
    assert plan_expiries(ACCOUNT, book.entries, local(2024, 1, 12), since_utc=local(2024, 1, 10))


def test_sweep_expires_pool_grants_once() -> None:
    grant = one_off_grant(
        "pool:core", Money.parse("50"), "q1 budget", local(2024, 1, 1), "q1", local(2024, 4, 1)
    )
    assert grant.meta == {"source": "pool", "reason": "q1 budget"}
    entries, _ = append(Head(), [grant], local(2024, 1, 1))
    assert plan_expiries("pool:core", entries, local(2024, 3, 31)) == []
    (expiry,) = plan_expiries("pool:core", entries, local(2024, 4, 1))
    assert (expiry.amount_nanousd, expiry.ref) == (-usd(50), "expiry:pool:core:1")
    more, _ = append(Head(1, entries[0].hash, usd(50)), [expiry], local(2024, 4, 1))
    assert plan_expiries("pool:core", entries + more, local(2024, 5, 1)) == []


def test_one_off_grant_validation() -> None:
    when = local(2024, 1, 1)
    with pytest.raises(InvalidInput, match="more than \\$0"):
        one_off_grant(ACCOUNT, Money(0), "x", when, "r")
    with pytest.raises(InvalidInput, match="needs a reason"):
        one_off_grant(ACCOUNT, D100, " ", when, "r")
    with pytest.raises(InvalidInput, match="not after"):
        one_off_grant(ACCOUNT, D100, "x", when, "r", expires_utc=when)
    assert one_off_grant(ACCOUNT, D100, "x", when, "r").meta["source"] == "one-off"


def test_reverse_undoes_one_entry_and_a_reversed_grant_takes_its_own_lot() -> None:
    book = Book([pkg()])
    book.add([one_off_grant(ACCOUNT, D100, "oops", local(2024, 1, 2), "o")], local(2024, 1, 2))
    book.run(local(2024, 1, 3))
    undo = reverse(book.entries[0], "granted twice", local(2024, 1, 4))
    assert (undo.kind, undo.amount_nanousd) == (EntryKind.REVERSAL, -usd(100))
    assert undo.ref == f"reversal:{ACCOUNT}:1"
    assert undo.meta == {"reverses_seq": 1, "reverses_ref": "o", "reason": "granted twice"}
    book.add([undo], local(2024, 1, 4))
    assert {lot.ref: lot.remaining_nanousd for lot in lot_state(book.entries).lots}["o"] == 0
    note = EntryDraft(ACCOUNT, EntryKind.ROLLOVER, 0, local(2024, 1, 5), "n")
    (rollover,) = book.add([note], local(2024, 1, 5))
    with pytest.raises(InvalidInput, match="nothing to reverse"):
        reverse(rollover, "x", local(2024, 1, 6))


def test_allowance_in_force_and_next_refill() -> None:
    packages = [
        pkg(end=date(2024, 1, 31)),
        pkg("7", Period.WEEK, start=date(2024, 2, 10), end=date(2024, 2, 20)),
    ]
    assert allowance_in_force(packages, date(2024, 1, 31)) == packages[0].allowance
    assert allowance_in_force(packages, date(2024, 2, 5)) is None
    assert allowance_in_force(packages, date(2024, 2, 10)) == packages[1].allowance
    assert next_refill(packages, NY, local(2024, 1, 1)) == local(2024, 2, 12)  # first Monday
    assert next_refill(packages, NY, local(2024, 2, 12)) == local(2024, 2, 19)
    assert next_refill(packages, NY, local(2024, 2, 19)) is None
    assert next_refill([pkg(start=date(2024, 3, 1))], NY, local(2024, 1, 15)) == local(2024, 3, 1)
    assert next_refill([pkg("0")], NY, local(2024, 1, 15)) is None


# -- catch-up is the same as running often -------------------------------------------------


@st.composite
def allowances(draw: st.DrawFn) -> TokenAllowance:
    return TokenAllowance(
        Money.parse(draw(st.sampled_from(["0", "3", "10"]))),
        draw(st.sampled_from(Period)),
        Rollover.parse(draw(st.sampled_from(["none", "unlimited", "capped:1", "capped:2"]))),
        expiry_days=draw(st.sampled_from([None, 1, 3, 9, 40])),
    )


@st.composite
def schedules(draw: st.DrawFn) -> list[Package]:
    """One package from 2024-03-18, or two with a switch within 40 days."""
    start, salary = date(2024, 3, 18), Money.parse("100000")
    first, second = draw(allowances()), draw(st.none() | allowances())
    if second is None:
        return [Package(salary, first, start)]
    switch = start + timedelta(days=draw(st.integers(1, 40)))
    return [
        Package(salary, first, start, switch - timedelta(days=1)),
        Package(salary, second, switch),
    ]


@settings(max_examples=60, deadline=None)
@given(
    packages=schedules(),
    tz=st.sampled_from(["UTC", BERLIN, NY, "Asia/Kolkata"]),
    spent=st.lists(st.integers(1, 15), max_size=4),
    steps_h=st.lists(st.integers(1, 100), min_size=1, max_size=25),
)
def test_running_at_any_intermediate_times_gives_the_same_ledger(
    packages: list[Package], tz: str, spent: list[int], steps_h: list[int]
) -> None:
    often, once = Book(packages, tz), Book(packages, tz)
    t0 = local(2024, 3, 20, tz, hour=13)
    for book in (often, once):
        book.run(t0)
        for i, dollars in enumerate(spent):  # usage before the runs diverge
            book.spend(str(dollars), t0 - timedelta(hours=i + 1))
    since, now = t0, t0
    for hours in steps_h:
        now = now + timedelta(hours=hours)
        often.run(now, since)
        since = now
    once.run(now, t0)
    assert once.rows() == often.rows()
    assert [(e.meta, e.expires_utc) for e in once.entries] == [
        (e.meta, e.expires_utc) for e in often.entries
    ]
    assert once.plan(now) == []
