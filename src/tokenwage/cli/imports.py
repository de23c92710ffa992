"""``import claude-code|codex|csv``, ``identity add|list``, ``report daily|monthly|session|models``.

Imports default to ``--mode track``: agent logs mostly come from personal or team plans
that are paid elsewhere, so they are booked for visibility and debit nothing. Charging
people's allowances is never a default: say ``--mode charge``.
"""

from __future__ import annotations

import os
import time
from datetime import UTC, date, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

import typer
from rich.markup import escape
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TransferSpeedColumn,
)
from rich.table import Table
from sqlalchemy import Connection

from tokenwage.cli.common import err, out, print_json, transaction
from tokenwage.core.errors import InvalidInput
from tokenwage.core.imported import ChargeMode, Identity, IdentityKind
from tokenwage.core.org import normalise_email
from tokenwage.importers import (
    ImportOutcome,
    Source,
    claude_code,
    codex,
    default_hostname,
    run_import,
    total_pending_bytes,
)
from tokenwage.importers.csv_usage import CsvUsage
from tokenwage.services.reports import (
    ReportFilter,
    Totals,
    UsageReport,
    usage_report,
)
from tokenwage.storage.imports_repo import ImportsRepo
from tokenwage.storage.org_repo import OrgRepo

import_app = typer.Typer(help="Import usage that bypassed the gateway.", no_args_is_help=True)
identity_app = typer.Typer(help="Map log and export identities to people.", no_args_is_help=True)
PROGRESS_MIN_BYTES = 4 << 20


def register(app: typer.Typer) -> None:
    app.add_typer(import_app, name="import")
    app.add_typer(identity_app, name="identity")
    app.command("report")(report)


class Kind(StrEnum):
    DAILY = "daily"
    MONTHLY = "monthly"
    SESSION = "session"
    MODELS = "models"


_MODE = typer.Option(ChargeMode.TRACK, "--mode", help="track: book only; charge: debit allowances.")
_PERSON = typer.Option(None, "--person", help="Attribute everything to this person (email).")
_DRY = typer.Option(False, "--dry-run", help="Show what would be written; write nothing.")
_JSON = typer.Option(False, "--json", help="Print the summary as JSON.")


@import_app.command("claude-code")
def import_claude_code(
    ctx: typer.Context,
    paths: list[Path] = typer.Argument(
        None,
        help="Transcripts or folders (default: $CLAUDE_CONFIG_DIR, ~/.config/claude, ~/.claude).",
    ),
    mode: ChargeMode = _MODE,
    person: str | None = _PERSON,
    hostname: str | None = typer.Option(
        None, "--hostname", help="Where the logs were written (default: this machine)."
    ),
    dry_run: bool = _DRY,
    as_json: bool = _JSON,
) -> None:
    """Claude Code transcripts (projects/**/*.jsonl)."""
    now = datetime.now(UTC)
    home = Path.home()
    host = hostname or default_hostname()
    roots = list(paths or claude_code.default_roots(os.environ, home))
    found_ids = {} if paths else {r: claude_code.account_identities(r, home) for r in roots}
    _check_roots(roots, "Claude Code transcripts", "~/.claude/projects")
    source = claude_code.ClaudeCodeLogs(
        roots, now=now, hostname=host, person_email=_email(person), root_identities=found_ids
    )
    _run(ctx, source, mode, person, dry_run, as_json, now)


@import_app.command("codex")
def import_codex(
    ctx: typer.Context,
    paths: list[Path] = typer.Argument(
        None, help="Rollouts or folders (default: $CODEX_HOME/sessions and archived_sessions)."
    ),
    mode: ChargeMode = _MODE,
    person: str | None = _PERSON,
    hostname: str | None = typer.Option(
        None, "--hostname", help="Where the logs were written (default: this machine)."
    ),
    dry_run: bool = _DRY,
    as_json: bool = _JSON,
) -> None:
    """Codex CLI session logs (sessions/**/rollout-*.jsonl)."""
    roots = list(paths or codex.default_roots(os.environ, Path.home()))
    _check_roots(roots, "Codex session logs", "~/.codex/sessions")
    host = hostname or default_hostname()
    source = codex.CodexLogs(roots, hostname=host, person_email=_email(person))
    _run(ctx, source, mode, person, dry_run, as_json, datetime.now(UTC))


@import_app.command("csv")
def import_csv(
    ctx: typer.Context,
    file: Path = typer.Argument(..., help="The CSV (columns: see docs/importers.md)."),
    mode: ChargeMode = _MODE,
    person: str | None = _PERSON,
    skip_bad: bool = typer.Option(
        False, "--skip-bad", help="Import the good rows and report the bad ones."
    ),
    dry_run: bool = _DRY,
    as_json: bool = _JSON,
) -> None:
    """A usage CSV; a file with a bad row is refused whole unless --skip-bad."""
    source = CsvUsage(file, skip_bad=skip_bad, person_email=_email(person))
    _run(ctx, source, mode, person, dry_run, as_json, datetime.now(UTC))


def _email(person: str | None) -> str | None:
    return normalise_email(person) if person else None


def _check_roots(roots: list[Path], what: str, default: str) -> None:
    if not roots:
        raise InvalidInput(f"no {what} found (looked in {default}); give their paths")
    missing = [str(p) for p in roots if not p.expanduser().exists()]
    if missing:
        raise InvalidInput(f"no such file or folder: {', '.join(missing)}")


def _run(
    ctx: typer.Context,
    source: Source,
    mode: ChargeMode,
    person: str | None,
    dry_run: bool,
    as_json: bool,
    now: datetime,
) -> None:
    with transaction(ctx) as conn:
        if person:
            OrgRepo(conn).person_id(person)  # NotFound before anything is read
        outcome = _with_progress(conn, source, mode, now, dry_run)
    if as_json:
        print_json(_outcome_json(outcome))
    else:
        _print_outcome(outcome)


def _with_progress(
    conn: Connection, source: Source, mode: ChargeMode, now: datetime, dry_run: bool
) -> ImportOutcome:
    pending = total_pending_bytes(source, conn) if err.is_terminal else 0
    if pending < PROGRESS_MIN_BYTES:
        return run_import(conn, source, mode=mode, now=now, dry_run=dry_run)
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TextColumn("{task.fields[lines]:,} lines, {task.fields[rate]:,.0f} lines/s"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=err, transient=True) as bar:
        task = bar.add_task(f"Reading {source.name}", total=pending, lines=0, rate=0.0)
        lines, started = 0, time.monotonic()

        def advance(n_bytes: int, n_lines: int) -> None:
            nonlocal lines
            lines += n_lines
            rate = lines / max(time.monotonic() - started, 1e-6)
            bar.update(task, advance=n_bytes, lines=lines, rate=rate)

        return run_import(conn, source, mode=mode, now=now, dry_run=dry_run, progress=advance)


def _outcome_json(o: ImportOutcome) -> dict[str, Any]:
    s, r = o.summary, o.report
    return {
        "source": o.source,
        "dry_run": o.dry_run,
        "files": {"seen": r.files_seen, "read": r.files_read, "restarted": r.files_restarted},
        "bytes_read": r.bytes_read,
        "lines_read": r.lines_read,
        "usage_lines": r.usage_lines,
        "bad_lines": r.bad_lines,
        "problems": [{"file": f, "line": p.line, "message": p.message} for f, p in r.problems],
        "skipped": r.skipped,
        "records": {
            "read": s.read,
            "new": s.new,
            "duplicates": s.duplicates,
            "via_gateway": s.via_gateway,
            "unattributed": s.unattributed,
        },
        "charged_usd": s.charged.exact(),
        "tracked_usd": s.tracked.exact(),
        "ledger_entries": s.ledger_entries,
        "unknown_identities": dict(s.unknown_identities.most_common()),
        "flagged_models": dict(s.flagged_models),
    }


def _print_outcome(o: ImportOutcome) -> None:
    s, r = o.summary, o.report
    verb = "would book" if o.dry_run else "booked"
    out.print(
        f"{o.source}: {r.lines_read:,} new lines in {r.files_read:,} of {r.files_seen:,} files "
        f"({r.bytes_read / 1e6:,.1f} MB); {r.usage_lines:,} with usage → {verb} {s.new:,} "
        f"records ({s.duplicates:,} already booked, {s.via_gateway:,} seen by the gateway, "
        f"{s.unattributed:,} unattributed)"
    )
    if s.charged:
        out.print(f"Charged {s.charged} in {s.ledger_entries:,} ledger entries.")
    if s.tracked:
        out.print(f"Tracked {s.tracked} (track mode: nothing debited).")
    for why, n in sorted(r.skipped.items()):
        out.print(f"  skipped {n:,} {escape(why)}")
    if r.files_restarted:
        out.print(f"  {r.files_restarted:,} replaced or truncated file(s) read again from start")
    if r.bad_lines:
        err.print(f"[yellow]{r.bad_lines:,} bad line(s) skipped:[/]")
        for path, p in r.problems[:20]:
            err.print(f"  {escape(path)}:{p.line}: {escape(p.message)}")
    if s.unknown_identities:
        err.print("Unmapped identities (`tokenwage identity add KIND VALUE EMAIL`):")
        for ident, n in s.unknown_identities.most_common(10):
            err.print(f"  {escape(ident)}: {n:,} records")
    for model, n in s.flagged_models.items():
        err.print(f"[yellow]{n:,} records of unknown model {escape(model)} at the fallback price")
    if o.dry_run:
        out.print("Dry run: nothing was written.")


# -- identities ----------------------------------------------------------------------------
@identity_app.command("add")
def identity_add(
    ctx: typer.Context,
    kind: IdentityKind = typer.Argument(..., help="What the value is."),
    value: str = typer.Argument(..., help="e.g. a hostname, account uuid, user id."),
    email: str = typer.Argument(..., help="The person it belongs to."),
) -> None:
    """Map an identity seen in logs or exports to a person."""
    with transaction(ctx) as conn:
        person_id = OrgRepo(conn).person_id(email)
        added = ImportsRepo(conn).add_identity(Identity(kind, value), person_id, datetime.now(UTC))
    out.print(f"{added.kind} {escape(added.value)} → {normalise_email(email)}")


@identity_app.command("list")
def identity_list(
    ctx: typer.Context,
    kind: IdentityKind | None = typer.Option(None, "--kind"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """List mapped identities."""
    with transaction(ctx) as conn:
        rows = ImportsRepo(conn).list_identities(kind)
    if as_json:
        print_json([{"kind": r.kind, "value": r.value, "email": r.email} for r in rows])
        return
    table = Table("kind", "value", "person")
    for r in rows:
        table.add_row(r.kind, escape(r.value), r.email)
    out.print(table)


# -- reports -------------------------------------------------------------------------------
def report(
    ctx: typer.Context,
    kind: Kind = typer.Argument(..., help="daily, monthly, session or models."),
    person: str | None = typer.Option(None, "--person", help="Only this person (email)."),
    team: str | None = typer.Option(None, "--team", help="Only this team's people."),
    source: str | None = typer.Option(None, "--source", help="e.g. gateway, claude_code."),
    since: str | None = typer.Option(None, "--since", help="First local day, 2026-03-01."),
    until: str | None = typer.Option(None, "--until", help="Last local day, included."),
    timezone: str | None = typer.Option(
        None, "--timezone", help="IANA zone for days and months (default: the org's)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Rows and totals as JSON."),
) -> None:
    """Token usage and cost per day, month, session or model."""
    flt = ReportFilter(
        person_email=person,
        team=team,
        source=source,
        since=_day(since, "--since"),
        until=_day(until, "--until"),
        timezone=timezone,
    )
    with transaction(ctx) as conn:
        result = usage_report(conn, kind.value, flt)
    if as_json:
        print_json(result.as_json())
    else:
        out.print(_table(result))


def _day(text: str | None, what: str) -> date | None:
    if not text:
        return None
    cleaned = text.strip()
    if len(cleaned) == 8 and cleaned.isdigit():  # ccusage's YYYYMMDD
        cleaned = f"{cleaned[:4]}-{cleaned[4:6]}-{cleaned[6:]}"
    try:
        return date.fromisoformat(cleaned)
    except ValueError:
        raise InvalidInput(f"{what} {text!r} is not a date like 2026-03-01") from None


def _table(result: UsageReport) -> Table:
    first = {"daily": "Date", "monthly": "Month", "session": "Session", "models": "Model"}
    head = [first[result.kind]]
    if result.kind == "session":
        head += ["Project", "Last activity"]
    if result.kind != "models":
        head.append("Models")
    numbers = ["Input", "Output", "Cache create", "Cache read", "Total tokens", "Cost (USD)"]
    table = Table(*head, title=f"Usage by {result.kind} ({result.timezone})")
    for name in numbers:
        table.add_column(name, justify="right")
    for row in result.rows:
        cells = [escape(row.label)]
        if result.kind == "session":
            cells += [escape(row.detail.get("project", "")), row.detail["last_activity"][:16]]
        if result.kind != "models":
            cells.append("\n".join(m.split("/", 1)[-1] for m in row.models))
        table.add_row(*cells, *_numbers(row.totals))
    pad = [""] * (len(head) - 1)
    table.add_row("[bold]Total", *pad, *_numbers(result.total), end_section=True)
    return table


def _numbers(t: Totals) -> list[str]:
    counts = (t.input_tokens, t.output_tokens, t.cache_create_tokens, t.cache_read_tokens)
    return [*(f"{n:,}" for n in counts), f"{t.total_tokens:,}", t.cost.usd()]
