"""Contention benchmark: the bare proxy's 1-connection latency tail beside a busy process.

    .venv/bin/python -m bench.contention [--duration 5] [--workers 1] [--duties 0.15,0.4]

The gateway books settlements in a separate folder process that wakes every 10 ms and
works for a millisecond or two. This measures what such a neighbour costs the request path
on this machine, without the gateway: it starts ``tokenwage mock-upstream`` (1 worker) and
``bench/gateway/minimal_proxy.py`` (uvicorn + aiohttp, forwarding only, ``--workers``) on
127.0.0.1, then runs wrk at 1 connection, 1 thread (non-stream ``POST
/v1/chat/completions``, 1 s warm-up, then ``--duration`` seconds, at most 10):

* ``direct``: against the mock, no background (the floor without the proxy);
* ``none``: through the proxy, no background;
* ``busy D, nice 0`` for each duty D of ``--duties``: through the proxy while a separate
  Python process spins on ``time.monotonic()`` for D x 10 ms every 10 ms and sleeps the rest;
* ``busy D, SCHED_IDLE`` at the largest duty, the busy process under ``SCHED_IDLE`` (nice 19
  if the kernel refuses, said in the row);
* ``busy D, nice 0, sched_yield every 0.2 ms`` at the largest duty: the same work, yielding
  its CPU every 0.2 ms as the folder does (``tokenwage/gateway/pacing.py``).

Reported per row: req/s, p50/p90/p99/p99.9 latency, CPU ms per request of the proxy's
process group, of wrk itself and of the mock, and the busy process's measured share of one
core; then the load average before/after and the machine facts. wrk's Lua is
``bench/gateway/post.lua`` with its ``done`` replaced by one reporting more percentiles.
Every child is stopped at the end, also on errors and on SIGTERM.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from bench.gateway.__main__ import (
    LUA,
    ORG_KEY,
    PATH,
    Scenario,
    _body,
    _check,
    _cpu_ms,
    _fmt_load,
    _minimal,
    _mock,
    _wait_idle,
)
from bench.machine import machine_facts
from tokenwage.processes import free_port

SCENARIO = Scenario(name="non-stream", stream=False, chunks=5, chunk_delay_ms=0.0)
MAX_DURATION = 10
WARMUP_S = 1
DONE_LUA = """function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'CONTENTION {"requests": %d, "duration_us": %d, "p50": %d, "p90": %d, "p99": %d, ' ..
    '"p99.9": %d, "errors": %d}\\n', summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency:percentile(99.9), e.connect + e.read + e.write + e.status + e.timeout))
end
"""
BUSY = """import os, sys, time
duty, seconds, mode = float(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
how = "nice 0"
if mode == "yield":
    how = "nice 0, sched_yield every 0.2 ms"
if mode == "idle":
    try:
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
        how = "SCHED_IDLE"
    except PermissionError:
        os.nice(19)
        how = "nice 19 (SCHED_IDLE refused)"
print(how, flush=True)
period, busy = 0.010, duty * 0.010
slot = time.monotonic()
end = slot + seconds
while slot < end:
    due = time.monotonic() + 0.0002
    while (now := time.monotonic()) < slot + busy:
        if mode == "yield" and now >= due:
            os.sched_yield()  # as gateway/pacing.py's Pacer does in the folder
            due = time.monotonic() + 0.0002
    slot += period
    now = time.monotonic()
    if slot > now:
        time.sleep(slot - now)
    else:
        slot = now  # overran (preempted): no catching up
"""


@dataclass(frozen=True)
class Row:
    setting: str
    requests: int
    seconds: float
    pct_ms: tuple[float, float, float, float]  # p50, p90, p99, p99.9
    errors: int
    proxy_cpu_ms: float | None
    wrk_cpu_ms: float
    mock_cpu_ms: float
    bg_core_pct: float | None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.contention", description=__doc__)
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per row (<= 10)")
    parser.add_argument("--workers", type=int, default=1, help="minimal proxy workers")
    parser.add_argument("--duties", default="0.15,0.4", help="busy-loop duty cycles, 0..1")
    args = parser.parse_args(argv)
    duties = [float(d) for d in args.duties.split(",") if d.strip()]
    if not duties or not all(0 < d <= 1 for d in duties):
        parser.error("--duties must be numbers in (0, 1]")
    if shutil.which("wrk") is None:
        print("wrk is not installed (apt-get install -y wrk)", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the cleanups
    duration = int(min(max(round(args.duration), 1), MAX_DURATION))
    settings = [(d, "normal") for d in duties] + [(max(duties), m) for m in ("idle", "yield")]
    load_before = os.getloadavg()
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="tokenwage-bench-contention-") as tmp:
        lua = Path(tmp) / "contention.lua"
        lua.write_text(_lua())
        mock_port = free_port()
        upstream = f"http://127.0.0.1:{mock_port}"
        with (
            _mock(mock_port, SCENARIO, 1, Path(tmp)) as mock_pgid,
            _minimal(upstream, args.workers, True, Path(tmp)) as (proxy, proxy_pgid),
        ):
            _wait_idle(proxy_pgid)
            _check(upstream, ORG_KEY, SCENARIO)
            _check(proxy, ORG_KEY, SCENARIO)
            rows.append(_measure("direct", upstream, lua, duration, mock_pgid, 0, None))
            rows.append(_measure("none", proxy, lua, duration, mock_pgid, proxy_pgid, None))
            for duty, mode in settings:
                seconds = WARMUP_S + duration + 5
                with _busy(duty, mode, seconds) as (how, pid):
                    setting = f"busy {duty:.0%}, {how}"
                    rows.append(_measure(setting, proxy, lua, duration, mock_pgid, proxy_pgid, pid))
    load_after = os.getloadavg()
    print(_markdown(rows, args.workers, duration))
    if any(r.errors for r in rows):
        print("\n**wrk counted errors**: " + ", ".join(f"{r.setting}: {r.errors}" for r in rows))
    print(f"\n- load average before: {_fmt_load(load_before)}; after: {_fmt_load(load_after)}")
    print(machine_facts().markdown())
    return 1 if any(r.errors for r in rows) else 0


def _lua() -> str:
    """``post.lua`` (body, headers, pacing) with its ``done`` swapped for :data:`DONE_LUA`."""
    text = LUA.read_text()
    head, marker, _ = text.partition("function done(")
    if not marker:
        raise SystemExit(f"{LUA} has no `function done(`")
    return head + DONE_LUA


@contextmanager
def _busy(duty: float, mode: str, seconds: float) -> Iterator[tuple[str, int]]:
    """A busy-loop process at ``duty`` for at most ``seconds`` (``mode``: normal, idle for
    SCHED_IDLE, yield for a sched_yield every 0.2 ms): (how it is scheduled, pid)."""
    idle = mode == "idle"
    cmd = [sys.executable, "-c", BUSY, str(duty), str(seconds), mode]
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, start_new_session=True) as proc:
        try:
            assert proc.stdout is not None
            how = proc.stdout.readline().strip() or "did not start"
            policy = os.sched_getscheduler(proc.pid)
            nice = os.getpriority(os.PRIO_PROCESS, proc.pid)
            if idle and policy != os.SCHED_IDLE and nice != 19:
                raise SystemExit(f"busy process: {how}, policy {policy}, nice {nice}")
            yield how, proc.pid
        finally:
            if proc.poll() is None:
                proc.kill()  # then Popen's exit closes its stdout and waits for it


def _measure(
    setting: str, base: str, lua: Path, duration: int, mock: int, proxy: int, bg: int | None
) -> Row:
    _wrk(base, lua, WARMUP_S)
    mock_before, proxy_before = _cpu_ms(mock), _cpu_ms(proxy) if proxy else 0.0
    bg_before, started = _cpu_ms(bg) if bg else 0.0, time.monotonic()
    data, wrk_cpu_ms = _wrk(base, lua, duration)
    wall_ms = (time.monotonic() - started) * 1000
    bg_pct = (_cpu_ms(bg) - bg_before) / wall_ms * 100 if bg else None
    n = max(int(data["requests"]), 1)
    row = Row(
        setting=setting,
        requests=int(data["requests"]),
        seconds=int(data["duration_us"]) / 1e6,
        pct_ms=(data["p50"] / 1e3, data["p90"] / 1e3, data["p99"] / 1e3, data["p99.9"] / 1e3),
        errors=int(data["errors"]),
        proxy_cpu_ms=(_cpu_ms(proxy) - proxy_before) / n if proxy else None,
        wrk_cpu_ms=wrk_cpu_ms / n,
        mock_cpu_ms=(_cpu_ms(mock) - mock_before) / n,
        bg_core_pct=bg_pct,
    )
    p50, p90, p99, p999 = row.pct_ms
    print(
        f"{setting:<34} {row.requests / row.seconds:7.0f} req/s p50 {p50:.2f} p90 {p90:.2f} "
        f"p99 {p99:.2f} p99.9 {p999:.2f} ms, bg % {_opt(bg_pct, '.0f')}, errors {row.errors}",
        file=sys.stderr,
        flush=True,
    )
    return row


def _wrk(base: str, lua: Path, seconds: int) -> tuple[dict[str, int], float]:
    """One wrk run at 1 connection: its JSON line, and the CPU ms wrk itself used."""
    env = {**os.environ, "BENCH_BODY": _body(SCENARIO), "BENCH_AUTH": f"Bearer {ORG_KEY}"}
    env["BENCH_RATE"] = "0"
    cmd = ["wrk", "-t1", "-c1", f"-d{seconds}s", "--timeout", "5s", "-s", str(lua)]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run(
        [*cmd, f"{base}{PATH}"], env=env, capture_output=True, text=True, timeout=seconds + 20
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed: {done.stderr or done.stdout}")
    line = next(ln for ln in done.stdout.splitlines() if ln.startswith("CONTENTION "))
    cpu_s = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return json.loads(line[len("CONTENTION ") :]), cpu_s * 1000


def _markdown(rows: list[Row], workers: int, duration: int) -> str:
    lines = [
        f"Minimal proxy `--workers {workers}` in front of the mock upstream (1 worker), wrk "
        f"1 connection, non-stream, {duration} s per row after {WARMUP_S} s warm-up; "
        "latencies in ms, CPU in ms per request; bg = the busy process's share of one core\n",
        "| setting | req/s | p50 | p90 | p99 | p99.9 | proxy CPU ms/req | wrk CPU ms/req "
        "| mock CPU ms/req | bg % |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for r in rows:
        pcts = " | ".join(f"{p:.2f}" for p in r.pct_ms)
        lines.append(
            f"| {r.setting} | {r.requests / r.seconds:,.0f} | {pcts} | {_opt(r.proxy_cpu_ms)} | "
            f"{r.wrk_cpu_ms:.3f} | {r.mock_cpu_ms:.3f} | {_opt(r.bg_core_pct, '.0f')} |"
        )
    return "\n".join(lines)


def _opt(value: float | None, fmt: str = ".3f") -> str:
    return "n/a" if value is None else format(value, fmt)


if __name__ == "__main__":
    raise SystemExit(main())
