"""``tokenwage serve``'s worker app over real HTTP: the gateway's paths reach the gateway,
everything else the dashboard, on one port."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx2
import pytest
import uvicorn

from tests.web.conftest import PASSWORD, Org_, email, login_form_token
from tokenwage.cli import serve
from tokenwage.gateway.app import UVICORN_OPTIONS
from tokenwage.serving import serve_in_thread
from tokenwage.web.combined import CombinedApp, is_gateway_path


@pytest.fixture
def served(db_url: str, org: Org_, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The worker app exactly as ``tokenwage serve`` builds it, with no provider configured."""
    for name in ("OPENAI", "ANTHROPIC"):
        monkeypatch.delenv(f"TOKENWAGE_{name}_BASE_URL", raising=False)
    monkeypatch.delenv(serve.GATEWAY_CONFIG_ENV, raising=False)
    monkeypatch.setenv(serve.DATABASE_URL_ENV, db_url)
    monkeypatch.setenv(serve.ACCESS_LOG_ENV, "0")
    app = serve.factory()
    assert isinstance(app, CombinedApp)

    def config(**options: Any) -> uvicorn.Config:
        return uvicorn.Config(app, **{**UVICORN_OPTIONS, **options})

    with serve_in_thread(config, "combined") as url:
        yield url


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
