"""tokenwage's own servers (gateway, simulated provider) as child processes on loopback.

Shared by the demo, the process-level tests and the benchmarks: start a ``tokenwage``
command in its own session, wait until its port answers, and stop the whole process group
(every uvicorn worker) afterwards, politely first.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from tokenwage.core.errors import StoreUnavailable

STARTUP_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 15.0


def tokenwage_exe() -> str:
    """The ``tokenwage`` console script of the running interpreter's environment."""
    return str(Path(sys.executable).parent / "tokenwage")


def free_port(preferred: int = 0) -> int:
    """``preferred`` if it is free on 127.0.0.1, else one the kernel picks."""
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", preferred))
        except OSError:
            s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def provider_env(upstream: str, org_key: str) -> dict[str, str]:
    """The environment that routes both provider APIs to ``upstream`` with ``org_key``."""
    return {
        **os.environ,
        "TOKENWAGE_OPENAI_BASE_URL": upstream,
        "TOKENWAGE_OPENAI_API_KEY": org_key,
        "TOKENWAGE_ANTHROPIC_BASE_URL": upstream,
        "TOKENWAGE_ANTHROPIC_API_KEY": org_key,
    }


@contextmanager
def child_process(
    args: Sequence[str],
    *,
    port: int,
    what: str,
    env: dict[str, str] | None = None,
    stderr: IO[bytes] | int | None = subprocess.DEVNULL,
) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``tokenwage ARGS`` until the block ends; its port answers when the block starts."""
    proc = subprocess.Popen(
        [tokenwage_exe(), *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=stderr,
        start_new_session=True,  # its own process group: every worker is stopped with it
    )
    try:
        _wait_for_port(port, proc, what)
        yield proc
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


@contextmanager
def gateway_process(
    database_url: str,
    upstream: str,
    org_key: str,
    *,
    workers: int = 1,
    port: int = 0,
    stderr: IO[bytes] | int | None = subprocess.DEVNULL,
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """``tokenwage serve`` in front of ``upstream``; yields its base URL and process."""
    port = free_port(port)
    args = ["--database-url", database_url, "serve", "--port", str(port), "--workers"]
    args += [str(workers), "--no-access-log", "--log-level", "warning"]
    env = provider_env(upstream, org_key)
    with child_process(args, port=port, what="the gateway", env=env, stderr=stderr) as proc:
        yield f"http://127.0.0.1:{port}", proc


def _wait_for_port(port: int, proc: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            if proc.poll() is not None:
                raise StoreUnavailable(f"{what} exited with code {proc.returncode}") from None
            if time.monotonic() > deadline:
                raise StoreUnavailable(f"{what} did not listen on 127.0.0.1:{port}") from None
            time.sleep(0.1)
