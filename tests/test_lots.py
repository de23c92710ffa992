"""Lot accounting: which lot each debit takes from, debt, and the lot invariants."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from itertools import count
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tokenwage.core.errors import InvalidInput
from tokenwage.core.ledger import Entry, EntryDraft, EntryKind, Head, append
from tokenwage.core.lots import LotReplay, Moment, Posting, lot_state

ACCOUNT = "person:7"
T0 = datetime(2024, 1, 1, tzinfo=UTC)
_REFS = count(1)


def at(days: float) -> datetime:
    return T0 + timedelta(days=days)


def draft(
    kind: EntryKind,
    amount: int,
    day: float = 0,
    *,
    expires: float | None = None,
    **meta: Any,
) -> EntryDraft:
    return EntryDraft(
        account=ACCOUNT,
        kind=kind,
        amount_nanousd=amount,
        effective_utc=at(day),
        ref=f"test:{next(_REFS)}",
        expires_utc=at(expires) if expires is not None else None,
        meta=meta,
    )


def grant(amount: int, day: float = 0, expires: float | None = None, source: str = "allowance"):
    return draft(EntryKind.GRANT, amount, day, expires=expires, source=source)


def usage(amount: int, day: float = 1) -> EntryDraft:
    return draft(EntryKind.USAGE, -amount, day)


def chained(drafts: Sequence[EntryDraft]) -> list[Entry]:
    entries, _ = append(Head(), drafts, T0 + timedelta(days=400))
    return entries


def remaining(entries: Sequence[Entry], as_of: datetime | None = None) -> dict[int, int]:
    return {lot.seq: lot.remaining_nanousd for lot in lot_state(entries, as_of).lots}


def test_every_positive_entry_opens_a_lot_and_allowance_is_told_apart() -> None:
    entries = chained(
        [
            grant(100, expires=31),
            grant(50, source="one-off"),
            draft(EntryKind.ADJUSTMENT, 20, 2),
            draft(EntryKind.ROLLOVER, 0, 31, carried_nanousd=100),
        ]
    )
    state = lot_state(entries)
    assert [(lot.seq, lot.amount_nanousd, lot.is_allowance) for lot in state.lots] == [
        (1, 100, True),
        (2, 50, False),
        (3, 20, False),
    ]
    assert state.lots[0].expires_utc == at(31)
    assert state.lot(4) is None  # a rollover note opens nothing
    assert state.balance_nanousd == 170 and state.debt_nanousd == 0
    assert state.allowance_remaining_nanousd == 100


def test_usage_takes_the_soonest_expiring_lot_first_and_never_expiring_last() -> None:
    entries = chained(
        [
            grant(100, source="one-off"),  # never expires
            grant(100, expires=40),
            grant(100, expires=20),
            grant(100, expires=20),  # same expiry: the older seq goes first
            usage(150, 1),
            usage(100, 2),
        ]
    )
    assert remaining(entries, as_of=at(2)) == {1: 100, 2: 100, 3: 0, 4: 50}
    assert remaining(entries) == {1: 100, 2: 50, 3: 0, 4: 0}


def test_negative_adjustment_spends_like_usage() -> None:
    entries = chained([grant(10), grant(10, expires=5), draft(EntryKind.ADJUSTMENT, -15, 1)])
    assert remaining(entries) == {1: 5, 2: 0}


def test_expiry_takes_exactly_the_named_lot_and_a_shortfall_is_debt() -> None:
    entries = chained(
        [
            grant(100, expires=30),
            grant(100, expires=10),
            draft(EntryKind.EXPIRY, -60, 30, lot_seq=1),
            draft(EntryKind.EXPIRY, -70, 30, lot_seq=1),  # only 40 left in lot 1
        ]
    )
    state = lot_state(entries)
    assert remaining(entries) == {1: 0, 2: 100}  # lot 2 expires sooner yet is untouched
    assert state.debt_nanousd == 30
    assert state.balance_nanousd == 100 - 30


def test_expiry_without_a_known_lot_spends_like_usage() -> None:
    entries = chained(
        [grant(100), grant(100, expires=5), draft(EntryKind.EXPIRY, -30, 6, lot_seq=99)]
    )
    assert remaining(entries) == {1: 100, 2: 70}


def test_reversed_grant_takes_its_own_lot_first_then_spends_like_usage() -> None:
    entries = chained(
        [
            grant(100, expires=5),
            grant(100, expires=50),
            usage(30),  # from lot 1, the sooner to expire
            draft(EntryKind.REVERSAL, -100, 2, reverses_seq=2, reverses_ref="x"),
            draft(EntryKind.REVERSAL, -100, 3, reverses_seq=1, reverses_ref="y"),
        ]
    )
    state = lot_state(entries)
    assert remaining(entries) == {1: 0, 2: 0}
    assert state.debt_nanousd == 30  # lot 1 had only 70 left to take back


def test_positive_reversal_opens_a_lot() -> None:
    entries = chained(
        [grant(100), usage(40), draft(EntryKind.REVERSAL, 40, 3, reverses_seq=2, reverses_ref="u")]
    )
    assert remaining(entries) == {1: 60, 3: 40}


def test_overdraft_debt_is_repaid_by_the_next_positive_entry() -> None:
    entries = chained([grant(100, expires=1), usage(130, 0.5), grant(100, 1, expires=2)])
    state = lot_state(entries)
    assert remaining(entries) == {1: 0, 3: 70}
    assert state.debt_nanousd == 0 and state.balance_nanousd == 70
    repaying = state.lot(3)
    assert repaying is not None and repaying.repaid_debt_nanousd == 30

    short = chained([usage(130, 0.5), grant(100, 1)])
    state = lot_state(short)
    assert remaining(short) == {2: 0}
    assert (state.debt_nanousd, state.balance_nanousd) == (30, -30)


def test_as_of_counts_only_entries_effective_strictly_before_it() -> None:
    entries = chained([grant(100), usage(10, 1), usage(20, 2)])
    assert remaining(entries, as_of=at(2)) == {1: 90}
    assert remaining(entries, as_of=at(2) + timedelta(microseconds=1)) == {1: 70}
    assert lot_state(entries, as_of=at(0)).lots == ()
    with pytest.raises(InvalidInput, match="no time zone"):
        lot_state(entries, as_of=datetime(2024, 1, 1))


def test_entries_are_processed_in_seq_order_whatever_the_order_given() -> None:
    entries = chained([grant(100, 5), usage(30, 1)])  # the usage was recorded after the grant
    assert remaining(list(reversed(entries))) == {1: 70}
    with pytest.raises(InvalidInput, match="share seq 1"):
        lot_state([entries[0], entries[0]])


# -- invariants over random ledgers --------------------------------------------------------


@st.composite
def ledgers(draw: st.DrawFn) -> list[Entry]:
    drafts: list[EntryDraft] = []
    for _ in range(draw(st.integers(0, 30))):
        seq_count = len(drafts)
        choice = draw(st.sampled_from(["grant", "usage", "adjust", "expiry", "reversal", "note"]))
        day = draw(st.integers(0, 60))
        amount = draw(st.integers(1, 500))
        if choice == "grant":
            expires = draw(st.none() | st.integers(day + 1, 90))
            source = draw(st.sampled_from(["allowance", "one-off", "pool"]))
            drafts.append(grant(amount, day, expires, source))
        elif choice == "usage":
            drafts.append(usage(amount, day))
        elif choice == "adjust":
            drafts.append(draft(EntryKind.ADJUSTMENT, draw(st.sampled_from([1, -1])) * amount, day))
        elif choice == "expiry":
            lot_seq = draw(st.integers(0, seq_count + 1))
            drafts.append(draft(EntryKind.EXPIRY, -amount, day, lot_seq=lot_seq))
        elif choice == "reversal" and seq_count:
            target = draw(st.integers(1, seq_count))
            undone = -drafts[target - 1].amount_nanousd
            if undone:
                drafts.append(
                    draft(EntryKind.REVERSAL, undone, day, reverses_seq=target, reverses_ref="r")
                )
        else:
            drafts.append(draft(EntryKind.ROLLOVER, 0, day, carried_nanousd=amount))
    return chained(drafts)


@settings(max_examples=300)
@given(ledgers(), st.none() | st.integers(0, 61))
def test_lots_always_add_up_to_the_balance(entries: list[Entry], as_of_day: int | None) -> None:
    as_of = at(as_of_day) if as_of_day is not None else None
    counted = [e for e in entries if as_of is None or e.effective_utc < as_of]
    state = lot_state(entries, as_of)

    total_remaining = sum(lot.remaining_nanousd for lot in state.lots)
    assert total_remaining - state.debt_nanousd == state.balance_nanousd
    assert state.balance_nanousd == sum(e.amount_nanousd for e in counted)
    assert state.debt_nanousd >= 0
    for lot in state.lots:
        assert 0 <= lot.remaining_nanousd <= lot.amount_nanousd - lot.repaid_debt_nanousd
    assert [lot.seq for lot in state.lots] == [e.seq for e in counted if e.amount_nanousd > 0]


@settings(max_examples=200)
@given(ledgers())
def test_usage_never_leaves_debt_while_a_lot_still_holds_money(entries: list[Entry]) -> None:
    spending_only = [e for e in entries if e.kind is not EntryKind.EXPIRY]
    state = lot_state(spending_only)
    if state.debt_nanousd:
        assert not state.open_lots


def _moment(entry: Posting) -> Moment:
    return (entry.effective_utc, 0 if entry.kind is EntryKind.EXPIRY else 1)


@settings(max_examples=200)
@given(
    ledgers(),
    st.lists(st.tuples(st.integers(0, 62 * 2), st.integers(0, 2)), max_size=12),
    st.integers(0, 30),
)
def test_a_replay_matches_folding_the_entries_that_happened(
    entries: list[Entry], moments: list[tuple[int, int]], added_late: int
) -> None:
    replay = LotReplay(_moment)
    early, late = entries[: len(entries) - added_late], entries[len(entries) - added_late :]
    for entry in early:
        replay.add(entry)
    for step, (half_day, rank) in enumerate(sorted(moments)):
        moment = (at(half_day / 2), rank)
        if step == len(moments) // 2:  # the rest of the chain arrives mid-way
            for entry in late:
                replay.add(entry)
            early = entries
        expected = lot_state(e for e in early if _moment(e) < moment)
        assert replay.before(moment) == expected


def test_a_replay_refuses_to_go_back_in_time() -> None:
    replay = LotReplay(_moment)
    replay.before((at(2), 0))
    with pytest.raises(ValueError, match="only move forward"):
        replay.before((at(1), 0))
