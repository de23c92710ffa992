"""The floor for the gateway benchmark: a proxy that does nothing but forward.

    python -m bench.gateway.minimal_proxy --port 9000 --upstream http://127.0.0.1:8000 \\
        --api-key sk-... [--workers 2]

Raw ASGI on uvicorn (uvloop, httptools) with one aiohttp session per worker, the same stack
as the gateway: it reads the body, forwards it with the organisation's key, and streams the
answer back chunk by chunk. No keys, no holds, no metering, no ledger. ``bench.gateway
--baseline`` measures it beside the gateway, on the same machine at the same moment, so the
gateway's cost can be told apart from the machine's.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

import aiohttp
import uvicorn

UPSTREAM_ENV = "BENCH_MINIMAL_UPSTREAM"
KEY_ENV = "BENCH_MINIMAL_KEY"


class MinimalProxy:
    def __init__(self) -> None:
        self.upstream = os.environ[UPSTREAM_ENV]
        self.auth = f"Bearer {os.environ[KEY_ENV]}"
        self.session: aiohttp.ClientSession | None = None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        assert self.session is not None
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {"Authorization": self.auth, "Content-Type": "application/json"}
        url = self.upstream + scope["path"]
        async with self.session.post(url, data=body, headers=headers) as reply:
            kept = [(b"content-type", reply.headers.get("content-type", "").encode())]
            await send({"type": "http.response.start", "status": reply.status, "headers": kept})
            async for chunk in reply.content.iter_any():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b""})

    async def _lifespan(self, receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                connector = aiohttp.TCPConnector(limit=1024)
                self.session = aiohttp.ClientSession(connector=connector)
                await send({"type": "lifespan.startup.complete"})
            else:
                if self.session is not None:
                    await self.session.close()
                await send({"type": "lifespan.shutdown.complete"})
                return


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.gateway.minimal_proxy")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", required=True)
    parser.add_argument("--api-key", required=True)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    os.environ[UPSTREAM_ENV] = args.upstream
    os.environ[KEY_ENV] = args.api_key
    uvicorn.run(
        "bench.gateway.minimal_proxy:MinimalProxy",
        factory=True,
        host="127.0.0.1",
        port=args.port,
        workers=args.workers,
        loop="uvloop",
        http="httptools",
        lifespan="on",
        access_log=False,
        log_level="warning",
    )


if __name__ == "__main__":
    main()
