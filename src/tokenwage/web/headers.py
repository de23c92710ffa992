"""Security headers on every dashboard and API response (never on the gateway's paths,
which the dispatcher sends elsewhere): no framing by other sites, no MIME sniffing, no
cross-site referrer, no caching of signed-in pages, and a content security policy that runs
only our own script files."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"x-frame-options", b"SAMEORIGIN"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
)
NO_STORE = (b"cache-control", b"no-store")
# Scripts only from our own files (no inline script, no eval, no CDN); inline styles are
# allowed for the statement's <style> and the utilisation meters' widths. /api/docs is left
# out: Swagger UI starts itself with an inline script.
CSP = (
    b"content-security-policy",
    b"default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    b"img-src 'self' data:; object-src 'none'; base-uri 'self'; frame-ancestors 'self'",
)
CSP_EXEMPT = ("/api/docs",)


class SecurityHeaders:
    """Pure ASGI middleware (no request body buffering, streaming untouched)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = scope["path"].startswith("/static/")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                extra = HEADERS if static else (*HEADERS, NO_STORE)
                if not static and scope["path"] not in CSP_EXEMPT:
                    extra = (*extra, CSP)
                headers += [h for h in extra if h[0] not in present]
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)
