"""``tokenwage serve``'s worker app over real HTTP: the gateway's paths reach the gateway,
everything else the dashboard, on one port."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx2
import pytest
import uvicorn

from tests.web.conftest import PASSWORD, Org_, email, login_form_token
from tokenwage.cli import serve
from tokenwage.gateway.app import UVICORN_OPTIONS
from tokenwage.mock_upstream import MockConfig
from tokenwage.mock_upstream.testing import start_mock_upstream
from tokenwage.services import books
from tokenwage.serving import serve_in_thread
from tokenwage.storage.db import Database
from tokenwage.web.accounts import create_api_token
from tokenwage.web.combined import CombinedApp, is_gateway_path

ORG_KEY = "sk-org-combined-tests"


def serve_worker_app(db_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The worker app exactly as ``tokenwage serve`` builds it from the environment."""
    monkeypatch.setenv(serve.DATABASE_URL_ENV, db_url)
    monkeypatch.setenv(serve.ACCESS_LOG_ENV, "0")
    app = serve.factory()
    assert isinstance(app, CombinedApp)

    def config(**options: Any) -> uvicorn.Config:
        return uvicorn.Config(app, **{**UVICORN_OPTIONS, **options})

    with serve_in_thread(config, "combined") as url:
        yield url


@pytest.fixture
def served(db_url: str, org: Org_, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """No provider configured: the dashboard-only set-up."""
    for name in ("OPENAI", "ANTHROPIC"):
        monkeypatch.delenv(f"TOKENWAGE_{name}_BASE_URL", raising=False)
    monkeypatch.delenv(serve.GATEWAY_CONFIG_ENV, raising=False)
    yield from serve_worker_app(db_url, monkeypatch)


@pytest.fixture
def served_with_provider(
    db_url: str, db: Database, org: Org_, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    """The simulated provider behind the gateway; everyone's allowance credited."""
    with db.begin() as conn:
        books.run_allowances(conn, datetime.now(UTC))
    monkeypatch.delenv(serve.GATEWAY_CONFIG_ENV, raising=False)
    with start_mock_upstream(MockConfig(seed=3, expected_api_key=ORG_KEY)) as upstream:
        for name in ("OPENAI", "ANTHROPIC"):
            monkeypatch.setenv(f"TOKENWAGE_{name}_BASE_URL", upstream)
            monkeypatch.setenv(f"TOKENWAGE_{name}_API_KEY", ORG_KEY)
        yield from serve_worker_app(db_url, monkeypatch)


def test_dispatch_rule() -> None:
    for path in ("/v1/chat/completions", "/v1/messages", "/v1/models/x", "/metrics", "/health"):
        assert is_gateway_path(path)
    for path in ("/", "/v1x", "/api/v1/me", "/login", "/static/app.css", "/metricsx", "/me"):
        assert not is_gateway_path(path)


def test_one_port_serves_gateway_and_dashboard(served: str) -> None:
    with httpx2.Client(base_url=served, follow_redirects=False) as c:
        health = c.get("/health")
        assert health.status_code == 200 and health.json() == {"status": "ok"}
        metrics = c.get("/metrics")
        assert metrics.status_code == 200 and "# TYPE" in metrics.text
        # the gateway answers model calls itself, in the provider's dialect with a request id
        models = c.get("/v1/models")
        assert models.status_code == 401 and "x-tokenwage-request-id" in models.headers
        login = c.get("/login")
        assert login.status_code == 200 and "Sign in" in login.text
        assert "x-tokenwage-request-id" not in login.headers
        assert c.get("/static/app.css").headers["content-type"].startswith("text/css")
        spec = c.get("/openapi.json").json()
        assert "/api/v1/me" in spec["paths"] and "/login" not in spec["paths"]
        token = login_form_token(c)  # type: ignore[arg-type]
        r = c.post("/login", data={"email": email("moe"), "password": PASSWORD, "csrf": token})
        assert r.status_code == 303
        me = c.get("/api/v1/me")
        assert me.status_code == 200 and me.json()["email"] == email("moe")


def test_a_key_made_in_the_api_spends_through_the_gateway_on_the_same_port(
    served_with_provider: str, db: Database, org: Org_
) -> None:
    with db.begin() as conn:
        _info, token = create_api_token(
            conn, email("moe"), "e2e", actor="tests", now=datetime.now(UTC)
        )
    api = {"Authorization": f"Bearer {token}"}
    moe = org.ids["moe"]
    with httpx2.Client(base_url=served_with_provider, timeout=30) as c:
        before = c.get(f"/api/v1/people/{moe}/balance", headers=api).json()
        made = c.post(f"/api/v1/people/{moe}/keys", json={"name": "laptop"}, headers=api)
        assert made.status_code == 201
        key = made.json()["secret"]
        chat = c.post(
            "/v1/chat/completions",
            json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]},
            headers={"Authorization": f"Bearer {key}"},
        )
        assert chat.status_code == 200, chat.text
        deadline = time.monotonic() + 10  # the folder books it a few ms after the answer
        while True:
            records = c.get(f"/api/v1/people/{moe}/usage/records", headers=api).json()["items"]
            if records or time.monotonic() > deadline:
                break
            time.sleep(0.02)
        after = c.get(f"/api/v1/people/{moe}/balance", headers=api).json()
    (record,) = records
    assert record["source"] == "gateway" and record["cost_nanousd"] > 0
    spent = before["balance_nanousd"] - after["balance_nanousd"]
    assert spent == record["cost_nanousd"]
