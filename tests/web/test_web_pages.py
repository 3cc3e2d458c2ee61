"""The coordinator and support pages over real HTTP: login, anomalies, resolution, board, calls."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker
from web_harness import Agency, Browser, Clock, LoopbackServer, db_state

from telegestion.model import AnomalyResolution, PlannedIntervention
from telegestion.settings import Settings
from telegestion.web import queries
from telegestion.web.app import coordinator_site


def rows_of(html: str) -> list[str]:
    """The anomaly codes listed on an anomaly list page, in order."""
    return re.findall(r'<a href="/anomalies/\d+">([A-Z_]+)</a>', html)


def test_pages_redirect_to_login_until_logged_in(browser: Browser) -> None:
    """Without a session every page sends the browser to the login, keeping where it was going."""
    answer = browser.get("/anomalies?code=NO_PUNCH")
    assert answer.status == 303
    assert answer.location == "/login?next=%2Fanomalies%3Fcode%3DNO_PUNCH"


def test_login_sets_a_httponly_samesite_cookie_and_goes_to_next(browser: Browser) -> None:
    """A good password opens a session in an HttpOnly, SameSite=Lax cookie and follows next."""
    form = browser.get("/login?next=/board")
    answer = browser.post(
        "/login",
        {"csrf": form.csrf(), "login": "Coord042", "password": "correct horse battery",
         "next": "/board"},
    )  # fmt: skip
    assert answer.status == 303 and answer.location == "/board"
    cookie = next(c for c in browser.last_set_cookies if c.startswith("tg_session="))
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie.replace("Lax", "lax")
    assert browser.get("/board").status == 200


def test_wrong_password_is_refused_in_the_same_words_as_an_unknown_login(browser: Browser) -> None:
    """Wrong password and unknown login give the same 401 answer and no session."""
    wrong = browser.log_in("coord042", "not the password")
    unknown = browser.log_in("nobody", "not the password")
    assert wrong.status == unknown.status == 401
    assert "wrong login or password" in wrong.text and "wrong login or password" in unknown.text
    assert "tg_session" not in browser.cookies


def test_next_never_leaves_the_site(browser: Browser) -> None:
    """An off-site ``next`` after login is replaced by the anomaly list."""
    form = browser.get("/login")
    answer = browser.post(
        "/login",
        {"csrf": form.csrf(), "login": "coord042", "password": "correct horse battery",
         "next": "//evil.example/x"},
    )  # fmt: skip
    assert answer.location == "/anomalies"


def test_anomaly_list_shows_only_own_company(coord: Browser, other: Browser) -> None:
    """Each coordinator's list holds their company's anomalies and no other."""
    mine = coord.get("/anomalies")
    assert mine.status == 200
    assert "A-K1" in mine.text and "B-K1" not in mine.text
    theirs = other.get("/anomalies")
    assert "B-K1" in theirs.text and "A-K1" not in theirs.text


def test_anomaly_list_filters_on_every_column(coord: Browser, agency: Agency) -> None:
    """Company, code, status, date range, carer and client each narrow the list."""
    assert sorted(rows_of(coord.get("/anomalies").text)) == ["LATE_ARRIVAL", "NO_PUNCH"]
    assert rows_of(coord.get("/anomalies?code=NO_PUNCH").text) == ["NO_PUNCH"]
    assert rows_of(coord.get("/anomalies?company=117").text) == []
    assert sorted(rows_of(coord.get("/anomalies?company=042").text)) == [
        "LATE_ARRIVAL",
        "NO_PUNCH",
    ]
    assert rows_of(coord.get("/anomalies?status=resolved").text) == []
    assert len(rows_of(coord.get("/anomalies?status=open").text)) == 2
    assert len(rows_of(coord.get("/anomalies?from=2026-11-23&to=2026-11-23").text)) == 2
    assert rows_of(coord.get("/anomalies?from=2026-11-24").text) == []
    assert rows_of(coord.get("/anomalies?to=2026-11-22").text) == []
    assert rows_of(coord.get("/anomalies?client=martin").text) == ["NO_PUNCH"]
    assert rows_of(coord.get("/anomalies?client=A-C1").text) == ["LATE_ARRIVAL"]
    assert len(rows_of(coord.get("/anomalies?carer=alice").text)) == 2
    assert rows_of(coord.get("/anomalies?carer=nobody").text) == []
    bad = coord.get("/anomalies?from=yesterday&code=NOPE")
    assert bad.status == 200 and "is not a date" in bad.text and "unknown code" in bad.text


def test_anomaly_list_sorts_and_pages(coord: Browser, monkeypatch: pytest.MonkeyPatch) -> None:
    """Sorting by a column reverses with dir=desc; paging shows PAGE_SIZE rows and a next link."""
    ascending = rows_of(coord.get("/anomalies?sort=code").text)
    descending = rows_of(coord.get("/anomalies?sort=code&dir=desc").text)
    assert ascending == ["LATE_ARRIVAL", "NO_PUNCH"] and descending == ascending[::-1]
    monkeypatch.setattr(queries, "PAGE_SIZE", 1)
    first = coord.get("/anomalies?sort=code")
    assert rows_of(first.text) == ["LATE_ARRIVAL"] and 'rel="next"' in first.text
    second = coord.get("/anomalies?sort=code&page=2")
    assert rows_of(second.text) == ["NO_PUNCH"] and 'rel="prev"' in second.text


def test_anomaly_page_shows_punches_plan_calls_and_form(coord: Browser, agency: Agency) -> None:
    """The page of a late arrival shows the punches, the intervention, the call journal and
    the resolution form."""
    page = coord.get(f"/anomalies/{agency['late042']}")
    assert page.status == 200
    text = page.text
    assert "LATE_ARRIVAL" in text and "A1" in text
    assert "2026-11-23 08:00 – 10:00" in text  # planned
    assert "2026-11-23 08:40 – 10:00 (80 min)" in text  # realised with the punched arrival
    assert "2026-11-23 08:40:00" in text and "arrival" in text and "departure" in text
    assert f'href="/calls/{agency["call042-arrival"]}"' in text
    assert "welcome" in text  # the journal behind the punch
    assert 'action="/anomalies/' in text and 'name="reason"' in text
    assert "No resolution yet." in text


def test_resolution_changes_the_realised_intervention_and_keeps_the_trail(
    coord: Browser, agency: Agency, sessions: sessionmaker[Session]
) -> None:
    """use_planned on the late arrival realises A1 on the planned times; the trail shows who
    decided, why and the note."""
    page = coord.get(f"/anomalies/{agency['late042']}")
    answer = coord.post(
        f"/anomalies/{agency['late042']}/resolve",
        {"csrf": page.csrf(), "action": "use_planned", "reason": "client_on_the_phone",
         "note": "Mme Dubois était au téléphone <b>"},
    )  # fmt: skip
    assert answer.status == 303 and answer.location == f"/anomalies/{agency['late042']}?done=1"
    after = coord.get(answer.location)
    assert "Resolution recorded" in after.text
    assert "2026-11-23 08:00 – 10:00 (120 min)" in after.text
    assert "coord042" in after.text and "client_on_the_phone" in after.text
    assert "Mme Dubois était au téléphone &lt;b&gt;" in after.text  # escaped, not markup
    assert 'id="status">resolved' in after.text
    with sessions() as session:
        a1 = session.get(PlannedIntervention, agency["A1"])
        assert a1 is not None and a1.realised_minutes == 120
        trail = session.scalars(select(AnomalyResolution)).all()
        assert [(r.action, r.user_id) for r in trail] == [("use_planned", agency["coord042"])]


def test_set_times_takes_local_times_and_bad_input_changes_nothing(
    coord: Browser, agency: Agency, sessions: sessionmaker[Session]
) -> None:
    """set_times reads local datetime-local values; a refused resolution answers 400 with the
    reason and writes nothing."""
    url = f"/anomalies/{agency['late042']}"
    before = db_state(sessions)
    refused = coord.post(
        url + "/resolve",
        {"csrf": coord.get(url).csrf(), "action": "set_times", "reason": "schedule_changed"},
    )
    assert refused.status == 400 and "set_times needs start and end" in refused.text
    bad = coord.post(
        url + "/resolve",
        {"csrf": coord.get(url).csrf(), "action": "bogus", "reason": "schedule_changed"},
    )
    assert bad.status == 400 and "unknown action" in bad.text
    assert db_state(sessions) == before
    done = coord.post(
        url + "/resolve",
        {"csrf": coord.get(url).csrf(), "action": "set_times", "reason": "schedule_changed",
         "start": "2026-11-23T08:30", "end": "2026-11-23T09:45"},
    )  # fmt: skip
    assert done.status == 303
    assert "2026-11-23 08:30 – 09:45 (75 min)" in coord.get(url).text


def test_support_reads_anomalies_but_cannot_resolve(
    support: Browser, agency: Agency, sessions: sessionmaker[Session]
) -> None:
    """Support sees the anomaly page without the form; posting a resolution anyway is 403."""
    url = f"/anomalies/{agency['late042']}"
    page = support.get(url)
    assert page.status == 200 and 'id="resolve"' not in page.text
    before = db_state(sessions)
    answer = support.post(
        url + "/resolve",
        {"csrf": page.csrf(), "action": "use_planned", "reason": "system_fault"},
    )
    assert answer.status == 403
    assert db_state(sessions) == before


def test_board_shows_the_state_of_each_intervention_of_the_day(coord: Browser) -> None:
    """At 14:00: A1 done, A2 late (no arrival), A3 expected; only company 042."""
    page = coord.get("/board")
    assert page.status == 200
    states = dict(re.findall(r"<td>(A\d)</td>.*?<td class=\"state\">([a-z ]+)</td>", page.text))
    assert states == {"A1": "done", "A2": "late start", "A3": "expected"}
    assert "117" not in page.text.split("<main>")[1]
    assert '<meta http-equiv="refresh" content="60">' in page.text


def test_call_search_trace_and_ticket(coord: Browser, agency: Agency) -> None:
    """The journal search finds the calls of a caller number; the trace page shows the
    diagnosis and journal; the ticket view the support ticket."""
    found = coord.get("/calls?caller=01+45+67+89+12")
    assert found.status == 200
    ids = [int(x) for x in re.findall(r'<a href="/calls/(\d+)">', found.text)]
    assert set(ids) == {
        agency["call042-arrival"],
        agency["call042-departure"],
        agency["call-nocompany"],
    }
    window = coord.get("/calls?from=2026-11-23T08:30&to=2026-11-23T09:00")
    assert re.findall(r'<a href="/calls/(\d+)">', window.text) == [str(agency["call042-arrival"])]
    trace = coord.get(f"/calls/{agency['call-nocompany']}")
    assert trace.status == 200
    assert 'id="diagnosis"' in trace.text and "company_code_failed" in trace.text
    ticket = coord.get(f"/calls/{agency['call-nocompany']}/ticket")
    assert ticket.status == 200 and "Anomalie télégestion" in ticket.text
    assert "+33800123456" in ticket.text or "0800" in ticket.text


def test_pages_load_nothing_from_the_internet(coord: Browser, agency: Agency) -> None:
    """No page refers to another host: the stylesheet is served by the server itself."""
    for path in ("/anomalies", f"/anomalies/{agency['late042']}", "/board", "/calls",
                 f"/calls/{agency['call042-arrival']}"):  # fmt: skip
        page = coord.get(path)
        assert page.status == 200, path
        assert not re.search(r'(src|href|action)="(https?:)?//', page.text), path
        assert "default-src 'self'" in page.headers["Content-Security-Policy"]
    css = coord.get("/static/style.css")
    assert css.status == 200 and css.headers["Content-Type"].startswith("text/css")


def test_logout_ends_the_session(coord: Browser, sessions: sessionmaker[Session]) -> None:
    """Logging out deletes the session row; the old cookie no longer opens a page."""
    token = coord.cookies["tg_session"]
    page = coord.get("/anomalies")
    assert coord.post("/logout", {"csrf": page.csrf()}).status == 303
    assert db_state(sessions)["sessions"] == 0
    coord.cookies["tg_session"] = token
    assert coord.get("/anomalies").status == 303


def test_several_users_at_once_each_see_their_own(
    coord: Browser, support: Browser, other: Browser
) -> None:
    """Pages requested at the same time by users of two companies all answer, each with its
    own company's rows (the work runs on the thread pool, the reactor stays free)."""
    from concurrent.futures import ThreadPoolExecutor

    def visit(who: tuple[Browser, str, str]) -> bool:
        browser, mine, theirs = who
        texts = [browser.get(path).text for path in ("/anomalies", "/board", "/anomalies")]
        return all(mine in t and theirs not in t for t in texts)

    cast = [(coord, "A-K1", "B-K1"), (support, "A-K1", "B-K1"), (other, "B-K1", "A-K1")] * 2
    with ThreadPoolExecutor(max_workers=len(cast)) as pool:
        assert all(pool.map(visit, cast))


def test_endpoints_mounted_beside_the_pages_keep_their_paths(
    loopback: LoopbackServer, engine: Engine, clock: Clock
) -> None:
    """A child put on the pages' root (as serve mounts /healthz) answers its path; every other
    path is a page."""
    from twisted.internet.threads import blockingCallFromThread
    from twisted.web import resource, server

    class Fixed(resource.Resource):
        isLeaf = True

        def render_GET(self, request: server.Request) -> bytes:
            return b"child"

    root = coordinator_site(engine, Settings(), loopback.reactor, loopback.pool, clock=clock)
    root.putChild(b"healthz", Fixed())
    site = server.Site(root, reactor=loopback.reactor)
    port = blockingCallFromThread(
        loopback.reactor, loopback.reactor.listenTCP, 0, site, 50, "127.0.0.1"
    )
    try:
        b = Browser(port.getHost().port)
        assert b.get("/healthz").text == "child"
        assert b.get("/").location == "/login?next=%2F"
        assert b.get("/login").status == 200
    finally:
        blockingCallFromThread(loopback.reactor, port.stopListening)
