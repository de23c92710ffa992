"""Teams and people, including a validated, all-or-nothing CSV import."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path

from sqlalchemy import Column, Connection, String, update

from tokenwage.core.errors import BadFile, Conflict, InvalidInput, LineProblem, TokenwageError
from tokenwage.core.org import Person, Role, Team, check_slug, normalise_email
from tokenwage.storage.ledger_repo import LedgerRepo
from tokenwage.storage.org_repo import OrgRepo, person_account, pool_account
from tokenwage.storage.schema import people, teams

PEOPLE_COLUMNS = ("email", "name", "team", "manager", "level", "role", "start_date", "end_date")
REQUIRED_COLUMNS = ("email", "name")


def add_team(conn: Connection, team: Team) -> int:
    _check_length(f"team {team.slug} name", team.name, teams.c.name)
    team_id = OrgRepo(conn).add_team(team)
    LedgerRepo(conn).ensure_account(pool_account(team.slug), team_id=team_id)
    return team_id


def add_person(conn: Connection, person: Person) -> int:
    check_fits(person)
    person_id = OrgRepo(conn).add_person(person)
    LedgerRepo(conn).ensure_account(person_account(person_id), person_id=person_id)
    return person_id


def check_fits(person: Person) -> None:
    """Refuse values longer than their columns (PostgreSQL would fail mid-write, SQLite not)."""
    _check_length("email", person.email, people.c.email)
    _check_length(f"{person.email} name", person.name, people.c.name)
    _check_length(f"{person.email} level", person.level, people.c.level)


def _check_length(what: str, value: str | None, column: Column[str]) -> None:
    limit = column.type.length if isinstance(column.type, String) else None
    if value is not None and limit is not None and len(value) > limit:
        raise InvalidInput(f"{what} is {len(value)} characters long; the limit is {limit}")


def parse_date(text: str, what: str) -> date:
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise InvalidInput(f"{what} {text!r} is not a date like 2026-01-31") from None


@dataclass(frozen=True)
class ImportResult:
    people: int
    teams_created: int


def import_people_csv(conn: Connection, path: Path, *, create_teams: bool = False) -> ImportResult:
    """Read every row, report every bad line, and write nothing unless all rows are good."""
    reader = csv.DictReader(io.StringIO(_read_text(path)))
    reader.fieldnames = _check_header(path, reader.fieldnames)
    repo = OrgRepo(conn)
    known_teams = {t.slug for t in repo.list_teams()}
    known_emails = {p.email for p in repo.list_people()}
    problems: list[LineProblem] = []
    rows: list[tuple[int, Person]] = []
    seen: dict[str, int] = {}
    for row in reader:
        line = reader.line_num
        try:
            person = _person_from_row(row)
            check_fits(person)
            _check_new(person, seen, known_emails)
        except TokenwageError as exc:
            problems.append(LineProblem(line, str(exc)))
            continue
        seen[person.email] = line
        if person.team_slug and person.team_slug not in known_teams and not create_teams:
            problems.append(
                LineProblem(
                    line, f"unknown team {person.team_slug!r} (add it, or use --create-teams)"
                )
            )
        rows.append((line, person))
    for line, person in rows:
        m = person.manager_email
        if m and m not in seen and m not in known_emails:
            problems.append(LineProblem(line, f"manager {m} is neither in the file nor known"))
    if problems:
        raise BadFile(str(path), sorted(problems, key=lambda p: p.line))
    return _write(conn, [p for _, p in rows], known_teams)


def _check_header(path: Path, fieldnames: Sequence[str] | None) -> list[str]:
    header = [h.strip().lower() for h in (fieldnames or [])]
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    unknown = [c for c in header if c not in PEOPLE_COLUMNS]
    parts = []
    if missing:
        parts.append(f"missing column(s) {', '.join(missing)}")
    if unknown:
        parts.append(f"unknown column(s) {', '.join(unknown)}")
    if parts:
        columns = ", ".join(PEOPLE_COLUMNS)
        raise BadFile(str(path), [LineProblem(1, "; ".join(parts) + f" (columns are: {columns})")])
    return header


def _check_new(person: Person, seen: dict[str, int], known: set[str]) -> None:
    if person.email in seen:
        raise Conflict(f"{person.email} appears again (first on line {seen[person.email]})")
    if person.email in known:
        raise Conflict(f"{person.email} already exists")


def _write(conn: Connection, rows: list[Person], known_teams: set[str]) -> ImportResult:
    created = 0
    for person in rows:
        if person.team_slug and person.team_slug not in known_teams:
            add_team(conn, Team(person.team_slug, person.team_slug.replace("-", " ").title()))
            known_teams.add(person.team_slug)
            created += 1
    ids: dict[str, int] = {}
    for person in rows:  # managers may come later in the file: link them afterwards
        ids[person.email] = add_person(conn, replace(person, manager_email=None))
    repo = OrgRepo(conn)
    for person in rows:
        if person.manager_email:
            manager_id = ids.get(person.manager_email) or repo.person_id(person.manager_email)
            conn.execute(
                update(people).where(people.c.id == ids[person.email]).values(manager_id=manager_id)
            )
    return ImportResult(people=len(rows), teams_created=created)


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise InvalidInput(f"no such file: {path}") from None
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"{path} is not UTF-8 text ({exc.reason})") from None


def _person_from_row(row: dict[str, str | None]) -> Person:
    def get(key: str) -> str | None:
        value = (row.get(key) or "").strip()
        return value or None

    if None in row:
        raise InvalidInput("more fields than the header has columns")
    email, name = get("email"), get("name")
    if not email:
        raise InvalidInput("email is empty")
    if not name:
        raise InvalidInput("name is empty")
    role_text = (get("role") or "member").lower()
    try:
        role = Role(role_text)
    except ValueError:
        raise InvalidInput(
            f"role {role_text!r} must be one of {', '.join(r.value for r in Role)}"
        ) from None
    team = get("team")
    start, end = get("start_date"), get("end_date")
    return Person(
        email=normalise_email(email),
        name=name,
        team_slug=check_slug(team) if team else None,
        manager_email=get("manager"),
        level=get("level"),
        role=role,
        start_date=parse_date(start, "start_date") if start else None,
        end_date=parse_date(end, "end_date") if end else None,
    )


def update_person(conn: Connection, email: str, changes: dict[str, object]) -> Person:
    """Change some of a person's fields (``name``, ``team_slug``, ``manager_email``, ``level``,
    ``role``, ``start_date``, ``end_date``); the email and id stay. Refuses a manager chain
    that would loop back to the person."""
    allowed = {"name", "team_slug", "manager_email", "level", "role", "start_date", "end_date"}
    unknown = sorted(set(changes) - allowed)
    if unknown:
        raise InvalidInput(f"cannot change {', '.join(unknown)}; changeable: {sorted(allowed)}")
    repo = OrgRepo(conn)
    current = repo.get_person(email)
    assert current.id is not None
    updated = replace(current, **changes)  # type: ignore[arg-type]  # __post_init__ validates
    check_fits(updated)
    if updated.manager_email:
        _refuse_loop(repo, current.id, updated.manager_email)
    repo.update_person(current.id, updated)
    return repo.get_person(email)


def _refuse_loop(repo: OrgRepo, person_id: int, manager_email: str | None) -> None:
    seen: set[str] = set()
    while manager_email and manager_email not in seen:
        seen.add(manager_email)
        manager = repo.get_person(manager_email)
        if manager.id == person_id:
            raise InvalidInput("that manager reports to this person already: a loop")
        manager_email = manager.manager_email
