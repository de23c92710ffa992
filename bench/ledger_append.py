"""Ledger append benchmark: book usage debits through the real write path, then verify.

    .venv/bin/python -m bench.ledger_append [--entries 1000000] [--batch 10000]
        [--accounts 200] [--backend sqlite|postgres|both] [--pg-url URL] [--max-seconds 600]

For each backend it makes a fresh database (a SQLite file in a temporary directory; a
PostgreSQL database created on ``--pg-url``'s server and dropped afterwards), migrates it
with :func:`tokenwage.storage.migrate.upgrade`, opens ``--accounts`` person accounts and
appends ``--entries`` USAGE debits shaped like the gateway's (``services.books.charge_usage``)
through ``LedgerRepo(conn).append(drafts, now)``, one transaction per batch of ``--batch``.
Then it runs one full ``LedgerRepo.verify()`` pass over every chain.

Reported: entries/s inside the write transactions (``append`` plus commit) and end to end
(including building the drafts), p50/p99 latency of one batch transaction, verify time and
rate, database size. The append phase stops after ``--max-seconds``; the verify pass always
runs over what was written. Results go to stdout as Markdown (a table row per backend and
the machine facts); the progress bar to stderr. ``--batch-csv PATH`` appends every batch's
latency to a CSV, ``--cprofile PATH`` writes a cProfile of the append transactions.
See ``docs/benchmarks.md`` for results and how to read them.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
from psycopg import sql
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from sqlalchemy import text
from sqlalchemy.engine import make_url

from bench.machine import machine_facts
from tokenwage.core.ledger import EntryDraft, EntryKind
from tokenwage.storage import migrate
from tokenwage.storage.db import Database
from tokenwage.storage.ledger_repo import LedgerRepo

DEFAULT_PG_URL = "postgresql://postgres@127.0.0.1:5432/postgres"

# (provider, model, nanousd per uncached input token, per output token, per cache read token)
_MODELS = (
    ("anthropic", "claude-sonnet-4-5", 3_000, 15_000, 300),
    ("anthropic", "claude-haiku-4-5", 1_000, 5_000, 100),
    ("openai", "gpt-5", 1_250, 10_000, 125),
    ("openai", "gpt-5-mini", 250, 2_000, 25),
)
_SOURCES = ("gateway", "claude_code", "codex")


@dataclass(frozen=True)
class Settings:
    entries: int
    batch: int
    accounts: int
    max_seconds: float
    seed: int
    cprofile: Path | None
    batch_csv: Path | None


@dataclass(frozen=True)
class Result:
    backend: str
    settings: Settings
    entries: int
    append_s: float  # inside the batch transactions: LedgerRepo.append and the commit
    wall_s: float  # the whole append phase, building the drafts included
    batch_ms: Sequence[float]
    verify_s: float
    problems: int
    db_bytes: int
    stopped_early: bool
    load_1min: tuple[float, float]  # the machine's load average before and after

    @property
    def append_rate(self) -> float:
        return self.entries / self.append_s if self.append_s else 0.0

    @property
    def wall_rate(self) -> float:
        return self.entries / self.wall_s if self.wall_s else 0.0

    @property
    def verify_rate(self) -> float:
        return self.entries / self.verify_s if self.verify_s else 0.0

    def percentile_ms(self, p: int) -> float:
        if len(self.batch_ms) < 2:
            return self.batch_ms[0] if self.batch_ms else 0.0
        return statistics.quantiles(self.batch_ms, n=100, method="inclusive")[p - 1]


class UsageDrafts:
    """Deterministic, realistic USAGE debits with unique refs (one per fake request)."""

    def __init__(self, accounts: int, seed: int, start_utc: datetime) -> None:
        self.keys = [f"person:{i + 1}" for i in range(accounts)]
        self.rng = random.Random(seed)
        self.run = f"s{seed}"  # every database is fresh, so refs need only differ by index
        self.start_utc = start_utc

    def batch(self, first: int, count: int) -> list[EntryDraft]:
        return [self._draft(i) for i in range(first, first + count)]

    def _draft(self, i: int) -> EntryDraft:
        rng = self.rng
        provider, model, in_price, out_price, read_price = rng.choice(_MODELS)
        source = rng.choice(_SOURCES)
        input_tokens = rng.randint(50, 20_000)
        output_tokens = rng.randint(20, 4_000)
        cache_read = rng.randint(0, 60_000)
        reasoning = rng.randint(0, output_tokens // 2)
        cost = input_tokens * in_price + output_tokens * out_price + cache_read * read_price
        request_id = f"req_{self.run}_{i:09d}"
        return EntryDraft(
            account=self.keys[rng.randrange(len(self.keys))],
            kind=EntryKind.USAGE,
            amount_nanousd=-cost,
            effective_utc=self.start_utc + timedelta(milliseconds=500 * i),
            ref=f"usage:{source}:{request_id}:own",
            memo=f"{provider}/{model}",
            meta={
                "source": source,
                "provider": provider,
                "model": model,
                "input_tokens": input_tokens,
                "output_tokens": output_tokens,
                "cache_read_tokens": cache_read,
                "cache_write_tokens": 0,
                "cache_write_1h_tokens": 0,
                "reasoning_tokens": reasoning,
                "request_id": request_id,
                "price_source": "genai-prices",
            },
        )


def run(db: Database, backend: str, settings: Settings, console: Console) -> Result:
    """Migrate ``db``, append the debits, verify them; ``db`` must be empty and fresh."""
    load_before = os.getloadavg()[0]
    migrate.upgrade(db)
    drafts = UsageDrafts(settings.accounts, settings.seed, datetime.now(UTC) - timedelta(days=30))
    with db.begin() as conn:
        repo = LedgerRepo(conn)
        for key in drafts.keys:
            repo.ensure_account(key)

    profiler = cProfile.Profile() if settings.cprofile else None
    batch_ms: list[float] = []
    done, append_s = 0, 0.0
    started = time.perf_counter()
    with _progress(console) as progress:
        task = progress.add_task(backend, total=settings.entries, rate=0.0)
        while done < settings.entries:
            if time.perf_counter() - started > settings.max_seconds:
                break
            batch = drafts.batch(done, min(settings.batch, settings.entries - done))
            t0 = time.perf_counter()
            if profiler:
                profiler.enable()
            with db.begin() as conn:
                written = LedgerRepo(conn).append(batch, datetime.now(UTC))
            if profiler:
                profiler.disable()
            elapsed = time.perf_counter() - t0
            if len(written) != len(batch):
                raise RuntimeError(f"{len(batch) - len(written)} drafts skipped as already booked")
            batch_ms.append(elapsed * 1000)
            append_s += elapsed
            done += len(batch)
            progress.update(task, completed=done, rate=done / append_s)
    wall_s = time.perf_counter() - started
    if profiler and settings.cprofile:
        out = settings.cprofile.with_suffix(f".{backend}{settings.cprofile.suffix}")
        profiler.dump_stats(out)
        console.print(f"cProfile of the append transactions written to {out}")

    if settings.batch_csv:
        _write_batch_csv(settings.batch_csv, backend, settings.batch, batch_ms)
        console.print(f"batch latencies written to {settings.batch_csv}")
    console.print(f"{backend}: verifying {done:,} entries ...")
    t0 = time.perf_counter()
    with db.begin() as conn:
        repo = LedgerRepo(conn)
        problems = sum(1 for _ in repo.verify())
        counted = repo.count_entries()
    verify_s = time.perf_counter() - t0
    if counted != done:
        raise RuntimeError(f"{backend}: wrote {done} entries but the ledger holds {counted}")
    return Result(
        backend=backend,
        settings=settings,
        entries=done,
        append_s=append_s,
        wall_s=wall_s,
        batch_ms=batch_ms,
        verify_s=verify_s,
        problems=problems,
        db_bytes=_db_bytes(db),
        stopped_early=done < settings.entries,
        load_1min=(load_before, os.getloadavg()[0]),
    )


@contextmanager
def _progress(console: Console) -> Iterator[Progress]:
    with Progress(
        TextColumn("[bold]{task.description:<8}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]:>9,.0f} entries/s"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
    ) as progress:
        yield progress


def _write_batch_csv(path: Path, backend: str, batch: int, batch_ms: Sequence[float]) -> None:
    new = not path.exists()
    with path.open("a") as f:
        if new:
            f.write("backend,batch_no,entries_before,batch_ms\n")
        for i, ms in enumerate(batch_ms):
            f.write(f"{backend},{i},{i * batch},{ms:.3f}\n")


def _db_bytes(db: Database) -> int:
    if db.is_sqlite:
        path = Path(make_url(db.url).database or "")
        db.dispose()  # the last connection to close checkpoints the WAL into the main file
        return sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))
    with db.engine.connect() as conn:
        return int(conn.execute(text("SELECT pg_database_size(current_database())")).scalar_one())


def bench_sqlite(settings: Settings, console: Console) -> Result:
    with tempfile.TemporaryDirectory(prefix="tokenwage-bench-") as tmp:
        path = Path(tmp) / "ledger.db"
        console.print(f"sqlite: fresh database {path}")
        db = Database(f"sqlite:///{path}")
        try:
            return run(db, "sqlite", settings, console)
        finally:
            db.dispose()


def bench_postgres(settings: Settings, admin_url: str, console: Console) -> tuple[Result, str]:
    admin_dsn = admin_url.replace("postgresql+psycopg://", "postgresql://", 1)
    name = f"tokenwage_bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin_dsn, autocommit=True, connect_timeout=5) as admin:
        version = str(admin.execute("SHOW server_version").fetchone()[0])  # type: ignore[index]
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        console.print(f"postgres: fresh database {name} (PostgreSQL {version})")
        url = make_url(admin_dsn).set(database=name).render_as_string(hide_password=False)
        db = Database(url)
        try:
            return run(db, "postgres", settings, console), version
        finally:
            db.dispose()
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


TABLE_HEADER = (
    "| date | backend | entries | batch | accounts | append entries/s | end-to-end entries/s "
    "| batch p50 ms | batch p99 ms | verify s | verify entries/s | DB size MiB |\n"
    "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|"
)


def table_row(r: Result, day: str) -> str:
    entries = f"{r.entries:,}" + (" (time limit)" if r.stopped_early else "")
    return (
        f"| {day} | {r.backend} | {entries} | {r.settings.batch:,} | {r.settings.accounts:,} "
        f"| {r.append_rate:,.0f} | {r.wall_rate:,.0f} "
        f"| {r.percentile_ms(50):,.1f} | {r.percentile_ms(99):,.1f} "
        f"| {r.verify_s:,.1f} | {r.verify_rate:,.0f} | {r.db_bytes / 2**20:,.0f} |"
    )


def parse_args(argv: Sequence[str] | None) -> tuple[argparse.Namespace, Settings]:
    p = argparse.ArgumentParser(
        prog="python -m bench.ledger_append", description=__doc__.split("\n")[0] if __doc__ else ""
    )
    p.add_argument("--entries", type=int, default=1_000_000, help="usage debits to append")
    p.add_argument("--batch", type=int, default=10_000, help="entries per transaction")
    p.add_argument("--accounts", type=int, default=200, help="person accounts to spread over")
    p.add_argument("--backend", choices=("sqlite", "postgres", "both"), default="both")
    p.add_argument("--pg-url", default=DEFAULT_PG_URL, help="server to create a database on")
    p.add_argument("--max-seconds", type=float, default=600.0, help="bound on the append phase")
    p.add_argument("--seed", type=int, default=1, help="seed for the generated usage")
    p.add_argument(
        "--cprofile", type=Path, default=None, help="write a cProfile of the append calls here"
    )
    p.add_argument(
        "--batch-csv", type=Path, default=None, help="append each batch's latency to this CSV"
    )
    args = p.parse_args(argv)
    for name in ("entries", "batch", "accounts"):
        if getattr(args, name) < 1:
            p.error(f"--{name} must be at least 1, got {getattr(args, name)}")
    settings = Settings(
        entries=args.entries,
        batch=args.batch,
        accounts=args.accounts,
        max_seconds=args.max_seconds,
        seed=args.seed,
        cprofile=args.cprofile,
        batch_csv=args.batch_csv,
    )
    return args, settings


def main(argv: Sequence[str] | None = None) -> int:
    args, settings = parse_args(argv)
    console = Console(stderr=True)
    results: list[Result] = []
    pg_version: str | None = None
    status = 0
    if args.backend in ("sqlite", "both"):
        results.append(bench_sqlite(settings, console))
    if args.backend in ("postgres", "both"):
        try:
            result, pg_version = bench_postgres(settings, args.pg_url, console)
            results.append(result)
        except psycopg.OperationalError as exc:
            shown = make_url(args.pg_url).render_as_string(hide_password=True)
            console.print(f"postgres: cannot use {shown!r} (pass --pg-url): {exc}", markup=False)
            status = 2
    if not results:
        return status

    day = datetime.now(UTC).date().isoformat()
    print(TABLE_HEADER)
    for r in results:
        print(table_row(r, day))
    print()
    print(machine_facts(pg_version).markdown())
    for r in results:
        before, after = r.load_1min
        print(f"- Load average (1 min), {r.backend} run: {before:.2f} before, {after:.2f} after")
    bad = [r for r in results if r.problems]
    for r in bad:
        console.print(f"[red]{r.backend}: verify found {r.problems} chain problems[/red]")
    return 1 if bad else status


if __name__ == "__main__":
    sys.exit(main())
