"""Dashboard benchmark: each main page's latency with a million usage records in the database.

    .venv/bin/python -m bench.dashboard [--records 1000000] [--backend sqlite|postgres|both]
        [--requests 30] [--max-seconds 120] [--pg-url URL] [--workers 1]

For each backend it makes a fresh database (a SQLite file in a temporary directory; a
PostgreSQL database created on ``--pg-url``'s server and dropped afterwards), migrates it,
seeds the demo organisation (``--people`` people over ``--days`` days: teams, packages,
allowances, grants, the ledger; four people in five join the leaderboard) and tops the
usage records up to ``--records`` in bulk (``bench/dashboard_data.py``; ``usage_daily`` is
kept by the same writer as in production).
Then it starts ``tokenwage serve`` as a child process on loopback, signs in through the
/login form as the demo's member, manager, finance and admin people, and requests each
page in :data:`PAGES` as its role ``--requests`` times, one after the other on one
keep-alive connection, after one warm-up request. A page's time is from sending the request
to having read the whole body. Every page's loop stops after ``--max-seconds``.

Results go to stdout as Markdown (p50, p95 and max ms per page and backend, the cold first
request, the page size) with the machine facts; progress goes to stderr.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

import psycopg
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from sqlalchemy.engine import make_url

from bench.dashboard_data import Built, build
from bench.dashboard_db import Fresh, fresh_database
from bench.dashboard_web import Client, sign_in
from bench.machine import machine_facts
from tokenwage.processes import child_process, free_port, provider_env
from tokenwage.storage.db import Database

DEFAULT_PG_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
PASSWORD = "bench-dashboard-password-1"
TARGET_P95_MS = 300.0


@dataclass(frozen=True)
class Page:
    path: str  # {member} is replaced by the member's person id
    role: str


PAGES = (
    Page("/me", "member"),
    Page("/me/live.json", "member"),
    Page("/team", "manager"),
    Page("/people/{member}", "manager"),
    Page("/org", "finance"),
    Page("/org?range=90d", "finance"),
    Page("/leaderboard", "member"),
    Page("/leaderboard?period=90d&metric=cache_hit_rate", "member"),
    Page("/budgets", "admin"),
    Page("/ledger", "finance"),
    Page("/api/v1/people/{member}/usage?group=day", "member"),
    Page("/api/v1/people/{member}/usage/records", "member"),
    Page("/api/v1/usage?group=model", "finance"),
    Page("/api/v1/balances", "finance"),
)


@dataclass(frozen=True)
class Timing:
    page: Page
    status: int
    bytes: int
    first_ms: float
    ms: list[float]
    stopped_early: bool

    def pct(self, p: float) -> float:
        if not self.ms:
            return float("nan")
        if len(self.ms) == 1:
            return self.ms[0]
        return statistics.quantiles(self.ms, n=100, method="inclusive")[round(p) - 1]


@dataclass(frozen=True)
class Run:
    backend: str
    built: Built
    timings: list[Timing]
    db_bytes: int
    load_before: float
    load_after: float
    server_version: str | None


def run(backend: str, args: argparse.Namespace, console: Console) -> Run:
    with fresh_database(backend, args.pg_url, console) as fresh:
        return _run(fresh, backend, args, console)


def _run(fresh: Fresh, backend: str, args: argparse.Namespace, console: Console) -> Run:
    db = fresh.db
    with _progress(console) as bar:
        seed_task = bar.add_task(f"{backend}: demo org", total=args.days + 1, unit="days")
        usage_task = bar.add_task(f"{backend}: usage", total=args.records, unit="records")
        built = build(
            db,
            records=args.records,
            people=args.people,
            days=args.days,
            batch=args.batch,
            seed=args.seed,
            now=datetime.now(UTC),
            on_seed=lambda done, total: bar.update(seed_task, completed=done, total=total),
            on_usage=lambda done, total: bar.update(usage_task, completed=done, total=total),
        )
    console.print(
        f"{backend}: {built.usage_records:,} usage records, {built.people} people, "
        f"{built.days} days (demo {built.seconds_seed:.0f} s, usage {built.seconds_usage:.0f} s)"
    )
    _set_passwords(db, built)
    size = fresh.size_bytes()
    db.dispose()
    load_before = os.getloadavg()[0]
    with _serve(db.url, args.workers) as base:
        timings = _measure(base, built, args, console)
    return Run(backend, built, timings, size, load_before, os.getloadavg()[0], fresh.server_version)


def _set_passwords(db: Database, built: Built) -> None:
    from tokenwage.web.accounts import set_password

    now = datetime.now(UTC)
    with db.begin() as conn:
        for email in built.logins.values():
            set_password(conn, email, PASSWORD, actor="bench", now=now)


@contextmanager
def _serve(db_url: str, workers: int) -> Iterator[str]:
    port = free_port()
    upstream = f"http://127.0.0.1:{free_port()}"  # never called: only pages are requested
    args = ["--database-url", db_url, "serve", "--port", str(port), "--workers", str(workers)]
    args += ["--no-access-log", "--log-level", "warning"]
    env = provider_env(upstream, "sk-bench-unused")
    with child_process(args, port=port, what="tokenwage serve", env=env, stderr=None):
        yield f"http://127.0.0.1:{port}"


def _measure(base: str, built: Built, args: argparse.Namespace, console: Console) -> list[Timing]:
    clients = {role: sign_in(base, email, PASSWORD) for role, email in built.logins.items()}
    member_id = built.person_ids["member"]
    timings = []
    try:
        for page in PAGES:
            path = page.path.format(member=member_id)
            timings.append(_time_page(clients[page.role], page, path, args))
            t = timings[-1]
            console.print(
                f"  {path:<24} {page.role:<8} {t.status} p50 {t.pct(50):7.1f} "
                f"p95 {t.pct(95):7.1f} max {max(t.ms, default=0):7.1f} ms"
            )
    finally:
        for c in clients.values():
            c.close()
    return timings


def _time_page(client: Client, page: Page, path: str, args: argparse.Namespace) -> Timing:
    t0 = time.perf_counter()
    first = client.get(path)
    first_ms = (time.perf_counter() - t0) * 1000
    ms: list[float] = []
    stop = time.monotonic() + args.max_seconds
    stopped_early = False
    for _ in range(args.requests):
        if time.monotonic() > stop:
            stopped_early = True
            break
        t0 = time.perf_counter()
        r = client.get(path)
        ms.append((time.perf_counter() - t0) * 1000)
        if r.status != first.status:
            raise RuntimeError(f"{path} answered {r.status}, first {first.status}")
    return Timing(page, first.status, len(first.body), first_ms, ms, stopped_early)


@contextmanager
def _progress(console: Console) -> Iterator[Progress]:
    with Progress(
        TextColumn("[bold]{task.description:<20}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[unit]}"),
        TimeElapsedColumn(),
        console=console,
    ) as progress:
        yield progress


def markdown(runs: Sequence[Run], requests: int) -> str:
    day = datetime.now(UTC).date().isoformat()
    lines = [
        "| date | backend | page | role | status | KiB | first ms | p50 ms | p95 ms | max ms "
        "| ≤ 300 ms p95 |",
        "|---|---|---|---|--:|--:|--:|--:|--:|--:|---|",
    ]
    for r in runs:
        for t in r.timings:
            n = f" ({len(t.ms)} of {requests}, time limit)" if t.stopped_early else ""
            ok = "yes" if t.pct(95) <= TARGET_P95_MS else "**no**"
            lines.append(
                f"| {day} | {r.backend} | `{t.page.path}`{n} | {t.page.role} | {t.status} "
                f"| {t.bytes / 1024:,.0f} | {t.first_ms:,.0f} | {t.pct(50):,.1f} "
                f"| {t.pct(95):,.1f} | {max(t.ms, default=float('nan')):,.1f} | {ok} |"
            )
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m bench.dashboard", description=(__doc__ or "").split("\n")[0]
    )
    p.add_argument("--records", type=int, default=1_000_000, help="usage records in total")
    p.add_argument("--backend", choices=("sqlite", "postgres", "both"), default="both")
    p.add_argument("--requests", type=int, default=30, help="timed requests per page")
    p.add_argument("--max-seconds", type=float, default=120.0, help="bound on each page's loop")
    p.add_argument("--people", type=int, default=50, help="people in the demo org")
    p.add_argument("--days", type=int, default=90, help="days of history")
    p.add_argument("--batch", type=int, default=50_000, help="usage records per transaction")
    p.add_argument("--workers", type=int, default=1, help="tokenwage serve worker processes")
    p.add_argument("--pg-url", default=DEFAULT_PG_URL, help="server to create a database on")
    p.add_argument("--seed", type=int, default=7)
    args = p.parse_args(argv)
    for name in ("records", "requests", "people", "days", "batch", "workers"):
        if getattr(args, name) < 1:
            p.error(f"--{name} must be at least 1, got {getattr(args, name)}")
    if args.people < 4:
        p.error("--people must be at least 4 (one person per role)")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    console = Console(stderr=True)
    runs: list[Run] = []
    status = 0
    backends = ("sqlite", "postgres") if args.backend == "both" else (args.backend,)
    for backend in backends:
        try:
            runs.append(run(backend, args, console))
        except psycopg.OperationalError as exc:
            shown = make_url(args.pg_url).render_as_string(hide_password=True)
            console.print(f"postgres: cannot use {shown!r} (pass --pg-url): {exc}", markup=False)
            status = 2
    if not runs:
        return status
    print(markdown(runs, args.requests))
    print()
    for r in runs:
        print(
            f"- {r.backend}: {r.built.usage_records:,} usage records, {r.built.people} people, "
            f"{r.built.days} days; database {r.db_bytes / 2**20:,.0f} MiB; built in "
            f"{r.built.seconds_seed + r.built.seconds_usage:,.0f} s; load average (1 min) "
            f"{r.load_before:.2f} before the requests, {r.load_after:.2f} after"
        )
    print(f"- `tokenwage serve --workers {args.workers}`; {args.requests} requests per page")
    pg_version = next((r.server_version for r in runs if r.server_version), None)
    print(machine_facts(pg_version).markdown())
    return status


if __name__ == "__main__":
    sys.exit(main())
