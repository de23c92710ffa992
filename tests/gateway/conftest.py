"""Fixtures: the mock provider, the gateway in front of it (with a fake meter), SDK clients."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import anthropic
import httpx2
import openai
import pytest
from pydantic import SecretStr

from tests.gateway.fake_meter import GOOD_KEY, FakeMeter
from tokenwage.gateway.config import GatewayConfig, ProviderConfig
from tokenwage.gateway.testing import start_gateway
from tokenwage.mock_upstream import MockConfig
from tokenwage.mock_upstream.exchange import RequestIds
from tokenwage.mock_upstream.testing import start_mock_upstream

ORG_KEY = "sk-org-0123456789abcdef"  # the only key the mock accepts: client keys must not reach it
SEED = 7
HAIKU = "claude-haiku-4-5"
CHAT: Any = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "Hi tokens:12"},
]
MESSAGES: Any = [{"role": "user", "content": "Say hi tokens:12"}]


def gateway_config(upstream_url: str, openai_models: tuple[str, ...] = ()) -> GatewayConfig:
    key = SecretStr(ORG_KEY)
    return GatewayConfig(
        providers=(
            ProviderConfig(
                name="openai",
                kind="openai",
                base_url=upstream_url,
                api_key=key,
                models=openai_models,
            ),
            ProviderConfig(name="anthropic", kind="anthropic", base_url=upstream_url, api_key=key),
        )
    )


def fault(name: str) -> dict[str, str]:
    return {"x-mock-fault": name}


_CREATED = re.compile(rb'"(created|created_at)":\d+')


def same_bytes(body: bytes) -> bytes:
    """A body with its timestamps blanked (two mocks may answer a second apart)."""
    return _CREATED.sub(rb'"\1":0', body)


def mock_requests_seen(url: str) -> int:
    """How many requests the mock has answered, read off its deterministic request ids
    (the n-th request of a seed always gets the n-th id); the probe itself is not counted."""
    with httpx2.Client() as client:
        reply = client.get(f"{url}/v1/models", headers={"authorization": f"Bearer {ORG_KEY}"})
    probe = reply.headers["x-request-id"].removeprefix("req_")
    ids = RequestIds(SEED)
    for n in range(1, 100_000):
        if ids.next_hex() == probe:
            return n - 1
    raise AssertionError(f"request id {probe} is not one of seed {SEED}'s")


@pytest.fixture(scope="module")
def mock_url() -> Iterator[str]:
    with start_mock_upstream(MockConfig(seed=SEED, expected_api_key=ORG_KEY)) as url:
        yield url


@pytest.fixture
def meter() -> FakeMeter:
    return FakeMeter()


@pytest.fixture
def gateway(mock_url: str, meter: FakeMeter) -> Iterator[str]:
    with start_gateway(gateway_config(mock_url), meter) as url:
        yield url


@pytest.fixture
def oai(gateway: str) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=f"{gateway}/v1", api_key=GOOD_KEY, max_retries=0) as client:
        yield client


@pytest.fixture
def claude(gateway: str) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(base_url=gateway, api_key=GOOD_KEY, max_retries=0) as client:
        yield client


@pytest.fixture
def direct_oai(mock_url: str) -> Iterator[openai.OpenAI]:
    """The same mock without the gateway: what the provider answers."""
    with openai.OpenAI(base_url=f"{mock_url}/v1", api_key=ORG_KEY, max_retries=0) as client:
        yield client


@pytest.fixture
def direct_claude(mock_url: str) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(base_url=mock_url, api_key=ORG_KEY, max_retries=0) as client:
        yield client


@dataclass
class Twins:
    """Two fresh mocks with one seed: the gateway in front of ``behind``, ``direct`` alone.
    The same requests in the same order get byte-identical answers from both."""

    gateway: str
    direct: str
    meter: FakeMeter


@pytest.fixture
def twins() -> Iterator[Twins]:
    config = MockConfig(seed=SEED, expected_api_key=ORG_KEY, stream_chunks=4)
    meter = FakeMeter()
    with start_mock_upstream(config) as behind, start_mock_upstream(config) as direct:
        with start_gateway(gateway_config(behind), meter) as url:
            yield Twins(url, direct, meter)
