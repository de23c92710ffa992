"""A fresh, migrated database for one benchmark run, removed afterwards: a SQLite file in a
temporary directory, or a ``tokenwage_bench_<random>`` database on a PostgreSQL server."""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql
from rich.console import Console
from sqlalchemy.engine import make_url

from bench.ledger_append import _db_bytes
from tokenwage.storage import migrate
from tokenwage.storage.db import Database


@dataclass(frozen=True)
class Fresh:
    db: Database
    server_version: str | None  # PostgreSQL's; None on SQLite

    def size_bytes(self) -> int:
        """The SQLite file after a WAL checkpoint (closes the pool), or pg_database_size."""
        return _db_bytes(self.db)


@contextmanager
def fresh_database(backend: str, pg_url: str, console: Console) -> Iterator[Fresh]:
    if backend == "sqlite":
        with tempfile.TemporaryDirectory(prefix="tokenwage-bench-dashboard-") as tmp:
            path = Path(tmp) / "tokenwage.db"
            console.print(f"sqlite: fresh database {path}")
            with _migrated(f"sqlite:///{path}") as db:
                yield Fresh(db, None)
        return
    admin_dsn = pg_url.replace("postgresql+psycopg://", "postgresql://", 1)
    name = f"tokenwage_bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin_dsn, autocommit=True, connect_timeout=5) as admin:
        row = admin.execute("SHOW server_version").fetchone()
        version = str(row[0]) if row else "unknown"
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        console.print(f"postgres: fresh database {name} (PostgreSQL {version})")
        url = make_url(admin_dsn).set(database=name)
        try:
            with _migrated(url.render_as_string(hide_password=False)) as db:
                yield Fresh(db, version)
        finally:
            drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
            admin.execute(drop.format(sql.Identifier(name)))


@contextmanager
def _migrated(url: str) -> Iterator[Database]:
    db = Database(url)
    try:
        migrate.upgrade(db)
        yield db
    finally:
        db.dispose()
