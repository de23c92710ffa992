"""A worker's side of the settlement journal: settle into it, learn what got booked.

:class:`JournalSettler` is what :class:`tokenwage.gateway.meter.DbMeter` settles through on
SQLite (see :mod:`tokenwage.gateway.journal` for the files and
:mod:`tokenwage.gateway.folder` for the booking). Settling appends the request's line and
frees the unused part of its lease hold; what it used stays held until the folder's
progress mark shows the line booked, then goes back to the lease (the folder shrank the
lease row by the same amount in that transaction).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from pathlib import Path

from tokenwage.core.errors import StoreUnavailable
from tokenwage.core.money import Money
from tokenwage.gateway.folder import REJECTED, FolderThread
from tokenwage.gateway.journal import JournalWriter, encode, folded_to
from tokenwage.gateway.leases import Leases
from tokenwage.gateway.settlement import Settlement, hold_used

RECENT_IDS = 65_536
"""Request ids a worker remembers having settled (a second settlement charges nothing)."""


class JournalSettler:
    def __init__(self, database_url: str, directory: Path, leases: Leases) -> None:
        self.directory = directory
        self.leases = leases
        self.writer = JournalWriter(directory)
        self.folder = FolderThread(database_url, directory)
        self.folder.ensure()  # folds here only if no folder process runs
        self._unbooked: deque[tuple[Path, int, str | None, int]] = deque()
        self._ids: dict[str, None] = {}  # the last RECENT_IDS settled, oldest first
        self._rejected: tuple[tuple[int, int], int] = ((0, 0), 0)  # (size, mtime), lines

    def settle(self, s: Settlement) -> Money:
        """Settle ``s`` into the journal: durable when this returns, in the ledger once the
        folder has booked it. Returns its price (a duplicate request id is skipped by the
        folder too, so it is never charged twice)."""
        rid, lease = s.ticket.facts.request_id, s.ticket.lease
        if rid in self._ids:  # settled twice in this worker: charged once
            return Money(0)
        self._ids[rid] = None
        if len(self._ids) > RECENT_IDS:
            del self._ids[next(iter(self._ids))]
        try:
            at = self.writer.append(encode(s))
        except Exception as exc:  # nothing written: the hold goes back, the id may come again
            del self._ids[rid]
            if lease is not None:
                self.leases.give_back(rid, 0)
            raise StoreUnavailable(f"could not write the settlement journal: {exc}") from exc
        charged = s.priced.cost if s.priced is not None and s.usage is not None else Money(0)
        used = 0
        if lease is not None:
            used = hold_used(s.ticket, charged)
            self.leases.settling(rid, used)
        self._unbooked.append((at.path, at.end, rid if lease is not None else None, used))
        return charged

    def apply_booked(self) -> None:
        """Give back to their leases what the folder has booked of this worker's requests."""
        seen: dict[Path, int | None] = {}
        queue = self._unbooked
        while queue:
            path, end, rid, used = queue[0]
            if path not in seen:
                seen[path] = folded_to(path)
            done = seen[path]
            if done is not None and end > done:
                return
            queue.popleft()
            if rid is not None:
                self.leases.give_back(rid, used)

    def status(self) -> tuple[int, int]:
        """(settlements not booked yet, lines the folder rejected)."""
        path = self.directory / REJECTED
        try:
            stat = path.stat()
        except FileNotFoundError:
            return len(self._unbooked), 0
        if self._rejected[0] != (stat.st_size, stat.st_mtime_ns):  # count again if it grew
            with path.open("rb") as fh:
                self._rejected = ((stat.st_size, stat.st_mtime_ns), sum(1 for _ in fh))
        return len(self._unbooked), self._rejected[1]

    async def flush(self, timeout_s: float) -> None:
        """Wait until everything settled here is in the ledger; ``StoreUnavailable`` if it
        is not within ``timeout_s`` (no folder running, the database locked)."""
        deadline = time.monotonic() + timeout_s
        while True:
            self.apply_booked()
            if not self._unbooked:
                return
            if time.monotonic() > deadline:
                raise StoreUnavailable(
                    f"{len(self._unbooked)} settlements were not folded into the ledger "
                    f"within {timeout_s:g} s"
                )
            self.folder.ensure()
            await asyncio.sleep(0.002)

    async def close(self, timeout_s: float) -> bool:
        """Flush, stop writing and stop folding here; whether everything was booked."""
        try:
            await self.flush(timeout_s)
            booked = True
        except StoreUnavailable:  # booked by the next folder to run
            booked = False
        self.writer.close()
        await asyncio.to_thread(self.folder.stop)
        return booked
