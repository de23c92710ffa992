"""``tokenwage serve``: run the metering gateway and the dashboard on one port.

Each uvicorn worker process builds its own app with :func:`factory` from the environment this
command sets (the database URL, the gateway config path, the access-log switch), so the
gateway's and the dashboard's modules are imported only when serving, not by every CLI
command. Paths under ``/v1/``, ``/metrics`` and ``/health`` reach the gateway; everything
else the dashboard and REST API (:mod:`tokenwage.web.combined`).
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from tokenwage.cli.common import err, state
from tokenwage.gc_policy import quiet_gc

if TYPE_CHECKING:
    from tokenwage.gateway.app import OwnedMeter
    from tokenwage.web.combined import CombinedApp

DATABASE_URL_ENV = "TOKENWAGE_DATABASE_URL"
GATEWAY_CONFIG_ENV = "TOKENWAGE_GATEWAY_CONFIG"
ACCESS_LOG_ENV = "TOKENWAGE_GATEWAY_ACCESS_LOG"
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"  # read by prometheus-client when it is imported


def serve(
    ctx: typer.Context,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port to listen on.")] = 8080,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes (one per core).")] = 1,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            help="Gateway TOML: providers, model routing, holds, downgrades "
            f"[default: ${GATEWAY_CONFIG_ENV}, else TOKENWAGE_OPENAI_*/TOKENWAGE_ANTHROPIC_*].",
        ),
    ] = None,
    access_log: Annotated[
        bool, typer.Option(help="Write one JSON line per request to stderr (no secrets).")
    ] = True,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
) -> None:
    """Serve the metering gateway, the dashboard and the REST API on one port.

    Point clients at it with OPENAI_BASE_URL=http://HOST:PORT/v1 or
    ANTHROPIC_BASE_URL=http://HOST:PORT and a tokenwage key as their API key; open
    http://HOST:PORT/ in a browser for the dashboard (see docs/web.md). Without a provider
    the dashboard, API, `tokenwage push` and OTLP intake still work; model calls are refused.
    """
    import uvicorn

    from tokenwage.gateway.config import load_gateway_config
    from tokenwage.web.settings import load_web_settings

    gateway_config = load_gateway_config(config)
    load_web_settings()  # refuse a bad TOKENWAGE_WEB_* setting before any worker starts
    if not gateway_config.providers:
        err.print(
            "[yellow]no provider is configured:[/] serving the dashboard, API and usage intake "
            "only; model calls are refused. To forward them, set TOKENWAGE_OPENAI_BASE_URL and "
            "TOKENWAGE_OPENAI_API_KEY (or the ANTHROPIC pair), or pass --config."
        )
    state(ctx).database()  # the schema must be current before any worker starts
    os.environ[DATABASE_URL_ENV] = state(ctx).url
    if config is not None:
        os.environ[GATEWAY_CONFIG_ENV] = str(config.resolve())
    os.environ[ACCESS_LOG_ENV] = "1" if access_log else "0"
    metrics_dir = _metrics_dir(workers)
    names = ", ".join(p.name for p in gateway_config.providers) or "no providers"
    err.print(
        f"tokenwage on http://{host}:{port}: dashboard at /, gateway at /v1 "
        f"({workers} worker(s); {names})"
    )
    from tokenwage.gateway.app import UVICORN_OPTIONS
    from tokenwage.gateway.folder import start_folder_process, stop_folder_process

    # books journaled settlements (SQLite); first it books what a killed run left behind
    folder = start_folder_process(state(ctx).url) if gateway_config.journaled else None
    try:
        uvicorn.run(
            "tokenwage.cli.serve:factory",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            log_level=log_level,
            **UVICORN_OPTIONS,
        )
    finally:
        stop_folder_process(folder)
        if metrics_dir is not None:
            shutil.rmtree(metrics_dir, ignore_errors=True)


def _metrics_dir(workers: int) -> str | None:
    """Make Prometheus metrics add up across workers; returns a directory to remove after."""
    existing = os.environ.get(MULTIPROC_ENV)
    if existing:
        for stale in Path(existing).glob("*.db"):  # left over from an earlier run
            stale.unlink()
        return None
    if workers == 1:
        return None
    created = tempfile.mkdtemp(prefix="tokenwage-metrics-")
    os.environ[MULTIPROC_ENV] = created
    return created


def factory() -> CombinedApp:
    """The app of one worker (``uvicorn --factory``), from the environment :func:`serve` set:
    the gateway and the web app behind one dispatcher."""
    from tokenwage.config import load_settings
    from tokenwage.gateway.app import GatewayApp
    from tokenwage.gateway.config import load_gateway_config
    from tokenwage.gateway.metrics import AccessLog
    from tokenwage.web.app import create_web_app
    from tokenwage.web.combined import CombinedApp

    config = load_gateway_config()
    database_url = load_settings().database_url.get_secret_value()

    async def open_meter() -> OwnedMeter:
        from tokenwage.gateway.meter import open_meter as open_db_meter

        return await open_db_meter(database_url, config)

    log_stream = sys.stderr.buffer if os.environ.get(ACCESS_LOG_ENV, "1") == "1" else None
    gateway = GatewayApp(config, None, open_meter=open_meter, access_log=AccessLog(log_stream))
    return CombinedApp(gateway, create_web_app(database_url), on_started=quiet_gc)


def register(app: typer.Typer) -> None:
    """Add the ``serve`` command to the tokenwage CLI."""
    app.command("serve")(serve)
