"""Claude Code import benchmark, side by side with ccusage on the same transcripts.

    .venv/bin/python -m bench.import_claude_code [--lines 1000000] [--seed 7] [--keep DIR]
        [--no-ccusage] [--ccusage-version 18.0.11] [--profile out.prof]

1. Generates a transcript tree of ``--lines`` lines shaped like Claude Code's: per turn a
   user prompt, an assistant reply written as 1-4 lines (one per content block, same
   ``message.id``/``requestId``: the repeats), tool results (some mention ``"usage"`` inside
   a subagent result), the odd summary line; subagent (sidechain) transcripts; resumed
   sessions that replay earlier replies in a new file; a few ``<synthetic>`` replies and
   torn lines. About 45% of the lines are assistant lines with usage.
2. Imports it into a fresh SQLite database through ``importers.run_import`` in one
   transaction (what ``tokenwage import claude-code`` does), then runs a second import
   (which must read nothing), and reports lines/s and seconds. The parse alone (reading and
   turning lines into records, no database) is timed too, to show where the time goes.
3. Installs ccusage from the npm registry into a folder under ``/tmp`` (once) and runs
   ``ccusage daily --json --offline --mode calculate --timezone UTC`` on the same tree, then
   compares the daily and per-model tokens with ``tokenwage report daily`` (exactly) and the
   costs (loosely: ccusage prices with LiteLLM's table, tokenwage with genai-prices).

ccusage 18.0.11 is the default: the last release whose data loader is JavaScript; 20.x
needs a native binary package that the registry mirror here does not serve.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, TextIO

from bench.machine import machine_facts
from tokenwage.core.imported import ChargeMode
from tokenwage.core.org import Org
from tokenwage.importers import collector_paused, run_import
from tokenwage.importers.claude_code import ClaudeCodeLogs
from tokenwage.importers.files import ReadReport
from tokenwage.services.reports import ReportFilter, usage_report
from tokenwage.storage import migrate
from tokenwage.storage.db import Database
from tokenwage.storage.org_repo import OrgRepo

MODELS = (
    ("claude-sonnet-4-5-20250929", 60),
    ("claude-haiku-4-5-20251001", 30),
    ("claude-opus-4-1-20250805", 10),
)
START = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
NOW = datetime(2026, 3, 20, tzinfo=UTC)  # the import runs "after" every line
_TEXT = "The function now validates its input and the tests pass. " * 6


# -- the tree -------------------------------------------------------------------------------
class TreeWriter:
    """Writes sessions until ``lines`` lines are written; remembers replies to replay."""

    def __init__(self, root: Path, lines: int, seed: int) -> None:
        self.root, self.target, self.rng = root, lines, random.Random(seed)
        self.written = 0
        self.n_reply = 0
        self.replayable: list[str] = []

    def run(self) -> None:
        session = 0
        while self.written < self.target:
            project = self.root / "projects" / f"-home-dev-proj{session % 23}"
            self.session(project, f"sess-{session:05d}", session)
            session += 1

    def session(self, project: Path, sid: str, number: int) -> None:
        rng = self.rng
        clock = START + timedelta(days=rng.randrange(70), seconds=rng.randrange(12 * 3600))
        project.mkdir(parents=True, exist_ok=True)
        size = min(rng.randrange(400, 4000), self.target - self.written)
        with (project / f"{sid}.jsonl").open("w") as f:
            if self.replayable and rng.random() < 0.1:  # a resumed session replays replies
                for line in rng.sample(self.replayable, min(40, len(self.replayable))):
                    self.put(f, line)
            written_here = 0
            while written_here < size:
                clock += timedelta(seconds=rng.randrange(3, 90))
                written_here += self.turn(f, sid, clock, sidechain=False)
            if rng.random() < 0.15:  # a subagent transcript
                agents = project / sid / "subagents"
                agents.mkdir(parents=True, exist_ok=True)
                with (agents / "agent-1.jsonl").open("w") as sub:
                    for _ in range(rng.randrange(20, 80)):
                        clock += timedelta(seconds=rng.randrange(2, 30))
                        self.turn(sub, sid, clock, sidechain=True)
            if number % 97 == 3:
                self.put(f, '{"type":"assistant","message":{"usage":{"input_tok')  # torn

    def turn(self, f: TextIO, sid: str, clock: datetime, *, sidechain: bool) -> int:
        rng = self.rng
        ts = clock.strftime("%Y-%m-%dT%H:%M:%S.") + f"{clock.microsecond // 1000:03d}Z"
        before = self.written
        self.put(f, _user(sid, ts, rng.randrange(80, 600), sidechain))
        model = rng.choices([m for m, _ in MODELS], [w for _, w in MODELS])[0]
        if rng.random() < 0.004:
            model = "<synthetic>"
        self.n_reply += 1
        usage = _usage(rng, model)
        blocks = rng.choices((1, 2, 3, 4), (35, 35, 20, 10))[0]
        for block in range(blocks):  # one line per content block, same ids and usage
            line = _assistant(sid, ts, self.n_reply, block, model, usage, sidechain)
            self.put(f, line)
        if rng.random() < 0.02:
            self.replayable.append(line)
        for _ in range(rng.choices((0, 1, 2, 3), (15, 45, 30, 10))[0]):
            self.put(f, _tool_result(rng, sid, ts, sidechain))
        if rng.random() < 0.02:
            self.put(f, '{"type":"summary","summary":"Refactor","leafUuid":"x"}')
        return self.written - before

    def put(self, f: TextIO, line: str) -> None:
        f.write(line)
        f.write("\n")
        self.written += 1


def _user(sid: str, ts: str, size: int, sidechain: bool) -> str:
    text = ("please look at the failing test " * 20)[:size]
    return (
        f'{{"parentUuid":null,"isSidechain":{str(sidechain).lower()},"userType":"external",'
        f'"cwd":"/home/dev/proj","sessionId":"{sid}","version":"2.0.14","gitBranch":"main",'
        f'"type":"user","message":{{"role":"user","content":"{text}"}},'
        f'"uuid":"u-{sid}-{ts}","timestamp":"{ts}"}}'
    )


def _usage(rng: random.Random, model: str) -> str:
    zero = model == "<synthetic>"
    inp, out = (0, 0) if zero else (rng.randrange(1, 60), rng.randrange(5, 3000))
    c5 = 0 if zero or rng.random() < 0.5 else rng.randrange(100, 20_000)
    c1 = 0 if zero or rng.random() < 0.85 else rng.randrange(100, 8_000)
    cr = 0 if zero else rng.randrange(0, 150_000)
    return (
        f'{{"input_tokens":{inp},"cache_creation_input_tokens":{c5 + c1},'
        f'"cache_read_input_tokens":{cr},"cache_creation":{{"ephemeral_5m_input_tokens":{c5},'
        f'"ephemeral_1h_input_tokens":{c1}}},"output_tokens":{out},"service_tier":"standard"}}'
    )


def _assistant(
    sid: str, ts: str, n: int, block: int, model: str, usage: str, sidechain: bool
) -> str:
    content = (
        f'{{"type":"text","text":"{_TEXT}"}}'
        if block % 2 == 0
        else f'{{"type":"tool_use","id":"toolu_{n}_{block}","name":"Bash",'
        f'"input":{{"command":"pytest -q tests/test_{block}.py","description":"Run tests"}}}}'
    )
    return (
        f'{{"parentUuid":"u-{sid}-{ts}","isSidechain":{str(sidechain).lower()},'
        f'"userType":"external","cwd":"/home/dev/proj","sessionId":"{sid}","version":"2.0.14",'
        f'"gitBranch":"main","message":{{"id":"msg_01{n:022d}","type":"message",'
        f'"role":"assistant","model":"{model}","content":[{content}],'
        f'"stop_reason":null,"stop_sequence":null,"usage":{usage}}},'
        f'"requestId":"req_011C{n:020d}","type":"assistant","uuid":"a-{n}-{block}",'
        f'"timestamp":"{ts}"}}'
    )


def _tool_result(rng: random.Random, sid: str, ts: str, sidechain: bool) -> str:
    body = "x" * rng.randrange(100, 3000)
    task = ',"toolUseResult":{"totalTokens":812,"usage":{"input_tokens":4}}'
    extra = task if rng.random() < 0.03 else ""
    return (
        f'{{"parentUuid":"a","isSidechain":{str(sidechain).lower()},"userType":"external",'
        f'"cwd":"/home/dev/proj","sessionId":"{sid}","type":"user","message":{{"role":"user",'
        f'"content":[{{"tool_use_id":"toolu_1","type":"tool_result","content":"{body}"}}]}}'
        f'{extra},"uuid":"t-{sid}-{ts}-{rng.random()}","timestamp":"{ts}"}}'
    )


# -- tokenwage --------------------------------------------------------------------------------
@dataclass
class Timed:
    seconds: float
    detail: dict[str, Any]
    cpu_seconds: float = 0.0


def import_tree(root: Path, db_path: Path, profile: Path | None) -> tuple[Timed, Timed, Timed]:
    parse_only = _parse_only(root)
    db = Database(f"sqlite:///{db_path}")
    migrate.upgrade(db)
    with db.begin() as conn:
        OrgRepo(conn).save_org(Org("Bench", "UTC"))
    profiler = cProfile.Profile() if profile else None
    started, cpu = time.perf_counter(), time.process_time()
    if profiler:
        profiler.enable()
    with db.begin() as conn:
        outcome = run_import(conn, _source(root), mode=ChargeMode.TRACK, now=NOW)
    if profiler:
        profiler.disable()
        profiler.dump_stats(profile)  # type: ignore[arg-type]
    first = Timed(
        time.perf_counter() - started,
        _detail(outcome.report, outcome.summary.new),
        time.process_time() - cpu,
    )
    first.detail["duplicates"] = outcome.summary.duplicates
    started = time.perf_counter()
    with db.begin() as conn:
        again = run_import(conn, _source(root), mode=ChargeMode.TRACK, now=NOW)
    second = Timed(time.perf_counter() - started, _detail(again.report, again.summary.new))
    db.dispose()
    return parse_only, first, second


def _source(root: Path) -> ClaudeCodeLogs:
    return ClaudeCodeLogs([root], now=NOW, hostname="bench")


def _parse_only(root: Path) -> Timed:
    report = ReadReport()
    started, cpu = time.perf_counter(), time.process_time()
    with collector_paused():  # as in run_import
        n = sum(1 for _ in _source(root).records({}, report, None))
    return Timed(time.perf_counter() - started, _detail(report, n), time.process_time() - cpu)


def _detail(report: ReadReport, new: int) -> dict[str, Any]:
    return {
        "files": report.files_read,
        "lines": report.lines_read,
        "bytes": report.bytes_read,
        "usage_lines": report.usage_lines,
        "bad_lines": report.bad_lines,
        "records": new,
    }


def our_daily(db_path: Path) -> dict[str, dict[str, Any]]:
    db = Database(f"sqlite:///{db_path}")
    with db.begin() as conn:
        report = usage_report(conn, "daily", ReportFilter(timezone="UTC"))
    db.dispose()
    return {row["date"]: row for row in report.as_json()["rows"]}


# -- ccusage ----------------------------------------------------------------------------------
def ccusage_daily(root: Path, version: str) -> Timed:
    prefix = Path(tempfile.gettempdir()) / f"tokenwage-bench-ccusage-{version}"
    entry = prefix / "node_modules" / "ccusage" / "dist" / "index.js"
    if not entry.exists():
        subprocess.run(
            ["npm", "install", "--prefix", str(prefix), "--no-audit", "--no-fund",
             f"ccusage@{version}"],
            check=True, capture_output=True,
        )  # fmt: skip
    home = Path(tempfile.mkdtemp(prefix="ccusage-home-"))
    env = {**os.environ, "CLAUDE_CONFIG_DIR": str(root), "HOME": str(home), "NO_COLOR": "1"}
    args = ["node", str(entry), "daily", "--json", "--offline", "--mode", "calculate",
            "--timezone", "UTC", "--order", "asc"]  # fmt: skip
    started = time.perf_counter()
    ran = subprocess.run(args, env=env, capture_output=True, text=True, check=True)
    seconds = time.perf_counter() - started
    shutil.rmtree(home, ignore_errors=True)
    return Timed(seconds, {row["date"]: row for row in json.loads(ran.stdout)["daily"]})


def compare(ours: dict[str, dict[str, Any]], theirs: dict[str, dict[str, Any]]) -> list[str]:
    """Differences in tokens per day and per day and model (empty: they match)."""
    diffs = []
    if set(ours) != set(theirs):
        diffs.append(f"days differ: {sorted(set(ours) ^ set(theirs))}")
    pairs = (
        ("input_tokens", "inputTokens"),
        ("output_tokens", "outputTokens"),
        ("cache_write_tokens", "cacheCreationTokens"),
        ("cache_read_tokens", "cacheReadTokens"),
    )
    for day in sorted(set(ours) & set(theirs)):
        for mine, cc in pairs:
            if ours[day][mine] != theirs[day][cc]:
                diffs.append(f"{day} {mine}: {ours[day][mine]} vs ccusage {theirs[day][cc]}")
        models = {b["model"].split("/", 1)[1]: b for b in ours[day]["breakdown"]}
        for b in theirs[day]["modelBreakdowns"]:
            m = models.get(b["modelName"])
            if m is None or any(m[mine] != b[cc] for mine, cc in pairs):
                diffs.append(f"{day} {b['modelName']}: per-model tokens differ")
    return diffs


# -- main -------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--lines", type=int, default=1_000_000)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--keep", type=Path, help="Write the tree here and keep it.")
    p.add_argument("--no-ccusage", action="store_true")
    p.add_argument("--ccusage-version", default="18.0.11")
    p.add_argument("--profile", type=Path, help="cProfile the first import into this file.")
    args = p.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="tokenwage-bench-cc-"))
    root = args.keep or work / "claude"
    try:
        started = time.perf_counter()
        TreeWriter(root, args.lines, args.seed).run()
        gen = time.perf_counter() - started
        size = sum(f.stat().st_size for f in root.rglob("*.jsonl"))
        say(f"generated {args.lines:,} lines ({size / 1e6:,.0f} MB) in {gen:.1f} s at {root}")
        load = os.getloadavg()[0]
        parse, first, second = import_tree(root, work / "bench.db", args.profile)
        per_s = parse.detail["lines"] / parse.seconds
        say(
            f"parse only: {parse.seconds:.2f} s, {parse.cpu_seconds:.2f} s CPU, "
            f"{per_s:,.0f} lines/s"
        )
        rate = first.detail["lines"] / first.seconds
        say(f"import: {first.seconds:.2f} s, {first.cpu_seconds:.2f} s CPU, {rate:,.0f} lines/s")
        say(f"  {first.detail}")
        say(f"second run: {second.seconds:.2f} s, {second.detail}")
        ours = our_daily(work / "bench.db")
        if not args.no_ccusage:
            cc = ccusage_daily(root, args.ccusage_version)
            diffs = compare(ours, cc.detail)
            say(f"ccusage {args.ccusage_version} daily: {cc.seconds:.2f} s")
            say("daily and per-model tokens match ccusage" if not diffs else "\n".join(diffs[:20]))
            mine = sum(Decimal(r["cost_usd"]) for r in ours.values())
            theirs = sum(Decimal(str(r["totalCost"])) for r in cc.detail.values())
            say(f"cost: tokenwage ${mine:,.2f} (genai-prices), ccusage ${theirs:,.2f} (LiteLLM)")
        say(f"load average (1 min) before / after: {load:.2f} / {os.getloadavg()[0]:.2f}")
        say(machine_facts().markdown())
    finally:
        shutil.rmtree(work, ignore_errors=True)


def say(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
