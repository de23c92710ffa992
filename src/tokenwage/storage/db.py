"""Engines for SQLite (the embedded default) and PostgreSQL.

SQLite runs in WAL mode and every transaction starts with ``BEGIN IMMEDIATE``, so writers
queue for the one write lock up front instead of failing half-way (the datasette recipe);
``Database.reading()`` gives deferred (read) transactions that never take that lock.
PostgreSQL locks the account rows it appends to (``SELECT ... FOR UPDATE``).
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from tokenwage.core.errors import InvalidInput, StoreUnavailable


def normalise_url(url: str) -> str:
    """Accept ``postgresql://`` and ``postgres://`` and use the psycopg 3 driver."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    return url


_READ_ONLY = "tokenwage_read_only"


class Database:
    """One database, one engine. ``begin()`` gives a connection inside one transaction."""

    def __init__(self, url: str, *, echo: bool = False, sqlite_synchronous: str = "FULL") -> None:
        self.url = normalise_url(url)
        try:
            parsed = make_url(self.url)
        except Exception as exc:  # sqlalchemy raises ArgumentError with little context
            raise InvalidInput(f"not a database URL: {url!r} ({exc})") from exc
        self.dialect = parsed.get_backend_name()
        if self.dialect == "sqlite":
            if sqlite_synchronous not in ("FULL", "NORMAL"):
                raise InvalidInput("sqlite_synchronous must be FULL or NORMAL")
            self.engine = _sqlite_engine(self.url, parsed.database, echo, sqlite_synchronous)
        elif self.dialect == "postgresql":
            self.engine = create_engine(
                self.url, echo=echo, pool_pre_ping=True, pool_size=5, max_overflow=10
            )
        else:
            raise InvalidInput(
                f"database {self.dialect!r} is not supported; use sqlite:///path or postgresql://"
            )

    @property
    def is_sqlite(self) -> bool:
        return self.dialect == "sqlite"

    read_only = False

    def reading(self) -> Database:
        """This database for reading only: ``begin()`` then opens a snapshot that never waits
        for writers and never holds them up, so all its queries see one state (SQLite: a
        deferred transaction, which in WAL mode reads beside the one writer; PostgreSQL: a
        ``REPEATABLE READ, READ ONLY`` transaction, which refuses any write). Dashboard pages
        and API reads use it, so a page being rendered never delays the gateway's
        settlements."""
        view = copy.copy(self)
        view.read_only = True
        return view

    @contextmanager
    def begin(self) -> Iterator[Connection]:
        """One transaction: committed if the block returns, rolled back if it raises."""
        try:
            if self.read_only:
                with self.engine.connect() as conn:
                    conn.execution_options(**{_READ_ONLY: True})
                    with conn.begin():
                        if self.dialect == "postgresql":
                            conn.exec_driver_sql(
                                "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY"
                            )
                        yield conn
                return
            with self.engine.begin() as conn:
                yield conn
        except OperationalError as exc:
            raise StoreUnavailable(f"database error: {exc.orig}") from exc

    def dispose(self) -> None:
        self.engine.dispose()


def _sqlite_engine(url: str, database: str | None, echo: bool, synchronous: str) -> Engine:
    if database and database != ":memory:":
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, echo=echo, connect_args={"timeout": 30})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute(f"PRAGMA synchronous={synchronous}")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        read_only = conn.get_execution_options().get(_READ_ONLY, False)
        conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")

    return engine
