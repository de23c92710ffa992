"""Dashboard settings, read from ``TOKENWAGE_WEB_*`` environment variables at start-up."""

from __future__ import annotations

import os
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from tokenwage.core.errors import InvalidInput


class WebSettings(BaseSettings):
    """Sessions, sign-in limits and optional OIDC single sign-on.

    ``cookie_secure``: ``auto`` marks the session cookie Secure when the request came over
    https (directly or as the ASGI server reports it), ``always`` always, ``never`` never.
    """

    model_config = SettingsConfigDict(env_prefix="TOKENWAGE_WEB_", extra="forbid")

    session_max_age_hours: int = Field(default=12, ge=1, le=24 * 30)
    session_idle_minutes: int = Field(default=120, ge=1, le=24 * 60)
    cookie_secure: Literal["auto", "always", "never"] = "auto"
    # Sign-in limits (in-process sliding windows, one set per server process).
    login_window_seconds: int = Field(default=300, ge=1)
    login_failures_per_email: int = Field(default=5, ge=1)
    login_attempts_per_ip: int = Field(default=30, ge=1)
    # OIDC single sign-on: enabled when an issuer is set.
    oidc_issuer: str | None = None
    oidc_client_id: str | None = None
    oidc_client_secret_env: str = "TOKENWAGE_OIDC_CLIENT_SECRET"
    oidc_scopes: str = "openid email profile"
    oidc_label: str = "Sign in with single sign-on"
    oidc_redirect_url: str | None = None  # default: <this server>/login/oidc/callback

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
