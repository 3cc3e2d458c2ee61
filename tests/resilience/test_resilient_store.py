"""The offline path (ivr.resilient_store, ivr.spool_replay): calls complete while the database
is unreachable, and the spool reaches the database once it is back, in order, exactly once."""

from __future__ import annotations

import dataclasses
import datetime as dt
import threading
from pathlib import Path

import pytest
from resilience_harness import (
    DEDICATED_117,
    MME_DUBOIS,
    MME_FOURNIER,
    UNKNOWN_PHONE,
    call_rows,
    dead_store,
    event_kinds,
    live_store,
    punch_call,
    punch_rows,
    resilient,
    run_calls,
)
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from ivr import effects as fx
from ivr.call_record import CallRecord
from ivr.spool import Spool, SpoolEntry
from telegestion.db import make_engine, make_session_factory
from telegestion.model import Anomaly, Carer, Client, CodeFailure, Company

pytestmark = pytest.mark.db


@pytest.fixture
def spool_dir(sessions: sessionmaker[Session], tmp_path: Path) -> Path:
    """A spool folder holding the directory copy of the example directory."""
    from resilience_harness import load_examples

    load_examples(sessions)
    folder = tmp_path / "spool"
    live_store(sessions, folder).spool.close()
    return folder


def counts(sessions: sessionmaker[Session]) -> dict[str, int]:
    """Everything a replay writes, counted."""
    from telegestion.model import Call, CallEvent, Punch

    with sessions() as s:
        return {
            model.__name__: s.scalar(select(func.count()).select_from(model)) or 0
            for model in (Call, CallEvent, Punch, CodeFailure, Anomaly)
        }


def replay(sessions: sessionmaker[Session], spool_dir: Path) -> None:
    """The worker restarted with the database back: its start-up replay."""
    back = resilient(sessions, spool_dir)
    back.start()
    back.maintain()
    assert back.db_state == "up"
    assert back.backlog() == 0
    back.spool.close()


def test_calls_complete_offline_and_reach_the_database_once(
    sessions: sessionmaker[Session], spool_dir: Path
) -> None:
    """Database unreachable: arrival, departure and a failed code are answered from the copy
    and spooled; once it is back every punch, call and event is there exactly once, with the
    kind the carer heard."""
    dead = dead_store(spool_dir)
    records = run_calls(dead, [punch_call(MME_DUBOIS, ">042>12345")])
    records += run_calls(dead, [punch_call(MME_DUBOIS, ">042>12345")])
    records += run_calls(dead, [punch_call(MME_DUBOIS, ">042>99999>99998>99997")])
    assert [r.variables["TELEGESTION_STATUS"] for r in records] == [
        "punch_recorded",
        "punch_recorded",
        "carer_code_failed",
    ]
    assert "telegestion/arrival-recorded" in records[0].prompts
    assert "telegestion/departure-recorded" in records[1].prompts
    assert dead.db_state == "down"
    assert dead.offline_calls == 3
    journals = {e.call_key: e for e in dead.spool.entries() if e.kind == "journal"}
    assert set(journals) == {r.uniqueid for r in records}
    dead.spool.close()
    assert punch_rows(sessions) == []

    replay(sessions, spool_dir)

    rows = punch_rows(sessions)
    assert [(p.call_key, p.kind) for p in rows] == [
        (records[0].uniqueid, "arrival"),
        (records[1].uniqueid, "departure"),
    ]
    calls = call_rows(sessions)
    for record in records:
        row = calls[record.uniqueid]
        assert row.outcome == record.variables["TELEGESTION_STATUS"]
        assert row.ended_at is not None
        spooled = journals[record.uniqueid].payload["events"]
        kinds = event_kinds(sessions, record.uniqueid)
        assert kinds == [(i + 1, kind) for i, (_, kind, _) in enumerate(spooled)]
    assert rows[0].call_id == calls[records[0].uniqueid].id
    assert counts(sessions)["CodeFailure"] == 3


def test_replaying_again_changes_nothing(sessions: sessionmaker[Session], spool_dir: Path) -> None:
    """Every entry replayed twice (a crash after the commit, before the entry left the spool):
    still one punch, one call row, the same events, code failures and alerts."""
    dead = dead_store(spool_dir)
    for keys in (">042>12345>2", ">042>12345>9", ">042>99999>99998>99997"):
        run_calls(dead, [punch_call(MME_DUBOIS, keys)])
    entries = dead.spool.entries()
    assert {e.kind for e in entries} >= {"punch", "correct", "absent", "code_failure", "journal"}
    dead.spool.close()
    replay(sessions, spool_dir)
    once = counts(sessions)
    kinds_once = [(p.kind, p.original_kind, p.status) for p in punch_rows(sessions)]

    again = Spool(spool_dir)
    for entry in entries:
        again.append(entry.kind, entry.origin, entry.call_key, entry.payload)
    again.close()
    replay(sessions, spool_dir)

    assert counts(sessions) == once
    assert [(p.kind, p.original_kind, p.status) for p in punch_rows(sessions)] == kinds_once
    assert kinds_once == [
        ("departure", "arrival", "recorded"),
        ("arrival", None, "client_absent"),
    ]


def test_a_partial_replay_then_a_crash_then_the_rest(
    sessions: sessionmaker[Session], spool_dir: Path
) -> None:
    """The replay stops after some entries and the first of them is replayed again (its
    removal was lost): the result is the same as one clean replay."""
    dead = dead_store(spool_dir)
    run_calls(dead, [punch_call(MME_DUBOIS, ">042>12345")])
    run_calls(dead, [punch_call(MME_FOURNIER, ">54321", called=DEDICATED_117)])
    first = dead.spool.entries()[0]
    dead.spool.close()

    partly = resilient(sessions, spool_dir)
    outcome = partly.replayer.replay(limit=2)
    assert outcome.replayed == 2 and partly.backlog() == 2
    partly.spool.append(first.kind, first.origin, first.call_key, first.payload)
    partly.spool.close()
    replay(sessions, spool_dir)

    assert [p.kind for p in punch_rows(sessions)] == ["arrival", "arrival"]
    c = counts(sessions)
    assert (c["Call"], c["Punch"]) == (2, 2)


def _ids(sessions: sessionmaker[Session]) -> tuple[int, int, int]:
    with sessions() as s:
        company = s.scalars(select(Company.id).where(Company.code == "042")).one()
        carer = s.scalars(select(Carer.id).where(Carer.carer_code == "12345")).one()
        client = s.scalars(select(Client.id).where(Client.client_ref == "C-0001")).one()
    return company, carer, client


def _call(key: str) -> CallRecord:
    return CallRecord(
        "node1", key, "fastagi", "0800123456", MME_DUBOIS, "0", dt.datetime.now(dt.UTC)
    )


@pytest.mark.parametrize("late_first", [True, False], ids=["late-then-replay", "replay-then-late"])
def test_a_late_database_write_converges_to_what_the_carer_heard(
    sessions: sessionmaker[Session], spool_dir: Path, late_first: bool
) -> None:
    """A punch the database path was too slow for is spooled as an arrival; its late commit
    (a departure, after an earlier arrival) races the replay: one punch, the spooled kind."""
    company, carer, client = _ids(sessions)
    punch = fx.RecordPunch(company, carer, client, MME_DUBOIS)
    live = live_store(sessions, spool_dir.parent / "other")
    earlier = live.store.answer_or_raise(punch, _call("earlier"))
    assert isinstance(earlier, fx.PunchRecorded) and earlier.kind == "arrival"

    dead = dead_store(spool_dir)  # its copy predates the earlier punch: it says arrival
    heard = dead.answer_offline(punch, _call("slow"))
    assert isinstance(heard, fx.PunchRecorded) and heard.kind == "arrival" and heard.punch_id < 0
    dead.spool.close()

    def late() -> None:
        stored = live.store.answer_or_raise(punch, _call("slow"))
        assert isinstance(stored, fx.PunchRecorded)

    if late_first:
        late()
        assert [p.kind for p in punch_rows(sessions)] == ["arrival", "departure"]
        replay(sessions, spool_dir)
    else:
        replay(sessions, spool_dir)
        late()
    rows = punch_rows(sessions)
    assert [(p.call_key, p.kind, p.original_kind) for p in rows] == [
        ("earlier", "arrival", None),
        ("slow", "arrival", None),
    ]


def test_offline_punches_follow_the_punches_made_online(
    sessions: sessionmaker[Session], spool_dir: Path
) -> None:
    """An arrival made while the database was up, a departure made while it is down: the
    recent punches of the copy give the offline punch its kind, at a known client and from an
    unknown phone alike."""
    live = live_store(sessions, spool_dir)
    run_calls(live, [punch_call(MME_DUBOIS, ">042>12345")])
    run_calls(live, [punch_call(UNKNOWN_PHONE, ">042>12345")])
    live.refresh_copy()
    live.spool.close()
    dead = dead_store(spool_dir)
    records = run_calls(dead, [punch_call(MME_DUBOIS, ">042>12345")])
    records += run_calls(dead, [punch_call(UNKNOWN_PHONE, ">042>12345")])
    assert all("telegestion/departure-recorded" in r.prompts for r in records)
    dead.spool.close()
    replay(sessions, spool_dir)
    assert [p.kind for p in punch_rows(sessions)] == [
        "arrival",
        "arrival",
        "departure",
        "departure",
    ]


def test_nobody_is_locked_out_for_want_of_a_database(
    sessions: sessionmaker[Session], spool_dir: Path
) -> None:
    """A caller with failures only the database knows is not locked out offline; failures made
    offline count, by the same rule."""
    now = dt.datetime.now(dt.UTC)
    with sessions() as s, s.begin():
        for i in range(6):
            s.add(
                CodeFailure(
                    caller_e164="+33145678912",
                    at=now - dt.timedelta(minutes=i),
                    what="unknown_or_inactive_carer_code",
                )
            )
    dead = dead_store(spool_dir)
    [record] = run_calls(dead, [punch_call(MME_DUBOIS, ">042>12345")])
    assert record.variables["TELEGESTION_STATUS"] == "punch_recorded"
    call = _call("lockout")
    assert dead.answer_from_memory(fx.CheckLockout(MME_DUBOIS), call) is False
    failure = fx.RecordCodeFailure(MME_DUBOIS, "carer_code", "unknown_or_inactive_carer_code")
    locked = [dead.answer_offline(failure, call) for _ in range(6)]
    assert locked[0] is False and locked[-1] is True
    assert dead.answer_from_memory(fx.CheckLockout(MME_DUBOIS), call) is True
    dead.spool.close()


def test_an_entry_the_database_refuses_is_set_aside(
    sessions: sessionmaker[Session], spool_dir: Path
) -> None:
    """A spooled punch naming a carer that no longer exists is set aside, and the entries after
    it still reach the database."""
    dead = dead_store(spool_dir)
    run_calls(dead, [punch_call(MME_DUBOIS, ">042>12345")])
    entries = dead.spool.entries()
    dead.spool.close()
    broken = Spool(spool_dir)
    bad = entries[0]
    payload = {**bad.payload, "punch": {**bad.payload["punch"], "carer_id": 999_999}}
    payload["call"] = {**payload["call"], "call_key": "bad"}
    payload["punch"]["call_key"] = "bad"
    broken.remove(e.seq for e in entries)
    broken.append("punch", "node1", "bad", payload)
    for entry in entries:
        broken.append(entry.kind, entry.origin, entry.call_key, entry.payload)
    broken.close()
    replay(sessions, spool_dir)
    again = Spool(spool_dir)
    assert again.set_aside_count() == 1
    assert [e.call_key for e, _ in again.set_aside_entries()] == ["bad"]
    assert [p.kind for p in punch_rows(sessions)] == ["arrival"]


def test_health_shows_the_outage_and_the_backlog(
    sessions: sessionmaker[Session], spool_dir: Path
) -> None:
    """The figures /healthz and /metrics read: state, backlog, calls offline, copy age."""
    dead = dead_store(spool_dir)
    assert dead.db_state == "up" and dead.directory_age_s() is not None
    run_calls(dead, [punch_call(MME_DUBOIS, ">042>12345")])
    health = dead.health()
    assert health["db_state"] == "down"
    assert health["outages"] == 1
    assert health["offline_calls"] == 1
    assert health["spool_backlog"] == dead.backlog() == 2
    assert health["spool_oldest_age_s"] is not None
    assert health["spool_ok"] is True
    assert "Connection refused" in (health["last_error"] or "")
    dead.maintain()  # the probe is not due yet: still down, nothing replayed
    assert dead.db_state == "down" and dead.backlog() == 2
    dead.spool.close()


def test_without_any_directory_copy_codes_are_not_held_against_the_caller(
    tmp_path: Path,
) -> None:
    """A first start during an outage (no copy yet): the call fails as a technical problem,
    its journal is spooled, and no code failure is counted for a code nobody could check."""
    dead = dead_store(tmp_path / "empty")
    [record] = run_calls(dead, [punch_call(MME_DUBOIS, ">042>12345")])
    assert record.variables["TELEGESTION_STATUS"] != "punch_recorded"
    assert [e.kind for e in dead.spool.entries()] == ["journal"]
    dead.spool.close()


def test_spool_entries_are_plain_data(spool_dir: Path) -> None:
    """Entries hold only JSON values and datetimes (what another process can replay)."""
    dead = dead_store(spool_dir)
    run_calls(dead, [punch_call(MME_DUBOIS, ">042>12345")])
    for entry in dead.spool.entries():
        assert isinstance(entry, SpoolEntry)
        assert dataclasses.asdict(entry)["payload"] == entry.payload
    dead.spool.close()


def test_punches_are_reconciled_online_at_the_end_and_offline_at_the_replay(
    sessions: sessionmaker[Session], spool_dir: Path
) -> None:
    """A punch journaled in the database is reconciled when its call ends; a spooled one when
    the replay writes it: each carer's visit shows up either way."""
    from telegestion.model import Visit

    def visits() -> int:
        with sessions() as s:
            return s.scalar(select(func.count()).select_from(Visit)) or 0

    live = live_store(sessions, spool_dir)
    run_calls(live, [punch_call(MME_DUBOIS, ">042>12345")])
    assert visits() == 1
    live.spool.close()
    dead = dead_store(spool_dir)
    run_calls(dead, [punch_call(MME_FOURNIER, ">54321", called=DEDICATED_117)])
    dead.spool.close()
    assert visits() == 1
    replay(sessions, spool_dir)
    assert visits() == 2


def test_a_worker_restarted_during_the_outage_remembers_its_spooled_punches(
    sessions: sessionmaker[Session], spool_dir: Path
) -> None:
    """Arrival spooled, worker gone (no clean stop), a new worker on the same spool while the
    database is still down: the next punch is the departure, and both replay."""
    first = dead_store(spool_dir)
    run_calls(first, [punch_call(MME_DUBOIS, ">042>12345")])
    del first  # the spool file is all that is left of it
    second = dead_store(spool_dir)
    [record] = run_calls(second, [punch_call(MME_DUBOIS, ">042>12345")])
    assert "telegestion/departure-recorded" in record.prompts
    second.spool.close()
    replay(sessions, spool_dir)
    assert [p.kind for p in punch_rows(sessions)] == ["arrival", "departure"]


def test_a_database_path_given_up_on_neither_answers_nor_spools_again(
    db_url: str, sessions: sessionmaker[Session], spool_dir: Path
) -> None:
    """The executor gave up on a punch insert stuck behind a lock and spooled the punch; when
    the insert then fails (lock timeout), it does not spool a second punch for the call."""
    company, carer, client = _ids(sessions)
    punch = fx.RecordPunch(company, carer, client, MME_DUBOIS)
    engine = make_engine(db_url, statement_timeout_ms=1000)
    store = resilient(make_session_factory(engine), spool_dir)
    store.start()
    locker = make_engine(db_url).connect()
    if db_url.startswith("sqlite"):
        locker.exec_driver_sql("BEGIN IMMEDIATE")
    else:
        locker.exec_driver_sql("LOCK TABLE punches IN EXCLUSIVE MODE")
    call = _call("stuck")
    late: list[object] = []
    worker = threading.Thread(target=lambda: late.append(store.answer(punch, call)))
    worker.start()
    try:
        while id(punch) not in store._in_flight:  # the database path has started
            worker.join(0.01)
        heard = store.answer_offline(punch, call, "timeout")
        assert isinstance(heard, fx.PunchRecorded) and heard.punch_id < 0
        worker.join(10)
    finally:
        locker.rollback()
        locker.close()
    assert late == [fx.Failure("abandoned")]
    assert [e.kind for e in store.spool.entries()] == ["punch"]
    assert (store.offline_calls, store.db_timeouts) == (1, 1)
    store.spool.close()
    engine.dispose()


def test_a_correction_online_is_written_as_its_result(
    sessions: sessionmaker[Session], spool_dir: Path
) -> None:
    """Online, a correction stores the kind the carer heard (flipped) and the first kind; the
    same correction written again (a late write after a replay) changes nothing."""
    live = live_store(sessions, spool_dir)
    run_calls(live, [punch_call(MME_DUBOIS, ">042>12345")])
    [record] = run_calls(live, [punch_call(MME_DUBOIS, ">042>12345>2")])
    assert "telegestion/correction-recorded" in record.prompts
    rows = punch_rows(sessions)
    assert [(p.kind, p.original_kind) for p in rows] == [
        ("arrival", None),
        ("arrival", "departure"),
    ]
    again = live.store.set_punch_kind(rows[1].id, _call(record.uniqueid), "arrival", "departure")
    assert again.kind == "arrival"
    assert [(p.kind, p.original_kind) for p in punch_rows(sessions)] == [
        ("arrival", None),
        ("arrival", "departure"),
    ]
    live.spool.close()


def test_a_code_failure_given_up_on_then_committed_late_counts_once(
    db_url: str, sessions: sessionmaker[Session], spool_dir: Path
) -> None:
    """A failed code entry whose insert waits on a lock is spooled with the time the database
    path was given; the insert then commits, and the replay recognises it: one failure."""
    failure = fx.RecordCodeFailure(MME_DUBOIS, "carer_code", "unknown_or_inactive_carer_code")
    engine = make_engine(db_url)
    store = resilient(make_session_factory(engine), spool_dir)
    store.start()
    locker = make_engine(db_url).connect()
    if db_url.startswith("sqlite"):
        locker.exec_driver_sql("BEGIN IMMEDIATE")
    else:
        locker.exec_driver_sql("LOCK TABLE code_failures IN EXCLUSIVE MODE")
    call = _call("slow-failure")
    late: list[object] = []
    worker = threading.Thread(target=lambda: late.append(store.answer(failure, call)))
    worker.start()
    try:
        while id(failure) not in store._in_flight:
            worker.join(0.01)
        assert store.answer_offline(failure, call, "timeout") is False
    finally:
        locker.rollback()
        locker.close()
    worker.join(10)
    assert late == [False]  # the late write committed (and its answer was dropped)
    store.spool.close()
    engine.dispose()
    assert counts(sessions)["CodeFailure"] == 1
    replay(sessions, spool_dir)
    assert counts(sessions)["CodeFailure"] == 1


def test_with_the_database_back_only_carers_with_spooled_punches_keep_spooling(
    sessions: sessionmaker[Session], spool_dir: Path
) -> None:
    """Spool not yet replayed, database back: another carer's punch goes to the database at
    once (so the spool drains while calls keep coming), while the carer whose arrival is still
    in the spool is spooled again and read back as a departure; the replay then stores both."""
    dead = dead_store(spool_dir)
    first = run_calls(dead, [punch_call(MME_DUBOIS, ">042>12345")])
    dead.spool.close()
    back = live_store(sessions, spool_dir)
    spooled = back.backlog()
    other = run_calls(back, [punch_call(MME_FOURNIER, ">54321", called=DEDICATED_117)])
    assert "telegestion/arrival-recorded" in other[0].prompts
    assert [p.call_key for p in punch_rows(sessions)] == [other[0].uniqueid]
    assert back.backlog() == spooled
    same = run_calls(back, [punch_call(MME_DUBOIS, ">042>12345")])
    assert "telegestion/departure-recorded" in same[0].prompts
    assert back.backlog() > spooled
    back.maintain()
    assert back.backlog() == 0
    kinds = {p.call_key: p.kind for p in punch_rows(sessions)}
    assert kinds == {
        first[0].uniqueid: "arrival",
        other[0].uniqueid: "arrival",
        same[0].uniqueid: "departure",
    }
    back.spool.close()
