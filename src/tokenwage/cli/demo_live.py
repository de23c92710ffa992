"""The live part of ``tokenwage demo run``: the simulated provider and the gateway, started
side by side on loopback, with the exact settings to point a client or agent at them."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from datetime import UTC, datetime

from tokenwage.cli.common import err, out
from tokenwage.core.errors import StoreUnavailable
from tokenwage.core.money import Money
from tokenwage.processes import child_process, free_port, gateway_process
from tokenwage.services.keys import create_key
from tokenwage.storage.db import Database
from tokenwage.storage.ledger_repo import LedgerRepo
from tokenwage.storage.org_repo import OrgRepo, person_account

ORG_KEY = "sk-demo-org-key"  # the mock provider's key; real deployments name an env var


def run_live(database_url: str, gateway_port: int, upstream_port: int, *, serve: bool) -> None:
    upstream_port = free_port(upstream_port)
    upstream = f"http://127.0.0.1:{upstream_port}"
    mock = ["mock-upstream", "--port", str(upstream_port), "--expected-api-key", ORG_KEY]
    try:
        with (
            child_process(mock, port=upstream_port, what="the mock provider"),
            gateway_process(database_url, upstream, ORG_KEY, port=gateway_port, stderr=None) as (
                base,
                gateway,
            ),
        ):
            _show(database_url, base, upstream)
            if serve:
                err.print("Serving until Ctrl-C.")
                gateway.wait()
    except KeyboardInterrupt:
        pass


def _show(database_url: str, base: str, upstream: str) -> None:
    db = Database(database_url)
    now = datetime.now(UTC)
    try:
        with db.begin() as conn:
            people = OrgRepo(conn).list_people()
            person = people[min(2, len(people) - 1)]
            _, key = create_key(conn, email=person.email, name="demo", now=now)
        assert person.id is not None
        before = _balance(db, person.id)
        reply = _ask(base, key)
        after = _balance(db, person.id)
    finally:
        db.dispose()
    out.rule("Gateway (offline: the provider is tokenwage's simulated one)")
    out.print(f"Gateway  {base}    provider {upstream}")
    out.print(f"Key for {person.name} <{person.email}> (shown once):\n")
    out.print(f"  export OPENAI_BASE_URL={base}/v1")
    out.print(f"  export OPENAI_API_KEY={key}")
    out.print(f"  export ANTHROPIC_BASE_URL={base}")
    out.print(f"  export ANTHROPIC_API_KEY={key}\n")
    out.print(
        f"A test request through the gateway answered {reply!r} and cost "
        f"{Money(before - after).usd(6)}: {person.email} went from {Money(before).usd(6)} "
        f"to {Money(after).usd(6)}."
    )
    out.print(f"Metrics: {base}/metrics")


def _balance(db: Database, person_id: int) -> int:
    with db.begin() as conn:
        return LedgerRepo(conn).balance(person_account(person_id))


def _ask(base: str, key: str) -> str:
    body = {
        "model": "gpt-5-mini",
        "max_tokens": 64,
        "messages": [{"role": "user", "content": "Say hello to the demo. tokens:12"}],
    }
    req = urllib.request.Request(
        f"{base}/v1/chat/completions",
        data=json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:  # noqa: S310 - loopback only
            answer = json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        raise StoreUnavailable(
            f"the demo request through the gateway failed: {exc.code} {exc.read().decode()}"
        ) from None
    return str(answer["choices"][0]["message"]["content"])
