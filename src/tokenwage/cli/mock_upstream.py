"""``tokenwage mock-upstream``: run the simulated OpenAI/Anthropic provider."""

from __future__ import annotations

from typing import Annotated

import typer

from tokenwage.mock_upstream import MockConfig, serve


def mock_upstream(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port to listen on.")] = 9100,
    latency_ms: Annotated[
        float, typer.Option(min=0, help="Delay before the first byte of every response.")
    ] = 0.0,
    chunk_delay_ms: Annotated[
        float, typer.Option(min=0, help="Delay between two content chunks of a stream.")
    ] = 0.0,
    stream_chunks: Annotated[
        int, typer.Option(min=1, help="Content chunks in a streamed answer.")
    ] = 5,
    error_rate: Annotated[
        float,
        typer.Option(
            min=0.0, max=1.0, help="Fraction of requests failed with a provider-shaped 5xx/429."
        ),
    ] = 0.0,
    seed: Annotated[int, typer.Option(help="Seed of the fault RNG and of response ids.")] = 0,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes.")] = 1,
    expected_api_key: Annotated[
        str | None,
        typer.Option(help="Accept only this API key (default: any non-empty key)."),
    ] = None,
) -> None:
    """Serve a simulated AI provider (OpenAI- and Anthropic-compatible) for tests and benchmarks.

    Token counts are deterministic; the module tokenwage.mock_upstream documents the test
    conventions (tokens:N, [mock:cache:N], use tool NAME, unknown-* models, x-mock-fault).
    """
    config = MockConfig(
        latency_ms=latency_ms,
        chunk_delay_ms=chunk_delay_ms,
        stream_chunks=stream_chunks,
        error_rate=error_rate,
        seed=seed,
        expected_api_key=expected_api_key or None,
    )
    serve(config, host=host, port=port, workers=workers)


def register(app: typer.Typer) -> None:
    """Add the ``mock-upstream`` command to the tokenwage CLI."""
    app.command("mock-upstream")(mock_upstream)
