"""The metered request path: parse, authorize, forward, relay, settle before the last byte.

A metered request, in order: read and parse the body once (bad JSON or no ``model``: a 400,
nothing authorized), route the model to a provider, ``Meter.authorize`` (one hold),
forward, and ``Meter.settle`` with the provider's usage before the client gets the last
byte; ``Meter.cancel`` if the provider was never reached. Whole (non-streaming) answers
carry what they cost in ``x-tokenwage-cost-usd``; a stream's headers leave before its cost
is known. :class:`MeteredPath` is the part of :class:`~tokenwage.gateway.app.GatewayApp`
that does it.
"""

from __future__ import annotations

import logging
from time import perf_counter

import aiohttp
import orjson

from tokenwage.core.usage import TokenUsage
from tokenwage.gateway import openai_api
from tokenwage.gateway.config import GatewayConfig, ProviderConfig, ProviderKind
from tokenwage.gateway.errors import (
    MODEL_NOT_SERVED,
    REQUEST_ID_HEADER,
    UPSTREAM_BROKEN,
    GatewayError,
    Receive,
    Scope,
    Send,
    StreamCut,
)
from tokenwage.gateway.estimate import (
    json_object,
    max_output_tokens,
    model_of,
    prompt_tokens,
    read_body,
)
from tokenwage.gateway.metrics import Call, GatewayMetrics
from tokenwage.gateway.ticket import Meter, RequestFacts
from tokenwage.gateway.upstream import (
    NEVER_SENT,
    UPSTREAM_ERRORS,
    Inbound,
    Upstream,
    failure_shape,
    is_event_stream,
    reply_headers,
)
from tokenwage.gateway.usage_tap import MeteredApi, StreamTap, body_usage

log = logging.getLogger("tokenwage.gateway.app")

COST_HEADER = b"x-tokenwage-cost-usd"
"""What a whole answer was charged, in US dollars as an exact decimal (``0.0012345``)."""


class MeteredPath:
    """The metered request path of the gateway app (which sets these attributes)."""

    config: GatewayConfig
    upstream: Upstream
    metrics: GatewayMetrics
    _providers: dict[tuple[ProviderKind, str], ProviderConfig | None]

    @property
    def meter(self) -> Meter:
        raise NotImplementedError

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
        call.charged = await self.meter.settle(
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
        if call.charged is not None:
            headers.append((COST_HEADER, call.charged.exact().encode()))
        headers.append((b"content-length", str(len(data)).encode()))
        call.responded = True
        call.status = response.status
        await send({"type": "http.response.start", "status": call.status, "headers": headers})
        await send({"type": "http.response.body", "body": data})
