"""Persistence for the organisation, teams, people and compensation packages."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import Connection, Row, insert, select, update

from tokenwage.core.errors import Conflict, InvalidInput, NotFound
from tokenwage.core.money import Money
from tokenwage.core.org import Org, Person, Role, Team, check_slug, normalise_email
from tokenwage.core.package import (
    CapMode,
    Package,
    Period,
    Rollover,
    TokenAllowance,
)
from tokenwage.storage.schema import org, packages, people, teams


def person_account(person_id: int) -> str:
    return f"person:{person_id}"


def pool_account(team_slug: str) -> str:
    return f"pool:{team_slug}"


UNATTRIBUTED = "unattributed"


@dataclass(frozen=True)
class TeamPool:
    """A team's shared pool: ``amount`` credited every ``period`` from ``start``."""

    team_slug: str
    amount: Money
    period: Period
    start: date


class OrgRepo:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    # -- org ------------------------------------------------------------------------------
    def get_org(self) -> Org:
        row = self.conn.execute(select(org).order_by(org.c.id)).first()
        if row is None:
            raise NotFound("the organisation is not set up; run `tokenwage init --org NAME`")
        return Org(name=row.name, timezone=row.timezone, currency=row.currency)

    def has_org(self) -> bool:
        return self.conn.execute(select(org.c.id)).first() is not None

    def save_org(self, value: Org) -> None:
        fields = {"name": value.name, "timezone": value.timezone, "currency": value.currency}
        if self.has_org():
            self.conn.execute(update(org).values(**fields))
        else:
            self.conn.execute(insert(org).values(created_utc=datetime.now(UTC), **fields))

    # -- teams ----------------------------------------------------------------------------
    def add_team(self, team: Team) -> int:
        if self._team_id(team.slug) is not None:
            raise Conflict(f"team {team.slug!r} already exists")
        parent_id = self.team_id(team.parent_slug) if team.parent_slug else None
        result = self.conn.execute(
            insert(teams).values(
                slug=team.slug, name=team.name, parent_id=parent_id, created_utc=datetime.now(UTC)
            )
        )
        return int(result.inserted_primary_key[0])  # type: ignore[index]

    def _team_id(self, slug: str) -> int | None:
        found = self.conn.execute(select(teams.c.id).where(teams.c.slug == slug)).scalar()
        return int(found) if found is not None else None

    def team_id(self, slug: str) -> int:
        found = self._team_id(check_slug(slug))
        if found is None:
            raise NotFound(f"no team {slug!r}; see `tokenwage team list`")
        return found

    def list_teams(self) -> list[Team]:
        parent = teams.alias("parent")
        q = (
            select(teams.c.slug, teams.c.name, parent.c.slug.label("parent_slug"))
            .outerjoin(parent, parent.c.id == teams.c.parent_id)
            .order_by(teams.c.slug)
        )
        return [Team(r.slug, r.name, r.parent_slug) for r in self.conn.execute(q)]

    def set_pool(
        self, slug: str, amount: Money | None, period: Period | None, start: date | None = None
    ) -> None:
        if amount is not None and amount.nanousd < 0:
            raise InvalidInput("a team pool allowance cannot be negative")
        self.conn.execute(
            update(teams)
            .where(teams.c.id == self.team_id(slug))
            .values(
                pool_amount_nanousd=amount.nanousd if amount else None,
                pool_period=str(period) if period else None,
                pool_from=start,
            )
        )

    def pools(self) -> list[TeamPool]:
        q = select(
            teams.c.slug, teams.c.pool_amount_nanousd, teams.c.pool_period, teams.c.pool_from
        ).where(teams.c.pool_amount_nanousd.is_not(None))
        return [
            TeamPool(r.slug, Money(r.pool_amount_nanousd), Period(r.pool_period), r.pool_from)
            for r in self.conn.execute(q)
        ]

    # -- people ---------------------------------------------------------------------------
    def add_person(self, person: Person) -> int:
        if self._person_id(person.email) is not None:
            raise Conflict(f"a person with email {person.email} already exists")
        result = self.conn.execute(
            insert(people).values(
                email=person.email, **self._columns(person), created_utc=datetime.now(UTC)
            )
        )
        return int(result.inserted_primary_key[0])  # type: ignore[index]

    def update_person(self, person_id: int, person: Person) -> None:
        """Write ``person``'s fields over the row ``person_id``; its email stays."""
        self.conn.execute(
            update(people).where(people.c.id == person_id).values(**self._columns(person))
        )

    def _columns(self, person: Person) -> dict[str, Any]:
        """The row's columns but email and created_utc, the team and manager looked up."""
        return {
            "name": person.name.strip(),
            "team_id": self.team_id(person.team_slug) if person.team_slug else None,
            "manager_id": self.person_id(person.manager_email) if person.manager_email else None,
            "level": person.level,
            "role": str(person.role),
            "start_date": person.start_date,
            "end_date": person.end_date,
        }

    def _person_id(self, email: str) -> int | None:
        q = select(people.c.id).where(people.c.email == normalise_email(email))
        found = self.conn.execute(q).scalar()
        return int(found) if found is not None else None

    def person_id(self, email: str) -> int:
        found = self._person_id(email)
        if found is None:
            raise NotFound(f"no person with email {email!r}; see `tokenwage person list`")
        return found

    def _people_query(self) -> Any:
        manager = people.alias("manager")
        return (
            select(people, teams.c.slug.label("team_slug"), manager.c.email.label("manager_email"))
            .outerjoin(teams, teams.c.id == people.c.team_id)
            .outerjoin(manager, manager.c.id == people.c.manager_id)
        )

    def get_person(self, email: str) -> Person:
        row = self.conn.execute(
            self._people_query().where(people.c.email == normalise_email(email))
        ).first()
        if row is None:
            raise NotFound(f"no person with email {email!r}; see `tokenwage person list`")
        return _person(row)

    def get_person_by_id(self, person_id: int) -> Person:
        row = self.conn.execute(self._people_query().where(people.c.id == person_id)).first()
        if row is None:
            raise NotFound(f"no person with id {person_id}")
        return _person(row)

    def list_people(self, team_slug: str | None = None) -> list[Person]:
        q = self._people_query().order_by(people.c.email)
        if team_slug:
            q = q.where(people.c.team_id == self.team_id(team_slug))
        return [_person(r) for r in self.conn.execute(q)]

    # -- packages -------------------------------------------------------------------------
    def add_package(self, email: str, pkg: Package) -> int:
        person_id = self.person_id(email)
        for existing in self.packages_for(person_id):
            if existing.overlaps(pkg):
                until = existing.effective_to or "open-ended"
                raise Conflict(
                    f"{email} already has a package from {existing.effective_from} to {until}; "
                    f"a new one must start after it (or end the old one first with --end)"
                )
        a = pkg.allowance
        result = self.conn.execute(
            insert(packages).values(
                person_id=person_id,
                effective_from=pkg.effective_from,
                effective_to=pkg.effective_to,
                base_salary_nanousd=pkg.base_salary.nanousd,
                bonus_target_nanousd=pkg.bonus_target.nanousd,
                equity_per_year_nanousd=pkg.equity_per_year.nanousd,
                benefits_overhead_nanousd=pkg.benefits_overhead.nanousd,
                allowance_nanousd=a.amount.nanousd,
                allowance_period=str(a.period),
                rollover=str(a.rollover),
                expiry_days=a.expiry_days,
                cap_mode=str(a.cap),
                overdraft_nanousd=a.overdraft.nanousd,
                created_utc=datetime.now(UTC),
            )
        )
        return int(result.inserted_primary_key[0])  # type: ignore[index]

    def end_package(self, package_id: int, last_day: date) -> None:
        self.conn.execute(
            update(packages).where(packages.c.id == package_id).values(effective_to=last_day)
        )

    def packages_for(self, person_id: int) -> list[Package]:
        q = (
            select(packages, people.c.email)
            .join(people, people.c.id == packages.c.person_id)
            .where(packages.c.person_id == person_id)
            .order_by(packages.c.effective_from)
        )
        return [_package(r) for r in self.conn.execute(q)]

    def all_packages(self) -> dict[int, list[Package]]:
        q = (
            select(packages, people.c.email)
            .join(people, people.c.id == packages.c.person_id)
            .order_by(packages.c.person_id, packages.c.effective_from)
        )
        out: dict[int, list[Package]] = {}
        for r in self.conn.execute(q):
            out.setdefault(r.person_id, []).append(_package(r))
        return out


def _person(r: Row[Any]) -> Person:
    return Person(
        id=r.id,
        email=r.email,
        name=r.name,
        team_slug=r.team_slug,
        manager_email=r.manager_email,
        level=r.level,
        role=Role(r.role),
        start_date=r.start_date,
        end_date=r.end_date,
    )


def _package(r: Row[Any]) -> Package:
    return Package(
        id=r.id,
        person_email=r.email,
        effective_from=r.effective_from,
        effective_to=r.effective_to,
        base_salary=Money(r.base_salary_nanousd),
        bonus_target=Money(r.bonus_target_nanousd),
        equity_per_year=Money(r.equity_per_year_nanousd),
        benefits_overhead=Money(r.benefits_overhead_nanousd),
        allowance=TokenAllowance(
            amount=Money(r.allowance_nanousd),
            period=Period(r.allowance_period),
            rollover=Rollover.parse(r.rollover),
            expiry_days=r.expiry_days,
            cap=CapMode(r.cap_mode),
            overdraft=Money(r.overdraft_nanousd),
        ),
    )
