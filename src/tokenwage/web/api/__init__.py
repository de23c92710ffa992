"""The REST API, ``/api/v1/...``: one router per resource."""

from __future__ import annotations

from fastapi import APIRouter

from tokenwage.web.api import books, keys, money, people, tokens, usage, whoami

ROUTERS: tuple[APIRouter, ...] = (
    whoami.router,
    people.router,
    money.router,
    keys.router,
    usage.router,
    books.router,
    tokens.router,
)
