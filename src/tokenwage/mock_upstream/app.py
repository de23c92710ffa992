"""The raw ASGI router and the uvicorn runner of the simulated provider."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
import uvicorn
from uvicorn.config import LOGGING_CONFIG

from tokenwage.mock_upstream.admin import ADMIN_PREFIXES, serve_admin
from tokenwage.mock_upstream.anthropic_messages import count_tokens, messages
from tokenwage.mock_upstream.asgi import (
    Receive,
    Scope,
    Send,
    hide_dropped_connection_errors,
    read_body,
    send_json,
)
from tokenwage.mock_upstream.config import MockConfig
from tokenwage.mock_upstream.exchange import Exchange, RequestIds
from tokenwage.mock_upstream.faults import (
    FAULT_HEADER,
    NO_FAULTS,
    ForcedFaults,
    RandomFaults,
    UnknownFault,
)
from tokenwage.mock_upstream.openai_chat import chat_completions
from tokenwage.mock_upstream.openai_embeddings import embeddings
from tokenwage.mock_upstream.openai_responses import responses
from tokenwage.mock_upstream.providers import ANTHROPIC, OPENAI, ApiError, Provider

CONFIG_ENV = "TOKENWAGE_MOCK_UPSTREAM_CONFIG"
"""How :func:`serve` hands the config to worker processes when ``workers > 1``."""

Handler = Callable[[Exchange, Send], Awaitable[None]]

_HEALTH_BODY = orjson.dumps({"status": "ok"})


async def _list_models(exchange: Exchange, send: Send) -> None:
    provider = _provider_by_headers(exchange)
    await send_json(send, 200, provider.models_body(), provider.headers(exchange))


async def _get_model(exchange: Exchange, send: Send) -> None:
    provider = _provider_by_headers(exchange)
    body = provider.model_body(exchange.path.removeprefix("/v1/models/"))
    await send_json(send, 200, body, provider.headers(exchange))


def _provider_by_headers(exchange: Exchange) -> Provider:
    headers = exchange.headers
    if "x-api-key" in headers or "anthropic-version" in headers:
        return ANTHROPIC
    return OPENAI


_ROUTES: dict[tuple[str, str], tuple[Provider | None, Handler]] = {
    ("POST", "/v1/chat/completions"): (OPENAI, chat_completions),
    ("POST", "/v1/responses"): (OPENAI, responses),
    ("POST", "/v1/embeddings"): (OPENAI, embeddings),
    ("POST", "/v1/messages"): (ANTHROPIC, messages),
    ("POST", "/v1/messages/count_tokens"): (ANTHROPIC, count_tokens),
    ("GET", "/v1/models"): (None, _list_models),
}


class MockUpstreamApp:
    """The ASGI application: route, fault, authenticate, answer; nothing is written anywhere."""

    def __init__(self, config: MockConfig, id_salt: str = "") -> None:
        self.config = config
        self._ids = RequestIds(config.seed, id_salt)
        self._random_faults = RandomFaults(config.error_rate, config.seed)
        self._latency_s = config.latency_ms / 1000.0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self._http(scope, receive, send)
        elif scope["type"] == "lifespan":
            await _lifespan(receive, send)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        method: str = scope["method"]
        path: str = scope["path"]
        if path == "/health":
            await send_json(send, 200, _HEALTH_BODY, [])
            return
        if path.startswith(ADMIN_PREFIXES):
            return await serve_admin(self.config, self._random_faults, scope, receive, send)
        route = _ROUTES.get((method, path))
        if route is None and method == "GET" and path.startswith("/v1/models/"):
            route = (None, _get_model)
        body = await read_body(receive)
        exchange = Exchange.build(self.config, scope, body, self._ids.next_hex(), NO_FAULTS)
        provider = route[0] if route is not None else None
        if provider is None:
            provider = _provider_by_headers(exchange)
            if path.startswith("/v1/messages"):
                provider = ANTHROPIC
        if self._latency_s > 0:
            await asyncio.sleep(self._latency_s)
        try:
            exchange.faults = ForcedFaults.parse(exchange.headers.get(FAULT_HEADER))
            provider.authenticate(exchange)
            status = exchange.faults.status or self._random_faults.draw_status(
                provider.fault_statuses
            )
            if status is not None:
                raise provider.fault(status)
            if route is None:
                raise _not_found(provider, method, path)
            await route[1](exchange, send)
        except UnknownFault as error:
            await _send_error(send, provider, ApiError(400, str(error)), exchange)
        except ApiError as error:
            await _send_error(send, provider, error, exchange)


def _not_found(provider: Provider, method: str, path: str) -> ApiError:
    if provider is ANTHROPIC:
        return ApiError(404, "Not Found")
    return ApiError(404, f"Invalid URL ({method} {path})")


async def _send_error(send: Send, provider: Provider, error: ApiError, exchange: Exchange) -> None:
    body = provider.error_body(error, exchange)
    await send_json(send, error.status, body, provider.error_headers(error, exchange))


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


def create_app(config: MockConfig | None = None) -> MockUpstreamApp:
    """The ASGI app for ``config`` (defaults when None), to serve with any ASGI server."""
    return MockUpstreamApp(config or MockConfig())


def app_from_environment() -> MockUpstreamApp:
    """uvicorn factory for worker processes: the config comes from :data:`CONFIG_ENV`."""
    raw = os.environ.get(CONFIG_ENV)
    config = MockConfig.from_json(raw) if raw else MockConfig()
    hide_dropped_connection_errors()
    return MockUpstreamApp(config, id_salt=str(os.getpid()))


def uvicorn_config(
    app: MockUpstreamApp,
    *,
    host: str = "127.0.0.1",
    port: int = 9100,
    log_level: str = "info",
    log_config: dict[str, Any] | None = LOGGING_CONFIG,
    timeout_graceful_shutdown: int | None = None,
) -> uvicorn.Config:
    """The uvicorn settings the mock always runs with: uvloop, httptools, no access log."""
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        loop="uvloop",
        http="httptools",
        lifespan="off",
        access_log=False,
        log_level=log_level,
        log_config=log_config,
        timeout_graceful_shutdown=timeout_graceful_shutdown,
    )


def serve(
    config: MockConfig,
    host: str = "127.0.0.1",
    port: int = 9100,
    workers: int = 1,
    log_level: str = "info",
) -> None:
    """Serve until interrupted; with ``workers > 1`` each worker process has its own counters."""
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers=!r}")
    if workers == 1:
        server = uvicorn.Server(
            uvicorn_config(create_app(config), host=host, port=port, log_level=log_level)
        )
        hide_dropped_connection_errors()
        server.run()
        return
    os.environ[CONFIG_ENV] = config.to_json().decode()
    uvicorn.run(
        "tokenwage.mock_upstream.app:app_from_environment",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        loop="uvloop",
        http="httptools",
        lifespan="off",
        access_log=False,
        log_level=log_level,
    )
