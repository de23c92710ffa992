"""The settlement journal: how a finished request becomes durable in microseconds.

On SQLite, a worker does not write a settled request into the database before answering:
it appends one JSON line (everything the ledger and the usage record need) to its own
journal file with a single ``write(2)`` and answers once that returns. The line is then in
the operating system's page cache, so killing the server, even with SIGKILL, loses nothing
a client received; a power cut may lose the last moments, as with ``synchronous=NORMAL``.
The *folder* (:mod:`tokenwage.gateway.folder`) moves the lines into the ledger, usage
records and daily sums in large transactions, a few milliseconds later, and writes how far
it got beside each file.

Files live in ``<database>-settle/`` (``tokenwage.db`` -> ``tokenwage.db-settle/``):

* ``w-<id>.jsonl``: one worker's lines, appended only. The worker holds an exclusive
  ``flock`` on it while it writes there; a file nobody holds is finished (its worker
  rotated to a new file, stopped or died) and is deleted once folded.
* ``w-<id>.jsonl.done``: the byte offset up to which the folder has committed the file
  (hexadecimal, with a CRC-32 check; :class:`DoneMarks`).
* ``folder.lock``: held by the one folder running for this database.

A new file is created under a temporary name and renamed only once locked, so the folder
never mistakes a file being born for a finished one.
"""

from __future__ import annotations

import fcntl
import functools
import os
import uuid
import zlib
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson

from tokenwage.core.keys import KeyInfo
from tokenwage.core.money import Money
from tokenwage.core.package import CapMode
from tokenwage.core.pricing import PricedUsage
from tokenwage.core.usage import TokenUsage
from tokenwage.gateway.holds import Payer
from tokenwage.gateway.settlement import Settlement
from tokenwage.gateway.ticket import RequestFacts, Ticket

SUFFIX = ".jsonl"
DONE_SUFFIX = ".done"
MARK_BYTES = 26
FOLDER_LOCK = "folder.lock"
ROTATE_BYTES = 64 * 1024 * 1024
"""A worker starts a new file past this size, so a folded file can be deleted."""


def journal_dir(sqlite_path: str) -> Path:
    """Where the journal of the SQLite database at ``sqlite_path`` lives."""
    return Path(sqlite_path).expanduser().resolve().with_name(Path(sqlite_path).name + "-settle")


# -- one line ---------------------------------------------------------------------------
def encode(s: Settlement) -> bytes:
    """``s`` as one journal line (ends with a newline)."""
    t, f, k, p = s.ticket, s.ticket.facts, s.ticket.key, s.payer
    u = s.usage
    pr = s.priced
    return orjson.dumps(
        {
            "f": [
                f.request_id,
                f.endpoint,
                f.provider,
                f.model,
                f.stream,
                f.prompt_tokens_estimate,
                f.max_output_tokens,
            ],
            "k": [
                k.id,
                k.person_id,
                k.name,
                k.prefix,
                k.allowed_models,
                k.created_utc,
                k.expires_utc,
                k.revoked_utc,
            ],
            "t": [t.person_id, t.model, t.hold_nanousd, t.lease],
            "p": [p.person_id, p.account_key, p.pool_key, p.cap.value, p.overdraft.nanousd],
            "u": None
            if u is None
            else [
                u.input_tokens,
                u.output_tokens,
                u.cache_read_tokens,
                u.cache_write_tokens,
                u.cache_write_1h_tokens,
                u.reasoning_tokens,
            ],
            "c": None
            if pr is None
            else [
                pr.cost.nanousd,
                pr.source,
                pr.flagged,
                pr.provider,
                pr.model_ref,
                [[kind, str(usd)] for kind, usd in pr.parts_usd],
            ],
            "s": [s.status, s.estimated, s.latency_ms, s.used_utc, _text(s.upstream_request_id)],
        },
        option=orjson.OPT_APPEND_NEWLINE,
    )


def _text(value: str | None) -> str | None:
    """A header value as valid UTF-8 (aiohttp keeps undecodable bytes as surrogates)."""
    if value is None or value.isascii():
        return value
    return value.encode("utf-8", "replace").decode("utf-8")


def decode(line: bytes) -> Settlement:
    """The settlement of one journal line; raises ``ValueError`` on a damaged one."""
    try:
        d: dict[str, Any] = orjson.loads(line)
        f, t, s = d["f"], d["t"], d["s"]
        facts = RequestFacts(f[0], f[1], f[2], f[3], f[4], f[5], f[6])
        ticket = Ticket(facts, _key(d["k"]), t[0], t[1], t[2], 0.0, t[3])
        usage = TokenUsage(*d["u"]) if d["u"] is not None else None
        c = d["c"]
        priced = (
            None
            if c is None
            else PricedUsage(
                Money(c[0]), c[1], c[2], c[3], c[4], tuple([(n, Decimal(v)) for n, v in c[5]])
            )
        )
        return Settlement(
            ticket, _payer(d["p"]), usage, priced, s[0], s[1], s[2], _when(s[3]), s[4]
        )
    except Exception as exc:  # a line is data: whatever it breaks, it is damaged
        raise ValueError(f"damaged journal line: {exc}") from exc


def _key(k: list[Any]) -> KeyInfo:
    return _key_of(orjson.dumps(k))


def _payer(p: list[Any]) -> Payer:
    return _payer_of(orjson.dumps(p))


# Lines of one key and one payer repeat them: each is decoded once.
@functools.lru_cache(maxsize=4096)
def _key_of(encoded: bytes) -> KeyInfo:
    k = orjson.loads(encoded)
    return KeyInfo(
        id=k[0],
        person_id=k[1],
        name=k[2],
        prefix=k[3],
        allowed_models=tuple(k[4]) if k[4] is not None else None,
        created_utc=_when(k[5]),
        expires_utc=_when(k[6]) if k[6] else None,
        revoked_utc=_when(k[7]) if k[7] else None,
    )


@functools.lru_cache(maxsize=4096)
def _payer_of(encoded: bytes) -> Payer:
    p = orjson.loads(encoded)
    return Payer(p[0], p[1], p[2], CapMode(p[3]), Money(p[4]))


def _when(value: str) -> datetime:
    return datetime.fromisoformat(value)


# -- progress ---------------------------------------------------------------------------
def read_done(path: Path) -> int | None:
    """How far the folder has committed journal file ``path``; None if its progress file is
    gone (the journal file was folded to its end and deleted). A mark that fails its check
    (read while being rewritten, or damaged) reads as 0: nothing booked yet, which is always
    safe (a worker waits a little longer; a folder folds again, and booking is idempotent)."""
    try:
        with open(str(path) + DONE_SUFFIX, "rb") as fh:
            data = fh.read()
    except FileNotFoundError:
        return None
    return parse_mark(data)


def mark_bytes(offset: int) -> bytes:
    """The progress mark of ``offset``: fixed width, with a check, rewritten in place."""
    hexed = b"%016x" % offset
    return b"%s:%08x\n" % (hexed, zlib.crc32(hexed))


def parse_mark(data: bytes) -> int:
    """The offset of a progress mark; 0 if it fails its check. A plain decimal number is a
    mark of an earlier version (written whole, then renamed into place)."""
    if len(data) == MARK_BYTES and data[16:17] == b":":
        hexed = data[:16]
        try:
            if int(data[17:25], 16) == zlib.crc32(hexed):
                return int(hexed, 16)
        except ValueError:
            return 0
        return 0
    return int(data) if data.isdigit() and len(data) <= 20 else 0


class DoneMarks:
    """The folder's progress marks (``w-<id>.jsonl.done``), each rewritten in place with one
    ``pwrite`` on a descriptor kept open: no new file and no rename per batch. A reader
    that catches a mark half rewritten sees a failed check, which :func:`read_done` reads
    as 0. Only the folder writes marks."""

    def __init__(self) -> None:
        self._fds: dict[Path, int] = {}

    def write(self, path: Path, offset: int) -> None:
        fd = self._fds.get(path)
        if fd is None:
            fd = os.open(str(path) + DONE_SUFFIX, os.O_WRONLY | os.O_CREAT, 0o600)
            os.pwrite(fd, mark_bytes(offset), 0)
            os.ftruncate(fd, MARK_BYTES)  # whatever longer was there (damage) goes
            self._fds[path] = fd
            return
        os.pwrite(fd, mark_bytes(offset), 0)

    def remove(self, path: Path) -> None:
        """Delete the mark of a journal file folded to its end (and deleted)."""
        self.forget(path)
        Path(str(path) + DONE_SUFFIX).unlink(missing_ok=True)

    def forget(self, path: Path) -> None:
        fd = self._fds.pop(path, None)
        if fd is not None:
            os.close(fd)

    def close(self) -> None:
        for path in list(self._fds):
            self.forget(path)


def folded_to(path: Path) -> int | None:
    """How far journal file ``path`` is folded; None: all of it (the folder deleted it)."""
    done = read_done(path)
    if done is None and path.exists():
        return 0  # the folder has not reached it yet
    return done


def is_held(path: Path) -> bool:
    """Whether a live writer holds journal file ``path``."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # closing drops the lock if we took it
    return False


# -- a worker's writer ------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Appended:
    """Where a line went: its file and the offset just past it."""

    path: Path
    end: int


class JournalWriter:
    """One worker's journal: appends lines to a file it alone holds, rotating it when big.
    Not thread-safe; the event loop is its only caller."""

    def __init__(self, directory: Path, rotate_bytes: int = ROTATE_BYTES) -> None:
        self.directory = directory
        self.rotate_bytes = rotate_bytes
        directory.mkdir(parents=True, exist_ok=True)
        self.path, self._fd, self._size = self._open()
        self.appended = 0

    def _open(self) -> tuple[Path, int, int]:
        name = f"w-{uuid.uuid4().hex}"
        tmp = self.directory / f".{name}.new"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_EXCL, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX)
        path = self.directory / f"{name}{SUFFIX}"
        os.rename(tmp, path)
        return path, fd, 0

    def append(self, line: bytes) -> Appended:
        """Write ``line`` (one ``write(2)``: durable against a killed process on return)."""
        if self._size >= self.rotate_bytes:
            self.rotate()
        try:
            written = os.write(self._fd, line)
            while written < len(line):  # a regular file takes it whole; a full disk raises
                written += os.write(self._fd, line[written:])
        except OSError:
            self._cut_back()
            raise
        self._size += len(line)
        self.appended += 1
        return Appended(self.path, self._size)

    def _cut_back(self) -> None:
        """Drop what a failed append left (part of a line), so the next line starts clean and
        every offset stays true; if even that fails, go on in a new file."""
        try:
            os.ftruncate(self._fd, self._size)
        except OSError:
            self.rotate()

    def rotate(self) -> None:
        old = self._fd
        self.path, self._fd, self._size = self._open()
        os.close(old)  # unlocked: finished, the folder deletes it once folded

    @property
    def size(self) -> int:
        return self._size

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
