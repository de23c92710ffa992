"""Refusals in each provider's shape: SDKs raise the right exception, and never retry a spent
allowance; nothing is authorized for a request that cannot be parsed or routed."""

from __future__ import annotations

import gzip
import io
from datetime import UTC, datetime
from typing import Any

import anthropic
import httpx2
import openai
import orjson
import pytest
from prometheus_client.utils import floatToGoString

from tests.gateway.conftest import CHAT, HAIKU, MESSAGES, gateway_config, mock_requests_seen
from tests.gateway.fake_meter import GOOD_KEY, NANOUSD_PER_TOKEN, NARROW_KEY, FakeMeter
from tokenwage.core.errors import AllowanceExhausted, StoreUnavailable, UnknownModelPrice
from tokenwage.core.money import Money
from tokenwage.gateway.metrics import AccessLog
from tokenwage.gateway.testing import start_gateway

OPENAI_AUTH = {"authorization": f"Bearer {GOOD_KEY}"}
ANTHROPIC_AUTH = {"x-api-key": GOOD_KEY, "anthropic-version": "2023-06-01"}


def post(url: str, body: bytes, headers: dict[str, str]) -> httpx2.Response:
    with httpx2.Client(timeout=10) as client:
        return client.post(url, content=body, headers=headers)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"model": "gpt-4o", "messages": [', "could not parse the JSON body"),
        (b"[1, 2]", "must be a JSON object"),
        (b'{"messages": []}', "model parameter"),
        (b'{"model": 4}', "model parameter"),
        (b'{"model": "gpt-4o-' + b"x" * 300 + b'"}', "model names are at most 256"),
    ],
)
def test_bad_bodies_are_refused_in_each_shape_before_authorize(
    gateway: str, meter: FakeMeter, body: bytes, message: str
) -> None:
    chat = post(f"{gateway}/v1/chat/completions", body, OPENAI_AUTH)
    assert chat.status_code == 400 and chat.headers["x-tokenwage-request-id"].startswith("twr_")
    error = chat.json()["error"]
    assert error["type"] == "invalid_request_error" and message in error["message"]
    assert set(error) == {"message", "type", "param", "code"}
    messages = post(f"{gateway}/v1/messages", body, ANTHROPIC_AUTH)
    assert messages.status_code == 400 and "x-tokenwage-request-id" in messages.headers
    payload = messages.json()
    assert payload["type"] == "error" and payload["error"]["type"] == "invalid_request_error"
    assert meter.authorized == [] and meter.authenticated == []


def test_bad_keys_raise_authentication_errors(gateway: str, meter: FakeMeter) -> None:
    with openai.OpenAI(base_url=f"{gateway}/v1", api_key="sk-wrong", max_retries=2) as client:
        with pytest.raises(openai.AuthenticationError) as oai_error:
            client.chat.completions.create(model="gpt-4o", messages=CHAT)
    assert oai_error.value.code == "invalid_api_key"
    with anthropic.Anthropic(base_url=gateway, api_key="sk-wrong", max_retries=2) as client:
        with pytest.raises(anthropic.AuthenticationError) as claude_error:
            client.messages.create(model=HAIKU, max_tokens=9, messages=MESSAGES)
    assert claude_error.value.body["error"]["type"] == "authentication_error"  # type: ignore[index]
    missing = post(f"{gateway}/v1/chat/completions", orjson.dumps({"model": "gpt-4o"}), {})
    assert missing.status_code == 401
    assert meter.authenticated == ["sk-wrong", "sk-wrong", None] and meter.settled == []


def test_spent_allowance_stops_sdks_at_once(mock_url: str, gateway: str, meter: FakeMeter) -> None:
    refill = datetime(2026, 12, 1, tzinfo=UTC)
    meter.refuse_with = AllowanceExhausted(
        "token allowance exhausted for ada@example.com",
        available_nanousd=0,
        needed_nanousd=9,
        next_refill_utc=refill,
    )
    before = mock_requests_seen(mock_url)
    with openai.OpenAI(base_url=f"{gateway}/v1", api_key=GOOD_KEY, max_retries=2) as client:
        with pytest.raises(openai.RateLimitError) as oai_error:
            client.chat.completions.create(model="gpt-4o", messages=CHAT)
    assert oai_error.value.code == oai_error.value.type == "usage_limit_reached"
    assert "ada@example.com" in oai_error.value.message
    body: Any = oai_error.value.body
    assert body["resets_at"] == int(refill.timestamp())
    headers = oai_error.value.response.headers
    assert headers["x-should-retry"] == "false"
    assert headers["x-codex-promo-message"] == "token allowance exhausted for ada@example.com"
    assert len(meter.authorized) == 1  # one attempt despite max_retries=2
    with anthropic.Anthropic(base_url=gateway, api_key=GOOD_KEY, max_retries=2) as client:
        with pytest.raises(anthropic.PaymentRequiredError) as claude_error:
            client.messages.create(model=HAIKU, max_tokens=9, messages=MESSAGES)
    body = claude_error.value.body
    assert body["error"] == {
        "type": "billing_error",
        "message": "token allowance exhausted for ada@example.com",
    }
    assert claude_error.value.response.headers["x-should-retry"] == "false"
    assert len(meter.authorized) == 2
    assert mock_requests_seen(mock_url) == before + 1  # only the second probe: nothing forwarded
    assert meter.settled == [] and meter.cancelled == []


def test_other_refusals(oai: openai.OpenAI, gateway: str, meter: FakeMeter) -> None:
    with openai.OpenAI(base_url=f"{gateway}/v1", api_key=NARROW_KEY, max_retries=0) as narrow:
        with pytest.raises(openai.PermissionDeniedError):
            narrow.chat.completions.create(model="gpt-4o", messages=CHAT)
    meter.refuse_with = UnknownModelPrice("no price for model 'gpt-9'")
    with pytest.raises(openai.BadRequestError, match="no price"):
        oai.chat.completions.create(model="gpt-9", messages=CHAT)
    meter.refuse_with = StoreUnavailable("database unreachable")
    with pytest.raises(openai.InternalServerError) as unavailable:
        oai.chat.completions.create(model="gpt-4o", messages=CHAT)
    assert unavailable.value.status_code == 503
    assert meter.settled == [] and meter.cancelled == []


def test_model_not_served_is_refused_before_authorize(mock_url: str, meter: FakeMeter) -> None:
    config = gateway_config(mock_url, openai_models=("gpt-*",))
    with start_gateway(config, meter) as url:
        with openai.OpenAI(base_url=f"{url}/v1", api_key=GOOD_KEY, max_retries=0) as client:
            with pytest.raises(openai.NotFoundError) as error:
                client.chat.completions.create(model="llama-3", messages=CHAT)
            assert error.value.code == "model_not_found"
            assert client.chat.completions.create(model="gpt-4o", messages=CHAT).usage
    assert [f.model for f in meter.authorized] == ["gpt-4o"]


def test_unreachable_provider_cancels_the_hold(meter: FakeMeter) -> None:
    with start_gateway(gateway_config("http://127.0.0.1:9"), meter) as url:
        with openai.OpenAI(base_url=f"{url}/v1", api_key=GOOD_KEY, max_retries=0) as client:
            with pytest.raises(openai.InternalServerError) as error:
                client.chat.completions.create(model="gpt-4o", messages=CHAT)
    assert error.value.status_code == 502 and error.value.code == "upstream_unreachable"
    assert [status for _, status in meter.cancelled] == [502] and meter.settled == []


def test_unknown_routes_and_methods(gateway: str) -> None:
    with httpx2.Client(timeout=10) as client:
        missing = client.post(f"{gateway}/v1/completions", json={}, headers=OPENAI_AUTH)
        wrong = client.get(f"{gateway}/v1/chat/completions", headers=OPENAI_AUTH)
        health = client.get(f"{gateway}/health")
    assert missing.status_code == 404 and "Invalid URL" in missing.json()["error"]["message"]
    assert wrong.status_code == 405
    assert health.json() == {"status": "ok"}


def test_gzip_bodies_are_accepted(gateway: str, meter: FakeMeter) -> None:
    body = gzip.compress(orjson.dumps({"model": "gpt-4o", "messages": CHAT}))
    reply = post(
        f"{gateway}/v1/chat/completions", body, {**OPENAI_AUTH, "content-encoding": "gzip"}
    )
    assert reply.status_code == 200 and reply.json()["usage"]["completion_tokens"] == 12
    zstd = post(f"{gateway}/v1/chat/completions", body, {**OPENAI_AUTH, "content-encoding": "br"})
    assert zstd.status_code == 415


def test_metrics_count_requests_refusals_holds_and_charges(gateway: str, meter: FakeMeter) -> None:
    with openai.OpenAI(base_url=f"{gateway}/v1", api_key=GOOD_KEY, max_retries=0) as client:
        raw = client.chat.completions.with_raw_response.create(model="gpt-4o", messages=CHAT)
        usage = raw.parse().usage
        assert usage is not None
        charged = (usage.prompt_tokens + usage.completion_tokens) * NANOUSD_PER_TOKEN
        assert raw.headers["x-tokenwage-cost-usd"] == Money(charged).exact()
        meter.refuse_with = AllowanceExhausted("spent", available_nanousd=0, needed_nanousd=1)
        with pytest.raises(openai.RateLimitError):
            client.chat.completions.create(model="gpt-4o", messages=CHAT)
    with httpx2.Client() as http:
        text = http.get(f"{gateway}/metrics").text
    for line in (
        'tokenwage_gateway_requests_total{endpoint="openai.chat",status="200"} 1.0',
        'tokenwage_gateway_requests_total{endpoint="openai.chat",status="429"} 1.0',
        'tokenwage_gateway_budget_rejections_total{endpoint="openai.chat",'
        'reason="AllowanceExhausted"} 1.0',
        'tokenwage_gateway_reserved_nanousd_total{endpoint="openai.chat"} 5e+06',
        'tokenwage_gateway_settled_total{endpoint="openai.chat",usage="reported"} 1.0',
        'tokenwage_gateway_settled_nanousd_total{endpoint="openai.chat"} '
        + floatToGoString(charged),
        'tokenwage_gateway_overhead_seconds_count{endpoint="openai.chat"} 2.0',
    ):
        assert line in text, line


def test_access_log_has_no_secrets_and_no_prompt(mock_url: str, meter: FakeMeter) -> None:
    sink = io.BytesIO()
    with start_gateway(gateway_config(mock_url), meter, access_log=AccessLog(sink)) as url:
        with openai.OpenAI(base_url=f"{url}/v1", api_key=GOOD_KEY, max_retries=0) as client:
            client.chat.completions.create(model="gpt-4o", messages=CHAT)
            with pytest.raises(openai.AuthenticationError):
                client.chat.completions.create(
                    model="gpt-4o", messages=CHAT, extra_headers={"authorization": "Bearer sk-x"}
                )
    lines = [orjson.loads(line) for line in sink.getvalue().splitlines()]
    assert [(e["status"], e["endpoint"]) for e in lines] == [
        (200, "openai.chat"),
        (401, "openai.chat"),
    ]
    assert lines[0]["key"] == "twk_0000aaaa" and lines[0]["output_tokens"] == 12
    assert lines[1]["error"] == "Unauthenticated"
    logged = sink.getvalue()
    assert GOOD_KEY.encode() not in logged and b"sk-x" not in logged and b"Be brief" not in logged
