"""Outbound: the one HTTP client session the gateway calls providers with.

A single aiohttp session per worker with a keep-alive pool (no per-request DNS lookup or TLS
handshake once warm), no cookie jar (a provider's cookies must never pass between people),
and redirects off. Requests carry only the client headers a provider needs
(:data:`FORWARDED_HEADERS`); the client's key is replaced by the organisation's key of the
provider: ``Authorization: Bearer`` for the openai kind, ``x-api-key`` for anthropic.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson
from yarl import URL

from tokenwage.gateway.config import GatewayConfig, ProviderConfig, ProviderKind
from tokenwage.gateway.errors import (
    REQUEST_ID_HEADER,
    UPSTREAM_TIMEOUT,
    UPSTREAM_UNREACHABLE,
    ErrorShape,
    GatewayError,
)

log = logging.getLogger(__name__)

FORWARDED_HEADERS = frozenset(
    {
        b"content-type",
        b"accept",
        b"user-agent",
        b"anthropic-version",
        b"anthropic-beta",
        b"openai-beta",
        b"idempotency-key",
        b"x-app",  # Claude Code
        b"originator",  # Codex CLI
        b"session_id",
        b"conversation_id",
    }
)
"""Client headers passed to the provider; everything else (the client's key, cookies,
``openai-organization``/``openai-project``, hop-by-hop headers) stays here."""
FORWARDED_PREFIXES = (b"x-stainless-",)
MOCK_FAULT_HEADER = b"x-mock-fault"
"""The simulated provider's fault switch; tests add it with ``Upstream(extra_headers=...)``."""

_DROPPED_REPLY_HEADERS = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-authenticate",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
        b"content-length",  # set again for what the client gets
        b"content-encoding",  # aiohttp decompresses
        b"set-cookie",
        b"server",
        b"date",
        b"alt-svc",
        b"via",
        b"openai-organization",
        b"openai-project",
        b"anthropic-organization-id",
    }
)
DEFAULT_ANTHROPIC_VERSION = "2023-06-01"
UPSTREAM_ERRORS: tuple[type[BaseException], ...] = (aiohttp.ClientError, OSError, TimeoutError)
"""What a failed call to a provider raises (aiohttp's timeouts are ``TimeoutError``s)."""
NEVER_SENT: tuple[type[BaseException], ...] = (
    aiohttp.ClientConnectorError,
    aiohttp.ConnectionTimeoutError,
)
"""Failures before the request reached the provider (nothing to record, release the hold)."""

Header = tuple[bytes, bytes]


@dataclass(slots=True)
class Inbound:
    """What the gateway keeps of a client's request headers, read in one pass."""

    raw_key: str | None
    headers: list[tuple[str, str]]  # to forward
    content_encoding: str
    anthropic_shaped: bool  # x-api-key or anthropic-version: an Anthropic client

    def has(self, name: str) -> bool:
        return any(key == name for key, _ in self.headers)


class Upstream:
    """The client session, opened in the app's lifespan (it needs the running event loop)."""

    def __init__(
        self,
        *,
        max_connections: int = 1024,
        connect_timeout_s: float = 30.0,
        read_timeout_s: float = 600.0,
        keepalive_timeout_s: float = 30.0,
        extra_headers: Iterable[bytes] = (),
        trust_env: bool = False,
    ) -> None:
        self._max_connections = max_connections
        self._keepalive_timeout_s = keepalive_timeout_s
        self._timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=connect_timeout_s, sock_read=read_timeout_s
        )
        self._forwarded = FORWARDED_HEADERS | frozenset(h.lower() for h in extra_headers)
        self._trust_env = trust_env
        self._session: aiohttp.ClientSession | None = None
        self._urls: dict[tuple[str, str], URL] = {}
        self._auth: dict[str, tuple[str, str]] = {}

    async def open(self) -> None:
        if self._session is not None:
            return
        connector = aiohttp.TCPConnector(
            limit=self._max_connections,
            ttl_dns_cache=300,
            keepalive_timeout=self._keepalive_timeout_s,
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            timeout=self._timeout,
            cookie_jar=aiohttp.DummyCookieJar(),
            trust_env=self._trust_env,
            auto_decompress=True,
        )

    async def aclose(self) -> None:
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()

    def inbound(self, raw_headers: Iterable[Header]) -> Inbound:
        """The caller's key and the headers to forward, from ASGI ``scope["headers"]``."""
        bearer: str | None = None
        api_key: str | None = None
        encoding = ""
        anthropic = False
        forwarded: list[tuple[str, str]] = []
        allowed = self._forwarded
        for name, value in raw_headers:
            if name in allowed or name.startswith(FORWARDED_PREFIXES):
                forwarded.append((name.decode("latin-1"), value.decode("latin-1")))
                if name == b"anthropic-version":
                    anthropic = True
            elif name == b"authorization":
                scheme, _, token = value.decode("latin-1").partition(" ")
                if scheme.lower() == "bearer" and token.strip():
                    bearer = token.strip()
            elif name == b"x-api-key":
                api_key = value.decode("latin-1").strip() or None
                anthropic = True
            elif name == b"content-encoding":
                encoding = value.decode("latin-1").strip().lower()
        return Inbound(api_key or bearer, forwarded, encoding, anthropic)

    async def send(
        self,
        provider: ProviderConfig,
        method: str,
        path: str,
        query: bytes,
        inbound: Inbound,
        request_id: str,
        body: bytes | None,
    ) -> aiohttp.ClientResponse:
        """Start the call; the caller reads (or streams) the body and must release it."""
        if self._session is None:
            raise RuntimeError("Upstream.open() was not called (the app's lifespan is off?)")
        headers = list(inbound.headers)
        headers.append(self._provider_auth(provider))
        headers.append((REQUEST_ID_HEADER.decode(), request_id))
        if provider.kind == "anthropic" and not inbound.has("anthropic-version"):
            headers.append(("anthropic-version", DEFAULT_ANTHROPIC_VERSION))
        return await self._session.request(
            method,
            self._url(provider.base_url, path, query),
            data=body,
            headers=headers,
            allow_redirects=False,
        )

    def _url(self, base_url: str, path: str, query: bytes) -> URL:
        if query:
            return URL(f"{base_url}{path}?{query.decode('latin-1')}", encoded=True)
        url = self._urls.get((base_url, path))
        if url is None:
            url = self._urls[(base_url, path)] = URL(base_url + path, encoded=True)
        return url

    def _provider_auth(self, provider: ProviderConfig) -> tuple[str, str]:
        auth = self._auth.get(provider.name)
        if auth is None:
            key = provider.api_key.get_secret_value()
            if provider.kind == "anthropic":
                auth = ("x-api-key", key)
            else:
                auth = ("Authorization", f"Bearer {key}")
            self._auth[provider.name] = auth
        return auth


def reply_headers(response: aiohttp.ClientResponse) -> list[Header]:
    """The provider's response headers a client may see (ASGI form: lower-case names)."""
    kept: list[Header] = []
    for name, value in response.raw_headers:
        lower = name.lower()
        if lower not in _DROPPED_REPLY_HEADERS:
            kept.append((lower, value))
    return kept


def is_event_stream(response: aiohttp.ClientResponse) -> bool:
    return response.status < 300 and response.content_type == "text/event-stream"


def failure_shape(exc: BaseException) -> ErrorShape:
    """How a failed provider call looks to the client: a timeout (504) or unreachable (502)."""
    if isinstance(exc, TimeoutError):
        return UPSTREAM_TIMEOUT
    return UPSTREAM_UNREACHABLE


class ModelCatalog:
    """What the providers of each kind serve (``GET /v1/models``), cached for ``ttl_s``.

    One refresh at a time per kind; a provider that fails is left out and the list is then not
    cached, so the next request tries again.
    """

    def __init__(self, upstream: Upstream, config: GatewayConfig, *, ttl_s: float = 60.0) -> None:
        self._upstream = upstream
        self._config = config
        self._ttl_s = ttl_s
        self._cache: dict[ProviderKind, tuple[float, list[dict[str, Any]]]] = {}
        self._locks: dict[ProviderKind, asyncio.Lock] = {}

    async def entries(
        self, kind: ProviderKind, inbound: Inbound, request_id: str
    ) -> list[dict[str, Any]]:
        cached = self._cache.get(kind)
        if cached is not None and time.monotonic() - cached[0] < self._ttl_s:
            return cached[1]
        lock = self._locks.setdefault(kind, asyncio.Lock())
        async with lock:
            cached = self._cache.get(kind)
            if cached is not None and time.monotonic() - cached[0] < self._ttl_s:
                return cached[1]
            return await self._refresh(kind, inbound, request_id)

    async def _refresh(
        self, kind: ProviderKind, inbound: Inbound, request_id: str
    ) -> list[dict[str, Any]]:
        providers = [p for p in self._config.providers if p.kind == kind]
        query = b"limit=1000" if kind == "anthropic" else b""
        merged: dict[str, dict[str, Any]] = {}
        failures = 0
        for provider in providers:
            try:
                response = await self._upstream.send(
                    provider, "GET", "/v1/models", query, inbound, request_id, None
                )
                async with response:
                    data = await response.read()
                    status = response.status
            except UPSTREAM_ERRORS as exc:
                log.warning("listing models of provider %r failed: %r", provider.name, exc)
                failures += 1
                continue
            listing = _model_list(data) if status == 200 else None
            if listing is None:
                log.warning("provider %r answered GET /v1/models with %d", provider.name, status)
                failures += 1
                continue
            for entry in listing:
                merged.setdefault(entry["id"], entry)
        if providers and failures == len(providers):
            raise GatewayError(UPSTREAM_UNREACHABLE, f"no {kind} provider could list its models")
        entries = list(merged.values())
        if not failures:
            self._cache[kind] = (time.monotonic(), entries)
        return entries


def _model_list(data: bytes) -> list[dict[str, Any]] | None:
    try:
        listing = orjson.loads(data)
    except orjson.JSONDecodeError:
        return None
    entries = listing.get("data") if isinstance(listing, dict) else None
    if not isinstance(entries, list):
        return None
    return [e for e in entries if isinstance(e, dict) and isinstance(e.get("id"), str)]
