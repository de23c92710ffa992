"""Tables (SQLAlchemy Core). The Alembic migrations in ``migrations/versions`` create exactly
these; ``tests/test_migrations.py`` fails if the two ever drift apart."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Date,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
)

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in, aware UTC datetimes out, on SQLite and PostgreSQL alike."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r} given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


Money = BigInteger  # nano-USD, signed

org = Table(
    "org",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(200), nullable=False),
    Column("timezone", String(64), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("unknown_models", String(8), nullable=False, server_default="reject"),
    Column("created_utc", UTCDateTime, nullable=False),
)

teams = Table(
    "teams",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("slug", String(63), nullable=False, unique=True),
    Column("name", String(200), nullable=False),
    Column("parent_id", Integer, ForeignKey("teams.id"), nullable=True),
    Column("pool_amount_nanousd", Money, nullable=True),
    Column("pool_period", String(16), nullable=True),
    Column("pool_from", Date, nullable=True),
    Column("created_utc", UTCDateTime, nullable=False),
)

people = Table(
    "people",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("email", String(320), nullable=False, unique=True),
    Column("name", String(200), nullable=False),
    Column("team_id", Integer, ForeignKey("teams.id"), nullable=True),
    Column("manager_id", Integer, ForeignKey("people.id"), nullable=True),
    Column("level", String(64), nullable=True),
    Column("role", String(16), nullable=False),
    Column("start_date", Date, nullable=True),
    Column("end_date", Date, nullable=True),
    Column("created_utc", UTCDateTime, nullable=False),
)

packages = Table(
    "packages",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("person_id", Integer, ForeignKey("people.id"), nullable=False, index=True),
    Column("effective_from", Date, nullable=False),
    Column("effective_to", Date, nullable=True),
    Column("base_salary_nanousd", Money, nullable=False),
    Column("bonus_target_nanousd", Money, nullable=False),
    Column("equity_per_year_nanousd", Money, nullable=False),
    Column("benefits_overhead_nanousd", Money, nullable=False),
    Column("allowance_nanousd", Money, nullable=False),
    Column("allowance_period", String(16), nullable=False),
    Column("rollover", String(32), nullable=False),
    Column("expiry_days", Integer, nullable=True),
    Column("cap_mode", String(8), nullable=False),
    Column("overdraft_nanousd", Money, nullable=False),
    Column("created_utc", UTCDateTime, nullable=False),
)

accounts = Table(
    "accounts",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("key", String(100), nullable=False, unique=True),
    Column("person_id", Integer, ForeignKey("people.id"), nullable=True),
    Column("team_id", Integer, ForeignKey("teams.id"), nullable=True),
    Column("head_seq", BigInteger, nullable=False),
    Column("head_hash", String(64), nullable=False),
    Column("balance_nanousd", Money, nullable=False),
    # when the head entry was recorded: later entries are never recorded before it
    Column("head_recorded_utc", UTCDateTime, nullable=True),
    Column("granted_through_utc", UTCDateTime, nullable=True),
    Column("created_utc", UTCDateTime, nullable=False),
)

ledger_entries = Table(
    "ledger_entries",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("account_id", Integer, ForeignKey("accounts.id"), nullable=False),
    Column("seq", BigInteger, nullable=False),
    Column("kind", String(16), nullable=False),
    Column("amount_nanousd", Money, nullable=False),
    Column("effective_utc", UTCDateTime, nullable=False),
    Column("recorded_utc", UTCDateTime, nullable=False),
    Column("ref", String(200), nullable=False, unique=True),
    Column("memo", Text, nullable=False),
    Column("expires_utc", UTCDateTime, nullable=True),
    Column("meta", Text, nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    UniqueConstraint("account_id", "seq"),
    Index(None, "account_id", "recorded_utc"),
)

# Org pricing rules: discounts (percent), model price overrides and the fallback price for
# unknown models. Prices per million tokens and percents are exact decimal strings.
pricing_rules = Table(
    "pricing_rules",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("kind", String(16), nullable=False),  # discount | override | fallback
    Column("provider", String(64), nullable=False),  # fnmatch pattern, "*" for all
    Column("model_pattern", String(200), nullable=False),
    Column("percent", String(16), nullable=True),
    Column("input_mtok", String(32), nullable=True),
    Column("output_mtok", String(32), nullable=True),
    Column("cache_read_mtok", String(32), nullable=True),
    Column("cache_write_mtok", String(32), nullable=True),
    Column("cache_write_1h_mtok", String(32), nullable=True),
    Column("effective_from", UTCDateTime, nullable=True),
    Column("created_utc", UTCDateTime, nullable=False),
)

# Virtual keys: what engineers put in OPENAI_API_KEY / ANTHROPIC_API_KEY. Only a SHA-256 of
# the secret is stored (keys are 256-bit random, so a slow hash adds nothing); the prefix
# lets people recognise a key in lists.
virtual_keys = Table(
    "virtual_keys",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("person_id", Integer, ForeignKey("people.id"), nullable=False, index=True),
    Column("name", String(100), nullable=False),
    Column("prefix", String(24), nullable=False, unique=True),
    Column("secret_sha256", String(64), nullable=False, unique=True),
    Column("allowed_models", Text, nullable=True),  # JSON list of fnmatch patterns
    Column("created_utc", UTCDateTime, nullable=False),
    Column("expires_utc", UTCDateTime, nullable=True),
    Column("revoked_utc", UTCDateTime, nullable=True),
    Column("last_used_utc", UTCDateTime, nullable=True),
)

# Money set aside for requests in flight. A hold is released when its request settles, or
# by the sweeper once it expires (a request that died), so nobody stays falsely "out".
holds = Table(
    "holds",
    metadata,
    Column("request_id", String(100), primary_key=True),
    Column("person_id", Integer, ForeignKey("people.id"), nullable=False, index=True),
    Column("amount_nanousd", Money, nullable=False),  # all of it, own part + pool part
    Column("pool_nanousd", Money, nullable=False),  # the part set aside from the team pool
    Column("pool_key", String(100), nullable=True, index=True),
    Column("created_utc", UTCDateTime, nullable=False),
    Column("expires_utc", UTCDateTime, nullable=False, index=True),
)

# One row per metered request (gateway) or imported usage record.
usage_records = Table(
    "usage_records",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("request_id", String(100), nullable=False, unique=True),
    Column("person_id", Integer, ForeignKey("people.id"), nullable=True, index=True),
    Column("key_id", Integer, ForeignKey("virtual_keys.id"), nullable=True),
    Column("source", String(40), nullable=False),
    Column("provider", String(64), nullable=False),
    Column("model", String(200), nullable=False),
    Column("requested_model", String(200), nullable=True),
    Column("endpoint", String(64), nullable=True),
    Column("input_tokens", BigInteger, nullable=False),
    Column("output_tokens", BigInteger, nullable=False),
    Column("cache_read_tokens", BigInteger, nullable=False),
    Column("cache_write_tokens", BigInteger, nullable=False),
    Column("cache_write_1h_tokens", BigInteger, nullable=False),
    Column("reasoning_tokens", BigInteger, nullable=False),
    Column("cost_nanousd", Money, nullable=False),
    Column("price_source", String(16), nullable=True),
    Column("estimated", Integer, nullable=False),  # 1: no usage event came; cost estimated
    Column("stream", Integer, nullable=False),
    Column("status", Integer, nullable=False),  # HTTP status the client got
    Column("latency_ms", Integer, nullable=True),
    Column("used_utc", UTCDateTime, nullable=False),
    Column("recorded_utc", UTCDateTime, nullable=False),
    # importers: where the usage came from, and the provider's own ids, so usage that also
    # passed through the gateway is recognised and never charged twice
    Column("session_id", String(200), nullable=True),
    Column("project", String(500), nullable=True),
    Column("hostname", String(200), nullable=True),
    Column("upstream_request_id", String(200), nullable=True, index=True),
    Column("message_id", String(200), nullable=True, index=True),
    Column("charge_mode", String(8), nullable=False, server_default="charge"),  # charge | track
    Index(None, "used_utc"),
    Index(None, "person_id", "used_utc"),  # a person's recent requests (dashboard)
)

# How far each importer has read each file or export, so a second run reads only what is
# new (offset within a file whose size, mtime and first bytes still match).
import_cursors = Table(
    "import_cursors",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("source", String(40), nullable=False),
    Column("location", String(1000), nullable=False),
    Column("position", BigInteger, nullable=False),
    Column("size", BigInteger, nullable=True),
    Column("mtime_ns", BigInteger, nullable=True),
    Column("fingerprint", String(64), nullable=True),
    Column("updated_utc", UTCDateTime, nullable=False),
    UniqueConstraint("source", "location"),
)

# Attribution: provider user ids, API key ids, emails, hostnames ... mapped to people.
identities = Table(
    "identities",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("kind", String(32), nullable=False),
    Column("value", String(320), nullable=False),
    Column("person_id", Integer, ForeignKey("people.id"), nullable=False, index=True),
    Column("created_utc", UTCDateTime, nullable=False),
    UniqueConstraint("kind", "value"),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("at_utc", UTCDateTime, nullable=False),
    Column("actor", String(320), nullable=False),
    Column("action", String(64), nullable=False),
    Column("detail", Text, nullable=False),
)

# --- dashboard: who may sign in, their sessions and API tokens, their preferences ---------

# A person who may sign in to the dashboard. The role is the person's ``people.role``; only
# an argon2id hash of the password is kept.
logins = Table(
    "logins",
    metadata,
    Column("person_id", Integer, ForeignKey("people.id"), primary_key=True),
    Column("password_hash", String(200), nullable=False),
    Column("created_utc", UTCDateTime, nullable=False),
    Column("password_changed_utc", UTCDateTime, nullable=False),
    Column("last_login_utc", UTCDateTime, nullable=True),
    Column("disabled_utc", UTCDateTime, nullable=True),
)

# Browser sessions: the cookie holds a random token, the table its SHA-256.
web_sessions = Table(
    "web_sessions",
    metadata,
    Column("token_sha256", String(64), primary_key=True),
    Column("person_id", Integer, ForeignKey("people.id"), nullable=False, index=True),
    Column("csrf_token", String(64), nullable=False),
    Column("created_utc", UTCDateTime, nullable=False),
    Column("expires_utc", UTCDateTime, nullable=False, index=True),
    Column("last_seen_utc", UTCDateTime, nullable=False),
)

# Bearer tokens for scripts calling the REST API; they act with their owner's role.
api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("person_id", Integer, ForeignKey("people.id"), nullable=False, index=True),
    Column("name", String(100), nullable=False),
    Column("prefix", String(24), nullable=False, unique=True),
    Column("secret_sha256", String(64), nullable=False, unique=True),
    Column("created_utc", UTCDateTime, nullable=False),
    Column("expires_utc", UTCDateTime, nullable=True),
    Column("revoked_utc", UTCDateTime, nullable=True),
    Column("last_used_utc", UTCDateTime, nullable=True),
)

# What each person chose to share: the leaderboard is opt-in, under a name or an alias.
person_settings = Table(
    "person_settings",
    metadata,
    Column("person_id", Integer, ForeignKey("people.id"), primary_key=True),
    Column("leaderboard_opt_in", Integer, nullable=False, server_default="0"),
    Column("leaderboard_alias", String(100), nullable=True),
    Column("leaderboard_show_name", Integer, nullable=False, server_default="0"),
    Column("share_detail", Integer, nullable=False, server_default="0"),
    Column("updated_utc", UTCDateTime, nullable=False),
)

# --- analytics: usage summed per org-local day, kept current by every writer of usage ----

# One row per (day, person, provider, model, source): what the dashboard reads, so pages
# stay fast with millions of usage records. Written in the same transaction as the records.
usage_daily = Table(
    "usage_daily",
    metadata,
    Column("day", Date, nullable=False),
    Column("person_id", Integer, ForeignKey("people.id"), nullable=False),
    Column("provider", String(64), nullable=False),
    Column("model", String(200), nullable=False),
    Column("source", String(40), nullable=False),
    Column("requests", BigInteger, nullable=False),
    Column("input_tokens", BigInteger, nullable=False),
    Column("output_tokens", BigInteger, nullable=False),
    Column("cache_read_tokens", BigInteger, nullable=False),
    Column("cache_write_tokens", BigInteger, nullable=False),
    Column("reasoning_tokens", BigInteger, nullable=False),
    Column("cost_nanousd", Money, nullable=False),
    UniqueConstraint("day", "person_id", "provider", "model", "source"),
    Index(None, "person_id", "day"),
)
