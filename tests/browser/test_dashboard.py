"""The dashboard in Chromium, as each role uses it, against ``tokenwage serve`` on loopback.

* Each role signs in and reads every page its navigation offers (a full-page screenshot
  of each), and is refused the pages its role may not see; the member's manager, finance
  and admins open the member's page.
* A member creates a key on /me, uses it through the gateway with the real ``openai``
  SDK, and sees the request and the lower balance appear on the open page without a reload.
* An admin changes a person's allowance on /budgets through the confirmation step; the
  change shows in the packages table, the audit log and on the person's page.
* Finance verifies every hash chain from the Ledger page.
* A member is refused another person's page, and that person's data through /api/v1,
  with the session cookie and with an API token.
"""

from __future__ import annotations

from datetime import UTC, datetime

import openai
import pytest
from playwright.sync_api import Page, Playwright, expect
from sqlalchemy import select

from tests.browser.conftest import ROLES, WAIT_MS, Login, Site, screenshot
from tokenwage.core.keys import MARKER
from tokenwage.core.org import Person
from tokenwage.storage.org_repo import OrgRepo
from tokenwage.storage.schema import person_settings

pytestmark = pytest.mark.xdist_group("browser")

# What each role's navigation offers (tokenwage.web.access), and pages it must be refused.
NAV = {
    "member": ["/me", "/leaderboard"],
    "manager": ["/me", "/team", "/leaderboard"],
    "finance": ["/me", "/org", "/leaderboard", "/budgets", "/ledger"],
    "admin": ["/me", "/team", "/org", "/leaderboard", "/budgets", "/ledger"],
}
REFUSED = {
    "member": ["/team", "/org", "/budgets", "/ledger"],
    "manager": ["/org", "/budgets", "/ledger"],
    "finance": [],
    "admin": [],
}


CHARTS_DRAWN = """() => Array.from(document.querySelectorAll("canvas[data-chart]"))
    .every(c => typeof Chart !== "undefined" && Chart.getChart(c) !== undefined)"""


def _open(page: Page, site: Site, path: str) -> int:
    """Go to ``path``; the HTTP status of the document."""
    response = page.goto(site.url(path), wait_until="load")
    assert response is not None, path
    return response.status


def _live_field(page: Page, name: str) -> str:
    return page.locator(f'[data-live-field="{name}"]').first.inner_text().strip()


@pytest.mark.parametrize("role", ROLES)
def test_each_role_reads_the_pages_it_may_see(login: Login, site: Site, role: str) -> None:
    page = login(role)
    person = site.people[role]
    assert page.url.endswith("/me"), page.url
    expect(page.locator("h1")).to_have_text("My tokens")
    expect(page.locator(".who-name")).to_have_text(person.name)
    nav = page.locator("nav[aria-label=Main] a").evaluate_all("els => els.map(e => e.pathname)")
    assert nav == NAV[role]
    for path in nav:
        assert _open(page, site, path) == 200, path
        expect(page.locator("h1").first).to_be_visible()
        assert page.locator(".alert-error").count() == 0, path
        # every chart drew: chart.js (installed from npm, served by tokenwage) loaded
        assert page.evaluate(CHARTS_DRAWN), f"a chart on {path} was not drawn"
        assert page.locator("[data-chart-missing]:visible").count() == 0, path
        screenshot(page, role, path.strip("/"))
    for path in REFUSED[role]:
        assert _open(page, site, path) == 403, f"{role} was shown {path}"
    if role in ("manager", "finance", "admin"):  # the member reports to the manager
        member = site.people["member"]
        assert _open(page, site, f"/people/{member.id}") == 200
        expect(page.locator("h1")).to_have_text(f"{member.name}'s tokens")
        screenshot(page, role, "people-member")


def test_key_created_on_me_is_metered_and_the_page_follows_live(
    login: Login, site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    page = login("member")
    requests_before = _live_field(page, "today_sub")
    balance_before = _live_field(page, "balance")
    page.fill("input[name=name]", "browser-test")
    with page.expect_navigation():
        page.get_by_role("button", name="Create key").click()
    key = page.get_by_test_id("new-key").inner_text().strip()
    assert looks_like_key(key), key
    screenshot(page, "member", "me-new-key")
    # an SDK configured the documented way: OPENAI_BASE_URL and the key
    monkeypatch.setenv("OPENAI_BASE_URL", site.url("/v1"))
    monkeypatch.setenv("OPENAI_API_KEY", key)
    with openai.OpenAI(max_retries=0, timeout=30) as client:
        reply = client.chat.completions.create(
            model="gpt-5",
            max_completion_tokens=9000,
            messages=[{"role": "user", "content": "Write the release notes. tokens:8000"}],
        )
    assert reply.usage is not None and reply.usage.completion_tokens == 8000
    # the open page polls live.json: the request and the new balance appear without a reload
    expect(page.locator('[data-live-field="today_sub"]').first).not_to_have_text(
        requests_before, timeout=WAIT_MS
    )
    expect(page.locator('[data-live-field="balance"]').first).not_to_have_text(
        balance_before, timeout=WAIT_MS
    )
    assert _count(_live_field(page, "today_sub")) == _count(requests_before) + 1
    # and after a reload: the key was used, and the request is listed first
    _open(page, site, "/me")
    assert _live_field(page, "balance") != balance_before
    keys = page.locator("table tr", has_text="browser-test")
    expect(keys).to_have_count(1)
    expect(keys).not_to_contain_text("–")  # "last used" is filled in
    first_request = page.locator("section", has_text="Recent requests").locator("tbody tr").first
    expect(first_request).to_contain_text("gpt-5")
    screenshot(page, "member", "me-after-request")


def looks_like_key(text: str) -> bool:
    return text.startswith(f"{MARKER}_") and len(text) > 40


def _count(requests_text: str) -> int:
    """``'12 requests'`` -> 12."""
    return int(requests_text.split()[0].replace(",", ""))


def test_admin_changes_an_allowance_with_confirmation(login: Login, site: Site) -> None:
    target = _someone_else(site)
    page = login("admin")
    assert _open(page, site, "/budgets") == 200
    form = page.get_by_test_id("allowance-form")
    form.locator("select[name=target]").select_option(target.email)
    form.locator("input[name=amount]").fill("123.45")
    form.locator("select[name=period]").select_option("day")
    with page.expect_navigation():
        form.get_by_role("button", name="Review change").click()
    confirm = page.get_by_test_id("confirm")
    expect(confirm).to_contain_text("123.45")
    screenshot(page, "admin", "budgets-confirm")
    with page.expect_navigation():
        confirm.get_by_role("button", name="Confirm").click()
    assert "/budgets" in page.url
    expect(page.get_by_test_id("done")).to_be_visible()
    row = page.get_by_test_id("packages").locator("tr", has_text=target.name)
    expect(row).to_contain_text("$123.45/day")
    expect(page.get_by_test_id("audit").locator("tbody tr").first).to_contain_text(target.email)
    screenshot(page, "admin", "budgets-after-change")
    # it takes effect: the person's own page shows the new allowance in force
    assert _open(page, site, f"/people/{target.id}") == 200
    expect(page.locator(".page-head")).to_contain_text("$123.45 per day")


def _someone_else(site: Site) -> Person:
    """A person who has none of the test roles' logins."""
    taken = {p.id for p in site.people.values()}
    db = site.database()
    try:
        with db.begin() as conn:
            return next(p for p in OrgRepo(conn).list_people() if p.id not in taken)
    finally:
        db.dispose()


def test_finance_verifies_every_chain_on_the_ledger_page(login: Login, site: Site) -> None:
    page = login("finance")
    assert _open(page, site, "/ledger") == 200
    with page.expect_navigation():
        page.get_by_role("button", name="Verify every chain now").click()
    expect(page.get_by_test_id("verification")).to_contain_text("Every chain holds")
    expect(page.get_by_test_id("chains")).not_to_contain_text("broken")
    screenshot(page, "finance", "ledger-verified")


def test_a_member_is_refused_another_persons_page_and_api(
    login: Login, site: Site, playwright: Playwright
) -> None:
    member = site.people["member"]
    other = _not_shared(site, member.id)
    page = login("member")
    assert _open(page, site, f"/people/{other}") == 403
    expect(page.locator("body")).to_contain_text("may not")
    screenshot(page, "member", "people-other-refused")
    assert _open(page, site, f"/people/{other}/statements/{_this_month()}") == 403
    assert _open(page, site, f"/people/{member.id}") == 200  # their own, by id
    # the REST API with the browser's session cookie
    api = page.context.request
    for path in _private_paths(other):
        r = api.get(site.url(path))
        assert r.status == 403, f"{path}: {r.status} {r.text()[:200]}"
        assert "application/json" in r.headers.get("content-type", "")
    for path in _private_paths(member.id):
        assert api.get(site.url(path)).ok, path
    # and with an API token, as a script would
    from tokenwage.web.accounts import create_api_token

    db = site.database()
    try:
        with db.begin() as conn:
            _, token = create_api_token(
                conn, member.email, "browser-test", actor=member.email, now=datetime.now(UTC)
            )
    finally:
        db.dispose()
    script = playwright.request.new_context(
        base_url=site.base, extra_http_headers={"Authorization": f"Bearer {token}"}
    )
    try:
        for path in _private_paths(other):
            assert script.get(path).status == 403, path
        for path in _private_paths(member.id):
            assert script.get(path).ok, path
    finally:
        script.dispose()


def _private_paths(person_id: int) -> list[str]:
    base = f"/api/v1/people/{person_id}"
    return [
        base,
        f"{base}/usage",
        f"{base}/usage/records",
        f"{base}/balance",
        f"{base}/keys",
        f"{base}/packages",
        f"{base}/statements/{_this_month()}",
    ]


def _this_month() -> str:
    return datetime.now(UTC).strftime("%Y-%m")


def _not_shared(site: Site, member_id: int) -> int:
    """Someone other than the member who has not chosen to share their page."""
    db = site.database()
    try:
        with db.begin() as conn:
            sharing = set(
                conn.execute(
                    select(person_settings.c.person_id).where(person_settings.c.share_detail != 0)
                ).scalars()
            )
            ids = [p.id for p in OrgRepo(conn).list_people()]
    finally:
        db.dispose()
    return next(i for i in ids if i is not None and i != member_id and i not in sharing)
