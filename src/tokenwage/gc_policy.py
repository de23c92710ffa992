"""How a long-running tokenwage process keeps the garbage collector off its hot path."""

from __future__ import annotations

import gc


def quiet_gc() -> None:
    """Keep the garbage collector off the hot path of a started process (a gateway
    worker, the folder).

    What start-up made (modules, routes, price tables, caches) lives as long as the
    process: :func:`gc.freeze` moves it out of the collector's view, so a full collection
    scans only what requests left behind instead of pausing the process for 50-100 ms over
    everything. The young generation is collected after 20,000 allocations instead of 700
    (each pass costs what survives, and a request's objects mostly die with it).
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 20, 20)
