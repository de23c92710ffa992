"""One typed settings object, built at start-up: environment over default.

Nothing reads the environment at import time; call :func:`load_settings`.
"""

from __future__ import annotations

from pathlib import Path

from platformdirs import user_data_dir
from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


def default_database_url() -> str:
    path = Path(user_data_dir("tokenwage", appauthor=False)) / "tokenwage.db"
    return f"sqlite:///{path}"


class Settings(BaseSettings):
    """Settings read from ``TOKENWAGE_*`` environment variables."""

    model_config = SettingsConfigDict(env_prefix="TOKENWAGE_", extra="forbid")

    database_url: SecretStr = Field(default_factory=lambda: SecretStr(default_database_url()))
    require_services: bool = False  # tests: fail instead of skip when PostgreSQL/Redis are down
    unknown_models: str = Field(default="reject", pattern="^(reject|flag)$")


def load_settings(**overrides: object) -> Settings:
    return Settings(**overrides)  # type: ignore[arg-type]
