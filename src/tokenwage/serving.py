"""Run an ASGI app on loopback in a background thread for the length of a ``with`` block.

Shared by the gateway's and the simulated provider's test fixtures: real uvicorn, a port the
kernel picks (so tests run in parallel without clashing), a bounded start-up wait, and a
shutdown that cuts streams still open after a short grace period, so a test that forgets to
close a client cannot hang the suite.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import uvicorn

STARTUP_TIMEOUT_S = 10.0
SHUTDOWN_TIMEOUT_S = 10.0
GRACEFUL_SHUTDOWN_S = 2

# (host, port, options for uvicorn.Config) -> the server's config
MakeConfig = Callable[..., uvicorn.Config]


@contextmanager
def serve_in_thread(make_config: MakeConfig, name: str, host: str = "127.0.0.1") -> Iterator[str]:
    """Yield ``http://HOST:PORT`` while ``make_config(host=, port=, ...)``'s app serves."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, 0))
        port = sock.getsockname()[1]
        server = uvicorn.Server(
            make_config(
                host=host,
                port=port,
                log_level="warning",
                log_config=None,
                timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
            )
        )
        thread = threading.Thread(
            target=server.run, kwargs={"sockets": [sock]}, name=f"{name}:{port}"
        )
        thread.start()
        try:
            _wait_started(server, thread, name)
            yield f"http://{host}:{port}"
        finally:
            server.should_exit = True
            thread.join(SHUTDOWN_TIMEOUT_S)
            if thread.is_alive():
                server.force_exit = True
                thread.join(SHUTDOWN_TIMEOUT_S)
    finally:
        sock.close()


def _wait_started(server: uvicorn.Server, thread: threading.Thread, name: str) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError(f"{name} failed to start; see the log above")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{name} did not start within {STARTUP_TIMEOUT_S} s")
        time.sleep(0.005)
