"""People from CSV: every bad line reported with its number, and nothing written unless every
line is good. On SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select

from tokenwage.cli.app import main
from tokenwage.core.errors import BadFile, InvalidInput
from tokenwage.core.org import Person, Role, Team
from tokenwage.services.people import ImportResult, add_person, add_team, import_people_csv
from tokenwage.storage.db import Database
from tokenwage.storage.ledger_repo import LedgerRepo
from tokenwage.storage.org_repo import OrgRepo, person_account, pool_account
from tokenwage.storage.schema import accounts, people, teams

HEADER = "email,name,team,manager,level,role,start_date,end_date\n"


@pytest.fixture
def known(db: Database) -> Database:
    """Team ``infra`` and Dora, its manager, already exist."""
    with db.begin() as conn:
        add_team(conn, Team("infra", "Infrastructure"))
        add_person(conn, Person("dora@acme.io", "Dora", team_slug="infra", role=Role.MANAGER))
    return db


def write(tmp_path: Path, body: str, header: str = HEADER) -> Path:
    path = tmp_path / "people.csv"
    path.write_text(header + body, encoding="utf-8")
    return path


def run_import(db: Database, path: Path, *, create_teams: bool = False) -> ImportResult:
    with db.begin() as conn:
        return import_people_csv(conn, path, create_teams=create_teams)


def problems(db: Database, path: Path, *, create_teams: bool = False) -> list[tuple[int, str]]:
    with pytest.raises(BadFile) as caught:
        run_import(db, path, create_teams=create_teams)
    assert caught.value.path == str(path)
    return [(p.line, p.message) for p in caught.value.problems]


def counts(db: Database) -> tuple[int, int, int]:
    with db.begin() as conn:
        return tuple(  # type: ignore[return-value]
            int(conn.execute(select(func.count()).select_from(t)).scalar_one())
            for t in (people, teams, accounts)
        )


def people_by_email(db: Database) -> dict[str, Person]:
    with db.begin() as conn:
        return {p.email: p for p in OrgRepo(conn).list_people()}


# One bad line of each kind, each on a known line, between good lines.
BAD_LINES = [
    ("ann@acme.io,Ann,infra,dora@acme.io,L3,member,2026-01-01,", None),
    ("not-an-email,Bad,infra,,,,,", "not an email address: 'not-an-email'"),
    ("cy@acme.io,Cy,infra,,,wizard,,", "role 'wizard' must be one of member, manager"),
    ("ANN@acme.io,Ann Again,infra,,,,,", "ann@acme.io appears again (first on line 2)"),
    ("dora@acme.io,Dora Again,infra,,,,,", "dora@acme.io already exists"),
    ("eve@acme.io,Eve,research,,,,,", "unknown team 'research' (add it, or use --create-teams)"),
    ("fay@acme.io,Fay,infra,ghost@acme.io,,,,", "manager ghost@acme.io is neither in the file"),
    ("gus@acme.io,Gus,,,,,2026-05-01,2026-04-30", "end date 2026-04-30 is before start date"),
    ("hal@acme.io,Hal,infra,,,,,,surplus", "more fields than the header has columns"),
    ("ida@acme.io,Ida,,,,,1 May 2026,", "start_date '1 May 2026' is not a date"),
    (",Nobody,,,,,,", "email is empty"),
    ("joe@acme.io,,,,,,,", "name is empty"),
    ("kim@acme.io,Kim,Not A Slug,,,,,", "team id 'Not A Slug' must be lowercase"),
    ("lea@acme.io,Lea,,,,,,", None),
    ("max@acme.io," + "M" * 201 + ",,,,,,", "name is 201 characters long; the limit is 200"),
    ("ned@acme.io,Ned,,ned@acme.io,,,,", "cannot be their own manager"),
]


def test_every_bad_line_is_reported_with_its_number_and_nothing_is_written(
    known: Database, tmp_path: Path
) -> None:
    path = write(tmp_path, "".join(line + "\n" for line, _ in BAD_LINES))
    before = counts(known)
    found = problems(known, path)
    expected = [(n, why) for n, (_, why) in enumerate(BAD_LINES, start=2) if why is not None]
    assert [line for line, _ in found] == [line for line, _ in expected]
    for (line, message), (_, why) in zip(found, expected, strict=True):
        assert why in message, f"line {line}: {message!r} does not say {why!r}"
    assert counts(known) == before
    assert "research" not in {t.slug for t in _teams(known)}


def test_create_teams_lets_unknown_teams_through_but_nothing_is_written_on_other_errors(
    known: Database, tmp_path: Path
) -> None:
    path = write(tmp_path, "eve@acme.io,Eve,research,,,,,\nnot-an-email,X,,,,,,\n")
    assert problems(known, path, create_teams=True) == [(3, "not an email address: 'not-an-email'")]
    assert "research" not in {t.slug for t in _teams(known)}
    assert "eve@acme.io" not in people_by_email(known)


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ("name,team\n", "missing column(s) email"),
        ("email,name,colour\n", "unknown column(s) colour"),
        ("", "missing column(s) email, name"),
        ("mail,full name\n", "missing column(s) email, name; unknown column(s) mail, full name"),
    ],
)
def test_a_wrong_header_is_line_1(
    known: Database, tmp_path: Path, header: str, message: str
) -> None:
    found = problems(known, write(tmp_path, "zed@acme.io,Zed\n", header=header))
    assert len(found) == 1
    line, text = found[0]
    assert line == 1 and text.startswith(message)
    assert "columns are: email, name, team, manager" in text


def test_header_names_are_trimmed_and_case_blind_and_columns_optional(
    known: Database, tmp_path: Path
) -> None:
    path = write(tmp_path, 'zed@acme.io,"Zed, Jr.",infra\n', header="\ufeff Email , NAME,Team\n")
    assert run_import(known, path) == ImportResult(people=1, teams_created=0)
    zed = people_by_email(known)["zed@acme.io"]
    assert (zed.name, zed.team_slug, zed.role, zed.manager_email) == (
        "Zed, Jr.",
        "infra",
        Role.MEMBER,
        None,
    )


def test_blank_lines_keep_line_numbers_physical(known: Database, tmp_path: Path) -> None:
    path = write(tmp_path, "ann@acme.io,Ann,,,,,,\n\n\nbad,Bad,,,,,,\n")
    assert [line for line, _ in problems(known, path)] == [5]


def test_managers_may_come_after_their_reports(known: Database, tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "ivy@acme.io,Ivy,infra,hugo@acme.io,L3,member,2026-02-01,\n"
        "hugo@acme.io,Hugo,infra,gail@acme.io,L5,manager,,\n"
        "gail@acme.io,Gail,infra,dora@acme.io,L7,manager,2025-01-01,2027-12-31\n"
        "jon@acme.io,Jon,infra,DORA@acme.io,,finance,,\n",
    )
    assert run_import(known, path) == ImportResult(people=4, teams_created=0)
    got = people_by_email(known)
    assert {e: p.manager_email for e, p in got.items()} == {
        "dora@acme.io": None,
        "gail@acme.io": "dora@acme.io",
        "hugo@acme.io": "gail@acme.io",
        "ivy@acme.io": "hugo@acme.io",
        "jon@acme.io": "dora@acme.io",
    }
    gail = got["gail@acme.io"]
    assert (gail.level, gail.role, str(gail.start_date), str(gail.end_date)) == (
        "L7",
        Role.MANAGER,
        "2025-01-01",
        "2027-12-31",
    )
    with known.begin() as conn:  # every imported person can be booked to
        ledger = LedgerRepo(conn)
        for person in got.values():
            assert person.id is not None
            assert ledger.account(person_account(person.id)).person_id == person.id


def test_create_teams_creates_each_new_team_once_with_its_pool_account(
    known: Database, tmp_path: Path
) -> None:
    path = write(
        tmp_path,
        "ann@acme.io,Ann,ml-platform,,,,,\n"
        "bo@acme.io,Bo,ml-platform,ann@acme.io,,,,\n"
        "cy@acme.io,Cy,data,,,,,\n"
        "di@acme.io,Di,infra,,,,,\n",
    )
    unknown = problems(known, path)
    assert unknown == [
        (2, "unknown team 'ml-platform' (add it, or use --create-teams)"),
        (3, "unknown team 'ml-platform' (add it, or use --create-teams)"),
        (4, "unknown team 'data' (add it, or use --create-teams)"),
    ]
    assert run_import(known, path, create_teams=True) == ImportResult(people=4, teams_created=2)
    assert {(t.slug, t.name) for t in _teams(known)} == {
        ("data", "Data"),
        ("infra", "Infrastructure"),
        ("ml-platform", "Ml Platform"),
    }
    with known.begin() as conn:
        ledger = LedgerRepo(conn)
        for slug in ("data", "ml-platform"):
            assert ledger.account(pool_account(slug)).team_id == OrgRepo(conn).team_id(slug)
    assert people_by_email(known)["bo@acme.io"].team_slug == "ml-platform"


def test_importing_the_same_file_twice_is_refused_the_second_time(
    known: Database, tmp_path: Path
) -> None:
    path = write(tmp_path, "ann@acme.io,Ann,infra,,,,,\nbo@acme.io,Bo,infra,,,,,\n")
    run_import(known, path)
    before = counts(known)
    assert problems(known, path) == [
        (2, "ann@acme.io already exists"),
        (3, "bo@acme.io already exists"),
    ]
    assert counts(known) == before


def test_a_missing_or_binary_file_is_invalid_input(known: Database, tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="no such file"):
        run_import(known, tmp_path / "nope.csv")
    binary = tmp_path / "people.xlsx"
    binary.write_bytes(b"PK\x03\x04\xff\xfe\x00\x81")
    with pytest.raises(InvalidInput, match="is not UTF-8"):
        run_import(known, binary)


def test_the_cli_reports_every_line_and_exits_2(
    known: Database, tmp_path: Path, db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, "ann@acme.io,Ann,infra,,,,,\nbad,Bad,,,,,,\nbo@acme.io,Bo,,,,x,,\n")
    with pytest.raises(SystemExit) as caught:
        main(["--database-url", db_url, "person", "import", str(path)])
    assert caught.value.code == 2
    err = capsys.readouterr().err
    assert "has 2 bad line(s); nothing was written" in err
    assert f"{path}:line 3: not an email address: 'bad'" in " ".join(err.split())
    assert f"{path}:line 4: role 'x'" in " ".join(err.split())
    assert set(people_by_email(known)) == {"dora@acme.io"}

    path.write_text(HEADER + "ann@acme.io,Ann,web,,,,,\n", encoding="utf-8")
    with pytest.raises(SystemExit) as caught:
        main(["--database-url", db_url, "person", "import", str(path), "--create-teams"])
    assert caught.value.code == 0
    assert "Imported 1 people (1 new teams)" in capsys.readouterr().out
    assert people_by_email(known)["ann@acme.io"].team_slug == "web"


def _teams(db: Database) -> list[Team]:
    with db.begin() as conn:
        return OrgRepo(conn).list_teams()
