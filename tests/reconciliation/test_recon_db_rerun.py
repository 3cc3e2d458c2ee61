"""Re-running changes nothing; resolutions survive re-runs; anomalies close and reopen; the IVR's
own anomalies keep their place (one CLIENT_ABSENT row, CODE_BRUTE_FORCE never closed)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from recon_db_world import World, intervention, local, open_codes, state
from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session, sessionmaker

from reconciliation.model import AnomalyCode, anomaly_key
from reconciliation.resolutions import ResolutionRefused, ResolutionRequest, resolve_anomaly
from reconciliation.store import reconcile_after_punches, reconcile_range
from telegestion.model import Anomaly, AnomalyResolution, Punch

NOW = datetime(2026, 5, 6, 12, 0, tzinfo=UTC)
DAY = date(2026, 5, 4)


@pytest.fixture
def world(sessions: sessionmaker[Session]) -> World:
    """Carer I1 at client C1 9:00-10:00 arrives 25 min late; I1 has C2 at 11:00 and never comes;
    carer I2 departs from C2 at 16:00 without an arrival."""
    w = World(sessions)
    company = w.company("042")
    c1 = w.client(company, "C1", "+33145678912")
    c2 = w.client(company, "C2", "+33145678913")
    i1, i2 = w.carer(company, "I1"), w.carer(company, "I2")
    w.plan(company, "P1", c1, i1, "2026-05-04 09:00", "2026-05-04 10:00")
    w.plan(company, "P2", c2, i1, "2026-05-04 11:00", "2026-05-04 12:00")
    w.ids["arrival"] = w.punch(company, i1, c1, "arrival", "2026-05-04 09:25")
    w.punch(company, i1, c1, "departure", "2026-05-04 10:00")
    w.ids["stray"] = w.punch(company, i2, c2, "departure", "2026-05-04 16:00")
    w.ids.update(company=company, c1=c1, i1=i1)
    return w


def anomaly_id(sessions: sessionmaker[Session], prefix: str) -> int:
    with sessions() as s:
        return s.scalars(select(Anomaly.id).where(Anomaly.key.startswith(prefix))).one()


def test_second_run_writes_nothing(
    engine: Engine, sessions: sessionmaker[Session], world: World
) -> None:
    """A batch re-run over unchanged data writes no row and leaves every row as it was."""
    first = reconcile_range(engine, DAY, DAY, now=NOW)
    assert first.counts.total > 0
    before = state(sessions)
    with sessions() as s:
        stamps = sorted(s.execute(select(Anomaly.key, Anomaly.updated_at)).all())
    again = reconcile_range(engine, DAY, DAY, now=NOW)
    assert again.counts.total == 0
    assert state(sessions) == before
    with sessions() as s:
        assert sorted(s.execute(select(Anomaly.key, Anomaly.updated_at)).all()) == stamps
    replay = reconcile_after_punches(engine, [world.ids["arrival"]], now=NOW)
    assert replay.carer_days > 0 and replay.counts.total == 0


def test_worked_day_anomalies(
    engine: Engine, sessions: sessionmaker[Session], world: World
) -> None:
    """25 min late is LATE_ARRIVAL (a warning: P1 is realised, 9:25-10:00 = 35 min); the missed
    P2 is NO_PUNCH; the lone departure is MISSING_ARRIVAL and UNPLANNED_VISIT."""
    reconcile_range(engine, DAY, DAY, now=NOW)
    codes = {key.split(":")[0] for key in open_codes(sessions)}
    assert codes == {"LATE_ARRIVAL", "NO_PUNCH", "MISSING_ARRIVAL", "UNPLANNED_VISIT"}
    p1 = intervention(sessions, "P1")
    assert (p1.status, p1.realised_minutes, p1.realised_start) == (
        "realised",
        35,
        local("2026-05-04 09:25"),
    )
    assert intervention(sessions, "P2").status == "planned"


def test_resolution_survives_reruns_and_changes_the_realised_times(
    engine: Engine, sessions: sessionmaker[Session], world: World
) -> None:
    """set_times on the late arrival realises 9:00-10:00 at once, stays resolved through a
    batch re-run, and the audit trail keeps the one decision with its reason and note."""
    reconcile_range(engine, DAY, DAY, now=NOW)
    late = anomaly_id(sessions, "LATE_ARRIVAL")
    done = resolve_anomaly(
        engine,
        ResolutionRequest(
            late,
            "set_times",
            "client_on_the_phone",
            note="client kept her on the phone",
            start=local("2026-05-04 09:00"),
            end=local("2026-05-04 10:00"),
        ),
        now=NOW,
    )
    assert done.report.counts.realised_updated == 1
    assert intervention(sessions, "P1").realised_minutes == 60
    reconcile_range(engine, DAY, DAY, now=NOW)
    assert intervention(sessions, "P1").realised_minutes == 60
    with sessions() as s:
        row = s.get(Anomaly, late)
        assert row is not None and row.status == "resolved"
        trail = s.scalars(select(AnomalyResolution)).all()
    assert [(r.action, r.reason_code, r.note) for r in trail] == [
        ("set_times", "client_on_the_phone", "client kept her on the phone")
    ]


def test_no_punch_confirmed_is_not_done_and_a_closed_anomaly_refuses_resolution(
    engine: Engine, sessions: sessionmaker[Session], world: World
) -> None:
    """Dismissing NO_PUNCH marks P2 not_done; an anomaly the rules closed cannot be resolved."""
    reconcile_range(engine, DAY, DAY, now=NOW)
    resolve_anomaly(
        engine,
        ResolutionRequest(anomaly_id(sessions, "NO_PUNCH"), "dismiss", "care_refused"),
        now=NOW,
    )
    assert intervention(sessions, "P2").status == "not_done"
    with sessions() as s, s.begin():
        s.execute(update(Anomaly).where(Anomaly.key.startswith("LATE")).values(status="closed"))
    with pytest.raises(ResolutionRefused, match="closed"):
        resolve_anomaly(
            engine,
            ResolutionRequest(anomaly_id(sessions, "LATE_ARRIVAL"), "dismiss", "other"),
            now=NOW,
        )


def test_anomaly_closes_and_the_same_row_reopens(
    engine: Engine, sessions: sessionmaker[Session], world: World
) -> None:
    """A corrected punch time closes LATE_ARRIVAL (not deleted); correcting it back reopens the
    very same row, through the incremental path that also refreshes where the punch was."""
    reconcile_range(engine, DAY, DAY, now=NOW)
    late = anomaly_id(sessions, "LATE_ARRIVAL")
    arrival = world.ids["arrival"]
    for at, status in (("2026-05-04 09:02", "closed"), ("2026-05-04 09:25", "open")):
        with sessions() as s, s.begin():
            s.execute(update(Punch).where(Punch.id == arrival).values(at=local(at)))
        reconcile_after_punches(engine, [arrival], now=NOW)
        with sessions() as s:
            row = s.get(Anomaly, late)
            assert row is not None and row.status == status
    assert intervention(sessions, "P1").realised_minutes == 35


def test_ivr_anomalies_keep_their_rows(
    engine: Engine, sessions: sessionmaker[Session], world: World
) -> None:
    """The IVR's CLIENT_ABSENT row (the engine's key) stays the one row for that report, and
    its CODE_BRUTE_FORCE is never closed by a run."""
    w, ids = world, world.ids
    absent = w.punch(ids["company"], ids["i1"], ids["c1"], "arrival", "2026-05-04 14:00")
    with sessions() as s, s.begin():
        s.execute(update(Punch).where(Punch.id == absent).values(status="client_absent"))
        for key, code in (
            (anomaly_key(AnomalyCode.CLIENT_ABSENT, punch_id=absent), "CLIENT_ABSENT"),
            ("CODE_BRUTE_FORCE:+33611223344:2026-05-04T08:00:00+00:00", "CODE_BRUTE_FORCE"),
        ):
            s.add(
                Anomaly(
                    company_id=ids["company"],
                    key=key,
                    code=code,
                    severity="B",
                    punch_id=absent if code == "CLIENT_ABSENT" else None,
                    at=local("2026-05-04 14:00"),
                    detail={"reported_by": "carer"},
                )
            )
    reconcile_range(engine, date(2026, 5, 3), date(2026, 5, 5), now=NOW)
    with sessions() as s:
        rows = s.execute(select(Anomaly.code, Anomaly.status, Anomaly.owner_day)).all()
    assert sorted(r for r in rows if r.code in ("CLIENT_ABSENT", "CODE_BRUTE_FORCE")) == [
        ("CLIENT_ABSENT", "open", DAY),
        ("CODE_BRUTE_FORCE", "open", None),
    ]
