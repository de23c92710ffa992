"""Gateway benchmark: latency added over the mock upstream, and throughput, measured with wrk.

    .venv/bin/python -m bench.gateway [--duration 5] [--workers 2] [--quick] [--baseline]

It makes a temporary SQLite database (migrated, WAL), seeds
one org, one person with a huge monthly allowance and one tokenwage key, then starts
``tokenwage serve --workers N`` as a subprocess (enforcement and the ledger on, as in
production: every request is authorized against the allowance and settled, journaled before
its last byte and booked into the ledger by the folder process that ``serve`` starts)
with ``TOKENWAGE_OPENAI_BASE_URL`` pointing at ``tokenwage mock-upstream`` on a fixed port.

For each scenario the mock upstream is (re)started with that scenario's flags:

* ``non-stream``: ``POST /v1/chat/completions``, JSON answer;
* ``stream 5``: ``"stream": true``, 5 content chunks, no delay;
* ``stream 100 trickled``: 100 content chunks with ``--chunk-delay-ms`` (default 1) between
  them, so one answer takes a little over 100 ms.

and three loads run with wrk (``bench/gateway/post.lua``), first against the mock directly,
then against the gateway, each for ``--duration`` seconds (at most 10) after a short warm-up:

* ``1 conn``: one connection, one request after the other (closed loop);
* ``500 rps``: 500 requests/s paced by the Lua script (one wrk thread, enough connections);
  wrk's latency clock starts when a request is written, so pacing waits are not counted;
* ``32 conn``: 32 connections, two wrk threads, as fast as they go (throughput).

Reported per scenario and load: median and p99 latency and requests/s, direct and through
the gateway, and the added latency (gateway percentile minus direct percentile). With
``--baseline``, each load also runs through ``bench/gateway/minimal_proxy.py`` (the same
uvicorn + aiohttp stack forwarding only, no metering), the floor this machine allows at that
moment. Then the machine facts and the load average before and after. Everything is on
127.0.0.1; every process started here is stopped and the temporary directory removed at the
end.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import func, select

from bench.machine import machine_facts
from tokenwage.core.money import Money
from tokenwage.processes import child_process, free_port, gateway_process
from tokenwage.services.sandbox import one_person_org
from tokenwage.storage import migrate
from tokenwage.storage.db import Database
from tokenwage.storage.ledger_repo import LedgerRepo
from tokenwage.storage.schema import usage_records

LUA = Path(__file__).resolve().parent / "post.lua"
ORG_KEY = "sk-bench-org-secret"
PATH = "/v1/chat/completions"
MAX_DURATION = 10.0


@dataclass(frozen=True)
class Scenario:
    name: str
    stream: bool
    chunks: int
    chunk_delay_ms: float


@dataclass(frozen=True)
class Load:
    name: str
    connections: int
    threads: int
    rate: int  # total requests/s; 0 = unpaced


@dataclass(frozen=True)
class Result:
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    errors: int
    cpu_ms: float | None = None  # CPU time of the server under test (all its processes)

    @property
    def cpu_per_request_ms(self) -> float | None:
        return self.cpu_ms / self.requests if self.cpu_ms is not None and self.requests else None

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.gateway", description=__doc__)
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per load (<= 10)")
    parser.add_argument("--workers", type=int, default=2, help="gateway worker processes")
    parser.add_argument("--mock-workers", type=int, default=1, help="mock upstream workers")
    parser.add_argument("--rate", type=int, default=500, help="paced load, requests/s")
    parser.add_argument("--trickle-delay-ms", type=float, default=1.0)
    parser.add_argument(
        "--tmpdir", type=Path, default=None, help="where the SQLite file goes (default $TMPDIR)"
    )
    parser.add_argument("--quick", action="store_true", help="2 s per load")
    parser.add_argument(
        "--baseline",
        action="store_true",
        help="also measure a minimal forwarding proxy (bench/gateway/minimal_proxy.py)",
    )
    args = parser.parse_args(argv)
    if shutil.which("wrk") is None:
        print("wrk is not installed (apt-get install -y wrk)", file=sys.stderr)
        return 2
    duration = float(min(max(round(2 if args.quick else args.duration), 1), MAX_DURATION))
    warmup = 1.0
    scenarios = [
        Scenario("non-stream", False, 5, 0.0),
        Scenario("stream 5 chunks", True, 5, 0.0),
        Scenario(
            f"stream 100 chunks, {args.trickle_delay_ms:g} ms apart",
            True,
            100,
            args.trickle_delay_ms,
        ),
    ]
    load_before = os.getloadavg()
    started = datetime.now(UTC)
    rows: list[tuple[Scenario, Load, Result, Result]] = []
    floor: list[tuple[Scenario, Load, Result, Result]] = []
    with tempfile.TemporaryDirectory(prefix="tokenwage-bench-gateway-", dir=args.tmpdir) as tmp:
        db_url = f"sqlite:///{Path(tmp) / 'tokenwage.db'}"
        key = _seed(db_url)
        mock_port = free_port()
        upstream = f"http://127.0.0.1:{mock_port}"
        with (
            _gateway(db_url, upstream, args.workers, Path(tmp)) as (gateway, gw_pgid),
            _minimal(upstream, args.workers, args.baseline, Path(tmp)) as (minimal, min_pgid),
        ):
            _wait_idle(gw_pgid)  # every worker has started (imports, prices, allowance run)
            _wait_idle(min_pgid)
            for sc in scenarios:
                loads = _loads(sc, args.rate)
                with _mock(mock_port, sc, args.mock_workers, Path(tmp)) as mock_pgid:
                    _check(upstream, ORG_KEY, sc)
                    _check(gateway, key, sc)
                    for load in loads:
                        direct = _wrk(upstream, ORG_KEY, sc, load, duration, warmup, mock_pgid)
                        via = _wrk(gateway, key, sc, load, duration, warmup, gw_pgid)
                        rows.append((sc, load, direct, via))
                        _progress(sc, load, direct, via)
                        if minimal:
                            bare = _wrk(minimal, ORG_KEY, sc, load, duration, warmup, min_pgid)
                            floor.append((sc, load, direct, bare))
                            _progress(sc, load, direct, bare, "minimal")
        booked, problems = _books(db_url)
    load_after = os.getloadavg()
    served = sum(g.requests for _, _, _, g in rows)
    print(_markdown(rows, started, args.workers, args.mock_workers, duration))
    print(
        f"\nThe ledger after the gateway stopped: {booked:,} usage records for {served:,} "
        f"measured requests through the gateway (plus warm-ups); `ledger verify`: "
        f"{'clean' if not problems else f'{problems} problems'}."
    )
    if floor:
        print()
        print(_floor_markdown(floor))
    print()
    print(machine_facts().markdown())
    print(f"- load average before: {_fmt_load(load_before)}; after: {_fmt_load(load_after)}")
    if booked < served or problems:
        print("the ledger is missing requests the gateway answered", file=sys.stderr)
        return 1
    return 0


def _progress(sc: Scenario, load: Load, d: Result, g: Result, via: str = "gateway") -> None:
    print(
        f"{sc.name:<32} {load.name:<8} direct {d.rps:8.0f} req/s p50 {d.p50_ms:6.2f} "
        f"p99 {d.p99_ms:6.2f} | {via} {g.rps:8.0f} req/s p50 {g.p50_ms:6.2f} "
        f"p99 {g.p99_ms:6.2f} cpu/req {_opt(g.cpu_per_request_ms)} errors {d.errors + g.errors}",
        file=sys.stderr,
        flush=True,
    )


def _loads(sc: Scenario, rate: int) -> list[Load]:
    # Enough connections that the paced load is never short of a free one: the answer
    # time of the trickled stream (about chunks x delay) times the rate, with headroom.
    answer_s = max(sc.chunks * sc.chunk_delay_ms / 1000.0, 0.002)
    paced_conns = max(8, int(answer_s * rate * 1.6) + 1)
    return [
        Load("1 conn", 1, 1, 0),
        Load(f"{rate} rps", paced_conns, 1, rate),
        Load("32 conn", 32, 2, 0),
    ]


def _body(sc: Scenario) -> str:
    body: dict[str, object] = {
        "model": "gpt-4o",
        "max_tokens": 256,
        "messages": [{"role": "user", "content": "hello tokens:120"}],
    }
    if sc.stream:
        body["stream"] = True
    return json.dumps(body, separators=(",", ":"))


def _wrk(
    base: str, key: str, sc: Scenario, load: Load, duration: float, warmup: float, pgid: int
) -> Result:
    env = {**os.environ, "BENCH_BODY": _body(sc), "BENCH_AUTH": f"Bearer {key}"}
    env["BENCH_RATE"] = str(load.rate / load.threads) if load.rate else "0"
    cpu_before = 0.0
    for seconds in (warmup, duration):
        cpu_before = _cpu_ms(pgid)
        cmd = [
            "wrk",
            f"-t{load.threads}",
            f"-c{load.connections}",
            f"-d{max(round(seconds), 1)}s",  # wrk takes whole seconds
            "--timeout",
            "5s",
            "-s",
            str(LUA),
            f"{base}{PATH}",
        ]
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=seconds + 20)
        if done.returncode != 0:
            raise SystemExit(f"{' '.join(cmd)} failed: {done.stderr or done.stdout}")
        out = done.stdout
    cpu_ms = _cpu_ms(pgid) - cpu_before
    line = next(ln for ln in out.splitlines() if ln.startswith("BENCH "))
    data = json.loads(line[len("BENCH ") :])
    errors = sum(int(data[k]) for k in ("connect", "read", "write", "status", "timeout"))
    return Result(
        requests=int(data["requests"]),
        seconds=int(data["duration_us"]) / 1e6,
        p50_ms=int(data["p50_us"]) / 1000,
        p99_ms=int(data["p99_us"]) / 1000,
        errors=errors,
        cpu_ms=cpu_ms,
    )


def _cpu_ms(pgid: int) -> float:
    """User + system CPU time of every live process in process group ``pgid``, from /proc."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[2]) == pgid:  # fields[0] is the state, [1] ppid, [2] pgrp
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total * 1000.0 / ticks


def _wait_idle(pgid: int, timeout_s: float = 30.0) -> None:
    """Until the processes of group ``pgid`` use under 5% of a core (started up)."""
    if not pgid:
        return
    deadline = time.monotonic() + timeout_s
    before = _cpu_ms(pgid)
    while time.monotonic() < deadline:
        time.sleep(0.5)
        now = _cpu_ms(pgid)
        if now - before < 25:
            return
        before = now


def _check(base: str, key: str, sc: Scenario) -> None:
    """One request, to fail early (and to see the stream really has its chunks)."""
    req = urllib.request.Request(
        f"{base}{PATH}",
        data=_body(sc).encode(),
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        status, data = resp.status, resp.read()
    if status != 200:
        raise SystemExit(f"{base}: HTTP {status}: {data[:200]!r}")
    if sc.stream:
        events = data.count(b"data: ")
        if b"[DONE]" not in data or events < sc.chunks:
            raise SystemExit(f"{base}: stream of {events} events, wanted >= {sc.chunks}")


def _markdown(
    rows: list[tuple[Scenario, Load, Result, Result]],
    started: datetime,
    workers: int,
    mock_workers: int,
    duration: float,
) -> str:
    head = (
        f"{started:%Y-%m-%d}, gateway `--workers {workers}`, mock upstream "
        f"`--workers {mock_workers}`, {duration:g} s per load, latencies in ms\n\n"
        "| scenario | load | direct req/s | gateway req/s | direct p50 | gateway p50 "
        "| **added p50** | direct p99 | gateway p99 | **added p99** | CPU ms/req d/g "
        "| errors d/g |\n"
        "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|"
    )
    lines = [head]
    for sc, load, d, g in rows:
        lines.append(
            f"| {sc.name} | {load.name} | {d.rps:,.0f} | {g.rps:,.0f} | {d.p50_ms:.2f} | "
            f"{g.p50_ms:.2f} | **{g.p50_ms - d.p50_ms:+.2f}** | {d.p99_ms:.2f} | "
            f"{g.p99_ms:.2f} | **{g.p99_ms - d.p99_ms:+.2f}** | "
            f"{_opt(d.cpu_per_request_ms)}/{_opt(g.cpu_per_request_ms)} | "
            f"{d.errors}/{g.errors} |"
        )
    return "\n".join(lines)


def _floor_markdown(rows: list[tuple[Scenario, Load, Result, Result]]) -> str:
    lines = [
        "Minimal proxy (`bench/gateway/minimal_proxy.py`: same stack, forwarding only), "
        "measured right after the gateway on each load:\n",
        "| scenario | load | minimal req/s | **added p50** | **added p99** | CPU ms/req | errors |",
        "|---|---|--:|--:|--:|--:|--:|",
    ]
    for sc, load, d, m in rows:
        lines.append(
            f"| {sc.name} | {load.name} | {m.rps:,.0f} | **{m.p50_ms - d.p50_ms:+.2f}** | "
            f"**{m.p99_ms - d.p99_ms:+.2f}** | {_opt(m.cpu_per_request_ms)} | {m.errors} |"
        )
    return "\n".join(lines)


def _opt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def _fmt_load(load: tuple[float, float, float]) -> str:
    return " ".join(f"{x:.2f}" for x in load)


def _seed(db_url: str) -> str:
    db = Database(db_url)
    try:
        migrate.upgrade(db)
        with db.begin() as conn:
            return one_person_org(
                conn, Money.parse("1000000"), email="bench@bench.example", key_name="bench"
            )
    finally:
        db.dispose()


def _books(db_url: str) -> tuple[int, int]:
    """(usage records, ledger verification problems) of the benchmark's database."""
    db = Database(db_url)
    try:
        with db.begin() as conn:
            records = conn.execute(select(func.count()).select_from(usage_records)).scalar_one()
            return int(records), len(list(LedgerRepo(conn).verify()))
    finally:
        db.dispose()


@contextmanager
def _mock(port: int, sc: Scenario, workers: int, tmp: Path) -> Iterator[int]:
    args = ["mock-upstream", "--port", str(port), "--stream-chunks", str(sc.chunks)]
    args += ["--chunk-delay-ms", str(sc.chunk_delay_ms), "--workers", str(workers)]
    args += ["--expected-api-key", ORG_KEY]
    with (tmp / "mock.log").open("wb") as log:
        with child_process(args, port=port, what="the mock upstream", stderr=log) as proc:
            yield proc.pid  # its own session, so also its process group


@contextmanager
def _gateway(db_url: str, upstream: str, workers: int, tmp: Path) -> Iterator[tuple[str, int]]:
    with (tmp / "gateway.log").open("wb") as log:
        with gateway_process(db_url, upstream, ORG_KEY, workers=workers, stderr=log) as (url, proc):
            yield url, proc.pid


@contextmanager
def _minimal(upstream: str, workers: int, wanted: bool, tmp: Path) -> Iterator[tuple[str, int]]:
    """The minimal proxy in front of ``upstream`` (its URL and process group), if wanted."""
    if not wanted:
        yield "", 0
        return
    port = free_port()
    args = [sys.executable, "-m", "bench.gateway.minimal_proxy", "--port", str(port)]
    args += ["--upstream", upstream, "--api-key", ORG_KEY, "--workers", str(workers)]
    root = Path(__file__).resolve().parents[2]
    log = (tmp / "minimal.log").open("wb")  # it logs each mock restart's dropped connections
    proc = subprocess.Popen(args, cwd=root, stderr=log, start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit("the minimal proxy did not start") from None
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}", proc.pid
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=10)
        log.close()


if __name__ == "__main__":
    raise SystemExit(main())
