"""``tokenwage push``: send this laptop's new Claude Code and Codex usage to the server.

Run on an engineer's machine (from cron or a shell hook) with their tokenwage key. It reads
only what is new in the agent logs (file cursors kept in a small local SQLite state file),
sends it to the server's ``POST /v1/usage``, and moves the cursors only after the server
accepted every batch; the server deduplicates, so a push that failed half-way is simply sent
again.
"""

from __future__ import annotations

import os
import urllib.error
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

import orjson
import typer
from platformdirs import user_data_dir

from tokenwage.cli.common import out, print_json
from tokenwage.core.errors import InvalidInput, StoreUnavailable, Unauthenticated
from tokenwage.core.imported import MAX_PUSH_RECORDS, ImportedUsage, to_wire
from tokenwage.importers import LogSource, claude_code, codex, default_hostname
from tokenwage.importers.files import ReadReport
from tokenwage.storage import migrate
from tokenwage.storage.db import Database
from tokenwage.storage.imports_repo import ImportsRepo

SOURCES = ("claude-code", "codex")


def register(app: typer.Typer) -> None:
    app.command("push")(push)


def push(
    server: str = typer.Option(
        ..., "--server", envvar="TOKENWAGE_SERVER", help="The gateway, e.g. http://tw.acme:8080"
    ),
    key: str = typer.Option(..., "--key", envvar="TOKENWAGE_API_KEY", help="Your tokenwage key."),
    source: list[str] = typer.Option(list(SOURCES), "--source", help="claude-code and/or codex"),
    state: Path | None = typer.Option(None, "--state", help="Where to keep the cursors."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Send new agent-log usage from this machine to the tokenwage server."""
    unknown = [s for s in source if s not in SOURCES]
    if unknown:
        raise InvalidInput(f"--source {unknown[0]!r}: choose from {', '.join(SOURCES)}")
    path = state or Path(user_data_dir("tokenwage", appauthor=False)) / "push-state.db"
    db = Database(f"sqlite:///{path}")
    try:
        migrate.upgrade(db)
        results = {name: _push_one(db, _source(name), server, key) for name in source}
    finally:
        db.dispose()
    if as_json:
        print_json(results)
        return
    for name, (sent, new) in results.items():
        out.print(f"{name}: sent {sent} records, {new} new on the server")


def _source(name: str) -> LogSource:
    now, home, host = datetime.now(UTC), Path.home(), default_hostname()
    if name == "claude-code":
        return claude_code.ClaudeCodeLogs(
            claude_code.default_roots(os.environ, home), now=now, hostname=host
        )
    return codex.CodexLogs(codex.default_roots(os.environ, home), hostname=host)


def _push_one(db: Database, source: LogSource, server: str, key: str) -> tuple[int, int]:
    with db.begin() as conn:  # cursors move only if every batch was accepted
        repo = ImportsRepo(conn)
        report = ReadReport()
        records = list(source.records(repo.cursors(source.name), report, None))
        new = 0
        for i in range(0, len(records), MAX_PUSH_RECORDS):
            new += _send(server, key, records[i : i + MAX_PUSH_RECORDS])
        repo.save_cursors(source.name, report.cursors.values(), datetime.now(UTC))
    return len(records), new


def _send(server: str, key: str, records: list[ImportedUsage]) -> int:
    body = orjson.dumps({"records": [to_wire(r) for r in records]})
    req = urllib.request.Request(
        server.rstrip("/") + "/v1/usage",
        data=body,
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:  # noqa: S310 - the org's server
            answer = orjson.loads(resp.read())
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode(errors="replace")[:500]
        if exc.code == 401:
            raise Unauthenticated(f"the server refused the key: {detail}") from None
        raise StoreUnavailable(f"the server answered {exc.code}: {detail}") from None
    except urllib.error.URLError as exc:
        raise StoreUnavailable(f"cannot reach {server}: {exc.reason}") from None
    return int(answer.get("new", 0))
