"""Signing in to the dashboard from a script, as a browser does (the /login form and its CSRF
token, then the session cookie on every request), over one keep-alive connection with the
standard library's ``http.client``, so the client adds as little time as possible."""

from __future__ import annotations

import http.client
import re
from dataclasses import dataclass
from http.cookies import SimpleCookie
from urllib.parse import urlencode, urlsplit

_CSRF = re.compile(r'name="csrf"[^>]*value="([^"]+)"|value="([^"]+)"[^>]*name="csrf"')
TIMEOUT_S = 60.0


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes
    location: str | None


def csrf_from(html: str) -> str:
    """The hidden ``csrf`` field of a page's form."""
    m = _CSRF.search(html)
    if m is None:
        raise LookupError("the page has no csrf field")
    return m.group(1) or m.group(2)


class Client:
    """GET and form POST on one connection, keeping the cookies the server sets."""

    def __init__(self, base: str) -> None:
        url = urlsplit(base)
        self.conn = http.client.HTTPConnection(url.hostname or "127.0.0.1", url.port, TIMEOUT_S)
        self.cookies: dict[str, str] = {}

    def get(self, path: str) -> Answer:
        return self._send("GET", path, None, {})

    def post_form(self, path: str, fields: dict[str, str]) -> Answer:
        body = urlencode(fields).encode()
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        return self._send("POST", path, body, headers)

    def close(self) -> None:
        self.conn.close()

    def _send(self, method: str, path: str, body: bytes | None, headers: dict[str, str]) -> Answer:
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        try:
            self.conn.request(method, path, body=body, headers=headers)
            r = self.conn.getresponse()
        except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
            # the server closed the idle keep-alive connection (uvicorn: after 5 s): reopen
            self.conn.close()
            self.conn.request(method, path, body=body, headers=headers)
            r = self.conn.getresponse()
        data = r.read()
        for header in r.headers.get_all("set-cookie") or []:
            for name, morsel in SimpleCookie(header).items():
                self.cookies[name] = morsel.value
        return Answer(r.status, data, r.headers.get("location"))


def sign_in(base: str, email: str, password: str) -> Client:
    """A client on ``base`` with a signed-in session."""
    client = Client(base)
    form = client.get("/login")
    if form.status != 200:
        raise PermissionError(f"GET /login answered {form.status}")
    csrf = csrf_from(form.body.decode())
    r = client.post_form("/login", {"email": email, "password": password, "csrf": csrf})
    if r.status not in (302, 303) or "/login" in (r.location or "/login"):
        client.close()
        raise PermissionError(f"signing in as {email} failed: {r.status} {r.body[:200]!r}")
    return client
