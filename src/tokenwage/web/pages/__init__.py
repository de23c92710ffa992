"""The dashboard's HTML pages, one module per page; ``create_web_app`` includes ``ROUTERS``.

Every route takes the viewer from :func:`tokenwage.web.auth.page_viewer` (or ``require``)
and asks :mod:`tokenwage.web.access` what that viewer may see; the numbers come from
:mod:`tokenwage.services.dashboard`.
"""

from __future__ import annotations

from fastapi import APIRouter

from tokenwage.web.pages import budgets, leaderboard, ledger, me, org, team, vendor
from tokenwage.web.pages.common import install_filters

install_filters()

ROUTERS: tuple[APIRouter, ...] = (
    me.router,
    team.router,
    org.router,
    leaderboard.router,
    budgets.router,
    ledger.router,
    vendor.router,
)
