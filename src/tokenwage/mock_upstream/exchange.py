"""One request in flight, and the deterministic ids the mock hands out."""

from __future__ import annotations

import hashlib
import itertools
import time
from dataclasses import dataclass

from tokenwage.mock_upstream.asgi import Scope
from tokenwage.mock_upstream.config import MockConfig
from tokenwage.mock_upstream.faults import FAULT_HEADER, ForcedFaults

_WANTED_HEADERS = frozenset(
    {b"authorization", b"x-api-key", b"anthropic-version", FAULT_HEADER.encode()}
)


class RequestIds:
    """Hex ids from ``blake2b(counter, key=seed)``: the n-th request of a seed always gets the same.

    ``salt`` tells worker processes apart (each has its own counter) so their ids never collide.
    """

    def __init__(self, seed: int, salt: str = "") -> None:
        self._key = f"{seed}:{salt}".encode()[:64]
        self._counter = itertools.count(1)

    def next_hex(self) -> str:
        number = next(self._counter)
        return hashlib.blake2b(number.to_bytes(8, "big"), digest_size=12, key=self._key).hexdigest()


def interesting_headers(scope: Scope) -> dict[str, str]:
    """The handful of request headers the mock reads, lower-cased names, latin-1 values."""
    found: dict[str, str] = {}
    for name, value in scope["headers"]:
        if name in _WANTED_HEADERS:
            found[name.decode("latin-1")] = value.decode("latin-1")
    return found


@dataclass(slots=True)
class Exchange:
    """Everything a handler needs about the request it answers."""

    config: MockConfig
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    id_hex: str
    faults: ForcedFaults
    created_s: int

    @classmethod
    def build(
        cls, config: MockConfig, scope: Scope, body: bytes, id_hex: str, faults: ForcedFaults
    ) -> Exchange:
        return cls(
            config=config,
            method=scope["method"],
            path=scope["path"],
            headers=interesting_headers(scope),
            body=body,
            id_hex=id_hex,
            faults=faults,
            created_s=int(time.time()),
        )

    @property
    def request_id(self) -> str:
        return "req_" + self.id_hex
