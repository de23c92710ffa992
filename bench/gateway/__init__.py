"""Gateway benchmark: the latency `tokenwage serve` adds over the mock upstream, and its
throughput, measured with wrk from a separate process over loopback.

    .venv/bin/python -m bench.gateway [--duration 5] [--workers 2] [--quick]

See ``bench/gateway/__main__.py`` and the "Gateway" section of ``docs/benchmarks.md``.
"""
