"""The minute task of ``telegestion serve``: results that change with the clock alone.

A LATE_START_ALERT must open ``late_alert_min`` after a planned start with nobody there, and
close by itself when the carer punches in (the punch's own reconciliation does that) or when
NO_PUNCH takes over; an arrival left open must get MISSING_DEPARTURE after
``max_visit_hours``. No punch arrives to trigger these, so every minute the carer-days where
one of those instants fell since the last tick are reconciled, on the database thread pool.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine
from twisted.internet import task
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime
from twisted.python.failure import Failure

from reconciliation.store import RunReport, reconcile_due, utc_now

log = logging.getLogger(__name__)

RunBlocking = Callable[..., Deferred[Any]]


class DueReconciler:
    """Calls :func:`reconciliation.store.reconcile_due` every ``interval_s`` seconds.

    Each tick covers the time since the previous successful one, so a tick that fails (the
    database restarting) is made up by the next. The first tick looks back ``catch_up``, for
    alerts that fell due while no server was running.
    """

    def __init__(
        self,
        engine: Engine,
        run_blocking: RunBlocking,
        *,
        clock: IReactorTime,
        now: Callable[[], datetime] = utc_now,
        interval_s: float = 60.0,
        catch_up: timedelta = timedelta(hours=2),
    ) -> None:
        self.engine = engine
        self.run_blocking = run_blocking
        self.now = now
        self.interval_s = interval_s
        self.catch_up = catch_up
        self.since: datetime | None = None
        self.last_report: RunReport | None = None
        self.loop = task.LoopingCall(self._tick)
        self.loop.clock = clock

    def start(self) -> Deferred[Any]:
        return self.loop.start(self.interval_s, now=True)

    def stop(self) -> None:
        if self.loop.running:
            self.loop.stop()

    def _tick(self) -> Deferred[Any]:
        now = self.now()
        if self.since is None:
            self.since = now - self.catch_up
        since = self.since

        def done(report: RunReport) -> None:
            self.since = now
            self.last_report = report
            if report.carer_days:
                log.info("time-driven reconciliation: %s", report)

        def failed(reason: Failure) -> None:
            log.error("time-driven reconciliation failed: %s", reason.getErrorMessage())

        d = self.run_blocking(reconcile_due, self.engine, since, now)
        d.addCallbacks(done, failed)
        return d


def start_due_reconciler(reactor: Any, engine: Engine, threadpool: Any) -> DueReconciler:
    """The task ``telegestion serve`` runs, on the thread pool that serves database work."""
    from twisted.internet.threads import deferToThreadPool

    def run_blocking(fn: Callable[..., Any], *args: Any) -> Deferred[Any]:
        return deferToThreadPool(reactor, threadpool, fn, *args)

    due = DueReconciler(engine, run_blocking, clock=reactor)
    reactor.callWhenRunning(due.start)
    return due
