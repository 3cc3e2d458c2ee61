"""Time-driven results: LATE_START_ALERT opens and closes by itself, NO_PUNCH takes over, an
open arrival turns into MISSING_DEPARTURE; and the minute task of ``telegestion serve``."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from recon_db_world import World, local, open_codes
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker
from twisted.internet import defer, task

from reconciliation.realtime import DueReconciler
from reconciliation.store import reconcile_after_punches, reconcile_due


@pytest.fixture
def day(sessions: sessionmaker[Session]) -> World:
    """Carer I1 is planned at client C1 on 4 May 2026 from 9:00 to 10:00 (Paris)."""
    w = World(sessions)
    company = w.company("042")
    client = w.client(company, "C1", "+33145678912")
    carer = w.carer(company, "I1")
    w.plan(company, "P1", client, carer, "2026-05-04 09:00", "2026-05-04 10:00")
    w.ids.update(company=company, client=client, carer=carer)
    return w


def punch_in(w: World, at: str) -> int:
    return w.punch(w.ids["company"], w.ids["carer"], w.ids["client"], "arrival", at)


def codes(sessions: sessionmaker[Session]) -> set[str]:
    return {key.split(":")[0] for key in open_codes(sessions)}


def test_late_start_alert_opens_then_closes_at_the_arrival(
    engine: Engine, sessions: sessionmaker[Session], day: World
) -> None:
    """Nothing at 9:14; the alert at 9:15 (start + late_alert_min); the carer's arrival at 9:20
    closes it and the visit's LATE_ARRIVAL replaces it."""
    reconcile_due(engine, local("2026-05-04 09:00"), local("2026-05-04 09:14"))
    assert codes(sessions) == set()
    report = reconcile_due(engine, local("2026-05-04 09:14"), local("2026-05-04 09:15"))
    assert report.carer_days == 1
    assert codes(sessions) == {"LATE_START_ALERT"}
    arrival = punch_in(day, "2026-05-04 09:20")
    reconcile_after_punches(engine, [arrival], now=local("2026-05-04 09:20"))
    assert codes(sessions) == {"LATE_ARRIVAL"}


def test_no_punch_takes_over_from_the_alert(
    engine: Engine, sessions: sessionmaker[Session], day: World
) -> None:
    """Nobody came: the alert closes when NO_PUNCH opens, after the end plus the tolerance."""
    reconcile_due(engine, local("2026-05-04 09:10"), local("2026-05-04 09:20"))
    assert codes(sessions) == {"LATE_START_ALERT"}
    reconcile_due(engine, local("2026-05-04 10:10"), local("2026-05-04 10:15"))
    assert codes(sessions) == {"LATE_START_ALERT"}
    reconcile_due(engine, local("2026-05-04 10:15"), local("2026-05-04 10:16"))
    assert codes(sessions) == {"NO_PUNCH"}


def test_open_arrival_gets_missing_departure_after_max_visit_hours(
    engine: Engine, sessions: sessionmaker[Session], day: World
) -> None:
    """An arrival at 9:00 never closed: nothing wrong at 20:59, MISSING_DEPARTURE after 21:00,
    which also blocks the intervention it matched."""
    arrival = punch_in(day, "2026-05-04 09:00")
    reconcile_after_punches(engine, [arrival], now=local("2026-05-04 09:00"))
    assert codes(sessions) == set()
    reconcile_due(engine, local("2026-05-04 20:50"), local("2026-05-04 21:01"))
    assert codes(sessions) == {"MISSING_DEPARTURE"}


class Instant:
    """A wall clock driven by a Twisted task.Clock (seconds since 4 May 2026 09:00 Paris)."""

    def __init__(self, clock: task.Clock) -> None:
        self.clock = clock
        self.origin = datetime(2026, 5, 4, 7, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.origin + timedelta(seconds=self.clock.seconds())


def synchronous(fail_first: int = 0) -> Callable[..., defer.Deferred[Any]]:
    """A run_blocking that runs inline (the tests need no threads); fails its first calls."""
    calls = {"n": 0}

    def run(fn: Callable[..., Any], *args: Any) -> defer.Deferred[Any]:
        calls["n"] += 1
        if calls["n"] <= fail_first:
            return defer.fail(RuntimeError("database restarting"))
        return defer.maybeDeferred(fn, *args)

    return run


def test_minute_task_raises_the_alert_on_time(
    engine: Engine, sessions: sessionmaker[Session], day: World
) -> None:
    """Ticking every minute from 9:00, the alert is there after the 9:15 tick, not before."""
    clock = task.Clock()
    due = DueReconciler(
        engine, synchronous(), clock=clock, now=Instant(clock), catch_up=timedelta(0)
    )
    due.start()
    clock.advance(14 * 60)
    assert codes(sessions) == set()
    clock.advance(60)
    assert codes(sessions) == {"LATE_START_ALERT"}
    due.stop()


def test_minute_task_survives_a_failed_tick_and_covers_its_window(
    engine: Engine, sessions: sessionmaker[Session], day: World
) -> None:
    """Ticks that fail (database down from 9:14 to 9:16) keep the loop alive, and the next good
    tick covers the minutes they missed."""
    clock = task.Clock()
    clock.advance(14 * 60)
    due = DueReconciler(
        engine, synchronous(fail_first=3), clock=clock, now=Instant(clock), catch_up=timedelta(0)
    )
    due.start()
    clock.advance(60)
    clock.advance(60)
    assert codes(sessions) == set()
    assert due.loop.running
    clock.advance(60)
    assert codes(sessions) == {"LATE_START_ALERT"}
    due.stop()
