"""The dashboard as people use it: Debian's Chromium, driven by Playwright, against a real
``tokenwage serve`` child process on loopback in front of ``tokenwage mock-upstream``.

One small demo organisation (a dozen people over two weeks, the demo seeding's own code)
is seeded once for this package into a SQLite file; each role's person gets a login with
:data:`PASSWORD`. Every browser test runs in the ``browser`` xdist group, so one worker
owns the servers and the browser. The fixtures are package-scoped, not session-scoped:
Playwright's sync API keeps its event loop running in the main thread until it stops, and
asyncio tests that the same worker runs afterwards could not start theirs.

Chromium is ``/usr/bin/chromium`` (``make browser`` installs it); Playwright never downloads
a browser. Without it the tests skip, unless ``TOKENWAGE_REQUIRE_SERVICES=1``, where they
fail. Screenshots go to ``$TOKENWAGE_ARTIFACTS/screenshots`` (default
``test-artifacts/screenshots`` at the repository root).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, sync_playwright

from tests.conftest import require_services
from tokenwage.core.money import Money
from tokenwage.processes import child_process, free_port, provider_env
from tokenwage.services.books import grant
from tokenwage.services.demo import seed_demo
from tokenwage.storage.db import Database
from tokenwage.storage.org_repo import OrgRepo

CHROMIUM = Path("/usr/bin/chromium")
ORG_KEY = "sk-browser-org-key"
PASSWORD = "correct-horse-battery-staple-7"
ROLES = ("member", "manager", "finance", "admin")
REPO = Path(__file__).resolve().parents[2]
# how long Playwright waits for an element or a navigation: generous on a loaded machine,
# never a pass/fail threshold on speed
WAIT_MS = 20_000


def artifacts_dir() -> Path:
    """Where screenshots go: ``$TOKENWAGE_ARTIFACTS/screenshots`` or the repo's default."""
    root = Path(os.environ.get("TOKENWAGE_ARTIFACTS") or REPO / "test-artifacts")
    return root / "screenshots"


@dataclass(frozen=True)
class Person:
    id: int
    email: str
    name: str
    team: str | None


@dataclass(frozen=True)
class Site:
    """The running dashboard and gateway, and who may sign in to it."""

    base: str  # http://127.0.0.1:PORT, gateway under /v1, dashboard everywhere else
    db_url: str
    people: dict[str, Person]  # role -> the demo's person with that role

    def url(self, path: str) -> str:
        return f"{self.base}{path}"

    def database(self) -> Database:
        return Database(self.db_url)


def _require_chromium() -> None:
    if CHROMIUM.exists():
        return
    message = f"{CHROMIUM} is missing: run `make browser` (Debian's chromium package)"
    if require_services():
        pytest.fail(message)
    pytest.skip(message)


def _seed(db_url: str) -> dict[str, Person]:
    """The demo org (12 people, 14 days); each role's person signs in with PASSWORD."""
    from tokenwage.web.accounts import set_password

    now = datetime.now(UTC)
    db = Database(db_url)
    try:
        with db.begin() as conn:
            summary = seed_demo(conn, now=now, people=12, days=14)
            repo = OrgRepo(conn)
            people = {}
            for role, email in summary.logins.items():
                p = repo.get_person(email)
                assert p.id is not None
                people[role] = Person(p.id, p.email, p.name, p.team_slug)
                set_password(conn, email, PASSWORD, actor="browser-tests", now=now)
            # room to spend through the gateway, whatever the simulated weeks left over
            member = summary.logins["member"]
            grant(conn, email=member, team=None, amount=Money.parse("500"), reason="Tests", now=now)
    finally:
        db.dispose()
    assert set(people) == set(ROLES), people
    return people


@pytest.fixture(scope="package")
def site(tmp_path_factory: pytest.TempPathFactory, sqlite_template: Path) -> Iterator[Site]:
    """Seeded database, mock provider and ``tokenwage serve``, for the browser tests."""
    _require_chromium()
    tmp = tmp_path_factory.mktemp("browser")
    path = tmp / "tokenwage.db"
    shutil.copy(sqlite_template, path)
    db_url = f"sqlite:///{path}"
    # the children get their own home and data directory, like every test
    base_env = {**os.environ, "HOME": str(tmp / "home"), "XDG_DATA_HOME": str(tmp / "xdg")}
    base_env.pop("TOKENWAGE_DATABASE_URL", None)
    people = _seed(db_url)
    upstream_port, port = free_port(), free_port()
    upstream = f"http://127.0.0.1:{upstream_port}"
    mock = ["mock-upstream", "--port", str(upstream_port), "--expected-api-key", ORG_KEY]
    serve = ["--database-url", db_url, "serve", "--port", str(port), "--workers", "1"]
    serve += ["--no-access-log", "--log-level", "warning"]
    env = {**provider_env(upstream, ORG_KEY), **base_env}
    with (
        (tmp / "mock.log").open("wb") as mock_log,
        (tmp / "serve.log").open("wb") as serve_log,
        child_process(mock, port=upstream_port, what="the mock provider", env=env, stderr=mock_log),
        child_process(serve, port=port, what="tokenwage serve", env=env, stderr=serve_log),
    ):
        yield Site(f"http://127.0.0.1:{port}", db_url, people)


@pytest.fixture(scope="package")
def playwright() -> Iterator[Playwright]:
    _require_chromium()
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="package")
def browser(playwright: Playwright) -> Iterator[Browser]:
    b = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
    try:
        yield b
    finally:
        b.close()


Login = Callable[[str], Page]


@pytest.fixture
def login(browser: Browser, site: Site) -> Iterator[Login]:
    """``login(role)``: a page in a fresh browser context, signed in as that role's person
    through the /login form, on the page the login lands on."""
    contexts: list[BrowserContext] = []

    def sign_in(role: str) -> Page:
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        context.set_default_timeout(WAIT_MS)
        contexts.append(context)
        page = context.new_page()
        sign_in_on(page, site, site.people[role].email)
        return page

    try:
        yield sign_in
    finally:
        for c in contexts:
            c.close()


def sign_in_on(page: Page, site: Site, email: str, password: str = PASSWORD) -> None:
    """Fill and send the login form; returns once the browser left /login."""
    page.goto(site.url("/login"))
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", password)
    with page.expect_navigation():
        page.locator("form button[type=submit], form input[type=submit]").first.click()
    assert "/login" not in page.url, f"still on the login page after signing in as {email}"


def screenshot(page: Page, role: str, name: str) -> Path:
    """A full-page PNG of ``page`` as ``<role>-<name>.png`` in the artefacts directory."""
    out = artifacts_dir()
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{role}-{name}.png"
    page.screenshot(path=str(path), full_page=True)
    print(f"screenshot: {path}")
    return path


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    out = artifacts_dir()
    if out.is_dir() and any(out.glob("*.png")):
        terminalreporter.write_line(f"browser test screenshots: {out}")
