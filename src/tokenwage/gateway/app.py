"""The gateway's ASGI app: a route table by exact path, the free endpoints, the lifespan.

Raw ASGI on purpose (no framework, no middleware on forwarding routes): the gateway must add
well under a millisecond to each call. The metered request path is in ``metered.py``.
``GET /v1/models`` and ``count_tokens`` only check the key. ``/metrics`` and ``/health`` are
open: bind the gateway to a private interface or keep ``/metrics`` behind the ingress.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from functools import partial
from time import perf_counter
from typing import Any, Protocol

import orjson
import uvicorn

from tokenwage.core.errors import InvalidInput, PolicyDenied, TokenwageError, Unauthenticated
from tokenwage.core.imported import MAX_PUSH_RECORDS, from_wire
from tokenwage.gateway import anthropic_api, openai_api
from tokenwage.gateway.anthropic_api import count_tokens
from tokenwage.gateway.config import GatewayConfig, ProviderConfig, ProviderKind
from tokenwage.gateway.errors import (
    METHOD_NOT_ALLOWED,
    NOT_FOUND,
    STREAM_CUT_FILTER,
    GatewayError,
    Receive,
    Scope,
    Send,
    StreamCut,
    new_request_id,
    send_error,
    send_json,
)
from tokenwage.gateway.estimate import (
    ClientGone,
    json_object,
    read_body,
)
from tokenwage.gateway.metered import MeteredPath
from tokenwage.gateway.metrics import AccessLog, Call, GatewayMetrics
from tokenwage.gateway.ticket import Meter
from tokenwage.gateway.upstream import (
    ModelCatalog,
    Upstream,
)
from tokenwage.gateway.usage_tap import MeteredApi
from tokenwage.importers.otlp_receiver import handle_otlp, response_content_type

log = logging.getLogger(__name__)

Handler = Callable[[Scope, Receive, Send], Awaitable[None]]
FreeWork = Callable[["GatewayApp", Call, Scope, Receive, Send], Awaitable[None]]
_HEALTH = orjson.dumps({"status": "ok"})


class OwnedMeter(Meter, Protocol):
    """A meter the app opened itself (``tokenwage serve``) and so must close."""

    async def aclose(self) -> None: ...


class GatewayApp(MeteredPath):
    """The ASGI application. ``meter`` may be None when ``open_meter`` opens one at start-up."""

    def __init__(
        self,
        config: GatewayConfig,
        meter: Meter | None,
        *,
        upstream: Upstream | None = None,
        metrics: GatewayMetrics | None = None,
        access_log: AccessLog | None = None,
        open_meter: Callable[[], Awaitable[OwnedMeter]] | None = None,
    ) -> None:
        if meter is None and open_meter is None:
            raise ValueError("GatewayApp needs a meter or an open_meter callable")
        self.config = config
        self._meter = meter
        self._open_meter = open_meter
        self._owned_meter: OwnedMeter | None = None
        self.upstream = upstream or Upstream()
        self.metrics = metrics or GatewayMetrics()
        self.access_log = access_log or AccessLog(None)
        self.catalog = ModelCatalog(self.upstream, config)
        self._providers: dict[tuple[ProviderKind, str], ProviderConfig | None] = {}
        self._routes: dict[str, tuple[str, Handler]] = {
            api.path: ("POST", partial(self._metered, api))
            for api in (*openai_api.METERED, *anthropic_api.METERED)
        }
        self._routes[anthropic_api.COUNT_TOKENS_PATH] = (
            "POST",
            partial(self._free, anthropic_api.COUNT_TOKENS_ENDPOINT, "anthropic", count_tokens),
        )
        self._models = partial(self._free, "models", None, openai_api.list_models)
        self._routes["/v1/models"] = ("GET", self._models)
        self._routes["/metrics"] = ("GET", self._metrics)
        self._routes["/health"] = ("GET", self._health)
        for otlp_path in ("/v1/logs", "/v1/metrics"):  # Claude Code telemetry (OTLP/HTTP)
            self._routes[otlp_path] = ("POST", self._otlp)
        self._routes["/v1/usage"] = ("POST", self._push)  # `tokenwage push`

    @property
    def meter(self) -> Meter:
        if self._meter is None:
            raise RuntimeError("the meter is opened in the lifespan, which has not run")
        return self._meter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            route = self._routes.get(scope["path"])
            if route is not None and route[0] == scope["method"]:
                await route[1](scope, receive, send)
            elif scope["path"].startswith("/v1/models/") and scope["method"] == "GET":
                await self._models(scope, receive, send)
            else:
                await self._no_route(scope, send, allowed=route[0] if route else None)
        elif scope["type"] == "lifespan":
            await self._lifespan(receive, send)

    # -- lifespan ---------------------------------------------------------------------------
    async def startup(self) -> None:
        logging.getLogger("uvicorn.error").addFilter(STREAM_CUT_FILTER)
        await self.upstream.open()
        if self._meter is None and self._open_meter is not None:
            self._owned_meter = await self._open_meter()
            self._meter = self._owned_meter
        if self._meter is not None:
            self.metrics.journal = self._meter.journal_status
        self.access_log.start()
        self.metrics.start()

    async def shutdown(self) -> None:
        await self.metrics.stop()
        await self.access_log.stop()
        await self.upstream.aclose()
        if self._owned_meter is not None:
            owned, self._owned_meter = self._owned_meter, None
            self._meter = None
            await owned.aclose()

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.startup()
                except Exception as exc:
                    log.exception("gateway start-up failed")
                    await send({"type": "lifespan.startup.failed", "message": repr(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return

    # -- one request, whatever its endpoint ---------------------------------------------------
    async def _run(
        self,
        endpoint: str,
        kind: ProviderKind,
        send: Send,
        work: Callable[[Call], Awaitable[None]],
    ) -> None:
        call = Call(endpoint, new_request_id(), perf_counter())
        try:
            await work(call)
        except ClientGone:
            call.status = 499
        except StreamCut:
            raise
        except Exception as exc:
            if call.responded:
                raise
            call.error = type(exc).__name__
            if isinstance(exc, PolicyDenied):
                self.metrics.rejection(endpoint, call.error)
            elif not isinstance(exc, (TokenwageError, GatewayError)):
                log.exception("request %s (%s) failed", call.request_id, endpoint)
            call.status = await send_error(send, kind, exc, call.request_id)
        finally:
            if call.ticket is not None and not call.closed:
                await asyncio.shield(self._abandon(call))
            call.finish(self.metrics, self.access_log)

    # -- the metered path (metered.py) ------------------------------------------------------
    async def _metered(self, api: MeteredApi, scope: Scope, receive: Receive, send: Send) -> None:
        await self._run(
            api.endpoint,
            api.kind,
            send,
            lambda call: self._metered_work(api, call, scope, receive, send),
        )

    # -- free endpoints ----------------------------------------------------------------------
    async def _free(
        self,
        endpoint: str,
        kind: ProviderKind | None,
        work: FreeWork,
        scope: Scope,
        receive: Receive,
        send: Send,
    ) -> None:
        if kind is None:  # GET /v1/models: the dialect of whoever asks
            kind = (
                "anthropic"
                if self.upstream.inbound(scope["headers"]).anthropic_shaped
                else "openai"
            )
            endpoint = f"{kind}.{endpoint}"
        await self._run(endpoint, kind, send, lambda call: work(self, call, scope, receive, send))

    async def _metrics(self, scope: Scope, receive: Receive, send: Send) -> None:
        body, content_type = self.metrics.exposition()
        headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def _otlp(self, scope: Scope, receive: Receive, send: Send) -> None:
        """OTLP/HTTP export from laptops (``OTEL_EXPORTER_OTLP_ENDPOINT`` = this server and
        ``OTEL_EXPORTER_OTLP_HEADERS=Authorization=Bearer <tokenwage key>``)."""
        inbound = self.upstream.inbound(scope["headers"])
        content_type = dict(scope["headers"]).get(b"content-type", b"").decode("latin-1")
        try:
            key = await self.meter.authenticate(inbound.raw_key)
        except Unauthenticated as exc:
            await send_error(send, "openai", exc, new_request_id())
            return
        body = await read_body(receive)
        status, answer = await handle_otlp(
            scope["path"],
            body,
            content_type,
            partial(self.meter.book_imported, key),
            content_encoding=inbound.content_encoding or None,
        )
        headers = [
            (b"content-type", response_content_type(content_type).encode()),
            (b"content-length", str(len(answer)).encode()),
        ]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": answer})

    async def _push(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Agent-log records a laptop sends with ``tokenwage push`` and its owner's key."""
        inbound = self.upstream.inbound(scope["headers"])
        try:
            key = await self.meter.authenticate(inbound.raw_key)
            _, body = json_object(await read_body(receive), inbound.content_encoding)
            items = body.get("records")
            if not isinstance(items, list) or len(items) > MAX_PUSH_RECORDS:
                raise InvalidInput(f"records must be a list of at most {MAX_PUSH_RECORDS} records")
            records = [from_wire(item, f"records[{i}]") for i, item in enumerate(items)]
            new = await self.meter.book_imported(key, records) if records else 0
        except (TokenwageError, GatewayError) as exc:
            await send_error(send, "openai", exc, new_request_id())
            return
        answer = orjson.dumps({"received": len(records), "new": new})
        await send_json(send, 200, answer, [])

    async def _health(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send_json(send, 200, _HEALTH, [])

    async def _no_route(self, scope: Scope, send: Send, allowed: str | None) -> None:
        anthropic = self.upstream.inbound(scope["headers"]).anthropic_shaped
        kind: ProviderKind = "anthropic" if anthropic else "openai"
        where = f"{scope['method']} {scope['path']}"
        if allowed is not None:
            exc = GatewayError(METHOD_NOT_ALLOWED, f"{where}: use {allowed}")
        else:
            exc = GatewayError(NOT_FOUND, f"Invalid URL ({where}): the gateway does not serve it")
        await send_error(send, kind, exc, new_request_id())


def create_app(
    config: GatewayConfig,
    meter: Meter,
    *,
    upstream: Upstream | None = None,
    access_log: AccessLog | None = None,
) -> GatewayApp:
    """The ASGI app; its lifespan opens and closes ``upstream`` (default: a new one)."""
    return GatewayApp(config, meter, upstream=upstream, access_log=access_log)


UVICORN_OPTIONS: dict[str, Any] = {
    "loop": "uvloop",
    "http": "httptools",
    "lifespan": "on",
    "access_log": False,  # the app keeps its own, buffered
    "server_header": False,
}
"""uvicorn settings the gateway always runs with (``tokenwage serve`` and the tests)."""


def uvicorn_config(app: GatewayApp, **options: Any) -> uvicorn.Config:
    return uvicorn.Config(app, **UVICORN_OPTIONS, **options)
