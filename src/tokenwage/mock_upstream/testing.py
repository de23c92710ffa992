"""Run the simulated provider on loopback for the length of a ``with`` block (for tests).

::

    with start_mock_upstream(MockConfig(seed=7)) as base_url:
        openai.OpenAI(base_url=f"{base_url}/v1", api_key="sk-test")
        anthropic.Anthropic(base_url=base_url, api_key="sk-ant-test")

The server is real uvicorn (uvloop + httptools) in a background thread, on a port the kernel
picks, so tests run in parallel without clashing.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn

from tokenwage.mock_upstream.app import create_app, uvicorn_config
from tokenwage.mock_upstream.asgi import hide_dropped_connection_errors
from tokenwage.mock_upstream.config import MockConfig

STARTUP_TIMEOUT_S = 10.0
SHUTDOWN_TIMEOUT_S = 10.0
_GRACEFUL_SHUTDOWN_S = 2


@contextmanager
def start_mock_upstream(config: MockConfig | None = None, host: str = "127.0.0.1") -> Iterator[str]:
    """Yield the base URL (``http://127.0.0.1:PORT``, no ``/v1``) of a running mock provider.

    Streams still open when the block ends are cut after a short grace period, so a test that
    forgets to close a client cannot hang the suite.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, 0))
        port = sock.getsockname()[1]
        app = create_app(config)
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
        hide_dropped_connection_errors()
        thread = threading.Thread(
            target=server.run, kwargs={"sockets": [sock]}, name=f"mock-upstream:{port}"
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
            raise RuntimeError("mock-upstream failed to start; see the uvicorn log above")
        if time.monotonic() > deadline:
            raise RuntimeError(f"mock-upstream did not start within {STARTUP_TIMEOUT_S} s")
        time.sleep(0.005)
