"""``/leaderboard``: every role may look; only people who opted in are on it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response

from tokenwage.services.dashboard import leaderboard as board
from tokenwage.web.pages.common import PageViewer, transaction
from tokenwage.web.pages.vendor import CHART_JS
from tokenwage.web.templating import render

router = APIRouter(include_in_schema=False)


@router.get("/leaderboard", response_class=HTMLResponse)
def leaderboard(
    request: Request,
    viewer: PageViewer,
    period: Annotated[str, Query(max_length=8)] = "30d",
    metric: Annotated[str, Query(max_length=20)] = "spend",
) -> Response:
    with transaction(request) as conn:
        page = board.leaderboard(conn, period, metric, datetime.now(UTC), viewer.person_id)
    return render(
        request,
        "pages/leaderboard.html",
        viewer,
        page=page,
        periods=board.PERIODS,
        metrics=board.METRICS,
        chart_js_url=CHART_JS,
    )
