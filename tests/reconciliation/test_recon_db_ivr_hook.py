"""The IVR's database store reconciles a call's punch when the call is finished, not before."""

from __future__ import annotations

from datetime import datetime

from recon_db_world import World, local
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from ivr import effects as fx
from ivr.call_record import CallRecord
from ivr.call_store import CallStore
from telegestion.model import Anomaly, Visit, VisitMatch

LANDLINE = "+33145678912"


def setup(sessions: sessionmaker[Session], at: str) -> tuple[CallStore, CallRecord, fx.RecordPunch]:
    """Carer I1 planned at C1 from 9:00 to 10:00 on 4 May 2026, calling from C1 at ``at``."""
    w = World(sessions)
    company = w.company("042")
    client = w.client(company, "C1", LANDLINE)
    carer = w.carer(company, "I1")
    w.plan(company, "P1", client, carer, "2026-05-04 09:00", "2026-05-04 10:00")
    moment = local(at)

    def clock() -> datetime:
        return moment

    store = CallStore(sessions, clock=clock)
    call = CallRecord("node1", "uid-1", "fastagi", "0800123456", LANDLINE, None, moment)
    return store, call, fx.RecordPunch(company, carer, client, LANDLINE)


def summary(punch_id: int) -> fx.CallSummary:
    return fx.CallSummary("punch_recorded", None, None, None, None, punch_id, None, None)


def count(sessions: sessionmaker[Session], model: type) -> int:
    with sessions() as s:
        return int(s.scalar(select(func.count()).select_from(model)) or 0)


def test_punch_is_reconciled_when_the_call_finishes(sessions: sessionmaker[Session]) -> None:
    """During the call nothing is reconciled; once it is finished, the arrival is a visit
    matched to P1, with no anomaly (on time)."""
    store, call, record = setup(sessions, "2026-05-04 09:02")
    recorded = store.answer(record, call)
    assert isinstance(recorded, fx.PunchRecorded)
    assert count(sessions, Visit) == 0
    store.finish(call, summary(recorded.punch_id))
    assert (count(sessions, Visit), count(sessions, VisitMatch), count(sessions, Anomaly)) == (
        1,
        1,
        0,
    )


def test_client_absent_is_one_anomaly_row(sessions: sessionmaker[Session]) -> None:
    """Pressing 9 raises CLIENT_ABSENT at once (IVR) and reconciliation, on the same key, owns
    that one row instead of adding a second."""
    store, call, record = setup(sessions, "2026-05-04 09:05")
    recorded = store.answer(record, call)
    assert isinstance(recorded, fx.PunchRecorded)
    store.answer(fx.ReportClientAbsent(recorded.punch_id), call)
    store.finish(call, summary(recorded.punch_id))
    with sessions() as s:
        rows = s.execute(select(Anomaly.code, Anomaly.status, Anomaly.owner_carer_id)).all()
    assert [(code, status) for code, status, _ in rows] == [("CLIENT_ABSENT", "open")]
    assert rows[0][2] is not None
