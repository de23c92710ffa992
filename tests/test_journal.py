"""The settlement journal and its folder: lines survive a dead writer, are booked once,
and a damaged line is kept aside with its reason, never lost silently."""

from __future__ import annotations

import dataclasses
import os
import shutil
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import func, select

from tokenwage.core.errors import StoreUnavailable
from tokenwage.core.keys import KeyInfo
from tokenwage.core.ledger import EntryKind
from tokenwage.core.money import Money
from tokenwage.core.package import CapMode
from tokenwage.core.pricing import Pricer, PricingPolicy
from tokenwage.core.usage import TokenUsage
from tokenwage.gateway import folder as folder_module
from tokenwage.gateway import holds
from tokenwage.gateway.config import GatewayConfig
from tokenwage.gateway.folder import (
    REJECTED,
    Folder,
    FolderLock,
    sqlite_journal_dir,
    start_folder_process,
    stop_folder_process,
)
from tokenwage.gateway.holds import Payer
from tokenwage.gateway.journal import (
    MARK_BYTES,
    DoneMarks,
    JournalWriter,
    decode,
    encode,
    folded_to,
    is_held,
    mark_bytes,
    parse_mark,
    read_done,
)
from tokenwage.gateway.meter import open_meter
from tokenwage.gateway.metrics import GatewayMetrics
from tokenwage.gateway.pacing import Pacer
from tokenwage.gateway.settlement import Settlement
from tokenwage.gateway.ticket import RequestFacts, Ticket
from tokenwage.services.sandbox import one_person_org
from tokenwage.storage.db import Database
from tokenwage.storage.ledger_repo import LedgerRepo
from tokenwage.storage.schema import usage_records

MODEL = "claude-sonnet-4-5"
USAGE = TokenUsage(input_tokens=900, output_tokens=120, cache_read_tokens=300)
WHEN = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)


@pytest.fixture
def db_url(tmp_path: Path, sqlite_template: Path) -> str:
    """Here, only SQLite: the journal is SQLite's (PostgreSQL settles directly)."""
    path = tmp_path / "tokenwage.db"
    shutil.copy(sqlite_template, path)
    return f"sqlite:///{path}"


def _settlement(rid: str, *, key_id: int = 1, usage: TokenUsage | None = USAGE) -> Settlement:
    facts = RequestFacts(rid, "anthropic.messages", "anthropic", MODEL, True, 900, 1024)
    key = KeyInfo(key_id, 1, "laptop", "tw_abc", ("claude-*",), WHEN - timedelta(days=3))
    priced = Pricer(PricingPolicy()).price(usage, "anthropic", MODEL, WHEN) if usage else None
    payer = Payer(1, "person:1", None, CapMode.HARD, Money(0))
    ticket = Ticket(facts, key, 1, MODEL, 5_000_000, 0.0, None)
    status = 200 if usage else 529
    return Settlement(ticket, payer, usage, priced, status, False, 812, WHEN, "req_up_1")


def _org(db: Database) -> None:
    with db.begin() as conn:
        one_person_org(conn, Money.parse("100"), key_name="laptop")


def _booked(db: Database) -> tuple[list[str], int]:
    with db.begin() as conn:
        ids = sorted(conn.execute(select(usage_records.c.request_id)).scalars())
        debits = [e for e in LedgerRepo(conn).entries("person:1") if e.kind is EntryKind.USAGE]
        assert list(LedgerRepo(conn).verify()) == []
    return ids, sum(e.amount_nanousd for e in debits)


def test_a_line_decodes_to_the_settlement_it_was() -> None:
    s = _settlement("twr_1")
    back = decode(encode(s))
    assert back.ticket.facts == s.ticket.facts
    assert back.ticket.key == s.ticket.key
    assert (back.payer, back.usage, back.priced) == (s.payer, s.usage, s.priced)
    assert back.used_utc == s.used_utc and back.upstream_request_id == "req_up_1"
    assert back.priced is not None and all(isinstance(v, Decimal) for _, v in back.priced.parts_usd)
    errored = decode(encode(_settlement("twr_2", usage=None)))
    assert errored.usage is None and errored.priced is None and errored.status == 529
    with pytest.raises(ValueError, match="damaged journal line"):
        decode(b'{"f": [1, 2]}\n')
    # an upstream id header with bytes that are not UTF-8 (aiohttp keeps them as surrogates)
    odd = dataclasses.replace(s, upstream_request_id="req_\udcff")
    assert decode(encode(odd)).upstream_request_id == "req_?"


def test_the_folder_books_a_dead_writers_file_once_then_deletes_it(db: Database) -> None:
    _org(db)
    directory = sqlite_journal_dir(db)
    assert directory is not None
    writer = JournalWriter(directory)
    lines = [encode(_settlement(f"twr_{i}")) for i in range(3)]
    for line in lines:
        writer.append(line)
    path = writer.path
    assert is_held(path)
    folder = Folder(db, directory)
    assert folder.fold_once(scan=True) == 3  # a live writer's file is folded as it grows...
    assert path.exists() and folded_to(path) == path.stat().st_size
    mark = Path(str(path) + ".done")
    inode = mark.stat().st_ino
    writer.append(encode(_settlement("twr_3")))
    lines.append(encode(_settlement("twr_3")))
    assert folder.fold_once() == 1 and folded_to(path) == path.stat().st_size
    assert mark.stat().st_ino == inode  # the mark is rewritten in place, not replaced
    writer.close()  # ... and deleted once its writer is gone and it is all folded
    assert folder.fold_once(scan=True) == 0 and not path.exists() and folded_to(path) is None
    ids, spent = _booked(db)
    price = _settlement("x").priced
    assert price is not None
    assert ids == ["twr_0", "twr_1", "twr_2", "twr_3"] and spent == -4 * price.cost.nanousd
    # the same lines again (a crash between a commit and its progress mark): skipped
    (directory / "w-again.jsonl").write_bytes(b"".join(lines))
    assert folder.fold_once(scan=True) == 4
    assert _booked(db) == (ids, spent)
    folder.close()


def test_damaged_and_torn_lines_are_kept_aside_and_the_rest_booked(db: Database) -> None:
    _org(db)
    directory = sqlite_journal_dir(db)
    assert directory is not None
    directory.mkdir(parents=True, exist_ok=True)
    good, unknown_key = encode(_settlement("twr_good")), encode(_settlement("twr_k", key_id=99))
    torn = encode(_settlement("twr_torn"))[:40]
    negative = encode(_settlement("twr_neg")).replace(b'"u":[900,', b'"u":[-900,')
    assert negative != encode(_settlement("twr_neg"))
    lines = good + b"not json\n" + negative + unknown_key + torn
    (directory / "w-dead.jsonl").write_bytes(lines)
    folder = Folder(db, directory)
    folder.fold_once(scan=True)
    folder.close()
    assert _booked(db)[0] == ["twr_good"]
    rejected = [orjson.loads(x) for x in (directory / REJECTED).read_bytes().splitlines()]
    reasons = [r["error"] for r in rejected]
    assert len(rejected) == 4 and folder.rejected == 4
    assert "damaged journal line" in reasons[0]
    assert "damaged journal line" in reasons[1] and "must be 0 or more" in reasons[1]
    assert "IntegrityError" in reasons[2]  # key 99 does not exist: the record cannot be kept
    assert decode(rejected[2]["line"].encode()).ticket.facts.request_id == "twr_k"
    assert "incomplete last line" in reasons[3]
    assert not (directory / "w-dead.jsonl").exists()


async def test_a_journaled_request_keeps_what_it_used_held_until_it_is_booked(
    db: Database, db_url: str
) -> None:
    with db.begin() as conn:
        raw = one_person_org(conn, Money.parse("100"), key_name="laptop")
    meter = await open_meter(db_url, GatewayConfig())
    try:
        assert meter.journal is not None
        facts = RequestFacts("twr_j", "anthropic.messages", "anthropic", MODEL, False, 900, 1024)
        ticket = await meter.authorize(raw, facts)
        (lease,) = meter.leases._leases.values()
        charged = await meter.settle(ticket, USAGE, status=200)
        assert 0 < charged.nanousd < ticket.hold_nanousd
        # journaled: the unused part of the hold is free, what it used is still held
        assert meter.leases._open["twr_j"][1] == charged.nanousd
        assert lease.inflight == charged.nanousd
        assert await meter.settle(ticket, USAGE, status=200) == Money(0)  # charged once
        metrics = GatewayMetrics()
        metrics.journal = meter.journal_status
        unbooked = meter.journal_status()
        await meter.flush()
        assert lease.inflight == 0 and "twr_j" not in meter.leases._open
        assert _booked(db) == (["twr_j"], -charged.nanousd)
        # /metrics: how many are answered but not booked yet, and how many were rejected
        assert unbooked == (1, 0)  # journaled; no await since, so not yet seen as booked
        (meter.journal.directory / REJECTED).write_bytes(b'{"error": "x"}\n{"error": "y"}\n')
        text = metrics.exposition()[0].decode()
        assert "tokenwage_gateway_unbooked_settlements 0.0" in text
        assert "tokenwage_gateway_rejected_journal_lines 2.0" in text
    finally:
        await meter.aclose()


def test_serve_runs_one_folder_process_that_stops_when_asked(db: Database, db_url: str) -> None:
    directory = sqlite_journal_dir(db)
    assert directory is not None
    proc = start_folder_process(db_url)
    assert proc is not None
    try:
        assert FolderLock(directory).is_taken()
        second = subprocess.run(
            [sys.executable, "-m", "tokenwage.gateway.folder", "--database-url", db_url],
            timeout=60,
            env={**os.environ},
        )
        assert second.returncode == 0  # one folder per database: the second one leaves
    finally:
        stop_folder_process(proc)
    assert proc.returncode == 0
    assert not FolderLock(directory).is_taken()
    with db.begin() as conn:
        assert conn.execute(select(func.count()).select_from(usage_records)).scalar_one() == 0


def test_a_locked_database_delays_folding_and_rejects_nothing(
    db: Database, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _org(db)
    directory = sqlite_journal_dir(db)
    assert directory is not None
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "w-dead.jsonl").write_bytes(encode(_settlement("twr_late")))
    monkeypatch.setattr(holds, "LOCK_WAIT_S", 0.2)
    other = sqlite3.connect(db_url.removeprefix("sqlite:///"), isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # e.g. a long import holding the write lock
    folder = Folder(db, directory)
    with pytest.raises(StoreUnavailable):
        folder.fold_once(scan=True)
    other.execute("ROLLBACK")
    other.close()
    assert folder.fold_once(scan=True) == 1
    folder.close()
    assert _booked(db)[0] == ["twr_late"]
    assert not (directory / REJECTED).exists()


def test_a_line_longer_than_a_read_is_booked_and_a_failed_append_is_cut_back(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    _org(db)
    directory = sqlite_journal_dir(db)
    assert directory is not None
    monkeypatch.setattr(folder_module, "READ_BYTES", 64)  # every line is longer than a read
    writer = JournalWriter(directory)
    writer.append(encode(_settlement("twr_long")))
    real_write = os.write
    calls = []

    def full_disk(fd: int, data: bytes) -> int:
        calls.append(len(data))
        if len(calls) == 1:
            return real_write(fd, data[:10])  # part of the line, then the disk is full
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "write", full_disk)
    size = writer.size
    with pytest.raises(OSError):
        writer.append(encode(_settlement("twr_lost")))
    monkeypatch.setattr(os, "write", real_write)
    assert writer.path.stat().st_size == size  # the fragment is gone
    writer.append(encode(_settlement("twr_after")))
    writer.close()
    folder = Folder(db, directory)
    while folder.fold_once(scan=True):
        pass
    folder.close()
    assert _booked(db)[0] == ["twr_after", "twr_long"]
    assert folder.rejected == 0


def test_the_folder_works_in_slices_and_chains_a_long_batch_whole(db: Database) -> None:
    """Between units of work (a line, a settlement, an entry, a record) the folder may
    yield its CPU; the ledger chain of a batch longer than a slice is the same one chain."""
    _org(db)
    directory = sqlite_journal_dir(db)
    assert directory is not None
    directory.mkdir(parents=True, exist_ok=True)
    lines = [encode(_settlement(f"twr_{i:02}")) for i in range(40)]
    (directory / "w-dead.jsonl").write_bytes(b"".join(lines))
    folder = Folder(db, directory, pace=Pacer(slice_s=0.0))  # yields at every call
    assert folder.fold_once(scan=True) == 40 and folder.batches == 1
    folder.close()
    ids, spent = _booked(db)  # verifies every chain
    assert ids == [f"twr_{i:02}" for i in range(40)] and spent < 0
    assert folder.pace.yields >= 4 * 40  # per line, settlement, ledger entry and record
    with db.begin() as conn:
        seqs = [e.seq for e in LedgerRepo(conn).entries("person:1")]
    assert seqs == list(range(1, len(seqs) + 1))


def test_a_pacer_yields_only_once_its_slice_has_passed() -> None:
    never, always = Pacer(slice_s=3600.0), Pacer(slice_s=0.0)
    for _ in range(100):
        never()
        always()
    assert never.yields == 0 and always.yields == 100


_OFFSETS = st.integers(min_value=0, max_value=2**63)


@given(_OFFSETS)
def test_a_progress_mark_reads_back_as_its_offset(offset: int) -> None:
    assert len(mark_bytes(offset)) == MARK_BYTES and parse_mark(mark_bytes(offset)) == offset


@given(_OFFSETS, _OFFSETS, st.lists(st.booleans(), min_size=MARK_BYTES, max_size=MARK_BYTES))
def test_a_mark_read_while_rewritten_reads_as_old_new_or_nothing(
    old: int, new: int, copied: list[bool]
) -> None:
    """A reader may see any mix of the old mark's bytes and the new one's: it reads one of the
    two or, when the check fails, 0 (nothing booked yet), never a third offset."""
    a, b = mark_bytes(old), mark_bytes(new)
    torn = bytes(b[i] if copied[i] else a[i] for i in range(MARK_BYTES))
    assert parse_mark(torn) in {0, old, new}


def test_a_mark_longer_than_a_record_is_cut_to_one_when_rewritten(tmp_path: Path) -> None:
    path = tmp_path / "w-x.jsonl"
    mark = Path(str(path) + ".done")
    mark.write_bytes(b"9" * 40)  # damaged: no mark of any version is that long
    assert read_done(path) == 0
    marks = DoneMarks()
    marks.write(path, 4096)
    assert read_done(path) == 4096 and len(mark.read_bytes()) == MARK_BYTES
    marks.write(path, 8192)
    assert read_done(path) == 8192
    marks.close()


def test_an_earlier_versions_decimal_mark_is_read() -> None:
    assert parse_mark(b"123456") == 123456 and parse_mark(b"") == 0 and parse_mark(b"12x") == 0


def test_a_damaged_progress_mark_means_folding_again_from_the_start(db: Database) -> None:
    _org(db)
    directory = sqlite_journal_dir(db)
    assert directory is not None
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "w-dead.jsonl"
    path.write_bytes(encode(_settlement("twr_1")) + encode(_settlement("twr_2")))
    Path(str(path) + ".done").write_bytes(b"\0" * 20)  # what a power cut can leave
    assert folded_to(path) == 0
    bad_price = encode(_settlement("twr_3")).replace(b'"0.00', b'"zero')
    assert bad_price != encode(_settlement("twr_3"))
    (directory / "w-other.jsonl").write_bytes(bad_price + encode(_settlement("twr_4")))
    folder = Folder(db, directory)
    folder.fold_once(scan=True)
    folder.close()
    assert _booked(db)[0] == ["twr_1", "twr_2", "twr_4"] and folder.rejected == 1
