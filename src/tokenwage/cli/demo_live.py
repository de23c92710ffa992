"""The live part of ``tokenwage demo run``: the simulated provider and the gateway, started
side by side on loopback, with the exact settings to point a client or agent at them."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

from tokenwage.cli.common import err, out
from tokenwage.core.errors import StoreUnavailable
from tokenwage.core.money import Money
from tokenwage.services.keys import create_key
from tokenwage.storage.db import Database
from tokenwage.storage.ledger_repo import LedgerRepo
from tokenwage.storage.org_repo import OrgRepo, person_account

ORG_KEY = "sk-demo-org-key"  # the mock provider's key; real deployments name an env var


def port_or_free(preferred: int) -> int:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", preferred))
            return preferred
        except OSError:
            s.bind(("127.0.0.1", 0))
            return int(s.getsockname()[1])


def _wait_for(port: int, proc: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise StoreUnavailable(f"{what} exited with code {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.1)
    raise StoreUnavailable(f"{what} did not start listening on 127.0.0.1:{port}")


def run_live(database_url: str, gateway_port: int, upstream_port: int, *, serve: bool) -> None:
    exe = str(Path(sys.executable).parent / "tokenwage")
    upstream_port = port_or_free(upstream_port)
    gateway_port = port_or_free(gateway_port)
    upstream = f"http://127.0.0.1:{upstream_port}"
    env = {
        **os.environ,
        "TOKENWAGE_OPENAI_BASE_URL": upstream,
        "TOKENWAGE_OPENAI_API_KEY": ORG_KEY,
        "TOKENWAGE_ANTHROPIC_BASE_URL": upstream,
        "TOKENWAGE_ANTHROPIC_API_KEY": ORG_KEY,
    }
    procs = [
        subprocess.Popen(
            [exe, "mock-upstream", "--port", str(upstream_port), "--expected-api-key", ORG_KEY],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    ]
    try:
        _wait_for(upstream_port, procs[0], "the mock provider")
        procs.append(
            subprocess.Popen(
                [
                    exe,
                    "--database-url",
                    database_url,
                    "serve",
                    "--port",
                    str(gateway_port),
                    "--no-access-log",
                    "--log-level",
                    "warning",
                ],
                env=env,
            )
        )
        _wait_for(gateway_port, procs[1], "the gateway")
        _show(database_url, gateway_port, upstream_port)
        if serve:
            err.print("Serving until Ctrl-C.")
            procs[1].wait()
    except KeyboardInterrupt:
        pass
    finally:
        for p in reversed(procs):
            if p.poll() is None:
                p.send_signal(signal.SIGINT)
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()


def _show(database_url: str, port: int, upstream_port: int) -> None:
    db = Database(database_url)
    now = datetime.now(UTC)
    try:
        with db.begin() as conn:
            person = OrgRepo(conn).list_people(team_slug="platform")[2]
            _, key = create_key(conn, email=person.email, name="demo", now=now)
        assert person.id is not None
        before = _balance(db, person.id)
        reply = _ask(port, key)
        after = _balance(db, person.id)
    finally:
        db.dispose()
    base = f"http://127.0.0.1:{port}"
    out.rule("Gateway (offline: the provider is tokenwage's simulated one)")
    out.print(f"Gateway  {base}    provider {f'http://127.0.0.1:{upstream_port}'}")
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


def _ask(port: int, key: str) -> str:
    body = {
        "model": "gpt-5-mini",
        "max_tokens": 64,
        "messages": [{"role": "user", "content": "Say hello to the demo. tokens:12"}],
    }
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}/v1/chat/completions",
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
