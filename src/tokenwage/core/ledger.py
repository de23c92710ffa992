"""The append-only, hash-chained ledger (pure part).

Every account (``person:<id>``, ``pool:<team>``, ``unattributed``) has its own chain of
entries numbered ``seq = 1, 2, 3, ...``. Each entry's ``hash`` is the SHA-256 of its
canonical content, which includes the previous entry's hash, so changing, removing,
inserting or reordering any entry breaks the chain from that point on. The account row
keeps the head (last ``seq`` and ``hash``) so a removed tail is caught too.

Amounts are signed: credits are positive, debits negative. A balance is the sum of its
entries, always. Corrections are new ``reversal`` or ``adjustment`` entries, never edits.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import orjson

from tokenwage.core.errors import InvalidInput

GENESIS_HASH = "0" * 64
# Far above any real amount ($1 billion) and far below a signed 64-bit column's limit.
MAX_ENTRY_NANOUSD = 10**18
CHAIN_VERSION = 1


class EntryKind(StrEnum):
    GRANT = "grant"  # periodic allowance, one-off award, pool funding (credit)
    USAGE = "usage"  # tokens spent (debit)
    ROLLOVER = "rollover"  # carry noted at a period end: amount 0, meta.carried_nanousd
    EXPIRY = "expiry"  # unused grant that lapsed (debit)
    ADJUSTMENT = "adjustment"  # a correction either way, with a memo
    REVERSAL = "reversal"  # exactly undoes one earlier entry (meta.reverses_seq)


CREDIT_KINDS = frozenset({EntryKind.GRANT})
DEBIT_KINDS = frozenset({EntryKind.USAGE, EntryKind.EXPIRY})


def utc(ts: datetime) -> datetime:
    if ts.tzinfo is None:
        raise InvalidInput(f"timestamp {ts.isoformat()} has no time zone")
    return ts if ts.tzinfo is UTC else ts.astimezone(UTC)


def iso(ts: datetime) -> str:
    """``2026-11-23T18:00:00.000000Z``: always microseconds, always Z (hashed, so fixed)."""
    u = utc(ts)
    if u.year < 1000:  # isoformat would not pad the year the way strftime does
        return u.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return u.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


@dataclass(frozen=True)
class EntryDraft:
    """An entry before it has a place in a chain."""

    account: str
    kind: EntryKind
    amount_nanousd: int
    effective_utc: datetime
    ref: str  # idempotency key, unique across the ledger
    memo: str = ""
    expires_utc: datetime | None = None
    meta: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if isinstance(self.amount_nanousd, bool) or not isinstance(self.amount_nanousd, int):
            raise TypeError("amount_nanousd must be an int")
        if self.kind in CREDIT_KINDS and self.amount_nanousd < 0:
            raise InvalidInput(f"a {self.kind} entry must not be negative")
        if self.kind in DEBIT_KINDS and self.amount_nanousd > 0:
            raise InvalidInput(f"a {self.kind} entry must not be positive")
        if self.kind is EntryKind.ROLLOVER and self.amount_nanousd != 0:
            raise InvalidInput("a rollover entry carries amount 0 (the carry is in meta)")
        if not self.ref:
            raise InvalidInput("every ledger entry needs a ref (its idempotency key)")
        if abs(self.amount_nanousd) > MAX_ENTRY_NANOUSD:
            raise InvalidInput(f"a ledger entry of {self.amount_nanousd} nanousd is out of range")
        if "\x00" in self.ref or "\x00" in self.memo or len(self.ref) > 200:
            raise InvalidInput("a ledger ref must be at most 200 characters, without NUL")
        _check_no_floats(self.meta)


@dataclass(frozen=True)
class Entry:
    """An entry in its chain. ``id`` is the store's row id (not hashed)."""

    account: str
    seq: int
    kind: EntryKind
    amount_nanousd: int
    effective_utc: datetime
    recorded_utc: datetime
    ref: str
    memo: str
    expires_utc: datetime | None
    meta: Mapping[str, Any]
    prev_hash: str
    hash: str
    id: int | None = None

    def canonical(self) -> bytes:
        return canonical_bytes(
            account=self.account,
            seq=self.seq,
            kind=self.kind,
            amount_nanousd=self.amount_nanousd,
            effective_utc=self.effective_utc,
            recorded_utc=self.recorded_utc,
            ref=self.ref,
            memo=self.memo,
            expires_utc=self.expires_utc,
            meta=self.meta,
            prev_hash=self.prev_hash,
        )


@dataclass(frozen=True)
class Head:
    """Where an account's chain ends."""

    seq: int = 0
    hash: str = GENESIS_HASH
    balance_nanousd: int = 0


def canonical_bytes(
    *,
    account: str,
    seq: int,
    kind: str,
    amount_nanousd: int,
    effective_utc: datetime,
    recorded_utc: datetime,
    ref: str,
    memo: str,
    expires_utc: datetime | None,
    meta: Mapping[str, Any],
    prev_hash: str,
) -> bytes:
    """The exact bytes an entry's hash covers: compact JSON, keys sorted, times in UTC."""
    return orjson.dumps(
        {
            "v": CHAIN_VERSION,
            "account": account,
            "seq": seq,
            "kind": str(kind),
            "amount_nanousd": amount_nanousd,
            "effective_utc": iso(effective_utc),
            "recorded_utc": iso(recorded_utc),
            "ref": ref,
            "memo": memo,
            "expires_utc": iso(expires_utc) if expires_utc else None,
            "meta": dict(meta),
            "prev_hash": prev_hash,
        },
        option=orjson.OPT_SORT_KEYS,
    )


def entry_hash(canonical: bytes) -> str:
    return hashlib.sha256(canonical).hexdigest()


def append(
    head: Head, drafts: Iterable[EntryDraft], recorded_utc: datetime
) -> tuple[list[Entry], Head]:
    """Chain ``drafts`` (all for one account) after ``head``; return the entries and new head."""
    out: list[Entry] = []
    seq, prev, balance = head.seq, head.hash, head.balance_nanousd
    recorded = utc(recorded_utc)
    for d in drafts:
        seq += 1
        effective = utc(d.effective_utc)
        expires = utc(d.expires_utc) if d.expires_utc else None
        meta = dict(d.meta)
        digest = entry_hash(
            canonical_bytes(
                account=d.account,
                seq=seq,
                kind=d.kind,
                amount_nanousd=d.amount_nanousd,
                effective_utc=effective,
                recorded_utc=recorded,
                ref=d.ref,
                memo=d.memo,
                expires_utc=expires,
                meta=meta,
                prev_hash=prev,
            )
        )
        out.append(
            Entry(
                account=d.account,
                seq=seq,
                kind=d.kind,
                amount_nanousd=d.amount_nanousd,
                effective_utc=effective,
                recorded_utc=recorded,
                ref=d.ref,
                memo=d.memo,
                expires_utc=expires,
                meta=meta,
                prev_hash=prev,
                hash=digest,
            )
        )
        prev = digest
        balance += d.amount_nanousd
    return out, Head(seq=seq, hash=prev, balance_nanousd=balance)


@dataclass(frozen=True)
class ChainProblem:
    account: str
    entry_id: int | None
    seq: int | None
    what: str

    def __str__(self) -> str:
        if self.entry_id is not None:
            return f"account {self.account}: entry id {self.entry_id} (seq {self.seq}): {self.what}"
        if self.seq is not None:
            return f"account {self.account}: seq {self.seq}: {self.what}"
        return f"account {self.account}: {self.what}"


def verify_chain(account: str, entries: Iterable[Entry], head: Head) -> Iterator[ChainProblem]:
    """Check one account's entries (ordered by ``seq``) against the chain and the head.

    Yields every problem found, the first bad entry first. An edited row fails its own
    hash; a removed row leaves a gap in ``seq`` and a broken link; an inserted or moved row
    breaks the link of the row after it; a removed tail disagrees with the head.
    """
    expected_seq, prev, balance = 1, GENESIS_HASH, 0
    last: Entry | None = None
    for e in entries:
        if e.account != account:
            yield ChainProblem(account, e.id, e.seq, f"belongs to account {e.account!r}")
        if e.seq != expected_seq:
            yield ChainProblem(
                account,
                e.id,
                e.seq,
                f"expected seq {expected_seq}: an entry was removed or inserted",
            )
        if e.prev_hash != prev:
            yield ChainProblem(
                account,
                e.id,
                e.seq,
                "does not link to the entry before it (removed, inserted or moved)",
            )
        if entry_hash(e.canonical()) != e.hash:
            yield ChainProblem(account, e.id, e.seq, "content does not match its hash (edited)")
        prev, balance, expected_seq, last = e.hash, balance + e.amount_nanousd, e.seq + 1, e
    if (last.seq if last else 0) != head.seq or prev != head.hash:
        yield ChainProblem(
            account,
            last.id if last else None,
            last.seq if last else None,
            f"chain ends at seq {last.seq if last else 0} "
            f"but the account head says seq {head.seq}: "
            "entries at the end were removed or the head was changed",
        )
    if balance != head.balance_nanousd:
        yield ChainProblem(
            account,
            None,
            None,
            f"stored balance {head.balance_nanousd} nanousd "
            f"differs from the sum of entries {balance}",
        )


def balance_of(entries: Sequence[Entry] | Iterable[Entry]) -> int:
    return sum(e.amount_nanousd for e in entries)


_PLAIN = (str, int, bool, type(None))


def _check_no_floats(value: Any) -> None:
    if type(value) in _PLAIN:
        return
    if isinstance(value, float):
        raise TypeError("ledger meta must not contain floats; use ints or strings")
    if isinstance(value, Mapping):
        for v in value.values():
            _check_no_floats(v)
    elif isinstance(value, list | tuple):
        for v in value:
            _check_no_floats(v)
