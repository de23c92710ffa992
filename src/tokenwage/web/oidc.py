"""OpenID Connect single sign-on (authorization code flow with PKCE).

Enabled when ``TOKENWAGE_WEB_OIDC_ISSUER`` is set. ``GET /login/oidc`` sends the browser to
the provider; ``GET /login/oidc/callback`` exchanges the code, checks the ID token (signature
against the provider's JWKS, issuer, audience, expiry, nonce) and signs in the person whose
email matches the token's verified ``email`` claim. Nobody is created: people come from the
people directory, and a person whose dashboard login is disabled is refused.

The state, nonce and PKCE verifier travel in a short-lived HttpOnly cookie; the callback
requires the ``state`` in the URL to match it. Provider documents are cached for an hour.
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from datetime import UTC, datetime
from typing import Any, cast

from authlib.oauth2.rfc7636 import create_s256_code_challenge  # type: ignore[import-untyped]
from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from joserfc.jwt import JWTClaimsRegistry

from tokenwage.core.errors import InvalidInput, StoreUnavailable, Unauthenticated
from tokenwage.core.org import normalise_email
from tokenwage.storage.db import Database
from tokenwage.storage.web_repo import Account, WebRepo
from tokenwage.web.context import web_context
from tokenwage.web.login import login_page, safe_next, start_session
from tokenwage.web.sessions import is_https
from tokenwage.web.settings import WebSettings

router = APIRouter(include_in_schema=False)

FLOW_COOKIE = "tokenwage_oidc"
FLOW_MAX_AGE_S = 600
CACHE_S = 3600
HTTP_TIMEOUT_S = 10
ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "ES256", "ES384", "EdDSA"]


class OidcClient:
    """One relying party: discovery, the authorization URL, the code exchange."""

    def __init__(self, settings: WebSettings) -> None:
        self.issuer = (settings.oidc_issuer or "").rstrip("/")
        self.client_id = settings.oidc_client_id or ""
        self.client_secret = settings.oidc_client_secret()
        self.scopes = settings.oidc_scopes
        self.redirect_url = settings.oidc_redirect_url
        self._lock = threading.Lock()
        self._metadata: tuple[float, dict[str, Any]] | None = None
        self._keys: tuple[float, KeySet] | None = None

    # -- provider documents -----------------------------------------------------------------
    def metadata(self) -> dict[str, Any]:
        with self._lock:
            if self._metadata and time.monotonic() - self._metadata[0] < CACHE_S:
                return self._metadata[1]
        doc = _get_json(f"{self.issuer}/.well-known/openid-configuration")
        if str(doc.get("issuer", "")).rstrip("/") != self.issuer:
            raise InvalidInput(
                f"the OIDC provider says its issuer is {doc.get('issuer')!r}, not {self.issuer!r}"
            )
        for field in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
            if not isinstance(doc.get(field), str):
                raise InvalidInput(f"the OIDC provider's discovery document has no {field}")
        with self._lock:
            self._metadata = (time.monotonic(), doc)
        return doc

    def keys(self, *, refresh: bool = False) -> KeySet:
        with self._lock:
            if not refresh and self._keys and time.monotonic() - self._keys[0] < CACHE_S:
                return self._keys[1]
        key_set = KeySet.import_key_set(cast(Any, _get_json(self.metadata()["jwks_uri"])))
        with self._lock:
            self._keys = (time.monotonic(), key_set)
        return key_set

    # -- the flow ---------------------------------------------------------------------------
    def authorization_url(self, redirect_uri: str, state: str, nonce: str, verifier: str) -> str:
        params = {
            "response_type": "code",
            "client_id": self.client_id,
            "redirect_uri": redirect_uri,
            "scope": self.scopes,
            "state": state,
            "nonce": nonce,
            "code_challenge": create_s256_code_challenge(verifier),
            "code_challenge_method": "S256",
        }
        endpoint = self.metadata()["authorization_endpoint"]
        joiner = "&" if "?" in endpoint else "?"
        return f"{endpoint}{joiner}{urllib.parse.urlencode(params)}"

    def exchange(self, code: str, redirect_uri: str, verifier: str) -> str:
        """The ID token for an authorization code."""
        meta = self.metadata()
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "code_verifier": verifier,
        }
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        secret = self.client_secret.get_secret_value()
        methods = meta.get("token_endpoint_auth_methods_supported") or ["client_secret_basic"]
        if "client_secret_basic" in methods:
            pair = f"{_quote(self.client_id)}:{_quote(secret)}".encode()
            headers["Authorization"] = "Basic " + base64.b64encode(pair).decode()
        else:
            form |= {"client_id": self.client_id, "client_secret": secret}
        body = urllib.parse.urlencode(form).encode()
        reply = _post_json(meta["token_endpoint"], body, headers)
        id_token = reply.get("id_token")
        if not isinstance(id_token, str):
            raise Unauthenticated("the sign-in provider returned no ID token")
        return id_token

    def verified_email(self, id_token: str, nonce: str) -> str:
        """The token's email after checking signature, issuer, audience, expiry and nonce."""
        try:
            try:
                token = jwt.decode(id_token, self.keys(), algorithms=ALGORITHMS)
            except (JoseError, ValueError):  # perhaps the provider rotated its keys
                token = jwt.decode(id_token, self.keys(refresh=True), algorithms=ALGORITHMS)
            JWTClaimsRegistry(
                leeway=60,
                iss={"essential": True, "values": [self.issuer, self.issuer + "/"]},
                sub={"essential": True},
                exp={"essential": True},
                nonce={"essential": True, "value": nonce},
            ).validate(token.claims)
        except (JoseError, ValueError) as exc:
            raise Unauthenticated(f"the sign-in provider's ID token is not valid ({exc})") from exc
        claims = token.claims
        audience = claims.get("aud")
        audiences = audience if isinstance(audience, list) else [audience]
        if self.client_id not in audiences:
            raise Unauthenticated("the ID token was issued for another client")
        email = claims.get("email")
        if not isinstance(email, str) or claims.get("email_verified") is False:
            raise Unauthenticated("the sign-in provider gave no verified email address")
        return email


def _quote(value: str) -> str:
    return urllib.parse.quote(value, safe="")


def _get_json(url: str) -> dict[str, Any]:
    return _request_json(urllib.request.Request(url, headers={"Accept": "application/json"}))


def _post_json(url: str, body: bytes, headers: dict[str, str]) -> dict[str, Any]:
    headers = {"Accept": "application/json", **headers}
    return _request_json(urllib.request.Request(url, data=body, headers=headers, method="POST"))


def _request_json(req: urllib.request.Request) -> dict[str, Any]:
    try:
        with urllib.request.urlopen(req, timeout=HTTP_TIMEOUT_S) as resp:  # noqa: S310
            doc = json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        detail = exc.read()[:300].decode(errors="replace")
        raise Unauthenticated(f"the sign-in provider refused ({exc.code}): {detail}") from exc
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        raise StoreUnavailable(
            f"cannot reach the sign-in provider at {req.full_url}: {exc}"
        ) from exc
    except json.JSONDecodeError as exc:
        raise Unauthenticated(f"the sign-in provider sent non-JSON from {req.full_url}") from exc
    if not isinstance(doc, dict):
        raise Unauthenticated(f"the sign-in provider sent unexpected JSON from {req.full_url}")
    return doc


def _client(request: Request) -> OidcClient:
    oidc = web_context(request).oidc
    if oidc is None:
        raise InvalidInput("single sign-on is not configured")
    return oidc


def _redirect_uri(request: Request, oidc: OidcClient) -> str:
    return oidc.redirect_url or str(request.url_for("oidc_callback"))


@router.get("/login/oidc")
def oidc_start(request: Request, next: str | None = None) -> Response:
    oidc = _client(request)
    state, nonce, verifier = (secrets.token_urlsafe(24) for _ in range(3))
    url = oidc.authorization_url(_redirect_uri(request, oidc), state, nonce, verifier)
    response = RedirectResponse(url, status_code=303)
    flow = json.dumps({"s": state, "n": nonce, "v": verifier, "next": safe_next(next)})
    response.set_cookie(
        FLOW_COOKIE,
        base64.urlsafe_b64encode(flow.encode()).decode(),
        max_age=FLOW_MAX_AGE_S,
        path="/login/oidc",
        httponly=True,
        samesite="lax",
        secure=is_https(request),
    )
    return response


def _flow(request: Request) -> dict[str, str]:
    raw = request.cookies.get(FLOW_COOKIE, "")
    try:
        flow = json.loads(base64.urlsafe_b64decode(raw.encode()))
    except (ValueError, json.JSONDecodeError):
        flow = None
    if not isinstance(flow, dict) or not all(isinstance(flow.get(k), str) for k in "snv"):
        raise Unauthenticated("the single sign-on attempt expired; start again")
    return flow


@router.get("/login/oidc/callback", name="oidc_callback")
def oidc_callback(
    request: Request, code: str | None = None, state: str | None = None, error: str | None = None
) -> Response:
    ctx = web_context(request)
    oidc = _client(request)
    try:
        if error:
            raise Unauthenticated(f"the sign-in provider reported: {error}")
        flow = _flow(request)
        if not code or not state or not secrets.compare_digest(state, flow["s"]):
            raise Unauthenticated("the single sign-on reply does not match this browser's attempt")
        id_token = oidc.exchange(code, _redirect_uri(request, oidc), flow["v"])
        account = _account(ctx.db, oidc.verified_email(id_token, flow["n"]))
    except Unauthenticated as exc:
        return login_page(request, ctx, next_url="/me", status_code=401, error=str(exc))
    response = start_session(request, ctx, account, safe_next(flow.get("next")))
    response.delete_cookie(FLOW_COOKIE, path="/login/oidc")
    return response


def _account(db: Database, email: str) -> Account:
    with db.begin() as conn:
        repo = WebRepo(conn)
        try:
            account = repo.account_by_email(normalise_email(email))
        except InvalidInput:
            account = None
        if account is None:
            raise Unauthenticated(f"{email} is not in the tokenwage people directory; ask an admin")
        login = repo.login(account.person_id)
        if login is not None and login.disabled_utc is not None:
            raise Unauthenticated(f"the dashboard login of {email} is disabled; ask an admin")
        repo.record_login(account.person_id, datetime.now(UTC))
    return account
