"""Schema migrations with Alembic, run from code (``tokenwage init`` / ``tokenwage migrate``).

On PostgreSQL the upgrade runs under an advisory lock with a timeout, so several gateway
replicas starting at once migrate exactly once.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text

from tokenwage.core.errors import StoreUnavailable
from tokenwage.storage.db import Database

MIGRATIONS = Path(__file__).parent / "migrations"
_ADVISORY_KEY = 0x70C3E7A6E  # "tokenwage" migrations
LOCK_TIMEOUT_MS = 60_000


def alembic_config(db: Database) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", db.url.replace("%", "%%"))
    return cfg


def upgrade(db: Database, revision: str = "head") -> None:
    cfg = alembic_config(db)
    with db.engine.connect() as conn:
        if db.dialect == "postgresql":
            conn.execute(text(f"SET lock_timeout = {LOCK_TIMEOUT_MS}"))
            conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": _ADVISORY_KEY})
        try:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, revision)
            conn.commit()
        finally:
            if db.dialect == "postgresql":
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _ADVISORY_KEY})
                conn.commit()


def current_revision(db: Database) -> str | None:
    with db.engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head_revision(db: Database) -> str | None:
    return ScriptDirectory.from_config(alembic_config(db)).get_current_head()


def require_current(db: Database) -> None:
    """Refuse to run against a database that is not initialised or not up to date."""
    current, head = current_revision(db), head_revision(db)
    if current is None:
        raise StoreUnavailable("the database is not initialised; run `tokenwage init` first")
    if current != head:
        raise StoreUnavailable(
            f"the database schema is at {current} but this tokenwage needs {head}; "
            "run `tokenwage migrate`"
        )
