"""Dashboard settings, read from ``TOKENWAGE_WEB_*`` environment variables at start-up."""

from __future__ import annotations

import os
from typing import Literal

from argon2.profiles import RFC_9106_LOW_MEMORY
from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from tokenwage.core.errors import InvalidInput


class WebSettings(BaseSettings):
    """Sessions, sign-in limits and optional OIDC single sign-on.

    ``cookie_secure``: ``auto`` marks the session cookie Secure when the request came over
    https (directly or as the ASGI server reports it), ``always`` always, ``never`` never.

    ``argon2_*``: the argon2id parameters new password hashes get (default: RFC 9106's
    low-memory profile, argon2-cffi's own default: 3 passes over 64 MiB, 4 lanes). A hash
    made with other parameters is re-hashed with these at its next sign-in.
    """

    model_config = SettingsConfigDict(env_prefix="TOKENWAGE_WEB_", extra="forbid")

    session_max_age_hours: int = Field(default=12, ge=1, le=24 * 30)
    session_idle_minutes: int = Field(default=120, ge=1, le=24 * 60)
    cookie_secure: Literal["auto", "always", "never"] = "auto"
    # Sign-in limits (in-process sliding windows, one set per server process).
    login_window_seconds: int = Field(default=300, ge=1)
    login_failures_per_email: int = Field(default=5, ge=1)
    login_attempts_per_ip: int = Field(default=30, ge=1)
    # Password hashing (argon2id).
    argon2_time_cost: int = Field(default=RFC_9106_LOW_MEMORY.time_cost, ge=1)
    argon2_memory_cost: int = Field(default=RFC_9106_LOW_MEMORY.memory_cost, ge=8)  # KiB
    argon2_parallelism: int = Field(default=RFC_9106_LOW_MEMORY.parallelism, ge=1)
    # OIDC single sign-on: enabled when an issuer is set.
    oidc_issuer: str | None = None
    oidc_client_id: str | None = None
    oidc_client_secret_env: str = "TOKENWAGE_OIDC_CLIENT_SECRET"
    oidc_scopes: str = "openid email profile"
    oidc_label: str = "Sign in with single sign-on"
    oidc_redirect_url: str | None = None  # default: <this server>/login/oidc/callback

    @model_validator(mode="after")
    def _argon2_memory_per_lane(self) -> WebSettings:
        if self.argon2_memory_cost < 8 * self.argon2_parallelism:
            raise ValueError(
                f"TOKENWAGE_WEB_ARGON2_MEMORY_COST {self.argon2_memory_cost} (KiB) must be at "
                f"least 8 per lane: {8 * self.argon2_parallelism} for "
                f"TOKENWAGE_WEB_ARGON2_PARALLELISM {self.argon2_parallelism}"
            )
        return self

    @property
    def argon2_parameters(self) -> tuple[int, int, int]:
        """(time_cost, memory_cost in KiB, parallelism)."""
        return self.argon2_time_cost, self.argon2_memory_cost, self.argon2_parallelism

    @property
    def oidc_enabled(self) -> bool:
        return bool(self.oidc_issuer)

    def oidc_client_secret(self) -> SecretStr:
        """The client secret from the environment variable the settings name."""
        value = os.environ.get(self.oidc_client_secret_env, "")
        if not value:
            raise InvalidInput(
                f"OIDC is configured (issuer {self.oidc_issuer}) but the client secret "
                f"variable ${self.oidc_client_secret_env} is empty; set it"
            )
        return SecretStr(value)

    def check(self) -> None:
        """Refuse an OIDC configuration that cannot work, naming what is missing."""
        if not self.oidc_enabled:
            return
        issuer = self.oidc_issuer or ""
        if not issuer.startswith(("https://", "http://")):
            raise InvalidInput(f"TOKENWAGE_WEB_OIDC_ISSUER {issuer!r} must be an http(s) URL")
        if not self.oidc_client_id:
            raise InvalidInput("TOKENWAGE_WEB_OIDC_ISSUER is set; set TOKENWAGE_WEB_OIDC_CLIENT_ID")
        if "openid" not in self.oidc_scopes.split():
            raise InvalidInput("TOKENWAGE_WEB_OIDC_SCOPES must include 'openid'")
        self.oidc_client_secret()


def load_web_settings(**overrides: object) -> WebSettings:
    settings = WebSettings(**overrides)  # type: ignore[arg-type]
    settings.check()
    return settings
