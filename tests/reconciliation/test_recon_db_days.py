"""Days that are not ordinary, on the database: daylight-saving nights, visits over midnight,
back-to-back interventions covered by one visit, and a carer working for two companies."""

from __future__ import annotations

from datetime import UTC, date, datetime

from recon_db_world import World, intervention, open_codes
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from reconciliation.export_rows import intervention_rows
from reconciliation.exports import render
from reconciliation.store import reconcile_range
from telegestion.model import Visit, VisitMatch

NOW = datetime(2026, 12, 1, tzinfo=UTC)


def night(sessions: sessionmaker[Session], day: str, next_day: str) -> World:
    w = World(sessions)
    company = w.company("042")
    client = w.client(company, "C1", "+33145678912")
    carer = w.carer(company, "I1")
    w.plan(company, "N1", client, carer, f"{day} 22:00", f"{next_day} 06:00")
    w.punch(company, carer, client, "arrival", f"{day} 22:00")
    w.punch(company, carer, client, "departure", f"{next_day} 06:00")
    return w


def test_spring_forward_night_is_seven_hours(
    engine: Engine, sessions: sessionmaker[Session]
) -> None:
    """22:00 to 06:00 over the night of 29 March 2026 (Paris skips 02:00-03:00) is 420 minutes,
    and the night belongs to the 28th, the day it starts on."""
    night(sessions, "2026-03-28", "2026-03-29")
    reconcile_range(engine, date(2026, 3, 27), date(2026, 3, 30), now=NOW)
    n1 = intervention(sessions, "N1")
    assert (n1.status, n1.realised_minutes) == ("realised", 420)
    with sessions() as s:
        assert s.scalars(select(Visit.day)).all() == [date(2026, 3, 28)]


def test_fall_back_night_is_nine_hours(engine: Engine, sessions: sessionmaker[Session]) -> None:
    """22:00 to 06:00 over the night of 25 October 2026 (02:00-03:00 happens twice) is 540 min;
    the export writes both ends with their own offsets."""
    night(sessions, "2026-10-24", "2026-10-25")
    reconcile_range(engine, date(2026, 10, 23), date(2026, 10, 26), now=NOW)
    assert intervention(sessions, "N1").realised_minutes == 540
    exported = render("realised", intervention_rows(engine, date(2026, 10, 24), date(2026, 10, 24)))
    assert b"2026-10-24T22:00:00+02:00,2026-10-25T06:00:00+01:00,540,realised" in exported


def test_one_visit_covers_back_to_back_interventions(
    engine: Engine, sessions: sessionmaker[Session]
) -> None:
    """A visit 7:58-10:02 over P1 8:00-9:00 and P2 9:00-10:00 (same client and carer) realises
    both, split at 9:00, with one visit and two matches."""
    w = World(sessions)
    company = w.company("042")
    client = w.client(company, "C1", "+33145678912")
    carer = w.carer(company, "I1")
    w.plan(company, "P1", client, carer, "2026-05-04 08:00", "2026-05-04 09:00")
    w.plan(company, "P2", client, carer, "2026-05-04 09:00", "2026-05-04 10:00")
    w.punch(company, carer, client, "arrival", "2026-05-04 07:58")
    w.punch(company, carer, client, "departure", "2026-05-04 10:02")
    reconcile_range(engine, date(2026, 5, 4), date(2026, 5, 4), now=NOW)
    assert [intervention(sessions, r).realised_minutes for r in ("P1", "P2")] == [60, 60]
    with sessions() as s:
        assert len(s.scalars(select(Visit)).all()) == 1
        assert len(s.scalars(select(VisitMatch)).all()) == 2
    assert open_codes(sessions) == {}


def test_a_carer_of_two_companies_is_two_independent_carers(
    engine: Engine, sessions: sessionmaker[Session]
) -> None:
    """The same person works for 042 and 117 (one carer row in each). Overlapping visits across
    the two companies are not OVERLAPPING_VISITS, and each company's payroll has its own."""
    w = World(sessions)
    a, b = w.company("042"), w.company("117", "America/Cayenne")
    ca, cb = w.client(a, "CA", "+33145678912"), w.client(b, "CB", "+594594000000")
    ia, ib = w.carer(a, "SAME"), w.carer(b, "SAME")
    w.plan(a, "PA", ca, ia, "2026-05-04 09:00", "2026-05-04 10:00")
    w.plan(b, "PB", cb, ib, "2026-05-04 04:00", "2026-05-04 05:00")  # 9:00 in Paris
    w.punch(a, ia, ca, "arrival", "2026-05-04 09:00")
    w.punch(a, ia, ca, "departure", "2026-05-04 10:00")
    w.punch(b, ib, cb, "arrival", "2026-05-04 04:00")
    w.punch(b, ib, cb, "departure", "2026-05-04 05:00")
    reconcile_range(engine, date(2026, 5, 3), date(2026, 5, 5), now=NOW)
    assert open_codes(sessions) == {}
    payroll = render("payroll", intervention_rows(engine, date(2026, 5, 4), date(2026, 5, 4)))
    lines = payroll.decode().splitlines()[1:]
    assert [line.split(",")[:4] for line in lines] == [
        ["042", "SAME", "2026-05-04", "PA"],
        ["117", "SAME", "2026-05-04", "PB"],
    ]


def test_batch_of_one_company_leaves_the_other_alone(
    engine: Engine, sessions: sessionmaker[Session]
) -> None:
    """``--company`` reconciles that company only."""
    w = World(sessions)
    a, b = w.company("042"), w.company("117")
    for company in (a, b):
        client = w.client(company, "C", None)
        carer = w.carer(company, "I")
        w.plan(company, "P", client, carer, "2026-05-04 09:00", "2026-05-04 10:00")
    reconcile_range(engine, date(2026, 5, 4), date(2026, 5, 4), company_code="117", now=NOW)
    assert sorted(k.split(":")[0] for k in open_codes(sessions)) == ["NO_PUNCH"]
