"""Storage adapter: SQLAlchemy tables, Alembic migrations and repositories.

Storage saves and loads domain objects; domain objects never save themselves.
"""
