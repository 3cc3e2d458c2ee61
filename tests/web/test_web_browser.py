"""The pages in a real headless Chromium (Debian's ``chromium``), driven by Playwright.

Playwright's own browser download is not used: the tests launch the system Chromium by path.
Select them with ``-m browser``; they run by default.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from web_harness import PASSWORD, Agency

pytestmark = pytest.mark.browser

CHROMIUM = os.environ.get("TELEGESTION_TEST_CHROMIUM") or shutil.which("chromium") or ""
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture
def page(tmp_path: Path, port: int) -> Iterator[object]:
    """A page of a fresh Chromium profile, pointed at the test server."""
    if not CHROMIUM:
        pytest.fail("chromium not found: apt-get install chromium (.ci/run does it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"),
            executable_path=CHROMIUM,
            headless=True,
            args=ARGS,
            base_url=f"http://127.0.0.1:{port}",
        )
        context.set_default_timeout(20_000)
        outside: list[str] = []
        context.on(
            "request",
            lambda r: (
                outside.append(r.url) if not r.url.startswith(f"http://127.0.0.1:{port}/") else None
            ),
        )
        try:
            yield context.new_page()
        finally:
            context.close()
        assert outside == [], "the pages loaded something from elsewhere"


def test_coordinator_filters_opens_resolves_and_sees_the_realised_change(
    page: object, agency: Agency
) -> None:
    """Log in, filter the list, open the late arrival, resolve it with use_planned and see the
    realised intervention move to the planned times; then open the call behind it."""
    from playwright.sync_api import Page, expect

    assert isinstance(page, Page)
    page.goto("/anomalies")
    expect(page).to_have_url("/login?next=%2Fanomalies")
    page.get_by_label("Login").fill("coord042")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.locator("h1")).to_have_text("Anomalies")
    expect(page.locator("#anomalies tbody tr")).to_have_count(2)

    page.locator("select[name=code]").select_option("LATE_ARRIVAL")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("#anomalies tbody tr")).to_have_count(1)
    page.get_by_role("link", name="LATE_ARRIVAL").click()

    expect(page.locator("h1")).to_contain_text("LATE_ARRIVAL")
    expect(page.locator("#realised")).to_have_text("2026-11-23 08:40 – 10:00 (80 min)")
    page.locator("select[name=action]").select_option("use_planned")
    page.locator("select[name=reason]").select_option("client_on_the_phone")
    page.get_by_label("Note").fill("La cliente était au téléphone")
    page.get_by_role("button", name="Record the resolution").click()

    expect(page.get_by_role("status")).to_contain_text("Resolution recorded")
    expect(page.locator("#status")).to_have_text("resolved")
    expect(page.locator("#realised")).to_have_text("2026-11-23 08:00 – 10:00 (120 min)")
    expect(page.locator("#trail tbody")).to_contain_text("coord042")
    expect(page.locator("#trail tbody")).to_contain_text("La cliente était au téléphone")

    page.locator("#punches").get_by_role("link").first.click()
    expect(page.locator("h1")).to_contain_text("punch_recorded")
    expect(page.locator("#diagnosis li").first).to_be_visible()
    page.get_by_role("link", name="ticket").click()
    expect(page.locator("#ticket")).to_contain_text("Anomalie télégestion")


def test_support_searches_the_journal_and_opens_a_call_trace(page: object, agency: Agency) -> None:
    """Support finds the failed call by caller number and reads its diagnosis and ticket."""
    from playwright.sync_api import Page, expect

    assert isinstance(page, Page)
    page.goto("/login")
    page.get_by_label("Login").fill("support042")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("link", name="Call journal").click()
    page.get_by_label("Caller number").fill("01 45 67 89 12")
    page.get_by_role("button", name="Search").click()
    expect(page.locator("#calls tbody tr")).to_have_count(3)
    page.get_by_role("link", name=str(agency["call-nocompany"]), exact=True).click()
    expect(page.locator("h1")).to_contain_text("company_code_failed")
    expect(page.locator("#diagnosis")).not_to_be_empty()
    page.get_by_role("link", name="ticket").click()
    expect(page.locator("#ticket")).to_contain_text("Anomalie télégestion")
