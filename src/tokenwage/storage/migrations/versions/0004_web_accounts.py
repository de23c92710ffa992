"""Dashboard sign-in: logins (argon2 hashes), browser sessions, API tokens, person settings.

Revision ID: 0004_web_accounts
Revises: 0003_importers
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_web_accounts"
down_revision = "0003_importers"
branch_labels = None
depends_on = None

_UTC = sa.DateTime(timezone=True)


def _person_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["person_id"], ["people.id"], name=op.f(f"fk_{table}_person_id_people")
    )


def upgrade() -> None:
    op.create_table(
        "logins",
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("password_hash", sa.String(length=200), nullable=False),
        sa.Column("created_utc", _UTC, nullable=False),
        sa.Column("password_changed_utc", _UTC, nullable=False),
        sa.Column("last_login_utc", _UTC, nullable=True),
        sa.Column("disabled_utc", _UTC, nullable=True),
        _person_fk("logins"),
        sa.PrimaryKeyConstraint("person_id", name=op.f("pk_logins")),
    )
    op.create_table(
        "web_sessions",
        sa.Column("token_sha256", sa.String(length=64), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("csrf_token", sa.String(length=64), nullable=False),
        sa.Column("created_utc", _UTC, nullable=False),
        sa.Column("expires_utc", _UTC, nullable=False),
        sa.Column("last_seen_utc", _UTC, nullable=False),
        _person_fk("web_sessions"),
        sa.PrimaryKeyConstraint("token_sha256", name=op.f("pk_web_sessions")),
    )
    op.create_index(op.f("ix_web_sessions_person_id"), "web_sessions", ["person_id"])
    op.create_index(op.f("ix_web_sessions_expires_utc"), "web_sessions", ["expires_utc"])
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("prefix", sa.String(length=24), nullable=False),
        sa.Column("secret_sha256", sa.String(length=64), nullable=False),
        sa.Column("created_utc", _UTC, nullable=False),
        sa.Column("expires_utc", _UTC, nullable=True),
        sa.Column("revoked_utc", _UTC, nullable=True),
        sa.Column("last_used_utc", _UTC, nullable=True),
        _person_fk("api_tokens"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_tokens")),
        sa.UniqueConstraint("prefix", name=op.f("uq_api_tokens_prefix")),
        sa.UniqueConstraint("secret_sha256", name=op.f("uq_api_tokens_secret_sha256")),
    )
    op.create_index(op.f("ix_api_tokens_person_id"), "api_tokens", ["person_id"])
    op.create_table(
        "person_settings",
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("leaderboard_opt_in", sa.Integer(), server_default="0", nullable=False),
        sa.Column("leaderboard_alias", sa.String(length=100), nullable=True),
        sa.Column("share_detail", sa.Integer(), server_default="0", nullable=False),
        sa.Column("updated_utc", _UTC, nullable=False),
        _person_fk("person_settings"),
        sa.PrimaryKeyConstraint("person_id", name=op.f("pk_person_settings")),
    )


def downgrade() -> None:
    op.drop_table("person_settings")
    op.drop_index(op.f("ix_api_tokens_person_id"), table_name="api_tokens")
    op.drop_table("api_tokens")
    op.drop_index(op.f("ix_web_sessions_expires_utc"), table_name="web_sessions")
    op.drop_index(op.f("ix_web_sessions_person_id"), table_name="web_sessions")
    op.drop_table("web_sessions")
    op.drop_table("logins")
