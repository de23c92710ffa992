"""Alembic environment: runs on the connection handed over by tokenwage.storage.migrate."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, create_engine

from tokenwage.storage.schema import metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


conn = context.config.attributes.get("connection")
if conn is not None:
    _run(conn)
else:  # the plain `alembic` command line, for developers
    url = context.config.get_main_option("sqlalchemy.url")
    assert url, "set sqlalchemy.url"
    with create_engine(url).connect() as connection:
        _run(connection)
        connection.commit()
