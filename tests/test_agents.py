"""The real coding agents through the gateway: Claude Code 2.1.197 and Codex CLI 0.169.0.

Both run non-interactively and offline against ``tokenwage serve`` (a subprocess, 1 worker) in
front of the simulated provider, with a person's virtual key:

* each completes a task that calls a tool, and the ledger debits exactly the usage records;
* with the allowance spent, each stops at once with our message (no retry storm), the
  provider never sees a request, and nothing is billed.

The agents come from npm at pinned versions into ``.agents/`` (``make agents``, which
``make pytest`` runs). Without them these tests skip, or fail when
``TOKENWAGE_REQUIRE_SERVICES=1``.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from tests.conftest import require_services
from tests.test_gateway_process import ORG_KEY, _gateway, _seed
from tokenwage.core.ledger import EntryKind
from tokenwage.mock_upstream.app import create_app
from tokenwage.mock_upstream.config import MockConfig
from tokenwage.mock_upstream.testing import start_mock_upstream
from tokenwage.storage.db import Database
from tokenwage.storage.ledger_repo import LedgerRepo
from tokenwage.storage.schema import usage_records

AGENTS_BIN = Path(__file__).resolve().parents[1] / ".agents" / "node_modules" / ".bin"
PERSON = "person:1"  # the one person _seed creates
AGENT_TIMEOUT_S = 120
STOP_WITHIN_S = 20
OUR_MESSAGE = "allowance exhausted"
CLAUDE_MODEL = "claude-sonnet-4-6"
CODEX_MODEL = "gpt-5.5"


@pytest.fixture
def sqlite_url(tmp_path: Path, sqlite_template: Path) -> str:
    """The agents need only one database: these tests run on SQLite (a migrated copy)."""
    path = tmp_path / "tokenwage.db"
    shutil.copy(sqlite_template, path)
    return f"sqlite:///{path}"


def _agent(name: str) -> str:
    path = AGENTS_BIN / name
    if not os.access(path, os.X_OK):
        message = f"{name} is not installed at {path}; run `make agents` (npm)"
        if require_services():
            pytest.fail(f"{message} (TOKENWAGE_REQUIRE_SERVICES=1)")
        pytest.skip(message)
    return str(path)


@dataclass
class Stack:
    gateway: str  # http://127.0.0.1:PORT
    key: str  # the person's tokenwage key
    mock_requests: list[tuple[str, str]]  # (method, path) of every request the provider got


@contextmanager
def _stack(db_url: str, allowance_usd: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    """Seeded database, mock provider (logging what it receives) and gateway subprocess."""
    db = Database(db_url)
    try:
        key = _seed(db, allowance_usd)
    finally:
        db.dispose()
    seen: list[tuple[str, str]] = []

    def logging_app(config: MockConfig | None = None) -> Any:
        app = create_app(config)

        async def logged(scope: Any, receive: Any, send: Any) -> None:
            if scope["type"] == "http":
                seen.append((scope["method"], scope["path"]))
            await app(scope, receive, send)

        return logged

    # start_mock_upstream builds its app with this name: wrap it to log what the provider gets
    monkeypatch.setattr("tokenwage.mock_upstream.testing.create_app", logging_app)
    with start_mock_upstream(MockConfig(expected_api_key=ORG_KEY)) as upstream:
        with _gateway(db_url, upstream, workers=1) as (base, _):
            yield Stack(base, key, seen)


@dataclass
class Run:
    returncode: int
    output: str  # stdout and stderr
    elapsed_s: float


def _run(cmd: list[str], env: dict[str, str], cwd: Path) -> Run:
    start = time.monotonic()
    try:
        proc = subprocess.run(
            cmd,
            env=env,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=AGENT_TIMEOUT_S,
        )
    except subprocess.TimeoutExpired as exc:
        out = f"{exc.stdout or ''!s}\n{exc.stderr or ''!s}"
        raise AssertionError(f"{cmd[0]} still running after {AGENT_TIMEOUT_S} s:\n{out}") from None
    return Run(proc.returncode, f"{proc.stdout}\n{proc.stderr}", time.monotonic() - start)


def _base_env(home: Path) -> dict[str, str]:
    home.mkdir(parents=True, exist_ok=True)
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home), "TERM": "dumb"}


def _claude(stack: Stack, prompt: str, tmp: Path) -> tuple[Run, Path]:
    binary = _agent("claude")
    work = tmp / "claude-work"
    work.mkdir()
    env = _base_env(tmp / "claude-home") | {
        "CLAUDE_CONFIG_DIR": str(tmp / "claude-config"),
        "ANTHROPIC_BASE_URL": stack.gateway,
        "ANTHROPIC_API_KEY": stack.key,
        "IS_SANDBOX": "1",  # lets root skip permission prompts
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "DISABLE_AUTOUPDATER": "1",
    }
    cmd = [binary, "-p", prompt, "--model", CLAUDE_MODEL, "--dangerously-skip-permissions"]
    return _run(cmd, env, work), work


def _codex(stack: Stack, prompt: str, tmp: Path) -> tuple[Run, Path]:
    binary = _agent("codex")
    work = tmp / "codex-work"
    work.mkdir()
    codex_home = tmp / "codex-home"
    codex_home.mkdir()
    (codex_home / "config.toml").write_text(
        'model_provider = "tokenwage"\n'
        "[model_providers.tokenwage]\n"
        'name = "tokenwage"\n'
        f'base_url = "{stack.gateway}/v1"\n'
        'env_key = "TOKENWAGE_API_KEY"\n'
        'wire_api = "responses"\n'
        "[analytics]\n"
        "enabled = false\n"
        "[features]\n"
        "plugins = false\n"
    )
    env = _base_env(tmp / "home") | {
        "CODEX_HOME": str(codex_home),
        "TOKENWAGE_API_KEY": stack.key,
    }
    cmd = [
        binary,
        "exec",
        "--skip-git-repo-check",
        "--dangerously-bypass-approvals-and-sandbox",
        "-m",
        CODEX_MODEL,
        prompt,
    ]
    return _run(cmd, env, work), work


def _rejections(gateway: str) -> int:
    """Requests the gateway's meter refused, from its own /metrics."""
    with urllib.request.urlopen(f"{gateway}/metrics", timeout=5) as r:
        text = r.read().decode()
    pattern = r"^tokenwage_gateway_budget_rejections_total\{[^}]*\} (\S+)$"
    return int(sum(float(v) for v in re.findall(pattern, text, re.MULTILINE)))


def _books(db_url: str) -> tuple[int, list[int], list[int]]:
    """(the person's balance, their usage debits, the usage records' costs), in nano-dollars."""
    db = Database(db_url)
    try:
        with db.begin() as conn:
            ledger = LedgerRepo(conn)
            balance = ledger.balance(PERSON)
            debits = [e.amount_nanousd for e in ledger.entries(PERSON) if e.kind is EntryKind.USAGE]
            costs = list(conn.execute(select(usage_records.c.cost_nanousd)).scalars())
            assert list(ledger.verify()) == []
    finally:
        db.dispose()
    return balance, debits, [int(c) for c in costs]


def _usage_count(db_url: str) -> int:
    db = Database(db_url)
    try:
        with db.begin() as conn:
            return int(conn.execute(select(func.count()).select_from(usage_records)).scalar_one())
    finally:
        db.dispose()


AGENTS = {
    "claude": (_claude, "use tool Bash `echo hi > proof.txt`"),
    "codex": (_codex, "use tool exec_command `echo hi > proof.txt`"),
}


@pytest.mark.parametrize("agent", sorted(AGENTS))
def test_agent_completes_a_tool_task_through_the_gateway(
    agent: str, sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    launch, prompt = AGENTS[agent]
    _agent(agent)
    with _stack(sqlite_url, "100", monkeypatch) as stack:
        before, _, _ = _books(sqlite_url)
        run, work = launch(stack, prompt, tmp_path)
        model_calls = [r for r in stack.mock_requests if r[0] == "POST"]
    assert run.returncode == 0, run.output
    assert (work / "proof.txt").read_text().strip() == "hi", run.output
    assert len(model_calls) >= 2, stack.mock_requests  # the tool call, then the answer
    after, debits, costs = _books(sqlite_url)
    assert len(debits) == len(costs) == len(model_calls)  # one usage record per provider call
    assert -sum(debits) == sum(costs) > 0
    assert after == before + sum(debits)


@pytest.mark.parametrize("agent", sorted(AGENTS))
def test_exhausted_allowance_stops_the_agent_at_once(
    agent: str, sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    launch, prompt = AGENTS[agent]
    _agent(agent)
    with _stack(sqlite_url, "0.0001", monkeypatch) as stack:
        before, _, _ = _books(sqlite_url)
        run, work = launch(stack, prompt, tmp_path)
        refused = _rejections(stack.gateway)
        received = list(stack.mock_requests)
    assert run.returncode != 0, run.output
    assert run.elapsed_s < STOP_WITHIN_S, f"took {run.elapsed_s:.1f} s:\n{run.output}"
    assert OUR_MESSAGE in run.output, run.output
    assert not (work / "proof.txt").exists()
    assert received == [], f"the provider was called: {received}"
    assert 1 <= refused <= 2, f"{refused} refused requests: a retry storm?\n{run.output}"
    after, debits, _ = _books(sqlite_url)
    assert _usage_count(sqlite_url) == 0
    assert debits == []
    assert after == before
