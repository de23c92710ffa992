"""Run the gateway on loopback for the length of a ``with`` block (for tests and benchmarks).

::

    with start_mock_upstream() as upstream_url, start_gateway(config, meter) as base_url:
        openai.OpenAI(base_url=f"{base_url}/v1", api_key=virtual_key)

Real uvicorn (uvloop + httptools, lifespan on) in a background thread, on a port the kernel
picks. The meter's coroutines run on that thread's event loop. The upstream client forwards
the mock provider's ``x-mock-fault`` header, so tests can force faults through the gateway.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial

from tokenwage.gateway.app import GatewayApp, uvicorn_config
from tokenwage.gateway.config import GatewayConfig
from tokenwage.gateway.metrics import AccessLog
from tokenwage.gateway.ticket import Meter
from tokenwage.gateway.upstream import MOCK_FAULT_HEADER, Upstream
from tokenwage.serving import serve_in_thread


@contextmanager
def start_gateway(
    config: GatewayConfig,
    meter: Meter,
    *,
    host: str = "127.0.0.1",
    upstream: Upstream | None = None,
    access_log: AccessLog | None = None,
) -> Iterator[str]:
    """Yield the base URL (``http://127.0.0.1:PORT``, no ``/v1``) of a running gateway."""
    app = GatewayApp(
        config,
        meter,
        upstream=upstream or Upstream(extra_headers=[MOCK_FAULT_HEADER]),
        access_log=access_log,
    )
    with serve_in_thread(partial(uvicorn_config, app), "gateway", host) as url:
        yield url
