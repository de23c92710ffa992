"""OIDC single sign-on against a small OpenID provider served on loopback by the test.

The provider does what a real one does for the code flow: discovery, an authorization
endpoint that approves whoever the test says is signing in, a token endpoint checking the
client secret and the PKCE verifier, and RS256-signed ID tokens with the JWKS to check them.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx2
import pytest
import uvicorn
from joserfc import jwt
from joserfc.jwk import RSAKey
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.testclient import TestClient

from tests.web.conftest import Org_, email, settings
from tokenwage.core.errors import InvalidInput
from tokenwage.serving import serve_in_thread
from tokenwage.web.app import create_web_app
from tokenwage.web.sessions import SESSION_COOKIE

CLIENT_ID = "tokenwage-tests"
SECRET = "oidc-client-secret-for-tests"


@dataclass
class Provider:
    """What the provider answers; tests change these to play a misbehaving provider."""

    issuer: str = ""
    signing_in: str = "moe@acme.example"
    email_verified: bool = True
    wrong_nonce: bool = False
    audience: str = CLIENT_ID
    key: RSAKey = field(default_factory=lambda: RSAKey.generate_key(2048, parameters={"kid": "k1"}))
    codes: dict[str, dict[str, str]] = field(default_factory=dict)
    token_requests: int = 0

    def app(self) -> Starlette:
        async def discovery(request: Request) -> Response:
            return JSONResponse(
                {
                    "issuer": self.issuer,
                    "authorization_endpoint": f"{self.issuer}/authorize",
                    "token_endpoint": f"{self.issuer}/token",
                    "jwks_uri": f"{self.issuer}/jwks",
                    "token_endpoint_auth_methods_supported": ["client_secret_basic"],
                    "id_token_signing_alg_values_supported": ["RS256"],
                }
            )

        async def authorize(request: Request) -> Response:
            q = request.query_params
            assert q["client_id"] == CLIENT_ID and q["response_type"] == "code"
            assert q["code_challenge_method"] == "S256" and "openid" in q["scope"].split()
            code = secrets.token_urlsafe(16)
            self.codes[code] = dict(q)
            query = urlencode({"code": code, "state": q["state"]})
            return RedirectResponse(f"{q['redirect_uri']}?{query}", status_code=303)

        async def token(request: Request) -> Response:
            self.token_requests += 1
            form = await request.form()
            basic = request.headers.get("authorization", "").removeprefix("Basic ")
            if base64.b64decode(basic).decode() != f"{CLIENT_ID}:{SECRET}":
                return JSONResponse({"error": "invalid_client"}, status_code=401)
            asked = self.codes.pop(str(form["code"]), None)
            if asked is None or form["redirect_uri"] != asked["redirect_uri"]:
                return JSONResponse({"error": "invalid_grant"}, status_code=400)
            digest = hashlib.sha256(str(form["code_verifier"]).encode()).digest()
            if base64.urlsafe_b64encode(digest).rstrip(b"=").decode() != asked["code_challenge"]:
                return JSONResponse({"error": "invalid_grant", "d": "pkce"}, status_code=400)
            now = int(time.time())
            claims = {
                "iss": self.issuer,
                "sub": "user-1",
                "aud": self.audience,
                "iat": now,
                "exp": now + 300,
                "nonce": "not-yours" if self.wrong_nonce else asked["nonce"],
                "email": self.signing_in,
                "email_verified": self.email_verified,
            }
            id_token = jwt.encode({"alg": "RS256", "kid": "k1"}, claims, self.key)
            return JSONResponse(
                {"access_token": "at", "token_type": "Bearer", "id_token": id_token}
            )

        async def jwks(request: Request) -> Response:
            return JSONResponse({"keys": [self.key.as_dict(private=False)]})

        return Starlette(
            routes=[
                Route("/.well-known/openid-configuration", discovery),
                Route("/authorize", authorize),
                Route("/token", token, methods=["POST"]),
                Route("/jwks", jwks),
            ]
        )


@pytest.fixture
def provider() -> Iterator[Provider]:
    p = Provider()

    def config(**options: Any) -> uvicorn.Config:
        return uvicorn.Config(p.app(), **options)

    with serve_in_thread(config, "oidc-provider") as url:
        p.issuer = url
        yield p


@pytest.fixture
def sso(
    db_url: str, org: Org_, provider: Provider, monkeypatch: pytest.MonkeyPatch
) -> Iterator[TestClient]:
    monkeypatch.setenv("TOKENWAGE_OIDC_CLIENT_SECRET", SECRET)
    app = create_web_app(
        db_url, settings=settings(oidc_issuer=provider.issuer, oidc_client_id=CLIENT_ID)
    )
    with TestClient(app, follow_redirects=False) as c:
        yield c


def through_provider(client: TestClient, next_url: str = "/account") -> Any:
    """Start on our site, let the provider approve, come back: the callback's answer."""
    start = client.get("/login/oidc", params={"next": next_url})
    assert start.status_code == 303
    to_provider = start.headers["location"]
    with httpx2.Client() as browser:
        approved = browser.get(to_provider)
    assert approved.status_code == 303
    back = urlsplit(approved.headers["location"])
    assert back.path == "/login/oidc/callback"
    return client.get(f"{back.path}?{back.query}")


def test_sign_in_with_sso(sso: TestClient, provider: Provider) -> None:
    assert "Sign in with single sign-on" in sso.get("/login").text
    done = through_provider(sso)
    assert done.status_code == 303 and done.headers["location"] == "/account"
    assert SESSION_COOKIE in sso.cookies
    assert email("moe") in sso.get("/account").text


def test_sso_refuses_people_outside_the_directory(sso: TestClient, provider: Provider) -> None:
    provider.signing_in = "stranger@elsewhere.example"
    done = through_provider(sso)
    assert done.status_code == 401 and "not in the tokenwage people directory" in done.text
    assert SESSION_COOKIE not in sso.cookies


def test_sso_refuses_bad_tokens(sso: TestClient, provider: Provider) -> None:
    provider.wrong_nonce = True
    assert through_provider(sso).status_code == 401
    provider.wrong_nonce, provider.audience = False, "someone-else"
    assert "another client" in through_provider(sso).text
    provider.audience, provider.email_verified = CLIENT_ID, False
    assert "verified email" in through_provider(sso).text
    assert SESSION_COOKIE not in sso.cookies


def test_sso_callback_needs_this_browsers_state(sso: TestClient, provider: Provider) -> None:
    start = sso.get("/login/oidc")
    state = parse_qs(urlsplit(start.headers["location"]).query)["state"][0]
    forged = sso.get("/login/oidc/callback", params={"code": "x", "state": state + "x"})
    assert forged.status_code == 401 and provider.token_requests == 0
    sso.cookies.clear()
    no_cookie = sso.get("/login/oidc/callback", params={"code": "x", "state": state})
    assert no_cookie.status_code == 401 and "expired" in no_cookie.text


def test_oidc_settings_are_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TOKENWAGE_OIDC_CLIENT_SECRET", raising=False)
    with pytest.raises(InvalidInput, match="OIDC_CLIENT_ID"):
        settings(oidc_issuer="https://sso.example").check()
    with pytest.raises(InvalidInput, match="TOKENWAGE_OIDC_CLIENT_SECRET"):
        settings(oidc_issuer="https://sso.example", oidc_client_id="x").check()
    with pytest.raises(InvalidInput, match="http"):
        settings(oidc_issuer="sso.example", oidc_client_id="x").check()
    settings().check()  # no issuer: SSO off, nothing needed
