"""Ledger invariants under hypothesis.

1. After any valid sequence of grants, usage, expiries, adjustments, rollover notes and
   reversals over several accounts, appended in any batch split and with any number of
   repeated (idempotent) appends, every balance is the sum of its entries and every chain
   verifies.
2. After any single tampering (an edited field of any entry, with or without its own hash
   recomputed; a deleted, swapped or forged entry; a truncated tail; a changed head)
   verification fails, names the tampered account, and its first problem sits at or before
   the entry after the tampered position.

Each property runs on the pure core functions, on SQLite through the repository and raw
SQL, and (fewer examples) on both real databases through the ``db`` fixture.
"""

from __future__ import annotations

import dataclasses
import shutil
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Connection, delete, insert, select, update

from tokenwage.core import ledger
from tokenwage.core.allowances import reverse
from tokenwage.core.ledger import (
    GENESIS_HASH,
    ChainProblem,
    Entry,
    EntryDraft,
    EntryKind,
    Head,
    entry_hash,
    verify_chain,
)
from tokenwage.storage.db import Database
from tokenwage.storage.ledger_repo import LedgerRepo
from tokenwage.storage.schema import accounts, ledger_entries

ACCOUNTS = ("person:1", "person:2", "pool:core")
SPARE = "person:99"  # exists, empty: somewhere to move a stolen entry to
T0 = datetime(2026, 1, 1, tzinfo=UTC)
MAX_USD = 10**15  # a million dollars in nanousd

# -- operations ---------------------------------------------------------------------------
Op = tuple[str, str, int, int, int, str, dict[str, Any]]
SAFE_TEXT = st.text(
    st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), max_size=12
)
META = st.dictionaries(
    st.sampled_from(["model", "source", "request_id", "tokens", "note"]),
    st.one_of(st.integers(-(2**53), 2**53), SAFE_TEXT),
    max_size=3,
)
PLAIN = ["grant", "usage", "expiry", "adjustment", "rollover"]


def ops(kinds: list[str]) -> st.SearchStrategy[Op]:
    return st.tuples(
        st.sampled_from(kinds),
        st.sampled_from(ACCOUNTS),
        st.integers(-MAX_USD, MAX_USD),
        st.integers(0, 10**6),  # picks the entry to reverse or the draft to replay
        st.integers(0, 10**12),  # microseconds after T0: when it takes effect
        SAFE_TEXT,
        META,
    )


OP = ops([*PLAIN, "reverse", "replay"])
BATCHES = st.lists(st.lists(OP, min_size=1, max_size=6), min_size=1, max_size=6)


class Plan:
    """Turns drawn operations into drafts, against what has been booked so far."""

    def __init__(self) -> None:
        self.drafts: list[EntryDraft] = []  # every draft made, replays included
        self.booked: dict[str, list[Entry]] = {a: [] for a in ACCOUNTS}
        self._refs = 0

    def draft(self, op: Op, now: datetime) -> EntryDraft:
        kind, account, amount, pick, micros, memo, meta = op
        reversible = [e for e in self.booked[account] if e.amount_nanousd]
        if kind == "replay" and self.drafts:
            made = self.drafts[pick % len(self.drafts)]
        elif kind == "reverse" and reversible:
            reason = memo if memo.strip() else "correction"
            made = reverse(reversible[pick % len(reversible)], reason, now)
        else:
            made = self._new(kind, account, amount, T0 + timedelta(microseconds=micros), memo, meta)
        self.drafts.append(made)
        return made

    def _new(
        self, kind: str, account: str, amount: int, when: datetime, memo: str, meta: Any
    ) -> EntryDraft:
        self._refs += 1
        ref = f"op:{self._refs}"
        if kind == "usage":
            return EntryDraft(account, EntryKind.USAGE, -abs(amount), when, ref, memo, meta=meta)
        if kind == "expiry":
            return EntryDraft(account, EntryKind.EXPIRY, -abs(amount), when, ref, memo)
        if kind == "adjustment":
            return EntryDraft(account, EntryKind.ADJUSTMENT, amount, when, ref, memo, meta=meta)
        if kind == "rollover":
            return EntryDraft(account, EntryKind.ROLLOVER, 0, when, ref, memo, meta={"c": amount})
        expires = when + timedelta(days=30) if amount % 2 else None
        return EntryDraft(account, EntryKind.GRANT, abs(amount), when, ref, memo, expires, meta)


def recorded(batch: int) -> datetime:
    return T0 + timedelta(days=40, hours=batch)


# -- the pure core ------------------------------------------------------------------------
def chain_in_core(
    batches: Sequence[Sequence[Op]], sums: dict[str, int] | None = None
) -> tuple[dict[str, list[Entry]], dict[str, Head]]:
    """What the store does, in memory: skip refs seen before, chain the rest per account.
    ``sums`` collects each account's total of the drafts kept (the model of its balance)."""
    plan, heads, seen = Plan(), {a: Head() for a in ACCOUNTS}, set()
    for i, batch in enumerate(batches):
        fresh: dict[str, list[EntryDraft]] = {}
        for op in batch:
            d = plan.draft(op, recorded(i))
            if d.ref not in seen:
                seen.add(d.ref)
                fresh.setdefault(d.account, []).append(d)
                if sums is not None:
                    sums[d.account] += d.amount_nanousd
        for account, drafts in fresh.items():
            entries, heads[account] = ledger.append(heads[account], drafts, recorded(i))
            plan.booked[account] += entries
    ids = iter(range(1, 10**9))
    chains = {
        a: [dataclasses.replace(e, id=next(ids)) for e in es] for a, es in plan.booked.items()
    }
    return chains, heads


@settings(max_examples=100, deadline=None)
@given(BATCHES)
def test_core_balance_is_the_sum_and_every_chain_verifies(batches: list[list[Op]]) -> None:
    expected = dict.fromkeys(ACCOUNTS, 0)
    chains, heads = chain_in_core(batches, expected)
    for account in ACCOUNTS:
        entries, head = chains[account], heads[account]
        assert head.balance_nanousd == ledger.balance_of(entries) == expected[account]
        assert [e.seq for e in entries] == list(range(1, len(entries) + 1))
        assert head.seq == len(entries)
        assert list(verify_chain(account, entries, head)) == []


@settings(max_examples=100, deadline=None)
@given(st.lists(ops(PLAIN), max_size=15), st.data())
def test_core_chain_does_not_depend_on_how_drafts_are_split_into_batches(
    drawn: list[Op], data: st.DataObject
) -> None:
    drafts = [Plan().draft(op, T0) for op in drawn]
    drafts = [dataclasses.replace(d, ref=f"r{i}", account="person:1") for i, d in enumerate(drafts)]
    whole, whole_head = ledger.append(Head(), drafts, T0)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(drafts)), max_size=4)))
    pieces, head = [], Head()
    for lo, hi in zip([0, *cuts], [*cuts, len(drafts)], strict=True):
        entries, head = ledger.append(head, drafts[lo:hi], T0)
        pieces += entries
    assert pieces == whole and head == whole_head
    assert whole_head.balance_nanousd == sum(d.amount_nanousd for d in drafts)


# -- tampering ----------------------------------------------------------------------------
FIELDS = (
    "kind",
    "amount_nanousd",
    "effective_utc",
    "recorded_utc",
    "ref",
    "memo",
    "expires_utc",
    "meta",
    "prev_hash",
    "hash",
    "account",
)
RESEALABLE = tuple(f for f in FIELDS if f not in ("hash", "account"))
HOW = ("edit", "reseal", "delete", "swap", "forge", "truncate", "head")


@dataclass(frozen=True)
class Tamper:
    how: str
    account: str
    position: int  # seq of the tampered entry (for "head": the last seq)
    other: int = 0  # swap: the later seq
    field: str = ""  # edit: which field
    head_part: str = ""  # head: seq, hash or bal(ance)


@st.composite
def tampers(draw: st.DrawFn, chains: dict[str, list[Entry]]) -> Tamper:
    filled = [a for a in ACCOUNTS if chains[a]]
    how = draw(st.sampled_from(HOW))
    if how == "swap":
        filled = [a for a in filled if len(chains[a]) >= 2] or filled
        if len(chains[filled[0]]) < 2:
            how = "edit"
    account = draw(st.sampled_from(filled))
    n = len(chains[account])
    if how == "head":
        return Tamper("head", account, n, head_part=draw(st.sampled_from(["seq", "hash", "bal"])))
    if how == "forge":
        return Tamper("forge", account, draw(st.integers(1, n + 1)))
    if how == "swap":
        i = draw(st.integers(1, n - 1))
        return Tamper("swap", account, i, other=draw(st.integers(i + 1, n)))
    position = draw(st.integers(1, n))
    field = draw(st.sampled_from(RESEALABLE if how == "reseal" else FIELDS))
    return Tamper(how, account, position, field=field)


def resealed(e: Entry, field: str) -> Entry:
    """``e`` with ``field`` edited and its own hash recomputed, as a careful forger would."""
    changed = dataclasses.replace(e, **{field: edited(e, field)})
    return dataclasses.replace(changed, hash=entry_hash(changed.canonical()))


def edited(e: Entry, field: str) -> Any:
    """A different value for ``field`` of ``e`` (a real change, not a re-spelling)."""
    if field == "kind":
        return next(k for k in EntryKind if k != e.kind)
    if field == "amount_nanousd":
        return e.amount_nanousd + 1
    if field in ("effective_utc", "recorded_utc"):
        return getattr(e, field) + timedelta(seconds=1)
    if field == "expires_utc":
        return None if e.expires_utc else T0
    if field == "meta":
        return {**e.meta, "tampered": 1}
    if field in ("prev_hash", "hash"):
        value = getattr(e, field)
        return ("1" if value[0] == "0" else "0") + value[1:]
    if field == "account":
        return SPARE
    return getattr(e, field) + "~"


def forged(chain: Sequence[Entry], position: int) -> Entry:
    """A well-formed entry at ``position``, linked to the one before it."""
    prev = chain[position - 2].hash if position > 1 else GENESIS_HASH
    account = chain[0].account
    draft = EntryDraft(account, EntryKind.GRANT, 10**9, T0, f"forged:{account}:{position}")
    (entry,), _ = ledger.append(Head(seq=position - 1, hash=prev), [draft], T0)
    return entry


def tamper_in_core(
    chains: dict[str, list[Entry]], heads: dict[str, Head], t: Tamper
) -> dict[str, tuple[list[Entry], Head]]:
    books = {a: (list(chains[a]), heads[a]) for a in ACCOUNTS}
    books[SPARE] = ([], Head())
    chain, head = books[t.account]
    p = t.position
    if t.how == "edit" and t.field == "account":
        books[SPARE] = ([dataclasses.replace(chain[p - 1], account=SPARE)], Head())
        del chain[p - 1]
    elif t.how == "edit":
        chain[p - 1] = dataclasses.replace(chain[p - 1], **{t.field: edited(chain[p - 1], t.field)})
    elif t.how == "reseal":
        chain[p - 1] = resealed(chain[p - 1], t.field)
    elif t.how == "delete":
        del chain[p - 1]
    elif t.how == "truncate":
        del chain[p - 1 :]
    elif t.how == "swap":
        a, b = chain[p - 1], chain[t.other - 1]
        chain[p - 1], chain[t.other - 1] = (
            dataclasses.replace(b, seq=a.seq),
            dataclasses.replace(a, seq=b.seq),
        )
    elif t.how == "forge":
        chain[p - 1 :] = [
            forged(chain, p),
            *(dataclasses.replace(e, seq=e.seq + 1) for e in chain[p - 1 :]),
        ]
    else:
        books[t.account] = (chain, changed_head(head, t.head_part))
    return books


def changed_head(head: Head, part: str) -> Head:
    if part == "seq":
        return dataclasses.replace(head, seq=head.seq + 1)
    if part == "hash":
        return dataclasses.replace(head, hash=("1" if head.hash[0] == "0" else "0") + head.hash[1:])
    return dataclasses.replace(head, balance_nanousd=head.balance_nanousd + 1)


def assert_caught(problems: list[ChainProblem], t: Tamper, chain_left: int) -> None:
    assert problems, f"{t} was not detected"
    tampered = {t.account, SPARE} if t.field == "account" else {t.account}
    assert problems[0].account in tampered, f"{t}: first problem is {problems[0]}"
    mine = [p for p in problems if p.account == t.account]
    assert mine, f"{t}: no problem names {t.account}: {problems}"
    first = mine[0]
    if first.seq is None:  # only a head or an emptied chain has no entry to name
        assert t.how == "head" or chain_left == 0, f"{t}: {first}"
    else:
        assert first.seq <= t.position + 1, f"{t}: first problem {first}"


@settings(max_examples=200, deadline=None)
@given(BATCHES, st.data())
def test_core_any_single_tampering_is_caught(batches: list[list[Op]], data: st.DataObject) -> None:
    chains, heads = chain_in_core(batches)
    t = data.draw(tampers(chains))
    books = tamper_in_core(chains, heads, t)
    problems = [p for a, (es, head) in books.items() for p in verify_chain(a, es, head)]
    # the order ``LedgerRepo.verify`` uses: the tampered account's problems come in order
    assert_caught(problems, t, len(books[t.account][0]))


# -- the store: SQLite via the repository and raw SQL, then both real databases -----------
def reset(conn: Connection) -> None:
    conn.execute(delete(ledger_entries))
    conn.execute(delete(accounts))


def book(db: Database, batches: Sequence[Sequence[Op]]) -> dict[str, list[Entry]]:
    """Append every batch in its own transaction, each a second time too, and check the
    balances and the chains against a model that keeps the first draft of each ref."""
    plan, seen = Plan(), set()
    expected: dict[str, list[EntryDraft]] = {a: [] for a in ACCOUNTS}
    with db.begin() as conn:
        reset(conn)
        repo = LedgerRepo(conn)
        for key in (*ACCOUNTS, SPARE):
            repo.ensure_account(key)
    for i, batch in enumerate(batches):
        drafts = [plan.draft(op, recorded(i)) for op in batch]
        fresh = []
        for d in drafts:
            if d.ref not in seen:
                seen.add(d.ref)
                fresh.append(d)
        with db.begin() as conn:
            repo = LedgerRepo(conn)
            written = repo.append(drafts, recorded(i))
            assert sorted(e.ref for e in written) == sorted(d.ref for d in fresh)
            assert repo.append(drafts, recorded(i) + timedelta(minutes=1)) == []  # idempotent
        for d in fresh:
            expected[d.account].append(d)
        for e in written:
            plan.booked[e.account].append(e)
    with db.begin() as conn:
        repo = LedgerRepo(conn)
        chains = {a: repo.entries(a) for a in ACCOUNTS}
        for a in ACCOUNTS:
            entries = chains[a]
            assert [(e.ref, e.kind, e.amount_nanousd, e.memo, dict(e.meta)) for e in entries] == [
                (d.ref, d.kind, d.amount_nanousd, d.memo, dict(d.meta)) for d in expected[a]
            ]
            assert (
                repo.balance(a)
                == ledger.balance_of(entries)
                == sum(d.amount_nanousd for d in expected[a])
            )
        assert list(repo.verify()) == []
    return chains


def tamper_in_store(db: Database, chains: dict[str, list[Entry]], t: Tamper) -> int:
    """Apply ``t`` with raw SQL, behind the repository's back; return entries left."""
    chain = chains[t.account]
    p = t.position
    with db.begin() as conn:
        ids = {a.key: a.id for a in LedgerRepo(conn).all_accounts()}
        account_id = ids[t.account]
        row = ledger_entries.c
        at = (row.account_id == account_id) & (row.seq == p)
        if t.how == "edit":
            column, value = t.field, edited(chain[p - 1], t.field)
            if t.field == "account":
                column, value = "account_id", ids[SPARE]
            elif t.field == "meta":
                value = orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
            conn.execute(update(ledger_entries).where(at).values({column: value}))
        elif t.how == "reseal":
            e = resealed(chain[p - 1], t.field)
            values = {t.field: getattr(e, t.field), "hash": e.hash}
            if t.field == "meta":
                values["meta"] = orjson.dumps(dict(e.meta), option=orjson.OPT_SORT_KEYS).decode()
            conn.execute(update(ledger_entries).where(at).values(values))
        elif t.how == "delete":
            conn.execute(delete(ledger_entries).where(at))
        elif t.how == "truncate":
            conn.execute(delete(ledger_entries).where(row.account_id == account_id, row.seq >= p))
        elif t.how == "swap":
            other = (row.account_id == account_id) & (row.seq == t.other)
            conn.execute(update(ledger_entries).where(at).values(seq=-1))
            conn.execute(update(ledger_entries).where(other).values(seq=p))
            conn.execute(
                update(ledger_entries)
                .where(row.account_id == account_id, row.seq == -1)
                .values(seq=t.other)
            )
        elif t.how == "forge":
            later = (row.account_id == account_id) & (row.seq >= p)
            conn.execute(update(ledger_entries).where(later).values(seq=-(row.seq + 1)))
            conn.execute(
                update(ledger_entries)
                .where(row.account_id == account_id, row.seq < 0)
                .values(seq=-row.seq)
            )
            conn.execute(insert(ledger_entries).values(forged_row(account_id, forged(chain, p))))
        else:
            head = {"seq": "head_seq", "hash": "head_hash", "bal": "balance_nanousd"}[t.head_part]
            value = changed_head(LedgerRepo(conn).account(t.account).head, t.head_part)
            new = {"seq": value.seq, "hash": value.hash, "bal": value.balance_nanousd}
            conn.execute(
                update(accounts).where(accounts.c.id == account_id).values({head: new[t.head_part]})
            )
        left = conn.execute(select(ledger_entries.c.id).where(row.account_id == account_id))
        return len(left.all())


def forged_row(account_id: int, e: Entry) -> dict[str, Any]:
    return {
        "account_id": account_id,
        "seq": e.seq,
        "kind": str(e.kind),
        "amount_nanousd": e.amount_nanousd,
        "effective_utc": e.effective_utc,
        "recorded_utc": e.recorded_utc,
        "ref": e.ref,
        "memo": e.memo,
        "expires_utc": e.expires_utc,
        "meta": "{}",
        "prev_hash": e.prev_hash,
        "hash": e.hash,
    }


def verify(db: Database) -> list[ChainProblem]:
    with db.begin() as conn:
        return list(LedgerRepo(conn).verify())


@pytest.fixture(scope="module")
def sqlite_db(
    sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Database]:
    path = tmp_path_factory.mktemp("properties") / "ledger.db"
    shutil.copy(sqlite_template, path)
    database = Database(f"sqlite:///{path}")
    try:
        yield database
    finally:
        database.dispose()


@settings(max_examples=40, deadline=None)
@given(BATCHES)
def test_sqlite_balances_are_sums_and_appends_are_idempotent(
    sqlite_db: Database, batches: list[list[Op]]
) -> None:
    book(sqlite_db, batches)


@settings(max_examples=50, deadline=None)
@given(BATCHES, st.data())
def test_sqlite_any_single_tampering_is_caught(
    sqlite_db: Database, batches: list[list[Op]], data: st.DataObject
) -> None:
    chains = book(sqlite_db, batches)
    t = data.draw(tampers(chains))
    left = tamper_in_store(sqlite_db, chains, t)
    assert_caught(verify(sqlite_db), t, left)


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    batches=st.lists(st.lists(OP, min_size=1, max_size=4), min_size=1, max_size=4), data=st.data()
)
def test_real_databases_keep_sums_and_catch_tampering(
    db: Database, batches: list[list[Op]], data: st.DataObject
) -> None:
    """The ``db`` fixture is set up once for all examples; ``book`` empties it each time."""
    chains = book(db, batches)
    t = data.draw(tampers(chains))
    left = tamper_in_store(db, chains, t)
    assert_caught(verify(db), t, left)
