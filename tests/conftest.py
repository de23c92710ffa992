"""Shared fixtures: every test gets its own data directory and its own database.

``db`` runs a test twice, on SQLite and on PostgreSQL. PostgreSQL tests use one database
per test session (per xdist worker), created and dropped here, and empty every table between
tests. When the server is unreachable they skip, unless ``TOKENWAGE_REQUIRE_SERVICES=1``,
where they fail.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import text

from tokenwage.storage import migrate
from tokenwage.storage.db import Database
from tokenwage.storage.schema import metadata

CHEAP_ARGON2 = {
    "TOKENWAGE_WEB_ARGON2_TIME_COST": "1",
    "TOKENWAGE_WEB_ARGON2_MEMORY_COST": "8",  # KiB
    "TOKENWAGE_WEB_ARGON2_PARALLELISM": "1",
}
PG_ADMIN_DSN = os.environ.get("TOKENWAGE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


def require_services() -> bool:
    return os.environ.get("TOKENWAGE_REQUIRE_SERVICES", "") not in ("", "0", "false")


def _unavailable(what: str) -> None:
    if require_services():
        pytest.fail(f"{what} is required (TOKENWAGE_REQUIRE_SERVICES=1) but unreachable")
    pytest.skip(f"{what} unreachable")


@pytest.fixture(autouse=True)
def _isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test touches the real user data directory or a stray database URL; passwords are
    hashed with cheap argon2 parameters (production's take ~0.3 s a hash), but for the test
    that checks the defaults (tests/web/test_passwords.py)."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("TOKENWAGE_DATABASE_URL", raising=False)
    for name, value in CHEAP_ARGON2.items():
        monkeypatch.setenv(name, value)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.db"
    db = Database(f"sqlite:///{path}")
    migrate.upgrade(db)
    db.dispose()  # closing the last connection checkpoints the WAL into the file
    return path


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    name = f"tokenwage_test_{uuid.uuid4().hex[:12]}"
    try:
        admin = psycopg.connect(PG_ADMIN_DSN, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError:
        _unavailable(f"PostgreSQL at {PG_ADMIN_DSN}")
        raise  # unreachable: _unavailable raises
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = PG_ADMIN_DSN.rsplit("/", 1)[0] + f"/{name}"
    db = Database(url)
    migrate.upgrade(db)
    db.dispose()
    try:
        yield url
    finally:
        with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _truncate_all(url: str) -> None:
    db = Database(url)
    names = ", ".join(f'"{t.name}"' for t in metadata.sorted_tables)
    try:
        with db.begin() as conn:
            conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    finally:
        db.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path) -> Iterator[str]:
    """A migrated, empty database URL: SQLite file or the session's PostgreSQL database."""
    if request.param == "sqlite":
        path = tmp_path / "tokenwage.db"
        shutil.copy(sqlite_template, path)
        yield f"sqlite:///{path}"
        return
    url: str = request.getfixturevalue("pg_url")
    _truncate_all(url)
    yield url


@pytest.fixture
def db(db_url: str) -> Iterator[Database]:
    database = Database(db_url)
    try:
        yield database
    finally:
        database.dispose()
