"""Organisation (``/org``, finance and admin): spend by team, model and day; allowances
committed versus spent; fully loaded cost per team and person; offers side by side."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

from sqlalchemy import Connection

from tokenwage.core import analytics
from tokenwage.core.analytics import TeamUse
from tokenwage.core.compensation import CostBreakdown, OfferRow, compare_offers
from tokenwage.core.errors import InvalidInput
from tokenwage.core.money import Money
from tokenwage.core.package import CapMode, Package, Period, TokenAllowance
from tokenwage.core.periods import count_period_starts, local_date
from tokenwage.services.dashboard.usage import UsageTotals, Window, model_label, usage_by
from tokenwage.services.packages import PersonCost, loaded_costs
from tokenwage.storage.org_repo import OrgRepo

RANGES = {"month": "This month", "quarter": "This quarter", "ytd": "Year to date"}
RANGES |= {"30d": "Last 30 days", "90d": "Last 90 days"}
NO_TEAM = "(no team)"


def range_window(name: str, now: datetime, tz: str) -> Window:
    """The local dates of a named range, ending today."""
    today = local_date(now, tz)
    if name == "month":
        first = today.replace(day=1)
    elif name == "quarter":
        first = date(today.year, 3 * ((today.month - 1) // 3) + 1, 1)
    elif name == "ytd":
        first = date(today.year, 1, 1)
    elif name in ("30d", "90d"):
        first = today - timedelta(days=int(name[:-1]) - 1)
    else:
        raise InvalidInput(f"range {name!r} must be one of {', '.join(RANGES)}")
    return Window(first, today, today)


@dataclass(frozen=True)
class TeamRow:
    slug: str
    name: str
    people: int
    usage: UsageTotals
    cost: CostBreakdown  # members' costs summed, plus the pool's committed allowance
    pool_committed: Money

    @property
    def committed(self) -> Money:
        return self.cost.token_allowance_committed

    @property
    def utilisation(self) -> Decimal | None:
        return analytics.ratio(self.usage.cost_nanousd, self.committed.nanousd)


@dataclass(frozen=True)
class OrgPage:
    range_name: str
    window: Window
    total: UsageTotals
    teams: list[TeamRow]
    people: list[PersonCost]
    by_model: list[tuple[str, UsageTotals]]
    by_day: list[tuple[date, dict[str, int]]]  # cost per team per day
    fairness: list[TeamUse]

    @property
    def committed(self) -> Money:
        return Money.total(t.committed for t in self.teams)

    @property
    def utilisation(self) -> Decimal | None:
        return analytics.ratio(self.total.cost_nanousd, self.committed.nanousd)

    @property
    def cost(self) -> CostBreakdown:
        total = CostBreakdown.zero()
        for t in self.teams:
            total = total + t.cost
        return total


def org_page(conn: Connection, range_name: str, now: datetime) -> OrgPage:
    repo = OrgRepo(conn)
    tz = repo.get_org().timezone
    window = range_window(range_name, now, tz)
    first, last = window.first, window.last
    everyone = repo.list_people()
    team_of = {p.id: p.team_slug or "" for p in everyone}
    # one scan of usage_daily per day and person gives the per-person, per-team and
    # per-day sums; one more per model
    spend: dict[int, UsageTotals] = {}
    per_day: dict[date, dict[str, int]] = {d: {} for d in window.days}
    for (day, person_id), v in usage_by(conn, ["day", "person_id"], first, last).items():
        spend[person_id] = spend.get(person_id, UsageTotals()) + v
        team = team_of.get(person_id, "")
        per_day[day][team] = per_day[day].get(team, 0) + v.cost_nanousd
    by_team: dict[str, UsageTotals] = {}
    for person_id, v in spend.items():
        team = team_of.get(person_id, "")
        by_team[team] = by_team.get(team, UsageTotals()) + v
    people_rows = loaded_costs(
        everyone,
        repo.all_packages(),
        first,
        last,
        lambda person_id: spend.get(person_id, UsageTotals()).cost,
    )
    names = {t.slug: t.name for t in repo.list_teams()}
    pools = {p.team_slug: p for p in repo.pools()}
    teams = []
    for slug in [*sorted(names), None]:
        members = [r for r in people_rows if r.person.team_slug == slug]
        if slug is None and not members:
            continue
        pool = pools.get(slug or "")
        pool_committed = Money(0)
        if pool is not None:
            starts = count_period_starts(pool.period, max(first, pool.start), last)
            pool_committed = pool.amount.times(starts)
        cost = CostBreakdown.zero()
        for r in members:
            cost = cost + r.cost
        cost = cost + CostBreakdown(
            Money(0), Money(0), Money(0), Money(0), pool_committed, Money(0)
        )
        teams.append(
            TeamRow(
                slug=slug or "",
                name=names.get(slug or "", NO_TEAM),
                people=len(members),
                usage=by_team.get(slug or "", UsageTotals()),
                cost=cost,
                pool_committed=pool_committed,
            )
        )
    models = usage_by(conn, ["provider", "model"], first, last)
    fairness = analytics.team_fairness(
        {
            t.name: [
                (r.cost.token_allowance_committed.nanousd, r.cost.token_spend_actual.nanousd)
                for r in people_rows
                if (r.person.team_slug or "") == t.slug
            ]
            for t in teams
        }
    )
    return OrgPage(
        range_name=range_name,
        window=window,
        total=sum((t.usage for t in teams), UsageTotals()),
        teams=teams,
        people=sorted(people_rows, key=lambda r: (-r.total.nanousd, r.person.name)),
        by_model=sorted(
            ((model_label(*k), v) for k, v in models.items()),
            key=lambda kv: (-kv[1].cost_nanousd, kv[0]),
        ),
        by_day=sorted(per_day.items()),
        fairness=fairness,
    )


# -- offers -------------------------------------------------------------------------------

OFFER_FIELDS = ("name", "salary", "bonus", "equity", "overhead", "allowance", "period")


@dataclass(frozen=True)
class OfferForm:
    offers: list[dict[str, str]]
    utilisation_percent: str = "70"


def default_offers() -> OfferForm:
    return OfferForm(
        [
            {"name": "A", "salary": "180000", "bonus": "18000", "equity": "40000"}
            | {"overhead": "36000", "allowance": "200", "period": "workday"},
            {"name": "B", "salary": "200000", "bonus": "20000", "equity": "40000"}
            | {"overhead": "40000", "allowance": "1500", "period": "month"},
            {"name": "C", "salary": "170000", "bonus": "17000", "equity": "60000"}
            | {"overhead": "34000", "allowance": "5000", "period": "month"},
        ]
    )


def compare(form: OfferForm, today: date) -> list[OfferRow]:
    """Offers (those with a salary filled in) over a standard year, with core's comparison."""
    offers: list[tuple[str, Package]] = []
    for i, raw in enumerate(form.offers):
        if not raw.get("salary", "").strip():
            continue
        name = raw.get("name", "").strip() or chr(ord("A") + i)
        offers.append((name, _offer_package(name, raw, today)))
    try:
        share = Decimal(form.utilisation_percent.strip().rstrip("%")) / 100
    except ArithmeticError:
        raise InvalidInput(
            f"expected utilisation {form.utilisation_percent!r} must be a percentage like 70"
        ) from None
    return compare_offers(offers, share)


def _offer_package(name: str, raw: Mapping[str, str], today: date) -> Package:
    def money(field: str) -> Money:
        text = raw.get(field, "").strip() or "0"
        try:
            return Money.parse(text)
        except InvalidInput as exc:
            raise InvalidInput(f"offer {name}: {field}: {exc}") from None

    try:
        period = Period(raw.get("period") or "month")
    except ValueError:
        raise InvalidInput(
            f"offer {name}: period must be one of {', '.join(p.value for p in Period)}"
        ) from None
    return Package(
        base_salary=money("salary"),
        bonus_target=money("bonus"),
        equity_per_year=money("equity"),
        benefits_overhead=money("overhead"),
        allowance=TokenAllowance(money("allowance"), period, cap=CapMode.HARD),
        effective_from=today,
    )


def offer_form(fields: Mapping[str, str], count: int = 3) -> OfferForm:
    """The form's fields ``o0_salary``, ``o1_period``... and ``utilisation``."""
    offers = [{f: fields.get(f"o{i}_{f}", "") for f in OFFER_FIELDS} for i in range(count)]
    return OfferForm(offers, fields.get("utilisation", "70"))
