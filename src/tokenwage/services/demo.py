"""A realistic, deterministic demo organisation: teams, people, packages and months of usage.

Usage is simulated day by day through the same code paths as real data: allowance runs
credit each period, every coding session is priced with genai-prices and charged to the
person's own allowance, then the team pool; a hard cap refuses what cannot be paid for.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import Connection

from tokenwage.core.errors import Conflict
from tokenwage.core.ledger import Entry, EntryDraft
from tokenwage.core.money import Money
from tokenwage.core.org import Org, Person, Role, Team, zone
from tokenwage.core.package import CapMode, Package, Period, Rollover, TokenAllowance
from tokenwage.core.pricing import PricedUsage, Pricer, PricingPolicy
from tokenwage.core.spending import Funds
from tokenwage.core.usage import TokenUsage
from tokenwage.services import books
from tokenwage.services.dashboard.me import SharingSettings, save_sharing_settings
from tokenwage.services.people import add_person, add_team
from tokenwage.storage.ledger_repo import LedgerRepo
from tokenwage.storage.org_repo import OrgRepo, person_account, pool_account
from tokenwage.storage.usage_rows import record_usage

DEMO_TZ = "America/Los_Angeles"
DEMO_DOMAIN = "acme.example"
TEAMS = (
    ("platform", "Platform"),
    ("product", "Product Engineering"),
    ("data", "Data & ML"),
    ("infra", "Infrastructure"),
    ("mobile", "Mobile"),
)
FIRST = (
    "Ada Grace Linus Barbara Ken Margaret Dennis Frances Guido Radia Tim Hedy Alan Katherine "
    "Donald Sophie John Anita Bjarne Jean Leslie Shafi Edsger Fran Niklaus Adele Yukihiro Mary "
    "Rob Lynn Brian Evelyn Larry Karen Ward Joan Whitfield Susan Vint Carol Butler Ellen Ivan "
    "Ruth Jim Erna Chuck Mitchell"
).split()
LAST = (
    "Lovelace Hopper Torvalds Liskov Thompson Hamilton Ritchie Allen Rossum Perlman Berners "
    "Lamarr Turing Johnson Knuth Wilson Backus Borg Stroustrup Sammet Lamport Goldwasser "
    "Dijkstra Bilas Wirth Goldberg Matsumoto Shaw Pike Conway Kernighan Boyd Page Jones "
    "Cunningham Clarke Diffie Kare Cerf Shaw Lampson Spertus Sutherland Wexelblat Gray Schmidt"
).split()
# (provider, model, share of sessions) per usage style
STYLES: dict[str, tuple[tuple[str, str, int], ...]] = {
    "claude": (
        ("anthropic", "claude-sonnet-4-5", 70),
        ("anthropic", "claude-haiku-4-5", 20),
        ("anthropic", "claude-opus-4-1", 10),
    ),
    "openai": (("openai", "gpt-5", 55), ("openai", "gpt-5-mini", 35), ("openai", "o3", 10)),
    "mixed": (
        ("anthropic", "claude-sonnet-4-5", 45),
        ("openai", "gpt-5", 30),
        ("openai", "gpt-5-mini", 15),
        ("anthropic", "claude-haiku-4-5", 10),
    ),
}
ALIASES = ("Cache Wizard", "Tokenmaxxer", "Prompt Gardener", "Night Owl", "Diff Whisperer")
# Sessions of Claude models come from Claude Code's logs, OpenAI ones from Codex CLI's.
AGENT_SOURCE = {"anthropic": "claude_code", "openai": "codex"}
ENDPOINTS = {"anthropic": "/v1/messages", "openai": "/v1/responses"}
LEVELS = (("L3", 150_000, 100), ("L4", 185_000, 150), ("L5", 225_000, 200), ("L6", 275_000, 300))


@dataclass(frozen=True)
class DemoSummary:
    people: int
    teams: int
    days: int
    entries: int
    usage_sessions: int
    refused_sessions: int
    logins: dict[str, str]  # role -> email


@dataclass
class _Profile:
    person: Person
    allowance: TokenAllowance
    intensity: float  # sessions per workday
    style: str
    weekend: float  # chance of weekend work


class _Cache:
    """Each account's entries, kept current as the demo appends, so runs need no re-reads."""

    def __init__(self, ledger: LedgerRepo) -> None:
        self.ledger = ledger
        self.by_account: dict[str, list[Entry]] = {}
        self.balance: dict[str, int] = {}

    def entries(self, key: str) -> list[Entry]:
        if key not in self.by_account:
            self.by_account[key] = self.ledger.entries(key)
            self.balance[key] = sum(e.amount_nanousd for e in self.by_account[key])
        return self.by_account[key]

    def append(self, drafts: Sequence[EntryDraft], at: datetime) -> list[Entry]:
        for d in drafts:  # load before writing, or the load would see the new rows too
            self.entries(d.account)
        written = self.ledger.append(drafts, at)
        self.add(written)
        return written

    def add(self, written: Sequence[Entry]) -> None:
        """Take in entries another service wrote (their accounts were loaded before)."""
        for e in written:
            self.entries(e.account).append(e)
            self.balance[e.account] += e.amount_nanousd


def seed_demo(
    conn: Connection,
    *,
    now: datetime,
    people: int = 48,
    days: int = 90,
    seed: int = 7,
    progress: Callable[[int, int], None] | None = None,
) -> DemoSummary:
    """Create the demo org in an empty database (refuses one that already has people)."""
    repo = OrgRepo(conn)
    if repo.has_org() and repo.list_people():
        raise Conflict("this database already has people; seed the demo into an empty database")
    rng = random.Random(seed)
    repo.save_org(Org(name="Acme Robotics", timezone=DEMO_TZ))
    start = (now.astimezone(zone(DEMO_TZ)) - timedelta(days=days)).date()
    for slug, name in TEAMS:
        add_team(conn, Team(slug, name))
    repo.set_pool("data", Money.parse("1500"), Period.MONTH, start)
    repo.set_pool("platform", Money.parse("800"), Period.MONTH, start)
    profiles, logins = _people(conn, rng, people, start)
    cache = _Cache(LedgerRepo(conn))
    pricer = Pricer(PricingPolicy())
    sessions = refused = 0
    for i in range(days + 1):
        day = start + timedelta(days=i)
        day_start = datetime.combine(day, time(0, 5), tzinfo=zone(DEMO_TZ)).astimezone(UTC)
        if day_start > now:
            break
        cache.add(books.run_allowances(conn, day_start, entries_of=cache.entries).written)
        if i in (days // 3, 2 * days // 3):
            cache.add(_spot_awards(conn, rng, cache, profiles, day_start))
        done, no = _simulate_day(conn, rng, cache, pricer, profiles, day, now)
        sessions, refused = sessions + done, refused + no
        if progress:
            progress(i + 1, days + 1)
    books.run_allowances(conn, now, entries_of=cache.entries)
    _sharing(conn, profiles, now)
    return DemoSummary(
        people=len(profiles),
        teams=len(TEAMS),
        days=days,
        entries=LedgerRepo(conn).count_entries(),
        usage_sessions=sessions,
        refused_sessions=refused,
        logins=logins,
    )


def _people(
    conn: Connection, rng: random.Random, count: int, start: date
) -> tuple[list[_Profile], dict[str, str]]:
    profiles: list[_Profile] = []
    logins: dict[str, str] = {}
    managers: dict[str, str] = {}
    for i in range(count):
        first, last = FIRST[i % len(FIRST)], LAST[(i * 7) % len(LAST)]
        email = f"{first}.{last}{'' if i < len(FIRST) else i}@{DEMO_DOMAIN}".lower()
        team = TEAMS[i % len(TEAMS)][0]
        if i == 0:
            role, level = Role.ADMIN, LEVELS[3]
        elif i == 1:
            role, level = Role.FINANCE, LEVELS[2]
        elif team not in managers:
            role, level = Role.MANAGER, LEVELS[3]
        else:
            role, level = Role.MEMBER, LEVELS[rng.randrange(len(LEVELS))]
        person = Person(
            email=email,
            name=f"{first} {last}",
            team_slug=team,
            manager_email=managers.get(team),
            level=level[0],
            role=role,
            start_date=start - timedelta(days=rng.randrange(30, 900)),
        )
        person_id = add_person(conn, person)
        if role is Role.MANAGER:
            managers[team] = email
        logins.setdefault(str(role), email)
        allowance = _package(conn, rng, email, level, start)
        style = rng.choice(("claude", "claude", "mixed", "openai"))
        kind = rng.random()
        heavy = kind < 0.15  # the tokenmaxxers
        intensity = (
            rng.uniform(12, 25)
            if heavy
            else rng.uniform(4, 10)
            if kind < 0.6
            else rng.uniform(1, 4)
        )
        saved = OrgRepo(conn).get_person_by_id(person_id)
        profiles.append(_Profile(saved, allowance, intensity, style, 0.25 if heavy else 0.05))
    return profiles, logins


def _sharing(conn: Connection, profiles: list[_Profile], now: datetime) -> None:
    """Three in four join the leaderboard: some by name, some by alias, some anonymously."""
    for i, p in enumerate(profiles):
        assert p.person.id is not None
        if i % 4 == 3:
            continue
        chosen = SharingSettings(
            leaderboard_opt_in=True,
            leaderboard_alias=ALIASES[i % len(ALIASES)] if i % 4 == 1 else None,
            leaderboard_show_name=i % 4 == 0,
            share_detail=i % 4 == 0,
        )
        save_sharing_settings(conn, p.person.id, chosen, now)


def _package(
    conn: Connection, rng: random.Random, email: str, level: tuple[str, int, int], start: date
) -> TokenAllowance:
    _, salary, per_workday = level
    kind = rng.random()
    if kind < 0.6:
        allowance = TokenAllowance(Money.parse(per_workday), Period.WORKDAY)
    elif kind < 0.85:
        allowance = TokenAllowance(
            Money.parse(per_workday * 21),
            Period.MONTH,
            cap=CapMode.SOFT,
            overdraft=Money.parse(200),
        )
    else:
        allowance = TokenAllowance(
            Money.parse(per_workday),
            Period.DAY,
            rollover=Rollover.parse("capped:3"),
            overdraft=Money.parse(50),
        )
    OrgRepo(conn).add_package(
        email,
        Package(
            base_salary=Money.parse(salary + rng.randrange(0, 20) * 1000),
            bonus_target=Money.parse(salary // 10),
            equity_per_year=Money.parse(salary // 4),
            benefits_overhead=Money.parse(salary * 22 // 100),
            allowance=allowance,
            effective_from=start,
        ),
    )
    return allowance


def _spot_awards(
    conn: Connection, rng: random.Random, cache: _Cache, profiles: list[_Profile], at: datetime
) -> list[Entry]:
    written = []
    for p in rng.sample(profiles, 3):
        assert p.person.id is not None
        cache.entries(person_account(p.person.id))
        entry = books.grant(
            conn,
            email=p.person.email,
            team=None,
            amount=Money.parse(rng.choice((250, 500))),
            reason="Spot award: shipped the migration",
            now=at,
        )
        written.append(entry)
    return written


def _simulate_day(
    conn: Connection,
    rng: random.Random,
    cache: _Cache,
    pricer: Pricer,
    profiles: list[_Profile],
    day: date,
    now: datetime,
) -> tuple[int, int]:
    tz = zone(DEMO_TZ)
    weekend = day.weekday() >= 5
    done = refused = 0
    drafts: list[EntryDraft] = []
    records: list[dict[str, Any]] = []
    last_at = datetime.combine(day, time(8), tzinfo=tz).astimezone(UTC)
    for p in profiles:
        if weekend and rng.random() > p.weekend:
            continue
        n = max(0, round(rng.gauss(p.intensity, p.intensity / 3)))
        assert p.person.id is not None
        own_key = person_account(p.person.id)
        pool_key = pool_account(p.person.team_slug or "")
        has_pool = p.person.team_slug in ("data", "platform")
        for k in range(n):
            at = datetime.combine(day, time(9), tzinfo=tz) + timedelta(minutes=rng.randrange(600))
            at_utc = at.astimezone(UTC)
            if at_utc > now:
                continue
            provider, model = _pick(rng, STYLES[p.style])
            usage = _session_usage(rng, model)
            source = AGENT_SOURCE[provider]
            cache.entries(own_key)
            funds = Funds(
                own_balance=Money(cache.balance[own_key]),
                pool_balance=Money(cache.balance.get(pool_key, 0) if has_pool else 0),
                overdraft=p.allowance.overdraft,
                cap=p.allowance.cap,
            )
            priced = pricer.price(usage, provider, model, at_utc)
            if priced.cost > funds.spendable and funds.cap is CapMode.HARD:
                refused += 1
                continue
            request_id = f"{day.isoformat()}-{p.person.id}-{k}"
            new = books.charge_usage(
                conn,
                person=p.person,
                usage=usage,
                provider=provider,
                model=model,
                used_utc=at_utc,
                source=source,
                request_id=request_id,
                pricer=pricer,
                funds=funds,
                now=at_utc,
            )
            for d in new:  # keep balances current for the next session's funds
                cache.entries(d.account)
                cache.balance[d.account] += d.amount_nanousd
            drafts += new
            records.append(
                _record(request_id, p.person.id, source, (provider, model), usage, priced, at_utc)
            )
            last_at = max(last_at, at_utc)
            done += 1
    record_usage(conn, records, tz)
    if drafts:
        for d in drafts:  # undo the optimistic update: append() applies them for real
            cache.balance[d.account] -= d.amount_nanousd
        cache.append(sorted(drafts, key=lambda d: d.effective_utc), min(last_at, now))
    return done, refused


def _record(
    request_id: str,
    person_id: int,
    source: str,
    provider_model: tuple[str, str],
    usage: TokenUsage,
    priced: PricedUsage,
    at: datetime,
) -> dict[str, Any]:
    """One coding session as a usage record, like the importers write them."""
    return {
        "request_id": f"{source}:{request_id}",
        "person_id": person_id,
        "key_id": None,
        "source": source,
        "provider": provider_model[0],
        "model": provider_model[1],
        "endpoint": ENDPOINTS[provider_model[0]],
        **usage.counts(),
        "cost_nanousd": priced.cost.nanousd,
        "price_source": priced.source,
        "estimated": 0,
        "stream": 1,
        "status": 200,
        "used_utc": at,
        "recorded_utc": at,
        "session_id": f"session-{request_id}",
    }


def _pick(rng: random.Random, options: Sequence[tuple[str, str, int]]) -> tuple[str, str]:
    provider, model, _ = rng.choices(options, weights=[w for *_, w in options])[0]
    return provider, model


def _session_usage(rng: random.Random, model: str) -> TokenUsage:
    """One coding-agent session: mostly cache reads, some fresh input, a few k of output."""
    turns = rng.randint(15, 150)
    cached = turns * rng.randint(30_000, 110_000)
    fresh = turns * rng.randint(1_000, 5_000)
    out = turns * rng.randint(300, 2_500)
    reasoning = out // 3 if model.startswith(("gpt-5", "o3")) else 0
    return TokenUsage(
        input_tokens=fresh,
        output_tokens=out,
        cache_read_tokens=cached,
        cache_write_tokens=fresh // 2 if model.startswith("claude") else 0,
        reasoning_tokens=reasoning,
    )
