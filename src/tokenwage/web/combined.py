"""One port for the gateway and the dashboard: a dispatcher in front of both.

Paths under ``/v1/`` and exactly ``/metrics`` and ``/health`` go to the gateway untouched
(one string check; no middleware on its hot path); everything else goes to the web app.
The lifespan starts the gateway, then the web app, and stops them in reverse order.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import AsyncExitStack
from typing import TYPE_CHECKING

from fastapi import FastAPI
from starlette.types import Receive, Scope, Send

if TYPE_CHECKING:
    from tokenwage.gateway.app import GatewayApp

log = logging.getLogger(__name__)

GATEWAY_PREFIX = "/v1/"
GATEWAY_PATHS = frozenset({"/v1", "/metrics", "/health"})


def is_gateway_path(path: str) -> bool:
    return path.startswith(GATEWAY_PREFIX) or path in GATEWAY_PATHS


class CombinedApp:
    """``gateway`` for the gateway's paths, ``web`` for the rest (see the module doc)."""

    def __init__(
        self, gateway: GatewayApp, web: FastAPI, on_started: Callable[[], None] | None = None
    ) -> None:
        self.gateway = gateway
        self.web = web
        self.on_started = on_started  # called once both have started

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif scope["type"] == "http" and is_gateway_path(scope["path"]):
            await self.gateway(scope, receive, send)
        else:
            await self.web(scope, receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        stack = AsyncExitStack()
        message = await receive()
        assert message["type"] == "lifespan.startup"
        try:
            await self.gateway.startup()
            stack.push_async_callback(self.gateway.shutdown)
            await stack.enter_async_context(self.web.router.lifespan_context(self.web))
        except Exception as exc:
            log.exception("start-up failed")
            await stack.aclose()
            await send({"type": "lifespan.startup.failed", "message": repr(exc)})
            return
        if self.on_started is not None:
            self.on_started()
        await send({"type": "lifespan.startup.complete"})
        message = await receive()
        try:
            await stack.aclose()
        finally:
            await send({"type": "lifespan.shutdown.complete"})
