"""The worker's timing, on a ``task.Clock``: when placements run, and busy webhooks retried."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from typing import Any

from twisted.internet import task
from twisted.internet.defer import Deferred, maybeDeferred

from callback.config import CallbackConfig
from callback.service import BUSY_RETRY_S, CallbackService
from callback.store import RequestView
from callback.webhooks import WebAnswer

T0 = dt.datetime(2026, 11, 24, 8, 5, tzinfo=dt.UTC)
CONFIG = CallbackConfig("AC1", "token", "https://tg.example.fr", None, poll_interval_s=5.0)


class Store:
    """Counts how often the worker looks for due call-backs."""

    def __init__(self) -> None:
        self.looks: list[dt.datetime] = []

    def claim_due(self, now: dt.datetime, **_: Any) -> list[RequestView]:
        self.looks.append(now)
        return []


class Webhooks:
    """Answers ``busy`` a given number of times, then the TwiML."""

    def __init__(self, busy: int) -> None:
        self.busy = busy
        self.calls = 0
        self.store = Store()
        self.call_store = None

    def flow(self, form: Mapping[str, str], query: Mapping[str, str]) -> WebAnswer:
        self.calls += 1
        if self.calls <= self.busy:
            return WebAnswer(503, "busy", busy=True)
        return WebAnswer(200, "<Response/>")

    def incoming(self, form: Mapping[str, str]) -> WebAnswer:
        return WebAnswer(200, "<Response/>", dispatch_at=T0 + dt.timedelta(seconds=5))


def inline(fn: Callable[..., Any], *args: Any) -> Deferred[Any]:
    return maybeDeferred(fn, *args)


def service(webhooks: Webhooks, clock: task.Clock) -> CallbackService:
    return CallbackService(
        CONFIG,
        webhooks,  # type: ignore[arg-type]
        dialer=None,  # type: ignore[arg-type]
        clock=clock,
        run_blocking=inline,
        wall_clock=lambda: T0 + dt.timedelta(seconds=clock.seconds()),
    )


def test_a_busy_webhook_is_tried_again_until_the_call_is_free() -> None:
    """Busy twice: the answer comes after two short waits on the clock, not before."""
    clock = task.Clock()
    webhooks = Webhooks(busy=2)
    answers: list[WebAnswer] = []
    service(webhooks, clock).handle("flow", {}, {}).addCallback(answers.append)
    assert answers == [] and webhooks.calls == 1
    clock.advance(BUSY_RETRY_S)
    assert answers == [] and webhooks.calls == 2
    clock.advance(BUSY_RETRY_S)
    assert [a.status for a in answers] == [200]


def test_a_new_call_back_is_looked_for_when_due_and_on_every_poll() -> None:
    """A granted call-back wakes the worker at its due time; the poll runs every 5 s anyway."""
    clock = task.Clock()
    webhooks = Webhooks(busy=0)
    worker = service(webhooks, clock)
    worker.start()
    assert webhooks.store.looks == [T0]
    clock.advance(1)
    worker.handle("incoming", {}, {})
    clock.advance(3.9)
    assert webhooks.store.looks == [T0]
    clock.advance(0.1)  # T0 + 5 s: the due time, and the poll
    assert webhooks.store.looks[1:] == [T0 + dt.timedelta(seconds=5)] * 2
    clock.advance(5)
    assert len(webhooks.store.looks) == 4
    worker.stop()
    clock.advance(60)
    assert len(webhooks.store.looks) == 4
