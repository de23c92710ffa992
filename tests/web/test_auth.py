"""Signing in and out, sessions, CSRF, rate limits and API tokens, on both databases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update
from starlette.testclient import TestClient

from tests.web.conftest import PASSWORD, Org_, csrf_of, email, login_form_token, settings, sign_in
from tokenwage.storage.db import Database
from tokenwage.storage.schema import audit_log, logins, web_sessions
from tokenwage.web.accounts import create_api_token, disable_login
from tokenwage.web.app import create_web_app
from tokenwage.web.sessions import SESSION_COOKIE


def test_pages_redirect_to_sign_in_with_next(client: TestClient) -> None:
    r = client.get("/account?tab=1")
    assert r.status_code == 303
    assert r.headers["location"] == "/login?next=/account%3Ftab%3D1"
    assert client.get("/").headers["location"] == "/me"


def test_sign_in_sets_a_secure_session_cookie_and_logout_ends_it(
    client: TestClient, db: Database
) -> None:
    token = login_form_token(client)
    r = client.post(
        "/login",
        data={"email": "MOE@acme.example", "password": PASSWORD, "csrf": token, "next": "/account"},
    )
    assert r.status_code == 303 and r.headers["location"] == "/account"
    cookie = r.headers["set-cookie"]
    assert cookie.startswith(f"{SESSION_COOKIE}=")
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Secure" not in cookie
    raw = client.cookies[SESSION_COOKIE]
    with db.begin() as conn:
        stored = conn.execute(select(web_sessions.c.token_sha256)).scalars().all()
    assert len(stored) == 1 and raw not in stored[0]  # only the hash is kept
    page = client.get("/account")
    assert page.status_code == 200 and "moe@acme.example" in page.text
    csrf = csrf_of(client)
    assert client.post("/logout", data={"csrf_token": csrf}).status_code == 303
    with db.begin() as conn:
        assert conn.execute(select(web_sessions)).first() is None
    client.cookies.set(SESSION_COOKIE, raw)  # a stolen cookie is dead after logout
    assert client.get("/account").status_code == 303


def test_cookie_is_secure_over_https(db_url: str, org: Org_) -> None:
    app = create_web_app(db_url, settings=settings())
    with TestClient(app, base_url="https://testserver", follow_redirects=False) as c:
        token = login_form_token(c)
        r = c.post("/login", data={"email": email("moe"), "password": PASSWORD, "csrf": token})
    assert "Secure" in r.headers["set-cookie"]


def test_next_never_leaves_the_site(client: TestClient) -> None:
    token = login_form_token(client)
    for bad in ("https://evil.example/", "//evil.example", "/\\evil.example"):
        r = client.post(
            "/login",
            data={"email": email("moe"), "password": PASSWORD, "csrf": token, "next": bad},
        )
        assert r.headers["location"] == "/me"
        token = login_form_token(client)


def test_bad_sign_in_is_generic(client: TestClient, db: Database) -> None:
    with db.begin() as conn:
        disable_login(conn, email("oli"), actor="tests", now=datetime.now(UTC))
    answers = []
    for who, password in (
        ("moe@acme.example", "wrong-password-123"),  # wrong password
        ("nobody@acme.example", PASSWORD),  # unknown email
        ("oli@acme.example", PASSWORD),  # disabled login
        ("not an email", PASSWORD),
    ):
        token = login_form_token(client)
        r = client.post("/login", data={"email": who, "password": password, "csrf": token})
        assert r.status_code == 401
        assert SESSION_COOKIE not in client.cookies
        answers.append(r.text.replace(who, "WHO").split('name="csrf"')[0])
    assert "Email or password is wrong." in answers[0]
    assert len(set(answers)) == 1  # the same page whatever went wrong


def test_login_form_needs_its_csrf_token(client: TestClient) -> None:
    login_form_token(client)
    r = client.post("/login", data={"email": email("moe"), "password": PASSWORD, "csrf": "x"})
    assert r.status_code == 400 and "expired" in r.text
    assert SESSION_COOKIE not in client.cookies


def test_rate_limit_per_email_then_per_ip(db_url: str, org: Org_) -> None:
    app = create_web_app(
        db_url, settings=settings(login_failures_per_email=3, login_attempts_per_ip=6)
    )
    with TestClient(app, follow_redirects=False) as c:

        def attempt(who: str, password: str) -> int:
            token = login_form_token(c)
            return c.post(
                "/login", data={"email": who, "password": password, "csrf": token}
            ).status_code

        assert [attempt(email("moe"), "wrong-password-1") for _ in range(3)] == [401] * 3
        r_code = attempt(email("moe"), PASSWORD)  # even the right password waits now
        assert r_code == 429
        token = login_form_token(c)
        r = c.post("/login", data={"email": email("moe"), "password": PASSWORD, "csrf": token})
        assert "Too many sign-in attempts" in r.text and int(r.headers["retry-after"]) > 0
        # other emails still work from this address until the per-address limit
        assert attempt(email("mia"), PASSWORD) == 303
        assert attempt(email("max"), "wrong-password-2") == 401
        assert attempt(email("fay"), PASSWORD) == 303
        assert attempt(email("ada"), PASSWORD) == 429  # 6 attempts from one address


def test_changes_need_the_csrf_token(client: TestClient) -> None:
    csrf = sign_in(client, "moe")
    no_token = client.post("/account/api-tokens", data={"name": "x"})
    assert no_token.status_code == 403 and "CSRF" in no_token.text
    wrong = client.post("/account/api-tokens", data={"name": "x", "csrf_token": csrf + "x"})
    assert wrong.status_code == 403
    assert client.post("/logout").status_code == 403
    ok = client.post("/account/api-tokens", data={"name": "x", "csrf_token": csrf})
    assert ok.status_code == 201 and "twa_" in ok.text
    api = client.post("/api/v1/api-tokens", json={"name": "y"})
    assert api.status_code == 403
    assert api.json()["error"]["type"] == "csrf_failed"
    header = client.post("/api/v1/api-tokens", json={"name": "y"}, headers={"X-CSRF-Token": csrf})
    assert header.status_code == 201


def test_sessions_expire_and_idle_out(client: TestClient, db: Database) -> None:
    sign_in(client, "moe")
    with db.begin() as conn:
        conn.execute(
            update(web_sessions).values(last_seen_utc=datetime.now(UTC) - timedelta(hours=3))
        )
    assert client.get("/account").status_code == 303  # idle longer than 120 minutes
    sign_in(client, "moe")
    with db.begin() as conn:
        conn.execute(
            update(web_sessions).values(expires_utc=datetime.now(UTC) - timedelta(seconds=1))
        )
    assert client.get("/account").status_code == 303


def test_disabling_a_login_ends_its_sessions(client: TestClient, db: Database) -> None:
    sign_in(client, "moe")
    with db.begin() as conn:
        disable_login(conn, email("moe"), actor="tests", now=datetime.now(UTC))
    assert client.get("/account").status_code == 303


def test_password_change_checks_the_current_one_and_is_audited(
    client: TestClient, db: Database
) -> None:
    csrf = sign_in(client, "moe")
    new = "another-long-password-2"
    form = {"csrf_token": csrf, "new_password": new, "confirm_password": new}
    r = client.post("/account/password", data={**form, "current_password": "wrong-one-123456"})
    assert r.status_code == 400 and "current password is wrong" in r.text
    r = client.post("/account/password", data={**form, "current_password": PASSWORD})
    assert r.status_code == 303  # signed in again with a fresh session
    assert client.get("/account").status_code == 200
    with db.begin() as conn:
        rows = conn.execute(select(audit_log).where(audit_log.c.action == "login.password_change"))
        (row,) = rows.all()
        hashed = conn.execute(select(logins.c.password_hash)).scalars().all()
    assert row.actor == "moe@acme.example (web)" and new not in row.detail
    assert all(h.startswith("$argon2id$") for h in hashed)
    client.cookies.clear()
    sign_in(client, "moe", new)


def test_api_tokens_authenticate_without_csrf(client: TestClient, db: Database) -> None:
    now = datetime.now(UTC)
    with db.begin() as conn:
        info, raw = create_api_token(conn, email("moe"), "ci", actor="tests", now=now)
    assert raw.startswith(info.prefix + "_")
    bearer = {"Authorization": f"Bearer {raw}"}
    me = client.get("/api/v1/me", headers=bearer)
    assert me.status_code == 200
    assert me.json()["email"] == email("moe") and me.json()["authenticated_by"] == "api_token"
    assert client.post("/api/v1/api-tokens", json={"name": "z"}, headers=bearer).status_code == 201
    other_last = "B" if raw.endswith("A") else "A"  # a token one character off
    for bad in (f"Bearer {raw}x", "Bearer ", "Basic abc", f"Bearer {raw[:-1]}{other_last}"):
        r = client.get("/api/v1/me", headers={"Authorization": bad})
        assert r.status_code == 401 and r.json()["error"]["type"] == "unauthenticated"
    anonymous = client.get("/api/v1/me")
    assert (
        anonymous.status_code == 401 and "api-token create" in anonymous.json()["error"]["message"]
    )
    r = client.delete(f"/api/v1/api-tokens/{info.prefix}", headers=bearer)
    assert r.status_code == 200 and r.json()["revoked_utc"] is not None
    assert client.get("/api/v1/me", headers=bearer).status_code == 401


@pytest.mark.parametrize("expires_days", [1])
def test_expired_api_token_is_refused(client: TestClient, db: Database, expires_days: int) -> None:
    past = datetime.now(UTC) - timedelta(days=2)
    with db.begin() as conn:
        _info, raw = create_api_token(
            conn, email("moe"), "old", actor="tests", now=past, expires_days=expires_days
        )
    assert client.get("/api/v1/me", headers={"Authorization": f"Bearer {raw}"}).status_code == 401


def test_security_headers(client: TestClient) -> None:
    page = client.get("/login")
    assert page.headers["x-frame-options"] == "SAMEORIGIN"
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["cache-control"] == "no-store"
    csp = page.headers["content-security-policy"]
    assert "script-src 'self';" in csp and "unsafe-eval" not in csp
    assert "content-security-policy" not in client.get("/api/docs").headers  # inline start-up
    api = client.get("/api/v1/me")
    assert (
        api.headers["x-frame-options"] == "SAMEORIGIN"
        and api.headers["cache-control"] == "no-store"
    )
    css = client.get("/static/app.css")
    assert css.status_code == 200 and css.headers.get("cache-control") != "no-store"
