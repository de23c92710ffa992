"""Organisation, teams and people."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from tokenwage.core.errors import InvalidInput

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")


class Role(StrEnum):
    MEMBER = "member"
    MANAGER = "manager"
    FINANCE = "finance"
    ADMIN = "admin"


@dataclass(frozen=True)
class Org:
    name: str
    timezone: str = "UTC"
    currency: str = "USD"

    def __post_init__(self) -> None:
        zone(self.timezone)
        if self.currency != "USD":
            raise InvalidInput(f"currency {self.currency!r} is not supported; tokenwage books USD")


@dataclass(frozen=True)
class Team:
    slug: str
    name: str
    parent_slug: str | None = None

    def __post_init__(self) -> None:
        check_slug(self.slug)


@dataclass(frozen=True)
class Person:
    email: str
    name: str
    team_slug: str | None = None
    manager_email: str | None = None
    level: str | None = None
    role: Role = Role.MEMBER
    start_date: date | None = None
    end_date: date | None = None
    id: int | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "email", normalise_email(self.email))
        if not self.name.strip():
            raise InvalidInput(f"person {self.email} needs a name")
        if self.manager_email is not None:
            object.__setattr__(self, "manager_email", normalise_email(self.manager_email))
            if self.manager_email == self.email:
                raise InvalidInput(f"{self.email} cannot be their own manager")
        if self.start_date and self.end_date and self.end_date < self.start_date:
            raise InvalidInput(
                f"{self.email}: end date {self.end_date} is before start date {self.start_date}"
            )

    def employed_on(self, day: date) -> bool:
        if self.start_date and day < self.start_date:
            return False
        return not (self.end_date and day > self.end_date)


def normalise_email(email: str) -> str:
    cleaned = email.strip().lower()
    if not _EMAIL.match(cleaned):
        raise InvalidInput(f"not an email address: {email!r}")
    return cleaned


def check_slug(slug: str) -> str:
    if not _SLUG.match(slug):
        raise InvalidInput(
            f"team id {slug!r} must be lowercase letters, digits and dashes (like 'platform-infra')"
        )
    return slug


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidInput(
            f"unknown time zone {name!r} (use an IANA name like 'Europe/Berlin')"
        ) from None
