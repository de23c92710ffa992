"""The metering gateway: an OpenAI- and Anthropic-compatible proxy that charges each
person's token allowance in real time.

A request's path, in order:

1. ``app.py`` routes it to an inbound endpoint (``openai_api.py`` / ``anthropic_api.py``);
   ``metered.py`` is the metered request path they share.
2. The endpoint parses the body, finds the model and provider (``config.py`` routing),
   estimates the prompt (``estimate.py``) and asks the
   :class:`~tokenwage.gateway.ticket.Meter` (``meter.py``) to ``authorize``: the key is
   checked and one atomic hold is placed for the worst-case cost, in memory from the
   worker's lease (``leases.py``) or as a row (``holds.py``).
3. ``upstream.py`` forwards it with the organisation's provider key; the answer streams
   back to the client unchanged, while ``usage_tap.py`` reads the provider's usage numbers.
4. ``Meter.settle`` prices the usage, writes the usage record and ledger debit through the
   group-commit writer (``writer.py``; ``settle_sqlite.py`` on SQLite) and releases the
   hold, before the client gets the last byte. Errors go back in the provider's own shape
   (``errors.py``); ``metrics.py`` serves ``/metrics``.
"""
