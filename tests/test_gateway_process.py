"""The gateway as it really runs: `tokenwage serve` in its own process(es), over loopback.

* 200 concurrent requests from one person, across 2 worker processes, never spend more
  than that person may spend.
* SIGKILL under load loses no usage record of any response a client fully received, and
  the ledger still verifies afterwards.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager

import aiohttp
from sqlalchemy import select

from tokenwage.core.ledger import EntryKind
from tokenwage.core.money import Money
from tokenwage.mock_upstream.config import MockConfig
from tokenwage.mock_upstream.testing import start_mock_upstream
from tokenwage.processes import gateway_process
from tokenwage.services.sandbox import one_person_org
from tokenwage.storage.db import Database
from tokenwage.storage.ledger_repo import LedgerRepo
from tokenwage.storage.schema import usage_records

ORG_KEY = "sk-org-secret"


def _seed(db: Database, allowance_usd: str) -> str:
    with db.begin() as conn:
        return one_person_org(conn, Money.parse(allowance_usd), key_name="load")


@contextmanager
def _gateway(
    db_url: str, upstream: str, workers: int
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    with gateway_process(db_url, upstream, ORG_KEY, workers=workers) as running:
        yield running


def _chat(max_tokens: int, out_tokens: int, stream: bool = False) -> dict[str, object]:
    body: dict[str, object] = {
        "model": "gpt-4o",
        "max_tokens": max_tokens,
        "messages": [{"role": "user", "content": f"hello tokens:{out_tokens}"}],
    }
    if stream:
        body["stream"] = True
    return body


async def _post(
    session: aiohttp.ClientSession, base: str, key: str, body: dict[str, object]
) -> tuple[int, str | None, bool]:
    """(status, our request id, whether the whole response arrived)."""
    async with session.post(
        f"{base}/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {key}"}
    ) as r:
        data = await r.read()
        complete = (b"[DONE]" in data) if body.get("stream") else data.endswith(b"}")
        return r.status, r.headers.get("x-tokenwage-request-id"), complete


def test_concurrent_requests_across_two_workers_never_overspend(db: Database, db_url: str) -> None:
    key = _seed(db, "0.05")
    # gpt-4o: worst case of 100 prompt + 400 output tokens is about $0.0043, actual 300 out
    with start_mock_upstream(MockConfig(expected_api_key=ORG_KEY)) as upstream:
        with _gateway(db_url, upstream, workers=2) as (base, _):

            async def run() -> list[tuple[int, str | None, bool]]:
                async with aiohttp.ClientSession() as s:
                    return await asyncio.gather(
                        *(_post(s, base, key, _chat(400, 300)) for _ in range(200))
                    )

            results = asyncio.run(run())
            with urllib.request.urlopen(f"{base}/metrics", timeout=10) as reply:
                metrics = reply.read().decode()
    # both workers' gauges add up in the scrape; nothing was rejected by the folder
    assert re.search(r"^tokenwage_gateway_unbooked_settlements \d+\.0$", metrics, re.M), metrics
    assert re.search(r"^tokenwage_gateway_rejected_journal_lines 0\.0$", metrics, re.M), metrics
    statuses = [s for s, _, _ in results]
    assert statuses.count(200) >= 5, statuses
    assert set(statuses) <= {200, 429}, statuses
    with db.begin() as conn:
        ledger = LedgerRepo(conn)
        balance = ledger.balance("person:1")
        debits = [e for e in ledger.entries("person:1") if e.kind is EntryKind.USAGE]
        recorded = conn.execute(select(usage_records.c.status)).scalars().all()
        provider_ids = conn.execute(select(usage_records.c.upstream_request_id)).scalars().all()
        assert list(ledger.verify()) == []
    assert balance >= 0, f"overspent: balance {Money(balance)}"
    assert len(debits) == statuses.count(200) == recorded.count(200)
    assert len(recorded) == statuses.count(200)  # refused requests are never recorded or billed
    # the provider's own request id is kept, so importers recognise this usage later
    assert all(provider_ids) and len(set(provider_ids)) == len(provider_ids)


def test_sigkill_under_load_loses_no_received_response(db: Database, db_url: str) -> None:
    key = _seed(db, "1000")
    received: list[str] = []
    with start_mock_upstream(MockConfig(expected_api_key=ORG_KEY)) as upstream:
        with _gateway(db_url, upstream, workers=2) as (base, proc):

            async def client(s: aiohttp.ClientSession, i: int, stop: float) -> None:
                n = 0
                while time.monotonic() < stop and n < 400:
                    n += 1
                    try:
                        status, rid, complete = await _post(
                            s, base, key, _chat(64, 16, stream=(i + n) % 2 == 0)
                        )
                    except (TimeoutError, aiohttp.ClientError):
                        return
                    if status == 200 and complete and rid:
                        received.append(rid)

            async def load() -> None:
                stop = time.monotonic() + 6
                timeout = aiohttp.ClientTimeout(total=10)
                async with aiohttp.ClientSession(timeout=timeout) as s:
                    tasks = [asyncio.create_task(client(s, i, stop)) for i in range(16)]
                    await asyncio.sleep(1.5)
                    os.killpg(proc.pid, signal.SIGKILL)  # the whole server, every worker
                    await asyncio.gather(*tasks)

            asyncio.run(load())
            proc.wait(timeout=10)
    assert len(received) > 20, "the load never got going"
    # it starts again on the same database, books what the killed run journaled, and stops
    with start_mock_upstream(MockConfig(expected_api_key=ORG_KEY)) as upstream:
        with _gateway(db_url, upstream, workers=1) as (base, _):

            async def once() -> int:
                async with aiohttp.ClientSession() as s:
                    return (await _post(s, base, key, _chat(64, 16)))[0]

            assert asyncio.run(once()) == 200
    with db.begin() as conn:
        stored = set(conn.execute(select(usage_records.c.request_id)).scalars())
        problems = list(LedgerRepo(conn).verify())
        debited = {
            e.meta.get("request_id")
            for e in LedgerRepo(conn).entries("person:1")
            if e.kind is EntryKind.USAGE
        }
    lost = [rid for rid in received if rid not in stored]
    assert lost == [], f"{len(lost)} fully received responses have no usage record"
    unbilled = [rid for rid in received if rid not in debited]
    assert unbilled == [], f"{len(unbilled)} fully received responses have no ledger debit"
    assert problems == []
