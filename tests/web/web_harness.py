"""Test harness of the pages: a private reactor serving ``coordinator_site`` on loopback, an
HTTP client that keeps cookies like a browser, a clock the tests move, and a small two-company
agency with reconciled anomalies, calls and users.

- Company 042 (Europe/Paris): carer K1 arrived late at client C1 for A1 (LATE_ARRIVAL, a
  warning: A1 is realised with the punched arrival) and missed A2 (NO_PUNCH); A3 is later today.
  Its calls are in the journal; a failed call reached no company from C1's landline.
- Company 117: the same late arrival (B1), so every page has an object of another company.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import http.client
import re
import threading
from html import unescape
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker
from twisted.internet.selectreactor import SelectReactor
from twisted.internet.threads import blockingCallFromThread
from twisted.python.threadpool import ThreadPool
from twisted.web import server

from reconciliation.store import reconcile_range
from telegestion.model import (
    Anomaly,
    AnomalyResolution,
    Call,
    CallEvent,
    Carer,
    Client,
    ClientLandline,
    Company,
    PlannedIntervention,
    Punch,
    WebSession,
)
from telegestion.settings import Settings
from telegestion.web.accounts import add_user
from telegestion.web.app import coordinator_site

PARIS = ZoneInfo("Europe/Paris")
DAY = dt.date(2026, 11, 23)
PASSWORD = "correct horse battery"
C1_LANDLINE = "+33145678912"
SHARED_NUMBER = "+33800123456"


def paris(hhmm: str, day: dt.date = DAY) -> dt.datetime:
    hour, minute = (int(x) for x in hhmm.split(":"))
    return dt.datetime.combine(day, dt.time(hour, minute), PARIS).astimezone(dt.UTC)


class Clock:
    """The pages' clock: tests set or move it."""

    def __init__(self, now: dt.datetime) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += dt.timedelta(**delta)


class LoopbackServer:
    """A reactor of its own in a daemon thread, and the pages' thread pool."""

    def __init__(self) -> None:
        self.reactor = SelectReactor()
        self.thread = threading.Thread(
            target=self.reactor.run, kwargs={"installSignalHandlers": False}, daemon=True
        )
        self.thread.start()
        self.pool = ThreadPool(minthreads=1, maxthreads=4, name="web-tests")
        self.pool.start()
        self.ports: list[Any] = []

    def serve(self, engine: Engine, settings: Settings, clock: Clock) -> int:
        root = coordinator_site(engine, settings, self.reactor, self.pool, clock=clock)
        site = server.Site(root, reactor=self.reactor)
        site.noisy = False
        port = blockingCallFromThread(
            self.reactor, self.reactor.listenTCP, 0, site, 50, "127.0.0.1"
        )
        self.ports.append(port)
        return int(port.getHost().port)

    def close_ports(self) -> None:
        for port in self.ports:
            blockingCallFromThread(self.reactor, port.stopListening)
        self.ports.clear()

    def stop(self) -> None:
        self.close_ports()
        self.pool.stop()
        self.reactor.callFromThread(self.reactor.stop)
        self.thread.join(5)


@dataclasses.dataclass
class Answer:
    status: int
    headers: http.client.HTTPMessage
    text: str

    @property
    def location(self) -> str | None:
        return self.headers.get("location")

    def csrf(self) -> str:
        """The CSRF token of the first form of the page."""
        found = re.search(r'name="csrf" value="([^"]*)"', self.text)
        assert found, "no form with a csrf field on this page"
        return unescape(found.group(1))


class Browser:
    """An HTTP client that keeps the cookies the server sets (as a browser does)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.cookies: dict[str, str] = {}
        self.last_set_cookies: list[str] = []

    def request(
        self, method: str, path: str, fields: dict[str, str] | None = None, **headers: str
    ) -> Answer:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        sent = {"Host": f"127.0.0.1:{self.port}"}
        if self.cookies:
            sent["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        body = None
        if fields is not None:
            body = urlencode(fields)
            sent["Content-Type"] = "application/x-www-form-urlencoded"
        sent.update({k.replace("_", "-"): v for k, v in headers.items()})
        try:
            conn.request(method, path, body=body, headers=sent)
            response = conn.getresponse()
            text = response.read().decode("utf-8")
        finally:
            conn.close()
        self.last_set_cookies = response.headers.get_all("Set-Cookie") or []
        for line in self.last_set_cookies:
            name, _, rest = line.partition("=")
            value = rest.split(";")[0]
            if "max-age=0" in line.lower():
                self.cookies.pop(name, None)
            else:
                self.cookies[name] = value
        return Answer(response.status, response.headers, text)

    def get(self, path: str, **headers: str) -> Answer:
        return self.request("GET", path, **headers)

    def post(self, path: str, fields: dict[str, str], **headers: str) -> Answer:
        return self.request("POST", path, fields, **headers)

    def log_in(self, login: str, password: str = PASSWORD) -> Answer:
        form = self.get("/login")
        return self.post(
            "/login", {"csrf": form.csrf(), "login": login, "password": password, "next": ""}
        )


@dataclasses.dataclass
class Agency:
    """Ids of what the tests name."""

    ids: dict[str, int]

    def __getitem__(self, name: str) -> int:
        return self.ids[name]


def _add(sessions: sessionmaker[Session], row: Any) -> int:
    with sessions() as session, session.begin():
        session.add(row)
        session.flush()
        return int(row.id)


def _call(
    sessions: sessionmaker[Session],
    key: str,
    at: dt.datetime,
    *,
    caller: str,
    company: int | None,
    carer: int | None,
    client: int | None,
    outcome: str,
    company_code: str | None,
    carer_code: str | None,
) -> int:
    events = [
        CallEvent(seq=1, at=at, kind="prompt", detail={"prompt": "welcome"}),
        CallEvent(
            seq=2, at=at + dt.timedelta(seconds=4), kind="input", detail={"keys": company_code}
        ),
        CallEvent(seq=3, at=at + dt.timedelta(seconds=20), kind="hangup", detail={}),
    ]
    return _add(
        sessions,
        Call(
            origin="test",
            call_key=key,
            transport="fastagi",
            started_at=at,
            ended_at=at + dt.timedelta(seconds=20),
            called_raw=SHARED_NUMBER,
            called_e164=SHARED_NUMBER,
            caller_raw=caller,
            caller_e164=caller,
            company_id=company,
            carer_id=carer,
            client_id=client,
            company_code_keyed=company_code,
            carer_code_keyed=carer_code,
            outcome=outcome,
            events=events,
        ),
    )


def _company(
    sessions: sessionmaker[Session], code: str, landline: str, carer_code: str, ids: dict[str, int]
) -> None:
    prefix = "A" if code == "042" else "B"
    cid = _add(sessions, Company(code=code, name=f"Agency {code}", timezone="Europe/Paris"))
    ids[f"company{code}"] = cid
    client = Client(company_id=cid, client_ref=f"{prefix}-C1", name=f"Dubois {code}")
    client.landlines = [ClientLandline(company_id=cid, number_e164=landline, number_raw=landline)]
    c1 = _add(sessions, client)
    c2 = _add(sessions, Client(company_id=cid, client_ref=f"{prefix}-C2", name=f"Martin {code}"))
    k1 = _add(
        sessions,
        Carer(company_id=cid, carer_ref=f"{prefix}-K1", carer_code=carer_code, name="Alice"),
    )
    ids[f"carer{code}"] = k1

    def plan(ref: str, client_id: int, start: str, end: str) -> int:
        return _add(
            sessions,
            PlannedIntervention(
                company_id=cid,
                intervention_ref=ref,
                client_id=client_id,
                carer_id=k1,
                planned_start=paris(start),
                planned_end=paris(end),
                service="aide",
                financer="APA",
            ),
        )

    ids[f"{prefix}1"] = plan(f"{prefix}1", c1, "08:00", "10:00")
    ids[f"{prefix}2"] = plan(f"{prefix}2", c2, "11:00", "12:00")
    ids[f"{prefix}3"] = plan(f"{prefix}3", c1, "16:00", "17:00")
    for n, (kind, at) in enumerate((("arrival", "08:40"), ("departure", "10:00")), start=1):
        call = _call(
            sessions,
            f"{code}-{n}",
            paris(at),
            caller=landline,
            company=cid,
            carer=k1,
            client=c1,
            outcome="punch_recorded",
            company_code=code,
            carer_code=carer_code,
        )
        ids[f"call{code}-{kind}"] = call
        _add(
            sessions,
            Punch(
                origin="test",
                call_key=f"{code}-{n}",
                company_id=cid,
                carer_id=k1,
                client_id=c1,
                kind=kind,
                at=paris(at),
                source="landline",
                caller_raw=landline,
                caller_e164=landline,
                called_e164=SHARED_NUMBER,
                call_id=call,
            ),
        )


def build_agency(engine: Engine, sessions: sessionmaker[Session], now: dt.datetime) -> Agency:
    ids: dict[str, int] = {}
    _company(sessions, "042", C1_LANDLINE, "12345", ids)
    _company(sessions, "117", "+33155550000", "54321", ids)
    ids["call-nocompany"] = _call(
        sessions,
        "lost-1",
        paris("07:55"),
        caller=C1_LANDLINE,
        company=None,
        carer=None,
        client=None,
        outcome="company_code_failed",
        company_code="999",
        carer_code=None,
    )
    reconcile_range(engine, DAY, DAY, now=now)
    with sessions() as session:
        for code in ("042", "117"):
            for anomaly_code, name in (("LATE_ARRIVAL", "late"), ("NO_PUNCH", "missed")):
                ids[f"{name}{code}"] = session.scalars(
                    select(Anomaly.id).where(
                        Anomaly.company_id == ids[f"company{code}"], Anomaly.code == anomaly_code
                    )
                ).one()
    with sessions() as session, session.begin():
        users = [
            ("coord042", "coordinator", ["042"]),
            ("support042", "support", ["042"]),
            ("coord117", "coordinator", ["117"]),
        ]
        for login, role, companies in users:
            ids[login] = add_user(session, login, role, companies, PASSWORD).id
    return Agency(ids)


def db_state(sessions: sessionmaker[Session]) -> dict[str, Any]:
    """What a form could change: anomalies, the trail, the interventions, the sessions."""
    with sessions() as session:
        return {
            "anomalies": sorted(session.execute(select(Anomaly.id, Anomaly.status))),
            "resolutions": session.scalar(select(func.count(AnomalyResolution.id))),
            "interventions": sorted(
                session.execute(
                    select(
                        PlannedIntervention.intervention_ref,
                        PlannedIntervention.status,
                        PlannedIntervention.realised_start,
                        PlannedIntervention.realised_end,
                    )
                )
            ),
            "sessions": session.scalar(select(func.count(WebSession.id))),
        }
