"""The FastAGI executor's bounded wait (ivr.fastagi_call.run_op): a database too slow is
given up on, and offline work never queues behind database threads."""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred, ensureDeferred, succeed
from twisted.internet.task import Clock

from ivr.agi_call import Blocking
from ivr.fastagi_call import DatabaseWait, run_op


class Runner:
    """A thread pool stand-in that records what it was given and answers when told to."""

    def __init__(self, name: str, answer_now: bool = True) -> None:
        self.name = name
        self.answer_now = answer_now
        self.ran: list[str] = []
        self.pending: list[Deferred[Any]] = []

    def __call__(self, fn: Any, *args: Any) -> Deferred[Any]:
        self.ran.append(fn.__name__)
        if self.answer_now:
            return succeed(fn(*args))
        d: Deferred[Any] = Deferred()
        self.pending.append(d)
        return d


def online() -> str:
    return "from the database"


def offline(why: str = "down") -> str:
    return f"from the spool ({why})"


def outcome(d: Deferred[Any]) -> list[Any]:
    got: list[Any] = []
    d.addBoth(got.append)
    return got


def test_a_database_too_slow_is_replaced_by_the_fallback_after_the_wait() -> None:
    """No answer within the wait: the fallback answers, on the offline runner."""
    clock = Clock()
    db, spool = Runner("db", answer_now=False), Runner("spool")
    op = Blocking(online, fallback=Blocking(offline, ("timeout",), offline=True))
    got = outcome(ensureDeferred(run_op(op, db, DatabaseWait(2.0, clock, spool))))
    clock.advance(1.9)
    assert got == []
    clock.advance(0.2)
    assert got == ["from the spool (timeout)"]
    assert (db.ran, spool.ran) == (["online"], ["offline"])
    db.pending[0].callback("late")  # the late answer is dropped, not an error
    assert got == ["from the spool (timeout)"]


def test_a_database_in_time_answers_and_no_fallback_runs() -> None:
    """An answer within the wait is the answer; the timer is gone."""
    clock = Clock()
    db, spool = Runner("db", answer_now=False), Runner("spool")
    op = Blocking(online, fallback=Blocking(offline, ("timeout",), offline=True))
    got = outcome(ensureDeferred(run_op(op, db, DatabaseWait(2.0, clock, spool))))
    clock.advance(1.0)
    db.pending[0].callback("from the database")
    assert got == ["from the database"]
    assert spool.ran == [] and clock.getDelayedCalls() == []


def test_offline_work_runs_on_its_own_runner() -> None:
    """Work marked offline never goes to the database runner, whose threads may all be stuck."""
    db, spool = Runner("db", answer_now=False), Runner("spool")
    got = outcome(
        ensureDeferred(
            run_op(Blocking(offline, offline=True), db, DatabaseWait(2.0, Clock(), spool))
        )
    )
    assert got == ["from the spool (down)"] and db.ran == []


def test_without_a_wait_the_database_is_awaited_as_before() -> None:
    """No DatabaseWait (a worker without spool, the in-memory harness): no timer, no fallback."""
    db = Runner("db", answer_now=False)
    op = Blocking(online, fallback=Blocking(offline, offline=True))
    got = outcome(ensureDeferred(run_op(op, db, None)))
    assert got == []
    db.pending[0].callback("slow but sure")
    assert got == ["slow but sure"]
