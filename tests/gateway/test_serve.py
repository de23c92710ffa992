"""``tokenwage serve``: the command's checks and the worker factory."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from tokenwage.cli import serve
from tokenwage.cli.common import State
from tokenwage.core.errors import InvalidInput
from tokenwage.gateway.app import GatewayApp
from tokenwage.storage import migrate
from tokenwage.storage.db import Database
from tokenwage.web.combined import CombinedApp


def cli() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def root(ctx: typer.Context, database_url: str = typer.Option(None, "--database-url")) -> None:
        ctx.obj = State(database_url)

    serve.register(app)
    return app


def test_serve_help_names_the_options() -> None:
    result = CliRunner().invoke(cli(), ["serve", "--help"], env={"COLUMNS": "120"})
    assert result.exit_code == 0
    for option in ("--host", "--port", "--workers", "--config", "--no-access-log"):
        assert option in result.output


def test_serve_refuses_a_bad_web_setting_before_starting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("OPENAI", "ANTHROPIC"):
        monkeypatch.delenv(f"TOKENWAGE_{name}_BASE_URL", raising=False)
    monkeypatch.delenv("TOKENWAGE_GATEWAY_CONFIG", raising=False)
    monkeypatch.setenv("TOKENWAGE_WEB_OIDC_ISSUER", "https://sso.example")
    result = CliRunner().invoke(cli(), ["serve"])
    assert isinstance(result.exception, InvalidInput)
    assert "TOKENWAGE_WEB_OIDC_CLIENT_ID" in str(result.exception)


def test_worker_factory_reads_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    config = tmp_path / "gateway.toml"
    config.write_text(
        '[providers.local]\nkind = "openai"\nbase_url = "http://127.0.0.1:1/v1"\n'
        'api_key_env = "LOCAL_KEY"\n'
    )
    monkeypatch.setenv("LOCAL_KEY", "sk-local")
    monkeypatch.setenv(serve.GATEWAY_CONFIG_ENV, str(config))
    monkeypatch.setenv(serve.DATABASE_URL_ENV, f"sqlite:///{tmp_path / 'db.sqlite'}")
    monkeypatch.setenv(serve.ACCESS_LOG_ENV, "0")
    db = Database(f"sqlite:///{tmp_path / 'db.sqlite'}")
    migrate.upgrade(db)
    db.dispose()
    app = serve.factory()
    assert isinstance(app, CombinedApp)
    gateway = app.gateway
    assert isinstance(gateway, GatewayApp) and not gateway.access_log.enabled
    (provider,) = gateway.config.providers
    assert (provider.name, provider.base_url) == ("local", "http://127.0.0.1:1")
    with pytest.raises(RuntimeError, match="lifespan"):
        _ = gateway.meter  # opened by the lifespan, in the worker's event loop


def test_a_started_worker_hides_its_start_up_objects_from_the_collector() -> None:
    probe = (
        "import gc, tokenwage.gateway.app; from tokenwage.gc_policy import quiet_gc; quiet_gc(); "
        "print(gc.get_freeze_count() > 10_000, gc.get_threshold())"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    ).stdout.split(maxsplit=1)
    assert out == ["True", "(20000, 20, 20)\n"]
