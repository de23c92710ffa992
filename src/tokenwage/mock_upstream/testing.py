"""Run the simulated provider on loopback for the length of a ``with`` block (for tests).

::

    with start_mock_upstream(MockConfig(seed=7)) as base_url:
        openai.OpenAI(base_url=f"{base_url}/v1", api_key="sk-test")
        anthropic.Anthropic(base_url=base_url, api_key="sk-ant-test")

The server is real uvicorn (uvloop + httptools) in a background thread, on a port the kernel
picks, so tests run in parallel without clashing.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial

from tokenwage.mock_upstream.app import create_app, uvicorn_config
from tokenwage.mock_upstream.asgi import hide_dropped_connection_errors
from tokenwage.mock_upstream.config import MockConfig
from tokenwage.serving import serve_in_thread


@contextmanager
def start_mock_upstream(config: MockConfig | None = None, host: str = "127.0.0.1") -> Iterator[str]:
    """Yield the base URL (``http://127.0.0.1:PORT``, no ``/v1``) of a running mock provider."""
    hide_dropped_connection_errors()
    with serve_in_thread(partial(uvicorn_config, create_app(config)), "mock-upstream", host) as url:
        yield url
