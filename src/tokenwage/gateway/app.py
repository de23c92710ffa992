"""The gateway's ASGI app: a route table by exact path, the metered request path, the lifespan.

Raw ASGI on purpose (no framework, no middleware on forwarding routes): the gateway must add
well under a millisecond to each call. A metered request, in order: read and parse the body
once (bad JSON or no ``model``: a 400, nothing authorized), route the model to a provider,
``Meter.authorize`` (one hold), forward, and ``Meter.settle`` with the provider's usage before
the client gets the last byte; ``Meter.cancel`` if the provider was never reached.
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

import aiohttp
import orjson
import uvicorn

from tokenwage.core.errors import InvalidInput, PolicyDenied, TokenwageError, Unauthenticated
from tokenwage.core.imported import MAX_PUSH_RECORDS, from_wire
from tokenwage.core.usage import TokenUsage
from tokenwage.gateway import anthropic_api, openai_api
from tokenwage.gateway.anthropic_api import count_tokens
from tokenwage.gateway.config import GatewayConfig, ProviderConfig, ProviderKind
from tokenwage.gateway.errors import (
    METHOD_NOT_ALLOWED,
    MODEL_NOT_SERVED,
    NOT_FOUND,
    REQUEST_ID_HEADER,
    STREAM_CUT_FILTER,
    UPSTREAM_BROKEN,
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
    max_output_tokens,
    model_of,
    prompt_tokens,
    read_body,
)
from tokenwage.gateway.metrics import AccessLog, Call, GatewayMetrics
from tokenwage.gateway.ticket import Meter, RequestFacts
from tokenwage.gateway.upstream import (
    NEVER_SENT,
    UPSTREAM_ERRORS,
    Inbound,
    ModelCatalog,
    Upstream,
    failure_shape,
    is_event_stream,
    reply_headers,
)
from tokenwage.gateway.usage_tap import MeteredApi, StreamTap, body_usage
from tokenwage.importers.otlp_receiver import handle_otlp, response_content_type

log = logging.getLogger(__name__)

Handler = Callable[[Scope, Receive, Send], Awaitable[None]]
FreeWork = Callable[["GatewayApp", Call, Scope, Receive, Send], Awaitable[None]]
_HEALTH = orjson.dumps({"status": "ok"})


class OwnedMeter(Meter, Protocol):
    """A meter the app opened itself (``tokenwage serve``) and so must close."""

    async def aclose(self) -> None: ...


class GatewayApp:
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

    # -- the metered path ------------------------------------------------------------------
    async def _metered(self, api: MeteredApi, scope: Scope, receive: Receive, send: Send) -> None:
        await self._run(
            api.endpoint,
            api.kind,
            send,
            lambda call: self._metered_work(api, call, scope, receive, send),
        )

    async def _metered_work(
        self, api: MeteredApi, call: Call, scope: Scope, receive: Receive, send: Send
    ) -> None:
        inbound = self.upstream.inbound(scope["headers"])
        raw, body = json_object(await read_body(receive), inbound.content_encoding)
        model = call.model = model_of(body)
        provider = self.provider(api.kind, model)
        stream = api.tap is not None and body.get("stream") is True
        limit = 0 if api.limit_fields is None else max_output_tokens(body, api.limit_fields)
        facts = RequestFacts(
            call.request_id,
            api.endpoint,
            provider.price_provider,
            model,
            stream,
            prompt_tokens(body, raw),
            limit,
        )
        ticket = call.ticket = await self.meter.authorize(inbound.raw_key, facts)
        rewrite = False
        if ticket.model != model:  # downgraded
            body["model"] = ticket.model
            provider = self.provider(api.kind, ticket.model, fallback=provider)
            rewrite = True
        hide_usage = stream and api.asks_stream_usage and openai_api.ask_for_stream_usage(body)
        if rewrite or hide_usage:
            raw = orjson.dumps(body)
        response = await self.forward(call, provider, scope, inbound, raw)
        try:
            if stream and api.tap is not None and is_event_stream(response):
                await self._relay_stream(call, api.tap(hide_usage), response, send)
            else:
                await self._relay_whole(call, api, response, send)
        finally:
            response.release()

    def provider(
        self, kind: ProviderKind, model: str, fallback: ProviderConfig | None = None
    ) -> ProviderConfig:
        key = (kind, model)
        try:
            provider = self._providers[key]
        except KeyError:
            if len(self._providers) > 4096:
                self._providers.clear()
            provider = self._providers[key] = self.config.route(kind, model)
        if provider is not None:
            return provider
        if fallback is not None:
            return fallback
        raise GatewayError(
            MODEL_NOT_SERVED,
            f"The model `{model}` is not served by this gateway: no {kind} provider is "
            "configured for it (see the gateway config's [providers] models patterns).",
            param="model",
        )

    async def forward(
        self, call: Call, provider: ProviderConfig, scope: Scope, inbound: Inbound, raw: bytes
    ) -> aiohttp.ClientResponse:
        call.upstream_started = perf_counter()
        try:
            return await self.upstream.send(
                provider,
                scope["method"],
                scope["path"],
                scope["query_string"],
                inbound,
                call.request_id,
                raw,
            )
        except UPSTREAM_ERRORS as exc:
            call.upstream_done = perf_counter()
            shape = failure_shape(exc)
            self.metrics.upstream_error(call.endpoint, shape.openai_code or "unreachable")
            if call.ticket is not None:
                if isinstance(exc, NEVER_SENT):  # the request never reached the provider
                    await self._cancel(call, shape.status)
                else:  # it may have been received: record it, charge nothing
                    await self._settle(call, None, status=shape.status, estimated=False)
            log.warning("request %s: provider %r failed: %r", call.request_id, provider.name, exc)
            raise GatewayError(  # the detail (addresses) stays in our log
                shape, f"provider {provider.name!r} failed: {type(exc).__name__}"
            ) from None

    async def _relay_whole(
        self, call: Call, api: MeteredApi, response: aiohttp.ClientResponse, send: Send
    ) -> None:
        assert call.ticket is not None
        facts = call.ticket.facts
        status = response.status
        try:
            data = await response.read()
        except UPSTREAM_ERRORS as exc:  # it answered, then broke off: it may bill us
            call.upstream_done = perf_counter()
            self.metrics.upstream_error(call.endpoint, "cut")
            seen = TokenUsage(input_tokens=facts.prompt_tokens_estimate)
            await self._settle(call, seen, status=UPSTREAM_BROKEN.status, estimated=True)
            raise GatewayError(
                UPSTREAM_BROKEN, f"the provider broke off its answer: {type(exc).__name__}"
            ) from None
        call.upstream_done = perf_counter()
        if status >= 500:
            self.metrics.upstream_error(call.endpoint, f"http_{status}")
        usage, estimated = body_usage(api, data, status, facts)
        await self._settle(call, usage, status=status, estimated=estimated, response=response)
        await self._send_whole(call, response, data, send)

    async def _relay_stream(
        self, call: Call, tap: StreamTap, response: aiohttp.ClientResponse, send: Send
    ) -> None:
        """Pass events through as they come; hold the terminal one until settled."""
        assert call.ticket is not None
        headers = reply_headers(response)
        headers.append((REQUEST_ID_HEADER, call.request_id.encode()))
        call.responded = True
        call.status = response.status
        await send({"type": "http.response.start", "status": response.status, "headers": headers})
        try:
            await tap.pump(response.content, send)
        except UPSTREAM_ERRORS:
            call.cut = True
            self.metrics.upstream_error(call.endpoint, "cut")
        call.upstream_done = perf_counter()
        tail = tap.finish()
        usage = tap.usage
        estimated = usage is None
        if usage is None:
            usage = tap.estimated_usage(call.ticket.facts.prompt_tokens_estimate)
        try:
            await self._settle(
                call, usage, status=response.status, estimated=estimated, response=response
            )
        except Exception as exc:
            log.exception("settling %s failed; its stream is cut short", call.request_id)
            call.error = type(exc).__name__
            raise StreamCut(call.request_id) from exc
        if call.cut:
            if tail:
                await send({"type": "http.response.body", "body": tail, "more_body": True})
            raise StreamCut(call.request_id)
        await send({"type": "http.response.body", "body": tail, "more_body": False})

    async def _settle(
        self,
        call: Call,
        usage: TokenUsage | None,
        *,
        status: int,
        estimated: bool,
        response: aiohttp.ClientResponse | None = None,
    ) -> None:
        assert call.ticket is not None
        call.closed = True
        call.usage, call.estimated = usage, estimated
        upstream_id = None
        if response is not None:  # Anthropic: request-id; OpenAI: x-request-id
            upstream_id = response.headers.get("request-id") or response.headers.get("x-request-id")
        await self.meter.settle(
            call.ticket, usage, status=status, estimated=estimated, upstream_request_id=upstream_id
        )

    async def _cancel(self, call: Call, status: int) -> None:
        assert call.ticket is not None
        call.closed = True
        await self.meter.cancel(call.ticket, status=status)

    async def _abandon(self, call: Call) -> None:
        """Close a ticket whose request died between authorize and settle (bug, shutdown)."""
        assert call.ticket is not None
        try:
            if call.upstream_started:
                estimate = TokenUsage(input_tokens=call.ticket.facts.prompt_tokens_estimate)
                await self._settle(call, estimate, status=499, estimated=True)
            else:
                await self._cancel(call, 499)
        except Exception:
            log.exception("closing the ticket of abandoned request %s failed", call.request_id)

    # -- free endpoints ----------------------------------------------------------------------
    async def reply(self, call: Call, response: aiohttp.ClientResponse, send: Send) -> None:
        """Pass the provider's whole answer on, unmetered (``count_tokens``)."""
        async with response:
            data = await response.read()
        call.upstream_done = perf_counter()
        await self._send_whole(call, response, data, send)

    async def _send_whole(
        self, call: Call, response: aiohttp.ClientResponse, data: bytes, send: Send
    ) -> None:
        headers = reply_headers(response)
        headers.append((REQUEST_ID_HEADER, call.request_id.encode()))
        headers.append((b"content-length", str(len(data)).encode()))
        call.responded = True
        call.status = response.status
        await send({"type": "http.response.start", "status": call.status, "headers": headers})
        await send({"type": "http.response.body", "body": data})

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
