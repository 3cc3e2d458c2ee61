"""Access: another company's objects are not found, forms need their CSRF token, sessions end.

For every page and every form, a user of another company gets 404 (as for a missing object)
and the database is left as it was; a form without this session's CSRF token, or posted from
another site, gets 403 and changes nothing.
"""

from __future__ import annotations

import re

import pytest
from sqlalchemy.orm import Session, sessionmaker
from web_harness import Agency, Browser, Clock, db_state

from telegestion.cli import main as cli_main


def pages_of_042(agency: Agency) -> list[str]:
    """Every page that shows one object of company 042 (or a call visible only to it)."""
    return [
        f"/anomalies/{agency['late042']}",
        f"/anomalies/{agency['missed042']}",
        f"/calls/{agency['call042-arrival']}",
        f"/calls/{agency['call042-arrival']}/ticket",
        f"/calls/{agency['call-nocompany']}",
        f"/calls/{agency['call-nocompany']}/ticket",
    ]


def test_every_page_of_another_company_is_not_found(
    coord: Browser, other: Browser, agency: Agency
) -> None:
    """Company 117's coordinator gets 404 on each of 042's pages, like on a missing id; 042's
    coordinator gets each of them."""
    for path in pages_of_042(agency):
        assert coord.get(path).status == 200, path
        answer = other.get(path)
        assert answer.status == 404, path
        assert "Dubois" not in answer.text and "A-K1" not in answer.text
    assert other.get("/anomalies/999999").status == 404
    assert other.get("/calls/999999").status == 404


def test_lists_board_and_search_hold_nothing_of_another_company(
    other: Browser, agency: Agency
) -> None:
    """Lists, board and search of 117 show none of 042's rows, whatever filter is asked."""
    for path in (
        "/anomalies",
        "/anomalies?company=042",
        "/anomalies?carer=A-K1",
        "/board",
        "/board?company=042",
        "/calls",
        "/calls?caller=%2B33145678912",
    ):
        answer = other.get(path)
        assert answer.status == 200, path
        main = "".join(re.findall(r"<tbody>(.*?)</tbody>", answer.text, re.S))  # the rows
        assert "A-K1" not in main and "Dubois 042" not in main, path
        for call in ("call042-arrival", "call-nocompany"):
            assert f'href="/calls/{agency[call]}"' not in main, path


def test_resolution_form_on_another_company_is_not_found_and_changes_nothing(
    other: Browser, agency: Agency, sessions: sessionmaker[Session]
) -> None:
    """117's coordinator posting a resolution (with a valid token of their own session) for
    042's anomaly gets 404 and nothing changes."""
    token = other.get("/anomalies").csrf()
    before = db_state(sessions)
    for anomaly in ("late042", "missed042"):
        for action in ("use_planned", "dismiss", "mark_not_done"):
            answer = other.post(
                f"/anomalies/{agency[anomaly]}/resolve",
                {"csrf": token, "action": action, "reason": "system_fault"},
            )
            assert answer.status == 404, (anomaly, action)
    link = other.post(
        f"/anomalies/{agency['late117']}/resolve",
        {"csrf": token, "action": "link_to_intervention", "reason": "system_fault",
         "intervention": "A1"},
    )  # fmt: skip
    assert link.status == 400 and "no planned intervention A1" in link.text
    assert db_state(sessions) == before


def test_every_form_without_its_csrf_token_is_refused(
    coord: Browser, agency: Agency, sessions: sessionmaker[Session]
) -> None:
    """Resolve and logout without the token, with another session's token, or from another
    origin: 403, and nothing changes."""
    before = db_state(sessions)
    good = coord.get("/anomalies").csrf()
    resolve = f"/anomalies/{agency['late042']}/resolve"
    fields = {"action": "use_planned", "reason": "system_fault"}
    for form in ({}, {"csrf": ""}, {"csrf": "0" * 64}, {"csrf": good[:-1] + "x"}):
        assert coord.post(resolve, {**fields, **form}).status == 403
        assert coord.post("/logout", form).status == 403
    assert (
        coord.post(resolve, {**fields, "csrf": good}, Origin="https://evil.example").status == 403
    )
    assert coord.post("/logout", {"csrf": good}, Referer="https://evil.example/page").status == 403
    assert db_state(sessions) == before
    assert coord.post(resolve, {**fields, "csrf": good}).status == 303


def test_login_form_needs_its_token(browser: Browser, sessions: sessionmaker[Session]) -> None:
    """A login posted without the token of the login page opens no session (login CSRF)."""
    browser.get("/login")
    answer = browser.post(
        "/login", {"login": "coord042", "password": "correct horse battery", "next": ""}
    )
    assert answer.status == 403 and db_state(sessions)["sessions"] == 0


def test_forms_without_a_session_are_refused(
    browser: Browser, agency: Agency, sessions: sessionmaker[Session]
) -> None:
    """A form posted with no session at all is 403 and changes nothing."""
    before = db_state(sessions)
    answer = browser.post(
        f"/anomalies/{agency['late042']}/resolve",
        {"csrf": "x", "action": "dismiss", "reason": "system_fault"},
    )
    assert answer.status == 403
    assert db_state(sessions) == before


def test_idle_session_expires(coord: Browser, clock: Clock) -> None:
    """A session unused for web_session_idle_min (60) ends; one used in time goes on."""
    clock.advance(minutes=59)
    assert coord.get("/anomalies").status == 200
    clock.advance(minutes=59)
    assert coord.get("/anomalies").status == 200
    clock.advance(minutes=61)
    assert coord.get("/anomalies").status == 303


def test_session_ends_after_its_absolute_lifetime(coord: Browser, clock: Clock) -> None:
    """Even in constant use, a session ends web_session_max_hours (12) after login."""
    for _ in range(23):
        clock.advance(minutes=30)
        assert coord.get("/board").status == 200
    clock.advance(minutes=30, seconds=1)
    assert coord.get("/board").status == 303


def test_disabled_user_is_logged_out_at_once(
    coord: Browser,
    db_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``telegestion user disable`` ends the user's open sessions and refuses a new login."""
    monkeypatch.setenv("TELEGESTION_DATABASE_URL", db_url)
    assert cli_main(["user", "disable", "coord042"]) == 0
    assert coord.get("/anomalies").status == 303
    assert coord.log_in("coord042").status == 401


def test_repeated_failures_lock_the_login_for_a_while(browser: Browser, clock: Clock) -> None:
    """Five wrong passwords lock the login for 15 minutes, even for the right password."""
    for _ in range(5):
        assert browser.log_in("coord042", "wrong password!").status == 401
    locked = browser.log_in("coord042")
    assert locked.status == 401 and "too many failed attempts" in locked.text
    clock.advance(minutes=15, seconds=1)
    assert browser.log_in("coord042").status == 303


def test_hostile_forms_are_refused_and_change_nothing(
    coord: Browser, agency: Agency, sessions: sessionmaker[Session]
) -> None:
    """A resolution form with a NUL, an overlong note or a body over the limit: 400 or 413,
    nothing changes; the same form, well formed, still works."""
    before = db_state(sessions)
    good = coord.get("/anomalies").csrf()
    resolve = f"/anomalies/{agency['late042']}/resolve"
    fields = {"csrf": good, "action": "use_planned", "reason": "system_fault"}
    assert coord.post(resolve, {**fields, "note": "a\x00b"}).status == 400
    assert coord.post(resolve, {**fields, "action\x00": "x"}).status == 400
    assert coord.post(resolve, {**fields, "note": "n" * 4001}).status == 400
    assert coord.post(resolve, {**fields, "pad": "p" * 70_000}).status == 413
    assert db_state(sessions) == before
    assert coord.post(resolve, {**fields, "note": "n" * 4000}).status == 303
