"""Finished requests reach prometheus-client a slice at a time, the event loop free between."""

from __future__ import annotations

import asyncio

import pytest

from tokenwage.gateway import metrics as metrics_module
from tokenwage.gateway.metrics import Call, GatewayMetrics


async def test_pending_requests_are_flushed_in_slices(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(metrics_module, "FLUSH_EVERY_S", 0.01)
    monkeypatch.setattr(metrics_module, "FLUSH_SLICE", 10)
    metrics = GatewayMetrics()
    for i in range(35):
        metrics.record(Call("openai.chat", f"twr_{i}", 0.0, status=200), 0.002, 0.0001)
    metrics.start()
    seen: list[int] = []  # how many were still pending at each turn of the loop
    try:
        async with asyncio.timeout(5):
            while not seen or seen[-1]:
                await asyncio.sleep(0)
                seen.append(len(metrics._finished))
        # never all at once: other callbacks ran between the slices of 10
        assert {25, 15, 5} <= set(seen)
        text = metrics.exposition()[0].decode()
        assert 'tokenwage_gateway_overhead_seconds_count{endpoint="openai.chat"} 35.0' in text
        assert 'tokenwage_gateway_requests_total{endpoint="openai.chat",status="200"} 35.0' in text
    finally:
        await metrics.stop()


async def test_a_failing_flush_is_logged_and_the_next_one_goes_on(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(metrics_module, "FLUSH_EVERY_S", 0.01)
    metrics = GatewayMetrics()
    metrics.record(Call("openai.chat", "twr_bad", 0.0, status=200), float("nan"), 0.0)
    real = metrics._flush_some
    failures = [True]

    def flaky(n: int) -> None:
        if failures:
            failures.pop()
            metrics._finished.clear()
            raise ValueError("a broken value")
        real(n)

    monkeypatch.setattr(metrics, "_flush_some", flaky)
    metrics.start()
    try:
        async with asyncio.timeout(5):
            while failures or "flushing the gateway metrics failed" not in caplog.text:
                await asyncio.sleep(0.01)
        metrics.record(Call("openai.chat", "twr_ok", 0.0, status=200), 0.002, 0.0001)
        async with asyncio.timeout(5):
            while metrics._finished:
                await asyncio.sleep(0.01)
        text = metrics.exposition()[0].decode()
        assert 'tokenwage_gateway_requests_total{endpoint="openai.chat",status="200"} 1.0' in text
    finally:
        await metrics.stop()


async def test_a_worker_busier_than_a_slice_per_turn_still_reaches_its_counters(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Each round flushes what was pending when it began, so requests finishing faster than
    a slice per loop turn cannot keep the counters from ever being handed over."""
    monkeypatch.setattr(metrics_module, "FLUSH_EVERY_S", 0.01)
    monkeypatch.setattr(metrics_module, "FLUSH_SLICE", 10)
    metrics = GatewayMetrics()
    metrics.start()
    try:
        loop = asyncio.get_running_loop()
        deadline, turns = loop.time() + 0.3, 0
        while loop.time() < deadline:  # 20 requests finish at every turn of the loop
            for i in range(20):
                call = Call("openai.chat", f"twr_{turns}_{i}", 0.0, status=200)
                metrics.record(call, 0.002, 0.0001)
            turns += 1
            await asyncio.sleep(0)
        requests = metrics.requests.labels("openai.chat", "200")._value.get()
        assert requests > 0  # handed over by the rounds, not by a scrape
    finally:
        await metrics.stop()
