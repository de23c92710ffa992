"""A small organisation with one login per role, and the web app over it.

``org`` seeds, on SQLite and PostgreSQL alike (through ``db``):

* Ada, admin; Fay, finance; Max, manager of Mia, who manages Moe (Max's indirect report);
* Oli, a member in another team, reporting to nobody.

Everyone's password is :data:`PASSWORD`. ``client`` is a Starlette TestClient on the app
(in-process: a socket adds nothing to what these tests check); ``sign_in`` goes through
the /login form like a browser and returns the session's CSRF token.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime

import pytest
from fastapi import FastAPI
from starlette.testclient import TestClient

from tokenwage.core.money import Money
from tokenwage.core.org import Org, Person, Role, Team
from tokenwage.core.package import Package, Period, TokenAllowance
from tokenwage.services.people import add_person, add_team
from tokenwage.storage.db import Database
from tokenwage.storage.org_repo import OrgRepo
from tokenwage.web.accounts import set_password
from tokenwage.web.app import create_web_app
from tokenwage.web.settings import WebSettings

PASSWORD = "a-long-enough-password-1"
START = date(2026, 11, 1)


@dataclass(frozen=True)
class Org_:
    ids: dict[str, int]  # short name -> person id
    emails: dict[str, str]


PEOPLE = (
    ("ada", "Ada Admin", "platform", None, Role.ADMIN),
    ("fay", "Fay Finance", "platform", None, Role.FINANCE),
    ("max", "Max Manager", "platform", None, Role.MANAGER),
    ("mia", "Mia Member", "platform", "max", Role.MANAGER),
    ("moe", "Moe Member", "platform", "mia", Role.MEMBER),
    ("oli", "Oli Other", "data", None, Role.MEMBER),
)


def email(short: str) -> str:
    return f"{short}@acme.example"


@pytest.fixture
def org(db: Database) -> Org_:
    now = datetime.now(UTC)
    ids: dict[str, int] = {}
    with db.begin() as conn:
        OrgRepo(conn).save_org(Org("Acme", "UTC"))
        add_team(conn, Team("platform", "Platform"))
        add_team(conn, Team("data", "Data"))
        for short, name, team, manager, role in PEOPLE:
            person = Person(
                email(short),
                name,
                team_slug=team,
                manager_email=email(manager) if manager else None,
                role=role,
            )
            ids[short] = add_person(conn, person)
            OrgRepo(conn).add_package(
                email(short),
                Package(
                    base_salary=Money.parse(150_000),
                    allowance=TokenAllowance(Money.parse(100), Period.MONTH),
                    effective_from=START,
                ),
            )
            set_password(conn, email(short), PASSWORD, actor="tests", now=now)
    return Org_(ids, {s: email(s) for s in ids})


def settings(**overrides: object) -> WebSettings:
    return WebSettings(**overrides)  # type: ignore[arg-type]


@pytest.fixture
def app(db_url: str, org: Org_) -> FastAPI:
    return create_web_app(db_url, settings=settings())


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, follow_redirects=False) as c:
        yield c


_CSRF_FIELD = re.compile(r'name="csrf" value="([^"]+)"')
_CSRF_META = re.compile(r'<meta name="csrf-token" content="([^"]+)"')


def login_form_token(client: TestClient) -> str:
    page = client.get("/login")
    assert page.status_code == 200
    m = _CSRF_FIELD.search(page.text)
    assert m, "the login form has no csrf field"
    return m.group(1)


def sign_in(client: TestClient, short: str, password: str = PASSWORD) -> str:
    """Sign in through the form; the session's CSRF token (from the account page)."""
    token = login_form_token(client)
    r = client.post("/login", data={"email": email(short), "password": password, "csrf": token})
    assert r.status_code == 303, r.text
    return csrf_of(client)


def csrf_of(client: TestClient) -> str:
    page = client.get("/account")
    assert page.status_code == 200, page.text
    m = _CSRF_META.search(page.text)
    assert m, "signed-in pages carry the CSRF token in a meta tag"
    return m.group(1)
