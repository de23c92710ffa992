"""The folder: moves journaled settlements into the ledger in large transactions.

One folder runs per SQLite database, whoever holds ``folder.lock`` in its journal directory
(:mod:`tokenwage.gateway.journal`). ``tokenwage serve`` starts it as a process of its own
(``python -m tokenwage.gateway.folder``), so its work runs beside the workers instead of
inside their event loops; a meter that finds no folder running (a test, or a folder that
died) runs one on a thread until the process is back.

Each pass reads what is new in every journal file, decodes it, and writes it with
:func:`tokenwage.gateway.settle_sqlite.write_batch`, the same writes the direct path makes,
up to ``BATCH`` settlements per transaction: holds released or leases shrunk, ledger debits
chained, usage records and daily sums written. After each commit it records how far it got
beside the file. Folding is idempotent (a request already recorded is skipped), so a crash
between a commit and that record only costs a second look. A line that cannot be booked is
copied to ``rejected.jsonl`` with the reason, never dropped silently. The folder also
checkpoints the WAL once a second, since no other connection does. It works in slices of
at most 0.2 ms (:class:`~tokenwage.gateway.pacing.Pacer`), so on a small machine a worker
woken on the folder's CPU waits microseconds for it, not the rest of a batch.
"""

from __future__ import annotations

import argparse
import fcntl
import logging
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from tokenwage.core.errors import StoreUnavailable
from tokenwage.gateway import settle_sqlite
from tokenwage.gateway.holds import immediate, own_sqlite_connection
from tokenwage.gateway.journal import (
    FOLDER_LOCK,
    SUFFIX,
    DoneMarks,
    decode,
    encode,
    is_held,
    journal_dir,
    read_done,
)
from tokenwage.gateway.pacing import Pacer
from tokenwage.gateway.settlement import KeyTouches, Settlement
from tokenwage.gc_policy import quiet_gc
from tokenwage.storage.db import Database

log = logging.getLogger("tokenwage.gateway.folder")
BATCH = 256
"""Settlements per transaction, at most: a few milliseconds of holding the write lock,
which a worker growing a lease may be waiting for."""
READ_BYTES = 4 * 1024 * 1024
"""Bytes read from one file per pass, at most."""
EVERY_S = 0.01
"""The pause between passes: lines gather meanwhile, so a transaction books many."""
CHECKPOINT_EVERY_S = 1.0
DRAIN_S = 10.0
"""How long a stopping folder goes on booking what is left (bounded: a folder thread of one
worker stops while the others still write)."""
SCAN_EVERY_S = 0.05
"""How often the folder looks for new journal files and deletes finished ones."""
REJECTED = "rejected.jsonl"
ACQUIRE_TRIES = 20
_PASSING = (StoreUnavailable, sqlite3.OperationalError)
"""Faults of the moment (the write lock held too long, the disk briefly unavailable), not
of the line: retried, never rejected."""


class Folder:
    def __init__(self, db: Database, directory: Path, pace: Pacer | None = None) -> None:
        self.db = db
        self.directory = directory
        self._raw: Any = None
        self._touches = KeyTouches()
        self._checkpoint_due = 0.0
        self._scan_due = 0.0
        self._files: list[Path] = []
        self._done: dict[Path, int] = {}  # how far each file is booked (this folder writes it)
        self._marks = DoneMarks()
        self.pace = pace if pace is not None else Pacer()
        self.folded = 0
        self.batches = 0
        self.rejected = 0

    def close(self) -> None:
        self._marks.close()
        if self._raw is not None:
            self._raw.close()
            self._raw = None

    def fold_once(self, *, scan: bool = False) -> int:
        """One pass over every journal file; returns how many lines it folded. Every
        ``SCAN_EVERY_S`` (or when ``scan``) it also looks for new files and deletes finished
        ones; between scans a pass costs one ``stat`` per file."""
        clock = time.monotonic()
        scan = scan or clock >= self._scan_due
        if scan:
            self._scan_due = clock + SCAN_EVERY_S
            self._files = sorted(self.directory.glob(f"w-*{SUFFIX}"))
            for gone in [p for p in self._done if p not in self._files]:
                del self._done[gone]
                self._marks.forget(gone)
        n = sum(self._fold_file(path, scan) for path in self._files)
        if clock >= self._checkpoint_due:
            self._checkpoint_due = clock + CHECKPOINT_EVERY_S
            self._connection().cursor().execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        return n

    def run(self, stop: threading.Event) -> None:
        """Fold until ``stop`` is set, then fold what is left."""
        try:
            while not stop.is_set():
                try:
                    if self.fold_once() < BATCH:  # else a backlog: go on at once
                        stop.wait(EVERY_S)
                except Exception:
                    log.exception("folding the settlement journal failed; retrying")
                    stop.wait(0.5)
            deadline = time.monotonic() + DRAIN_S  # other workers may still be writing
            while self.fold_once(scan=True) and time.monotonic() < deadline:
                pass
        finally:
            self.close()

    def _connection(self) -> Any:
        if self._raw is None:
            self._raw = own_sqlite_connection(self.db)
        return self._raw

    def _fold_file(self, path: Path, scan: bool) -> int:
        held = is_held(path) if scan else True  # first: once nobody holds it, its size is final
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            return 0
        done = self._done.get(path)
        if done is None:
            done = self._done[path] = read_done(path) or 0
        n = 0
        if size > done:
            with path.open("rb") as fh:
                fh.seek(done)
                data = fh.read(min(size - done, READ_BYTES))
                if len(data) == READ_BYTES and b"\n" not in data:
                    data += fh.readline()  # one line longer than a read: read on to its end
            cut = data.rfind(b"\n") + 1
            if cut:
                n = self._fold_lines(path, done, data[:cut])
                done += cut
            if not held and cut < len(data) and done + len(data) - cut == size:
                # a torn last line: its writer died in the middle of writing it
                self._reject(data[cut:], "incomplete last line (the writer died mid-write)")
                done = size
                self._mark(path, done)
        if not held and done >= size:  # the mark first: without it a worker waits, safely
            self._marks.remove(path)
            path.unlink(missing_ok=True)
        return n

    def _mark(self, path: Path, offset: int) -> None:
        """Record that ``path`` is booked up to ``offset`` (after the commit)."""
        self._marks.write(path, offset)
        self._done[path] = offset

    def _fold_lines(self, path: Path, start: int, data: bytes) -> int:
        chunk: list[Settlement] = []
        at = start
        for line in data.splitlines(keepends=True):
            self.pace()
            at += len(line)
            try:
                chunk.append(decode(line))
            except ValueError as exc:
                self._reject(line, str(exc))
            if len(chunk) >= BATCH:
                self._book(chunk)
                self._mark(path, at)
                chunk = []
        if chunk:
            self._book(chunk)
        self._mark(path, at)
        return data.count(b"\n")

    def _book(self, batch: list[Settlement]) -> None:
        """Book ``batch``; a line that cannot be booked is rejected, the rest land. A
        passing fault (the database locked or unreachable) is raised: nothing is marked
        done, and the next pass tries the same lines again."""
        try:
            self._write(batch)
        except _PASSING:
            raise
        except Exception:  # find the bad one: book each alone, so the rest land
            log.exception("folding %d settlements failed; booking them one by one", len(batch))
            for s in batch:
                try:
                    self._write([s])
                except _PASSING:
                    raise
                except Exception as exc:
                    self._reject(encode(s), f"{type(exc).__name__}: {exc}")

    def _write(self, batch: list[Settlement]) -> None:
        now = datetime.now(UTC)
        with immediate(self._connection()) as cur:
            settle_sqlite.write_batch(cur, batch, now, self._touches.due(batch), self.pace)
        self.folded += len(batch)
        self.batches += 1

    def _reject(self, line: bytes, why: str) -> None:
        self.rejected += 1
        log.error("journal line rejected (kept in %s): %s", REJECTED, why)
        record = orjson.dumps({"error": why, "line": line.decode("utf-8", "replace")})
        with (self.directory / REJECTED).open("ab") as fh:
            fh.write(record + b"\n")


class FolderLock:
    """``folder.lock`` of a journal directory: whoever holds it is the folder."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / FOLDER_LOCK
        self._fd = -1

    def acquire(self) -> bool:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    def release(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def is_taken(self) -> bool:
        """Whether some folder (here or elsewhere) holds the lock."""
        return self._fd >= 0 or is_held(self.path)


class FolderThread:
    """Runs a folder on a thread of this process while no other folder runs (tests, or
    while ``serve``'s folder process is being restarted)."""

    def __init__(self, database_url: str, directory: Path) -> None:
        self.database_url = database_url
        self.lock = FolderLock(directory)
        self.directory = directory
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def ensure(self) -> bool:
        """Start folding here if nobody does; True if a folder runs (here or elsewhere)."""
        if self._thread is not None and self._thread.is_alive():
            return True
        if not self.lock.acquire():
            return True
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="tokenwage-folder", daemon=True)
        self._thread.start()
        return True

    def _run(self) -> None:
        try:
            db = Database(self.database_url, sqlite_synchronous="NORMAL")
            try:
                Folder(db, self.directory).run(self._stop)
            finally:
                db.dispose()
        finally:
            self.lock.release()

    def stop(self) -> None:
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._thread = None


def sqlite_journal_dir(db: Database) -> Path | None:
    """The journal directory of ``db``, None unless it is a SQLite file."""
    name = db.engine.url.database
    if not db.is_sqlite or not name or name == ":memory:":
        return None
    return journal_dir(name)


def start_folder_process(database_url: str) -> subprocess.Popen[bytes] | None:
    """Start the folder of a SQLite database as a process of its own (``tokenwage serve``
    does, before its workers), and wait until it holds the lock; None for PostgreSQL."""
    db = Database(database_url)
    try:
        directory = sqlite_journal_dir(db)
    finally:
        db.dispose()
    if directory is None:
        return None
    args = [sys.executable, "-m", "tokenwage.gateway.folder", "--database-url", database_url]
    proc = subprocess.Popen([*args, "--parent", str(os.getpid())])
    lock = FolderLock(directory)
    deadline = time.monotonic() + 30
    while not lock.is_taken():
        if proc.poll() is not None or time.monotonic() > deadline:
            break  # the workers fold on a thread instead
        time.sleep(0.02)
    return proc


def stop_folder_process(proc: subprocess.Popen[bytes] | None) -> None:
    """Let the folder book what is left, then stop it."""
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def main(argv: list[str] | None = None) -> int:
    """``python -m tokenwage.gateway.folder --database-url URL [--parent PID]``: fold until
    SIGTERM (or until the parent process is gone), then fold what is left. Exits at once,
    with 0, if another folder already runs for the database."""
    parser = argparse.ArgumentParser(prog="python -m tokenwage.gateway.folder")
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--parent", type=int, default=0, help="stop when this process is gone")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    db = Database(args.database_url, sqlite_synchronous="NORMAL")
    directory = sqlite_journal_dir(db)
    if directory is None:
        log.error("the settlement journal is for SQLite databases only")
        return 2
    lock = FolderLock(directory)
    for _ in range(ACQUIRE_TRIES):  # serve's readiness probe may hold it for an instant
        if lock.acquire():
            break
        time.sleep(0.05)
    else:
        return 0
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    if args.parent:
        threading.Thread(target=_watch_parent, args=(args.parent, stop), daemon=True).start()
    folder = Folder(db, directory)
    quiet_gc()
    try:
        folder.run(stop)
    finally:
        db.dispose()
        lock.release()
    log.info("folder stopped: %d settlements in %d batches", folder.folded, folder.batches)
    return 0


def _watch_parent(parent: int, stop: threading.Event) -> None:
    while not stop.wait(0.5):
        if os.getppid() != parent:
            stop.set()


if __name__ == "__main__":
    raise SystemExit(main())
