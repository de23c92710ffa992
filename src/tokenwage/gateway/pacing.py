"""Background work in short slices, so it never holds a CPU the request path needs.

On a small machine the folder shares the cores with the gateway's workers (and, in the
benchmark, with the load generator and the mock provider). A process that computes for
milliseconds without a system call keeps its CPU until the scheduler's next tick: a worker
woken on that CPU waits for it, whatever the two processes' priorities. Measured on the
2-core benchmark VM (``docs/benchmarks.md``, "What a neighbour costs"): a neighbour busy 4 ms
of every 10 ms lifted the bare proxy's p99 at one connection from 0.85 to 4.58 ms; the same
neighbour calling ``sched_yield`` every 0.2 ms of its work left it at 1.11 ms.

:class:`Pacer` is that call: the folder calls it between units of work (a journal line, a
settlement, a ledger entry), and it yields once a slice has passed. A yield with nothing
else runnable costs about a microsecond.
"""

from __future__ import annotations

import os
import time

SLICE_S = 0.0002
"""The longest stretch of work between two chances for the scheduler to switch."""


class Pacer:
    __slots__ = ("_due", "slice_s", "yields")

    def __init__(self, slice_s: float = SLICE_S) -> None:
        self.slice_s = slice_s
        self._due = time.perf_counter() + slice_s
        self.yields = 0

    def __call__(self) -> None:
        now = time.perf_counter()
        if now >= self._due:
            os.sched_yield()
            self.yields += 1
            self._due = time.perf_counter() + self.slice_s


def no_pause() -> None:
    """For work on a request's own path (a worker's event loop), which must not yield."""
