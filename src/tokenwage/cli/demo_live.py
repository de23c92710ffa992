"""The live part of ``tokenwage demo run``: the simulated provider and ``tokenwage serve``
(gateway and dashboard on one port), started side by side on loopback, with the exact
settings to point a client or agent at them and a dashboard login for each role."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from datetime import UTC, datetime

from tokenwage.cli.common import err, out
from tokenwage.core.errors import StoreUnavailable
from tokenwage.core.money import Money
from tokenwage.core.org import Role
from tokenwage.processes import child_process, free_port, gateway_process
from tokenwage.services.keys import create_key
from tokenwage.storage.db import Database
from tokenwage.storage.ledger_repo import LedgerRepo
from tokenwage.storage.org_repo import OrgRepo, person_account

ORG_KEY = "sk-demo-org-key"  # the mock provider's key; real deployments name an env var


def run_live(
    database_url: str,
    gateway_port: int,
    upstream_port: int,
    *,
    serve: bool,
    logins: Sequence[tuple[Role, str, str]] = (),
) -> None:
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
            member = next((email for role, email, _ in logins if role is Role.MEMBER), None)
            _show(database_url, base, upstream, member)
            _show_dashboard(base, logins)
            if serve:
                err.print("Serving until Ctrl-C.")
                gateway.wait()
    except KeyboardInterrupt:
        pass


def _show(database_url: str, base: str, upstream: str, email: str | None) -> None:
    """A key for ``email`` (else a demo person), and one request through the gateway."""
    db = Database(database_url)
    now = datetime.now(UTC)
    try:
        with db.begin() as conn:
            people = OrgRepo(conn).list_people()
            person = next((p for p in people if p.email == email), people[min(2, len(people) - 1)])
            _, key = create_key(conn, email=person.email, name="demo", now=now)
        assert person.id is not None
        before = _balance(db, person.id)
        reply, cost = _ask(base, key)
        after = _balance(db, person.id)
        deadline = time.monotonic() + 10
        while before - after < cost.nanousd and time.monotonic() < deadline:
            time.sleep(0.02)  # the debit reaches the ledger a few ms after the answer
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


def _show_dashboard(base: str, logins: Sequence[tuple[Role, str, str]]) -> None:
    out.rule("Dashboard")
    out.print(f"Open {base}/ and sign in as:\n")
    for role, email, password in logins:
        out.print(f"  {role.value:<8} {email:<36} password {password}")
    out.print(
        "\nRequests sent with the key above show up on the member's My tokens page within "
        f"seconds; the REST API is documented at {base}/api/docs."
    )


def _balance(db: Database, person_id: int) -> int:
    with db.begin() as conn:
        return LedgerRepo(conn).balance(person_account(person_id))


def _ask(base: str, key: str) -> tuple[str, Money]:
    """The answer to one request through the gateway, and what it was charged."""
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
            cost = Money.parse(resp.headers.get("x-tokenwage-cost-usd", "0"))
    except urllib.error.HTTPError as exc:
        raise StoreUnavailable(
            f"the demo request through the gateway failed: {exc.code} {exc.read().decode()}"
        ) from None
    return str(answer["choices"][0]["message"]["content"]), cost
