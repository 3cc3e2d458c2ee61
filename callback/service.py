"""The call-back inside a running worker: threads for the work, the clock for the waits.

Every webhook and every placement is blocking work (database, Twilio's REST API), so it runs
through ``run_blocking`` (a thread pool in ``telegestion serve``); this class only decides
*when*, on the injected clock (the reactor, or a ``task.Clock`` in tests):

- a new call-back is placed when it is due (``TELEGESTION_CALLBACK_DELAY_S`` after the carer's
  call) and a retry ``TELEGESTION_CALLBACK_RETRY_S`` after a failed attempt, by a timer of the
  worker that recorded it;
- every ``poll_interval_s`` the worker also looks for due call-backs nobody placed, so those of
  a worker that died are placed all the same (the database holds them, not the timer);
- a webhook that finds its call busy (another worker is on it) is tried again a moment later,
  on ``busy_clock`` (the reactor): that wait is part of answering an HTTP request, not a
  call-back delay.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from twisted.internet import task
from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.python.failure import Failure

from callback.config import CallbackConfig
from callback.dialer import Dialer
from callback.placement import Placed, place_due_callbacks
from callback.webhooks import TEXT_TYPE, CallbackWebhooks, WebAnswer

log = logging.getLogger(__name__)

BUSY_RETRY_S = 0.2
BUSY_RETRIES = 50


class RunBlocking(Protocol):
    def __call__(self, fn: Callable[..., Any], *args: Any) -> Deferred[Any]: ...


class CallbackService:
    def __init__(
        self,
        config: CallbackConfig,
        webhooks: CallbackWebhooks,
        dialer: Dialer,
        *,
        clock: IReactorTime,
        run_blocking: RunBlocking,
        wall_clock: Callable[[], dt.datetime],
        busy_clock: IReactorTime | None = None,
    ) -> None:
        self.config = config
        self.webhooks = webhooks
        self.dialer = dialer
        self.clock = clock
        self.busy_clock = busy_clock or clock
        self.run_blocking = run_blocking
        self.wall_clock = wall_clock
        self._poll: task.LoopingCall | None = None
        self._timers: list[IDelayedCall] = []
        self._dispatching: Deferred[None] | None = None
        self._again = False
        self._idle_waiters: list[Deferred[None]] = []

    # --- life -----------------------------------------------------------------------------------

    def start(self) -> None:
        """Look for due call-backs now and every ``poll_interval_s``."""
        self._poll = task.LoopingCall(self.dispatch_due)
        self._poll.clock = self.clock
        self._poll.start(self.config.poll_interval_s, now=True).addErrback(
            lambda f: log.error("call-back poll stopped: %s", f.getErrorMessage())
        )

    def stop(self) -> None:
        if self._poll is not None and self._poll.running:
            self._poll.stop()
        for timer in self._timers:
            if timer.active():
                timer.cancel()
        self._timers.clear()

    # --- webhooks ---------------------------------------------------------------------------------

    def handle(
        self, kind: str, form: Mapping[str, str], query: Mapping[str, str]
    ) -> Deferred[WebAnswer]:
        """Serve one checked webhook (``incoming``, ``flow`` or ``status``) off the reactor."""
        if kind == "incoming":
            return self._after(self.run_blocking(self.webhooks.incoming, form))
        handler = self.webhooks.flow if kind == "flow" else self.webhooks.status
        return self._after(self._until_free(handler, form, query, BUSY_RETRIES))

    def rejected(
        self, path: str, form: Mapping[str, str], reason: str, remote: str
    ) -> Deferred[None]:
        return self.run_blocking(self.webhooks.rejected, path, form, reason, remote)

    def _until_free(
        self,
        handler: Callable[[Mapping[str, str], Mapping[str, str]], WebAnswer],
        form: Mapping[str, str],
        query: Mapping[str, str],
        retries: int,
    ) -> Deferred[WebAnswer]:
        def again(answer: WebAnswer) -> WebAnswer | Deferred[WebAnswer]:
            if not answer.busy or retries <= 0:
                return answer
            return task.deferLater(self.busy_clock, BUSY_RETRY_S, lambda: None).addCallback(
                lambda _: self._until_free(handler, form, query, retries - 1)
            )

        return self.run_blocking(handler, form, query).addCallback(again)

    def _after(self, d: Deferred[WebAnswer]) -> Deferred[WebAnswer]:
        def schedule(answer: WebAnswer) -> WebAnswer:
            if answer.dispatch_at is not None:
                self.dispatch_at(answer.dispatch_at)
            return answer

        def crashed(failure: Failure) -> WebAnswer:
            log.error("call-back webhook failed: %s", failure.getTraceback())
            return WebAnswer(500, "internal error\n", TEXT_TYPE)

        return d.addCallbacks(schedule, crashed)

    # --- placing call-backs -------------------------------------------------------------------

    def dispatch_at(self, when: dt.datetime) -> None:
        """Look for due call-backs at ``when`` (wall clock), on this worker's timer."""
        delay = max(0.0, (when - self.wall_clock()).total_seconds())
        self._timers = [t for t in self._timers if t.active()]
        self._timers.append(self.clock.callLater(delay, self.dispatch_due))

    def dispatch_due(self) -> Deferred[None]:
        """Place every due call-back; one look at a time per worker, another one is queued."""
        if self._dispatching is not None:
            self._again = True
            return succeed(None)
        self._dispatching = self.run_blocking(
            place_due_callbacks,
            self.config,
            self.webhooks.store,
            self.webhooks.call_store,
            self.dialer,
            self.wall_clock,
        )

        def done(result: Placed | Failure) -> None:
            self._dispatching = None
            if isinstance(result, Failure):
                log.error("placing call-backs failed: %s", result.getErrorMessage())
            else:
                for when in result.retries_at:
                    self.dispatch_at(when)
            if self._again:
                self._again = False
                self.dispatch_due()
                return
            waiters, self._idle_waiters = self._idle_waiters, []
            for waiter in waiters:
                waiter.callback(None)

        self._dispatching.addBoth(done)
        return succeed(None)

    def idle(self) -> Deferred[None]:
        """Fires once no placement is running (tests, and a clean shutdown)."""
        if self._dispatching is None:
            return succeed(None)
        waiter: Deferred[None] = Deferred()
        self._idle_waiters.append(waiter)
        return waiter
