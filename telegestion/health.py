"""``GET /healthz``: can this worker take calls now?

The answer is for a load balancer, a supervisor or an operator, so it is decided by one rule
(:func:`health_verdict`) that says how each state maps to an HTTP status:

- ``ok`` (200): the database answers and the worker's calls use it;
- ``degraded`` (200): the database does not answer (or the worker's calls still run offline
  until the spool is replayed) but the outage spool keeps punches and journals, so a carer's
  call is still served and recorded: keep sending calls here (taking the worker out would
  only move the same outage to the next worker);
- ``draining`` (503): the worker is stopping after SIGTERM; it finishes its calls and takes
  no new one;
- ``fail`` (503): the database does not answer and nothing could keep a punch.

The database probe runs on its own thread and connection (never queued behind calls) and
the page waits for it at most ``timeout_s``; a probe still running is shared, not repeated.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime
from twisted.python.failure import Failure
from twisted.web import resource, server

from telegestion.metrics import WorkerHooks


@dataclasses.dataclass(frozen=True)
class Verdict:
    status: str
    http_status: int


def health_verdict(
    *, draining: bool, database: str, spool_ok: bool | None, offline: bool | None = None
) -> Verdict:
    """The rule of the module docstring. ``database`` is the probe's ``ok`` or why not;
    ``offline`` is True while the worker's own calls run from the spool."""
    if draining:
        return Verdict("draining", 503)
    if database == "ok" and not offline:
        return Verdict("ok", 200)
    if spool_ok:
        return Verdict("degraded", 200)
    return Verdict("fail", 503)


class DatabaseProbe:
    """``SELECT 1`` through ``run_blocking`` (a thread with its own connection), answered within
    ``timeout_s``: ``"ok"``, ``"timeout"`` or the error. The last answer is kept for the
    ``telegestion_database_up`` gauge."""

    def __init__(
        self,
        probe: Callable[[], object],
        *,
        run_blocking: Callable[..., Deferred[Any]],
        clock: IReactorTime,
        timeout_s: float = 2.0,
    ) -> None:
        self.probe = probe
        self.run_blocking = run_blocking
        self.clock = clock
        self.timeout_s = timeout_s
        self.last: str | None = None
        self._running: Deferred[str] | None = None
        self._waiters: list[Deferred[str]] = []

    def check(self) -> Deferred[str]:
        waiter: Deferred[str] = Deferred()
        self._waiters.append(waiter)
        timer = self.clock.callLater(self.timeout_s, self._overdue, waiter)
        waiter.addBoth(_cancelling(timer))
        if self._running is None:
            self._running = self.run_blocking(self.probe)
            self._running.addCallbacks(lambda _: "ok", _describe).addCallback(self._answered)
        return waiter

    def up(self) -> bool | None:
        return None if self.last is None else self.last == "ok"

    def _answered(self, answer: str) -> None:
        self._running = None
        self.last = answer
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.called:
                waiter.callback(answer)

    def _overdue(self, waiter: Deferred[str]) -> None:
        if waiter in self._waiters:
            self._waiters.remove(waiter)
        self.last = "timeout"
        if not waiter.called:
            waiter.callback("timeout")


def _cancelling(timer: Any) -> Callable[[str], str]:
    def cancel(answer: str) -> str:
        if timer.active():
            timer.cancel()
        return answer

    return cancel


def _describe(failure: Failure) -> str:
    """``Type: first line of the message``: what an operator reads in a health check."""
    lines = failure.getErrorMessage().strip().splitlines() or [""]
    return f"{failure.type.__name__}: {lines[0]}"[:200]


def sql_probe(engine: Any) -> Callable[[], None]:
    """A blocking ``SELECT 1`` on ``engine``."""
    from sqlalchemy import text

    def probe_database() -> None:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))

    return probe_database


class HealthResource(resource.Resource):
    """``GET /healthz`` as JSON: ``status``, ``database``, ``spool``, ``directory_age_s``,
    ``calls_in_progress``, ``node``, ``draining``; the HTTP status says whether to send calls."""

    isLeaf = True

    def __init__(
        self,
        node: str,
        probe: DatabaseProbe,
        hooks: WorkerHooks,
        draining: Callable[[], bool],
    ) -> None:
        super().__init__()
        self.node = node
        self.probe = probe
        self.hooks = hooks
        self.draining = draining

    def render_GET(self, request: server.Request) -> int:
        d = self.probe.check()
        d.addCallback(self._answer, request)
        d.addErrback(lambda f: self._answer(_describe(f), request))
        return server.NOT_DONE_YET

    def report(self, database: str) -> tuple[int, dict[str, Any]]:
        h = self.hooks
        spool_ok = _call(h.spool_ok)
        offline = _call(h.offline)
        verdict = health_verdict(
            draining=self.draining(), database=database, spool_ok=spool_ok, offline=offline
        )
        body: dict[str, Any] = {
            "status": verdict.status,
            "node": self.node,
            "draining": self.draining(),
            "database": database,
            "offline": offline,
            "calls_in_progress": _call(h.calls_in_progress),
        }
        spool = {
            "ok": spool_ok,
            "backlog": _call(h.spool_backlog),
            "oldest_age_s": _round(_call(h.spool_oldest_age_s)),
        }
        body["spool"] = spool if any(v is not None for v in spool.values()) else None
        body["directory_age_s"] = _round(_call(h.directory_age_s))
        return verdict.http_status, body

    def _answer(self, database: str, request: server.Request) -> None:
        if request.finished or getattr(request, "_disconnected", False):
            return
        status, body = self.report(database)
        request.setResponseCode(status)
        request.setHeader(b"content-type", b"application/json")
        request.setHeader(b"cache-control", b"no-store")
        request.write(json.dumps(body).encode())
        request.finish()


def _call(fn: Callable[[], Any] | None) -> Any:
    if fn is None:
        return None
    try:
        return fn()
    except Exception as exc:
        return f"error: {type(exc).__name__}"


def _round(value: Any) -> Any:
    return round(value, 3) if isinstance(value, float) else value


__all__ = ["DatabaseProbe", "HealthResource", "Verdict", "health_verdict", "sql_probe"]
