"""Hostile callers on whole landline calls: code guessing and poisoned caller ids.

Real FastAGI calls from the simulated Asterisk on a real database (SQLite and PostgreSQL), with
the worker's wall clock injected so that "within an hour" and "for the rest of the hour" are
tested without waiting. ``tests/ivr/test_ivr_calls.py`` pins the basic lock-out; this file pins
its edges: the exact threshold, the end of the lock-out, one anomaly however long the guessing
goes on, and the three-attempt limit inside one call.
"""

from __future__ import annotations

import datetime as dt

import pytest
from ivr_harness import FATOU, MME_DUBOIS, SHARED, inline, load_examples, real_durations
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker
from transport_harness import TEST_FLOW
from twisted.internet.task import Clock

from ivr.agi_channel import FastAGIFactory
from ivr.asterisk_sim import CallRecord, SimulatedCall, parse_keys, simulate_calls
from ivr.call_store import CallStore
from ivr.fastagi_call import FastAGICall
from telegestion.model import Anomaly, Call, CodeFailure, Punch

GUESSER = "0611223344"
GUESSER_E164 = "+33611223344"
T0 = dt.datetime(2026, 11, 24, 7, 0, tzinfo=dt.UTC)


class ClockedWorker:
    """A FastAGI worker whose database clock the test moves (the harness's uses the real one)."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.now = T0
        self.store = CallStore(sessions, clock=lambda: self.now)
        handler = FastAGICall(
            self.store, run_blocking=inline, node="node1", flow_settings=TEST_FLOW
        )
        self.clock = Clock()
        self.factory = FastAGIFactory(handler, clock=self.clock)

    def call(self, caller: str | None, keys: str, **kw: object) -> CallRecord:
        call = SimulatedCall(
            called=SHARED,
            caller=caller,
            script=tuple(parse_keys(keys)),
            durations=real_durations(),
            **kw,  # type: ignore[arg-type]
        )
        [record] = simulate_calls(self.factory, [call], self.clock)
        self.now += dt.timedelta(seconds=30)
        return record


@pytest.fixture
def db(sessions: sessionmaker[Session]) -> sessionmaker[Session]:
    load_examples(sessions)
    return sessions


def status(record: CallRecord) -> str:
    return record.variables["TELEGESTION_STATUS"]


def brute_force(db: sessionmaker[Session]) -> list[Anomaly]:
    with db() as s:
        return list(s.scalars(select(Anomaly).where(Anomaly.code == "CODE_BRUTE_FORCE")))


def failures(db: sessionmaker[Session]) -> int:
    with db() as s:
        return s.scalar(select(func.count()).select_from(CodeFailure)) or 0


def landline_punches(db: sessionmaker[Session]) -> int:
    with db() as s:
        return s.scalar(select(func.count()).where(Punch.source == "landline")) or 0


def test_one_call_allows_three_guesses_then_hangs_up(db: sessionmaker[Session]) -> None:
    """A caller keying wrong codes forever gets 3 attempts, too-many-attempts, then a hang-up."""
    worker = ClockedWorker(db)
    record = worker.call(GUESSER, ">999>998>997>996>995>994>993")
    assert status(record) == "company_code_failed"
    assert record.prompts.count("telegestion/invalid-company-code") == 2
    assert "telegestion/too-many-attempts" in record.prompts
    assert record.hung_up_by == "server"
    assert failures(db) == 3


def test_five_failures_are_tolerated_the_sixth_locks_the_number_for_an_hour(
    db: sessionmaker[Session],
) -> None:
    """Five wrong codes still let a call in; the sixth locks the number until an hour has passed."""
    worker = ClockedWorker(db)
    assert status(worker.call(GUESSER, ">999>998>997")) == "company_code_failed"
    # two more wrong codes, then the right ones: a carer who mistyped is not locked out
    assert status(worker.call(GUESSER, ">999>998>042>12345")) == "punch_recorded"
    assert failures(db) == 5 and brute_force(db) == []
    sixth = worker.call(GUESSER, ">999>042>12345")
    assert status(sixth) == "locked_out"
    locked_at = worker.now
    [anomaly] = brute_force(db)
    assert anomaly.detail["caller_number"] == GUESSER_E164
    for _ in range(3):  # guessing on changes nothing: locked, no new failure, no new anomaly
        locked = worker.call(GUESSER, ">042>12345")
        assert status(locked) == "locked_out"
        assert "telegestion/service-unavailable" in locked.prompts
        assert "telegestion/enter-company-code" not in locked.prompts
    assert failures(db) == 6 and len(brute_force(db)) == 1
    assert landline_punches(db) == 1
    other = worker.call(MME_DUBOIS, ">042>" + FATOU)
    assert status(other) == "punch_recorded"
    worker.now = locked_at + dt.timedelta(minutes=58)
    assert status(worker.call(GUESSER, ">042>12345")) == "locked_out"
    worker.now = locked_at + dt.timedelta(minutes=61)
    assert status(worker.call(GUESSER, ">042>12345")) == "punch_recorded"


def test_carer_code_failures_count_towards_the_lock_out(db: sessionmaker[Session]) -> None:
    """Guessing carer codes behind a right company code locks the number the same way."""
    worker = ClockedWorker(db)
    assert status(worker.call(GUESSER, ">042>99999>99998>99997")) == "carer_code_failed"
    assert status(worker.call(GUESSER, ">042>99996>99995>99994")) == "locked_out"
    assert len(brute_force(db)) == 1
    assert status(worker.call(GUESSER, ">042>12345")) == "locked_out"


def test_failures_spread_over_more_than_an_hour_never_lock(db: sessionmaker[Session]) -> None:
    """Two wrong codes every 31 minutes: never more than 5 in an hour, never locked out."""
    worker = ClockedWorker(db)
    for _ in range(6):
        assert status(worker.call(GUESSER, ">999>998>042>12345")) == "punch_recorded"
        worker.now += dt.timedelta(minutes=31)
    assert failures(db) == 12 and brute_force(db) == []


@pytest.mark.parametrize(
    "name", [b"Dupont\x00; DROP TABLE punch", b"\xff\xfe\x00\x00", b"\x00" * 40]
)
def test_nul_bytes_in_the_caller_id_do_not_lose_the_punch(
    db: sessionmaker[Session], name: bytes
) -> None:
    """A caller name with NUL bytes (any network may send one) is journaled; the punch is kept."""
    worker = ClockedWorker(db)
    record = worker.call(MME_DUBOIS, ">042>" + FATOU, caller_name=name)
    assert status(record) == "punch_recorded"
    assert landline_punches(db) == 1
    with db() as s:
        call = s.scalars(select(Call).where(Call.call_key == record.uniqueid)).one()
    assert call.outcome == "punch_recorded"


@pytest.mark.parametrize("caller", ["0145678912\x00", "\x00", "01\x0045\x00678912"])
def test_nul_bytes_in_the_caller_number_do_not_lose_the_punch(
    db: sessionmaker[Session], caller: str
) -> None:
    """A caller number with NUL bytes is journaled as sent (NUL replaced); the punch is kept."""
    worker = ClockedWorker(db)
    record = worker.call(caller, ">042>" + FATOU)
    assert status(record) == "punch_recorded"
    assert landline_punches(db) == 1
    with db() as s:
        call = s.scalars(select(Call).where(Call.call_key == record.uniqueid)).one()
    assert call.outcome == "punch_recorded"
    assert "\x00" not in (call.caller_raw or "")


def test_restarting_an_entry_with_star_is_not_a_free_guess(db: sessionmaker[Session]) -> None:
    """Keys before a `*` are thrown away unchecked: forty restarts then three wrong codes end it."""
    worker = ClockedWorker(db)
    record = worker.call(GUESSER, ">" + "9*" * 40 + "999>998>997>042>12345")
    assert status(record) == "company_code_failed"
    assert failures(db) == 3
    assert landline_punches(db) == 0
