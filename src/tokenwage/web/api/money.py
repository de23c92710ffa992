"""Packages, grants and balances: ``/api/v1/people/{id}/packages``, ``.../package``,
``/api/v1/grants``, ``.../balance`` and ``/api/v1/balances``.

Amounts come in as decimal strings in dollars (``"12.50"``) and go out twice: integer
``*_nanousd`` and an exact ``*_usd`` string. No floats either way.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from tokenwage.core.package import CapMode, Package, Period, Rollover, TokenAllowance
from tokenwage.services import books
from tokenwage.services import packages as service
from tokenwage.storage.org_repo import OrgRepo
from tokenwage.web import access
from tokenwage.web.api.common import (
    PREFIX,
    Admin,
    ApiViewer,
    Cursor,
    Db,
    Limit,
    Page,
    PaidPerson,
    SeenPerson,
    audit,
    money,
    now_utc,
    paged,
    parse_usd,
)

router = APIRouter(prefix=PREFIX, tags=["packages, grants and balances"])
USD_PATTERN = r"^-?\d{1,15}(\.\d{1,9})?$"
Usd = Annotated[str, Field(pattern=USD_PATTERN, description='Dollars as a string: "12.50".')]


def package_json(p: Package) -> dict[str, Any]:
    a = p.allowance
    return {
        "id": p.id,
        "effective_from": p.effective_from,
        "effective_to": p.effective_to,
        **money("base_salary", p.base_salary),
        **money("bonus_target", p.bonus_target),
        **money("equity_per_year", p.equity_per_year),
        **money("benefits_overhead", p.benefits_overhead),
        **money("allowance", a.amount),
        "allowance_period": str(a.period),
        "rollover": str(a.rollover),
        "expiry_days": a.expiry_days,
        "cap": str(a.cap),
        **money("overdraft", a.overdraft),
    }


class PackageIn(BaseModel):
    effective_from: date
    effective_to: date | None = None
    base_salary_usd: Usd
    bonus_target_usd: Usd = "0"
    equity_per_year_usd: Usd = "0"
    benefits_overhead_usd: Usd = "0"
    allowance_usd: Usd
    allowance_period: Period = Period.MONTH
    rollover: str = Field(default="none", description="none, unlimited or capped:N")
    expiry_days: int | None = Field(default=None, ge=1)
    cap: CapMode = CapMode.HARD
    overdraft_usd: Usd = "0"
    supersede: bool = Field(
        default=False, description="End the open-ended package the day before this one."
    )

    def package(self) -> Package:
        return Package(
            base_salary=parse_usd(self.base_salary_usd, "base_salary_usd"),
            bonus_target=parse_usd(self.bonus_target_usd, "bonus_target_usd"),
            equity_per_year=parse_usd(self.equity_per_year_usd, "equity_per_year_usd"),
            benefits_overhead=parse_usd(self.benefits_overhead_usd, "benefits_overhead_usd"),
            allowance=TokenAllowance(
                amount=parse_usd(self.allowance_usd, "allowance_usd"),
                period=self.allowance_period,
                rollover=Rollover.parse(self.rollover),
                expiry_days=self.expiry_days,
                cap=self.cap,
                overdraft=parse_usd(self.overdraft_usd, "overdraft_usd"),
            ),
            effective_from=self.effective_from,
            effective_to=self.effective_to,
        )


class GrantIn(BaseModel):
    person_id: int | None = Field(default=None, description="Grant to this person, or...")
    team: str | None = Field(default=None, description="...to this team's pool.")
    amount_usd: Usd
    reason: str = Field(min_length=1, max_length=500)
    expires_utc: datetime | None = None


@router.get("/people/{person_id}/packages")
def get_packages(person: PaidPerson, db: Db) -> dict[str, Any]:
    """A person's packages over time (the person, finance and admins)."""
    assert person.id is not None
    with db.begin() as conn:
        pkgs = OrgRepo(conn).packages_for(person.id)
    return {"person_id": person.id, "items": [package_json(p) for p in pkgs]}


@router.put("/people/{person_id}/package", status_code=201)
def set_package(person: PaidPerson, body: PackageIn, viewer: Admin, db: Db) -> dict[str, Any]:
    """Add a package from a date (admin); overlapping dates are refused (409)."""
    pkg = body.package()
    with db.begin() as conn:
        package_id = service.set_package(conn, person.email, pkg, supersede=body.supersede)
        detail: dict[str, Any] = {"person": person.email, "from": str(pkg.effective_from)}
        detail["allowance_nanousd"] = pkg.allowance.amount.nanousd
        audit(conn, viewer, "package.set", detail)
        assert person.id is not None
        saved = [p for p in OrgRepo(conn).packages_for(person.id) if p.id == package_id]
    return package_json(saved[0])


@router.post("/grants", status_code=201)
def grant(body: GrantIn, viewer: Admin, db: Db) -> dict[str, Any]:
    """A one-off grant to a person or a team pool (admin)."""
    amount = parse_usd(body.amount_usd, "amount_usd")
    now = now_utc()
    with db.begin() as conn:
        email = None
        if body.person_id is not None:
            email = OrgRepo(conn).get_person_by_id(body.person_id).email
        entry = books.grant(
            conn,
            email=email,
            team=body.team,
            amount=amount,
            reason=body.reason,
            now=now,
            expires_utc=body.expires_utc,
        )
        detail = {"account": entry.account, "amount_nanousd": amount.nanousd}
        audit(conn, viewer, "grant", detail | {"reason": body.reason})
    return {
        "account": entry.account,
        "seq": entry.seq,
        "ref": entry.ref,
        **money("amount", entry.amount_nanousd),
        "expires_utc": entry.expires_utc,
        "recorded_utc": entry.recorded_utc,
    }


def balance_json(b: books.Balance) -> dict[str, Any]:
    a = b.allowance
    return {
        "person_id": b.person.id,
        "email": b.person.email,
        "name": b.person.name,
        **money("balance", b.balance),
        "pool_team": b.pool_team,
        **money("pool_balance", b.pool_balance),
        **money("spendable", b.spendable),
        **money("allowance", a.amount if a else None),
        "allowance_period": str(a.period) if a else None,
        "next_refill_utc": b.next_refill_utc,
    }


@router.get("/people/{person_id}/balance")
def get_balance(person: SeenPerson, db: Db) -> dict[str, Any]:
    """Own balance, team pool and what can still be spent now."""
    with db.begin() as conn:
        (found,) = books.balances(conn, now_utc(), email=person.email)
    return balance_json(found)


@router.get("/balances", response_model=Page[dict[str, Any]])
def list_balances(
    viewer: ApiViewer,
    db: Db,
    team: Annotated[str | None, Query(description="Only this team's slug.")] = None,
    limit: Limit = 100,
    cursor: Cursor = None,
) -> Page[dict[str, Any]]:
    """Balances of everyone the caller may see."""
    with db.begin() as conn:
        visible = access.visible_people(conn, viewer)
        found = books.balances(conn, now_utc(), team=team)
    rows = [balance_json(b) for b in found if visible is None or b.person.id in visible]
    items, next_cursor = paged(rows, lambda r: (r["person_id"],), limit, cursor)
    return Page[dict[str, Any]](items=items, next_cursor=next_cursor)
