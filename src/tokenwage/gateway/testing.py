"""Run the gateway on loopback for the length of a ``with`` block (for tests and benchmarks).

::

    with start_mock_upstream() as upstream_url, start_gateway(config, meter) as base_url:
        openai.OpenAI(base_url=f"{base_url}/v1", api_key=virtual_key)

Real uvicorn (uvloop + httptools, lifespan on) in a background thread, on a port the kernel
picks. The meter's coroutines run on that thread's event loop. The upstream client forwards
the mock provider's ``x-mock-fault`` header, so tests can force faults through the gateway.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn

from tokenwage.gateway.app import GatewayApp, uvicorn_config
from tokenwage.gateway.config import GatewayConfig
from tokenwage.gateway.metrics import AccessLog
from tokenwage.gateway.ticket import Meter
from tokenwage.gateway.upstream import MOCK_FAULT_HEADER, Upstream

STARTUP_TIMEOUT_S = 10.0
SHUTDOWN_TIMEOUT_S = 10.0
_GRACEFUL_SHUTDOWN_S = 2


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
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, 0))
        port = sock.getsockname()[1]
        server = uvicorn.Server(
            uvicorn_config(
                app,
                host=host,
                port=port,
                log_level="warning",
                log_config=None,
                timeout_graceful_shutdown=_GRACEFUL_SHUTDOWN_S,
            )
        )
        thread = threading.Thread(
            target=server.run, kwargs={"sockets": [sock]}, name=f"gateway:{port}"
        )
        thread.start()
        try:
            _wait_started(server, thread)
            yield f"http://{host}:{port}"
        finally:
            server.should_exit = True
            thread.join(SHUTDOWN_TIMEOUT_S)
            if thread.is_alive():
                server.force_exit = True
                thread.join(SHUTDOWN_TIMEOUT_S)
    finally:
        sock.close()


def _wait_started(server: uvicorn.Server, thread: threading.Thread) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError("the gateway failed to start; see the log above")
        if time.monotonic() > deadline:
            raise RuntimeError(f"the gateway did not start within {STARTUP_TIMEOUT_S} s")
        time.sleep(0.005)
