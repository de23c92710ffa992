"""Folding benchmark: the folder's CPU per journaled settlement.

    .venv/bin/python -m bench.fold [--settlements 20000] [--batch 0]

Makes a fresh SQLite database in a temporary directory (removed at the end) with the
one-person org of :func:`tokenwage.services.sandbox.one_person_org`, journals
``--settlements`` lines shaped like the gateway's (distinct request ids, times and token
counts; one in 50 an upstream error without usage, one in 40 estimated), then folds them
with :class:`tokenwage.gateway.folder.Folder` (decode, book, commit in batches), after
:func:`tokenwage.gc_policy.quiet_gc` as in the folder process. On a small
machine the folder shares the cores with the gateway's workers: every microsecond it spends
is taken from them. Reported: µs per settlement and settlements/s of the folding alone, the
load average (the figure is only as quiet as the machine) and the machine facts.

By default every line is journaled first and folded in the largest batches (256 per
transaction): the folder's floor. ``--batch K`` instead journals K lines, folds, and
repeats, as a live gateway does (at 1,500 requests/s a 10 ms pass finds about 15 lines):
the cost of a pass (its transaction, the progress mark, the stats) is then shared by only
K settlements. Only the folding is timed, not the journaling.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench.machine import machine_facts
from tokenwage.core.keys import KeyInfo
from tokenwage.core.money import Money
from tokenwage.core.package import CapMode
from tokenwage.core.pricing import Pricer, PricingPolicy
from tokenwage.core.usage import TokenUsage
from tokenwage.gateway.folder import Folder, sqlite_journal_dir
from tokenwage.gateway.holds import Payer
from tokenwage.gateway.journal import JournalWriter, encode
from tokenwage.gateway.settlement import Settlement
from tokenwage.gateway.ticket import RequestFacts, Ticket
from tokenwage.gc_policy import quiet_gc
from tokenwage.services.sandbox import one_person_org
from tokenwage.storage import migrate
from tokenwage.storage.db import Database

MODEL = "claude-sonnet-4-5"
START = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)
MAX_SETTLEMENTS = 1_000_000


def settlements(n: int, key: KeyInfo) -> list[Settlement]:
    """``n`` settlements of ``key``'s owner, as the gateway's workers would journal them."""
    pricer = Pricer(PricingPolicy())
    payer = Payer(key.person_id, f"person:{key.person_id}", None, CapMode.HARD, Money(0))
    out = []
    for i in range(n):
        used = START + timedelta(microseconds=13_717 * i)
        rid = f"twr_{i:08d}"
        facts = RequestFacts(rid, "anthropic.messages", "anthropic", MODEL, True, 900, 4096)
        usage = None
        if i % 50:
            usage = TokenUsage(
                input_tokens=200 + i * 7919 % 20_000,
                output_tokens=50 + i * 104_729 % 2_000,
                cache_read_tokens=i * 31 % 5_000,
            )
        priced = pricer.price(usage, "anthropic", MODEL, used) if usage else None
        ticket = Ticket(facts, key, key.person_id, MODEL, 5_000_000, 0.0, None)
        status = 200 if usage else 529
        estimated = usage is not None and i % 40 == 0
        up = f"req_{i:012x}"
        out.append(Settlement(ticket, payer, usage, priced, status, estimated, 812, used, up))
    return out


def run(n: int, batch: int = 0) -> tuple[float, float, int]:
    """Fold ``n`` journaled settlements, all at once or ``batch`` at a time; (seconds
    folding, CPU seconds of it, batches)."""
    with tempfile.TemporaryDirectory(prefix="tokenwage-bench-fold-") as tmp:
        db = Database(f"sqlite:///{Path(tmp) / 'tokenwage.db'}", sqlite_synchronous="NORMAL")
        try:
            migrate.upgrade(db)
            with db.begin() as conn:
                one_person_org(conn, Money.parse(1_000_000), key_name="bench", now=START)
                row = conn.exec_driver_sql(
                    "SELECT id, person_id, name, prefix, created_utc FROM virtual_keys"
                ).one()
            created = datetime.fromisoformat(str(row[4])).replace(tzinfo=UTC)
            key = KeyInfo(row[0], row[1], row[2], row[3], None, created)
            directory = sqlite_journal_dir(db)
            assert directory is not None
            writer = JournalWriter(directory)
            lines = [encode(s) for s in settlements(n, key)]
            step = batch or n
            folder = Folder(db, directory)
            quiet_gc()  # as the folder process does once it has started
            seconds = cpu = 0.0
            try:
                for start in range(0, n, step):
                    for line in lines[start : start + step]:
                        writer.append(line)
                    began, began_cpu = time.perf_counter(), time.process_time()
                    while folder.fold_once(scan=not start):  # the first pass finds the file
                        pass
                    seconds += time.perf_counter() - began
                    cpu += time.process_time() - began_cpu
            finally:
                writer.close()
                folder.close()
            if folder.folded != n or folder.rejected:
                raise SystemExit(f"folded {folder.folded} of {n}, rejected {folder.rejected}")
            return seconds, cpu, folder.batches
        finally:
            db.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.fold", description=__doc__)
    parser.add_argument("--settlements", type=int, default=20_000, help="lines to fold")
    parser.add_argument(
        "--batch", type=int, default=0, help="journal and fold this many at a time (0: all)"
    )
    args = parser.parse_args()
    if not 1 <= args.settlements <= MAX_SETTLEMENTS:
        parser.error(f"--settlements must be between 1 and {MAX_SETTLEMENTS}")
    if args.batch < 0:
        parser.error("--batch must be 0 or more")
    load = os.getloadavg()
    seconds, cpu, batches = run(args.settlements, args.batch)
    n = args.settlements
    print(
        f"fold: {n} settlements in {batches} batches, {seconds / n * 1e6:.1f} µs per settlement"
        f" ({cpu / n * 1e6:.1f} µs of CPU, {cpu / batches * 1e3:.2f} ms per batch),"
        f" {n / seconds:,.0f} settlements/s"
    )
    print(f"- load average before/after: {load[0]:.2f} / {os.getloadavg()[0]:.2f}")
    print(machine_facts().markdown())


if __name__ == "__main__":
    main()
