"""What the page modules share: the viewer dependency, the database, display filters and the
chart data every chart is drawn from (JSON in the page, read by ``static/dashboard.js``)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any

import orjson
from fastapi import Depends, Request
from markupsafe import Markup
from sqlalchemy import Connection

from tokenwage.core.analytics import percent
from tokenwage.core.money import Money
from tokenwage.core.org import zone
from tokenwage.storage.org_repo import OrgRepo
from tokenwage.web.auth import Viewer, page_viewer
from tokenwage.web.context import database
from tokenwage.web.templating import templates

PageViewer = Annotated[Viewer, Depends(page_viewer)]


@contextmanager
def transaction(request: Request) -> Iterator[Connection]:
    """The request's transaction: a read-only snapshot for GET and HEAD."""
    with database(request).begin() as conn:
        yield conn


def org_timezone(conn: Connection) -> str:
    return OrgRepo(conn).get_org().timezone


# -- display ------------------------------------------------------------------------------


def money(value: Money | int | None, places: int = 2) -> str:
    """USD for people by the one rounding rule (``Money.usd``); None as an en dash."""
    if value is None:
        return "–"
    return (value if isinstance(value, Money) else Money(int(value))).usd(places)


def money_fine(value: Money | int | None) -> str:
    """Cents when the amount is whole cents, else to the micro-dollar (a cheap request
    never reads as $0.00)."""
    if value is None:
        return "–"
    amount = value if isinstance(value, Money) else Money(int(value))
    if amount.nanousd and abs(amount.nanousd) < 10_000_000:
        return amount.readable()
    return amount.usd(2)


def tokens(value: int | None) -> str:
    """``1.2M``, ``345k``, ``980``."""
    if value is None:
        return "–"
    for size, suffix in ((10**9, "B"), (10**6, "M"), (10**3, "k")):
        if abs(value) >= size:
            return f"{Decimal(value) / size:.1f}{suffix}"
    return str(value)


def pct(value: Decimal | None, places: int = 0) -> str:
    return percent(value, places)


def local_time(value: datetime | None, tz: str, fmt: str = "%b %d, %H:%M") -> str:
    if value is None:
        return "–"
    return value.astimezone(zone(tz)).strftime(fmt)


def meter_class(share: Decimal | None) -> str:
    if share is None or share < Decimal("0.8"):
        return ""
    return "warn" if share < 1 else "bad"


def meter_width(share: Decimal | None) -> str:
    """CSS width of a utilisation meter, capped at 100%."""
    if share is None:
        return "0%"
    return f"{min(share, Decimal(1)) * 100:.0f}%"


def requests_text(count: int) -> str:
    """``1 request``, ``2 requests``."""
    return f"{count:,} request" + ("" if count == 1 else "s")


def install_filters() -> None:
    env = templates().env
    env.filters.update(
        money=money, tokens=tokens, pct=pct, local_time=local_time, meter_class=meter_class
    )
    env.filters["meter_width"] = meter_width
    env.filters["money_fine"] = money_fine
    env.filters["chart_data"] = chart_data
    env.filters["requests_text"] = requests_text


# -- charts -------------------------------------------------------------------------------


def usd_number(nanousd: int) -> str:
    """Dollars to the cent as a JSON-safe decimal string (charts plot it; books never do)."""
    return Money(nanousd).usd(2).replace("$", "").replace(",", "")


def series(label: str, values: Iterable[int | None], **style: Any) -> dict[str, Any]:
    return {"label": label, "data": [None if v is None else usd_number(v) for v in values], **style}


def chart(
    kind: str, labels: Sequence[str], datasets: Sequence[dict[str, Any]], **options: Any
) -> dict[str, Any]:
    """A chart for ``dashboard.js``: Chart.js type, x labels, datasets of dollar strings."""
    return {"type": kind, "labels": list(labels), "datasets": list(datasets), **options}


def day_labels(days: Iterable[date]) -> list[str]:
    return [d.strftime("%b %d") for d in days]


def chart_data(spec: dict[str, Any]) -> Markup:
    """The spec as JSON safe inside ``<script type="application/json">``."""
    text = orjson.dumps(spec).decode().replace("<", "\\u003c").replace(">", "\\u003e")
    return Markup(text.replace("&", "\\u0026"))  # noqa: S704 - escaped above
