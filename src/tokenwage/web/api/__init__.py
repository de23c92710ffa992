"""The REST API, ``/api/v1/...``: one router per resource."""

from __future__ import annotations

from fastapi import APIRouter

from tokenwage.web.api import whoami

ROUTERS: tuple[APIRouter, ...] = (whoami.router,)
