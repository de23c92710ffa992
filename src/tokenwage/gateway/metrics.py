"""What the gateway tells operators: Prometheus metrics and a buffered JSON access log.

Metrics live in a registry per app (so tests can run several gateways in one process). When
``PROMETHEUS_MULTIPROC_DIR`` is set (``tokenwage serve --workers N`` sets it), prometheus-client
keeps values in per-process files and ``/metrics`` adds up every worker's. The access log
holds no secrets and no prompt text: ids, model names, statuses, token counts and timings.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from time import perf_counter
from typing import IO, Any

import orjson
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

from tokenwage.core.money import Money
from tokenwage.core.usage import TokenUsage
from tokenwage.gateway.ticket import Ticket

log = logging.getLogger(__name__)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
_OVERHEAD_BUCKETS = (0.0001, 0.0002, 0.0003, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.05, 0.25, 1.0)
_MAX_PENDING = 10_000
FLUSH_EVERY_S = 0.05
FLUSH_SLICE = 32
FLUSH_TURNS = 8
"""A round takes at most this many turns of the event loop (bigger slices when behind)."""
FAILURE_LOG_EVERY_S = 60.0
_TOTAL_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)


@dataclass(slots=True)
class Call:
    """One request in flight; at its end, what the metrics and the access log record."""

    endpoint: str
    request_id: str
    started: float
    status: int = 0
    model: str = ""
    ticket: Ticket | None = None
    closed: bool = False  # settled or cancelled: exactly once per ticket
    responded: bool = False  # http.response.start sent
    upstream_started: float = 0.0
    upstream_done: float = 0.0
    usage: TokenUsage | None = None
    charged: Money | None = None  # what settling charged
    estimated: bool = False
    cut: bool = False
    error: str = ""

    def finish(self, metrics: GatewayMetrics, access_log: AccessLog) -> None:
        total_s = perf_counter() - self.started
        waited_s = self.upstream_done - self.upstream_started if self.upstream_done else 0.0
        metrics.record(self, total_s, total_s - waited_s)
        if access_log.enabled:
            access_log.record(self._entry(total_s, waited_s))

    def _entry(self, total_s: float, waited_s: float) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "ts": round(time.time(), 3),
            "request_id": self.request_id,
            "endpoint": self.endpoint,
            "model": self.model,
            "status": self.status,
            "duration_ms": round(total_s * 1000, 3),
            "overhead_ms": round((total_s - waited_s) * 1000, 3),
        }
        if self.ticket is not None:
            entry["key"] = self.ticket.key.prefix
            entry["person_id"] = self.ticket.person_id
            entry["upstream_model"] = self.ticket.model
            entry["stream"] = self.ticket.facts.stream
            entry["hold_nanousd"] = self.ticket.hold_nanousd
        if self.usage is not None:
            entry["input_tokens"] = self.usage.prompt_tokens
            entry["output_tokens"] = self.usage.output_tokens
            entry["estimated"] = self.estimated
        if self.charged is not None:
            entry["cost_nanousd"] = self.charged.nanousd
        if self.cut:
            entry["cut"] = True
        if self.error:
            entry["error"] = self.error
        return entry


class GatewayMetrics:
    """The counters and histograms; label children are cached (the hot path skips lookups)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "tokenwage_gateway_requests",
            "Requests answered, by endpoint and HTTP status.",
            ["endpoint", "status"],
            registry=r,
        )
        self.duration = Histogram(
            "tokenwage_gateway_request_duration_seconds",
            "Time from request to last byte, upstream included.",
            ["endpoint"],
            buckets=_TOTAL_BUCKETS,
            registry=r,
        )
        self.overhead = Histogram(
            "tokenwage_gateway_overhead_seconds",
            "Time the gateway added: the whole request less the time waiting for the provider.",
            ["endpoint"],
            buckets=_OVERHEAD_BUCKETS,
            registry=r,
        )
        self.upstream_errors = Counter(
            "tokenwage_gateway_upstream_errors",
            "Provider calls that failed (unreachable, timed out, cut off) or answered 5xx.",
            ["endpoint", "reason"],
            registry=r,
        )
        self.rejections = Counter(
            "tokenwage_gateway_budget_rejections",
            "Requests the meter refused: allowance exhausted, model not allowed, no price.",
            ["endpoint", "reason"],
            registry=r,
        )
        self.reserved = Counter(
            "tokenwage_gateway_reserved_nanousd",
            "Nano-dollars held for authorized requests.",
            ["endpoint"],
            registry=r,
        )
        self.settled_amount = Counter(
            "tokenwage_gateway_settled_nanousd",
            "Nano-dollars charged when requests settled (compare with reserved).",
            ["endpoint"],
            registry=r,
        )
        self.settled = Counter(
            "tokenwage_gateway_settled",
            "Requests settled, by whether their usage was reported or estimated.",
            ["endpoint", "usage"],
            registry=r,
        )
        self.settled_tokens = Counter(
            "tokenwage_gateway_settled_tokens",
            "Tokens settled, by direction (input includes cache reads and writes).",
            ["endpoint", "direction"],
            registry=r,
        )
        self.unbooked = Gauge(
            "tokenwage_gateway_unbooked_settlements",
            "Settlements journaled and answered but not yet booked into the ledger",
            registry=r,
            multiprocess_mode="livesum",
        )
        self.rejected_lines = Gauge(
            "tokenwage_gateway_rejected_journal_lines",
            "Journal lines the folder could not book (kept in rejected.jsonl): alert on > 0",
            registry=r,
            multiprocess_mode="livemax",
        )
        self.journal: Callable[[], tuple[int, int] | None] | None = None  # the meter's status
        self._children: dict[tuple[object, ...], Any] = {}
        # The request path only appends to these (well under a microsecond); they are handed
        # to prometheus-client (1-2 us a call, with a lock) on every scrape and, every
        # FLUSH_EVERY_S, FLUSH_SLICE requests at a time with the event loop free in between.
        # (All of a second's requests at once, 1,500 of them, took 9 ms in multiprocess mode
        # with the machine otherwise idle: about 1% of the time the loop served nobody.)
        self._finished: list[tuple[Call, float, float]] = []
        self._counts: dict[tuple[Counter, tuple[str, ...]], float] = {}
        self._task: asyncio.Task[None] | None = None

    def record(self, call: Call, total_s: float, overhead_s: float) -> None:
        """A request ended: its status, timings, hold and settled usage."""
        self._finished.append((call, total_s, overhead_s))
        if len(self._finished) >= _MAX_PENDING:
            self.flush()

    def upstream_error(self, endpoint: str, reason: str) -> None:
        self._add(self.upstream_errors, (endpoint, reason))

    def rejection(self, endpoint: str, reason: str) -> None:
        self._add(self.rejections, (endpoint, reason))

    def _add(self, metric: Counter, labels: tuple[str, ...], amount: float = 1.0) -> None:
        key = (metric, labels)
        self._counts[key] = self._counts.get(key, 0.0) + amount

    def flush(self) -> None:
        """Hand everything pending to prometheus-client (a scrape, a stopping worker)."""
        self._flush_some(len(self._finished))
        self._flush_counts()

    async def _flush_in_slices(self) -> None:
        failed_at = -FAILURE_LOG_EVERY_S
        while True:
            await asyncio.sleep(FLUSH_EVERY_S)
            try:
                # what was pending when the round began: requests finishing meanwhile wait
                # for the next round, so a busy worker still reaches the counters below
                left = len(self._finished)
                step = max(FLUSH_SLICE, -(-left // FLUSH_TURNS))  # a backlog cannot grow
                while left > 0:
                    self._flush_some(min(step, left))
                    left -= step
                    if left > 0:
                        await asyncio.sleep(0)  # requests go on between slices
                self._flush_counts()
            except Exception:  # a bad value must not stop the metrics for good
                if time.monotonic() - failed_at >= FAILURE_LOG_EVERY_S:
                    failed_at = time.monotonic()
                    log.exception("flushing the gateway metrics failed (logged once a minute)")

    def _flush_some(self, n: int) -> None:
        finished = self._finished[:n]
        del self._finished[:n]
        for call, total_s, overhead_s in finished:
            endpoint = call.endpoint
            self._add(self.requests, (endpoint, str(call.status)))
            self._child(self.duration, (endpoint,)).observe(total_s)
            self._child(self.overhead, (endpoint,)).observe(max(overhead_s, 0.0))
            if call.ticket is not None:
                self._add(self.reserved, (endpoint,), call.ticket.hold_nanousd)
            if call.charged is not None:
                self._add(self.settled_amount, (endpoint,), call.charged.nanousd)
            if call.usage is not None:
                usage = "estimated" if call.estimated else "reported"
                self._add(self.settled, (endpoint, usage))
                self._add(self.settled_tokens, (endpoint, "input"), call.usage.prompt_tokens)
                self._add(self.settled_tokens, (endpoint, "output"), call.usage.output_tokens)

    def _flush_counts(self) -> None:
        counts, self._counts = self._counts, {}
        for (metric, labels), amount in counts.items():
            self._child(metric, labels).inc(amount)
        status = self.journal() if self.journal is not None else None
        if status is not None:
            self.unbooked.set(status[0])
            self.rejected_lines.set(status[1])

    def _child(self, metric: Counter | Histogram, labels: tuple[str, ...]) -> Any:
        key = (metric, *labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    def start(self) -> None:
        """Flush in the background, so other workers' scrapes see this one's numbers."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._flush_in_slices())

    async def stop(self) -> None:
        task, self._task = self._task, None
        await _cancel(task)
        self.flush()
        if os.environ.get(MULTIPROC_ENV):  # this worker's gauges leave the live sums
            mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]

    def exposition(self) -> tuple[bytes, bytes]:
        """(body, content type) of ``GET /metrics``: every worker's values in multiprocess mode."""
        self.flush()
        if os.environ.get(MULTIPROC_ENV):
            registry = CollectorRegistry()
            MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
            return generate_latest(registry), CONTENT_TYPE_LATEST.encode()
        return generate_latest(self.registry), CONTENT_TYPE_LATEST.encode()


class AccessLog:
    """JSON lines buffered in memory, written at most once a second (or when the buffer fills).

    ``stream`` None turns it off. The writes are the only logging I/O on the request path.
    """

    def __init__(
        self,
        stream: IO[bytes] | None,
        *,
        flush_interval_s: float = 1.0,
        max_buffered: int = 2048,
    ) -> None:
        self._stream = stream
        self._interval_s = flush_interval_s
        self._max = max_buffered
        self._lines: list[bytes] = []
        self._task: asyncio.Task[None] | None = None

    @property
    def enabled(self) -> bool:
        return self._stream is not None

    def record(self, entry: dict[str, Any]) -> None:
        if self._stream is None:
            return
        self._lines.append(orjson.dumps(entry, option=orjson.OPT_APPEND_NEWLINE))
        if len(self._lines) >= self._max:
            self.flush()

    def flush(self) -> None:
        if self._stream is None or not self._lines:
            return
        data = b"".join(self._lines)
        self._lines.clear()
        try:
            self._stream.write(data)
            self._stream.flush()
        except (OSError, ValueError) as exc:  # a closed or full log must not fail requests
            log.warning("access log write failed, %d bytes lost: %s", len(data), exc)

    def start(self) -> None:
        if self._stream is not None and self._task is None:
            loop = asyncio.get_running_loop()
            self._task = loop.create_task(_every(self._interval_s, self.flush))

    async def stop(self) -> None:
        task, self._task = self._task, None
        await _cancel(task)
        self.flush()


async def _every(interval_s: float, job: Callable[[], None]) -> None:
    while True:
        await asyncio.sleep(interval_s)
        job()


async def _cancel(task: asyncio.Task[None] | None) -> None:
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
