"""GET /healthz: which states send calls to a worker (200) and which do not (503)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import Engine
from twisted.internet.defer import Deferred, fail, maybeDeferred
from twisted.internet.task import Clock
from twisted.web.test.requesthelper import DummyRequest

from telegestion.health import DatabaseProbe, HealthResource, health_verdict, sql_probe
from telegestion.metrics import WorkerHooks


@pytest.mark.parametrize(
    ("draining", "database", "spool_ok", "offline", "expected"),
    [
        (False, "ok", None, None, ("ok", 200)),
        (False, "ok", True, False, ("ok", 200)),
        (False, "ok", True, True, ("degraded", 200)),  # calls still go to the spool
        (False, "timeout", True, True, ("degraded", 200)),
        (False, "OperationalError: gone", None, None, ("fail", 503)),
        (False, "timeout", False, True, ("fail", 503)),
        (True, "ok", True, False, ("draining", 503)),
        (True, "timeout", True, True, ("draining", 503)),
    ],
)
def test_verdict(
    draining: bool, database: str, spool_ok: bool | None, offline: bool | None, expected: tuple
) -> None:
    """A worker whose spool works keeps getting calls with its database down; a draining one
    never does."""
    verdict = health_verdict(
        draining=draining, database=database, spool_ok=spool_ok, offline=offline
    )
    assert (verdict.status, verdict.http_status) == expected


def render(health: HealthResource) -> tuple[DummyRequest, Deferred[None]]:
    request = DummyRequest([b""])
    done = request.notifyFinish()
    health.render_GET(request)
    return request, done


def body(request: DummyRequest) -> dict[str, Any]:
    return json.loads(b"".join(request.written))


def test_a_probe_that_hangs_answers_timeout_within_its_bound() -> None:
    """A frozen database: /healthz answers after ``timeout_s`` with database "timeout", and
    with the spool working that is 200 "degraded"; a second request shares the probe."""
    clock = Clock()
    started: list[Deferred[None]] = []

    def never(fn: Any) -> Deferred[None]:
        started.append(Deferred())
        return started[-1]

    probe = DatabaseProbe(lambda: None, run_blocking=never, clock=clock, timeout_s=2.0)
    hooks = WorkerHooks(
        calls_in_progress=lambda: 2,
        spool_ok=lambda: True,
        spool_backlog=lambda: 5,
        spool_oldest_age_s=lambda: 12.3456,
        offline=lambda: True,
        directory_age_s=lambda: 40.0,
    )
    health = HealthResource("n1", probe, hooks, draining=lambda: False)
    first, _ = render(health)
    second, _ = render(health)
    assert len(started) == 1 and not first.finished
    clock.advance(2.0)
    assert first.finished and second.finished
    assert first.responseCode == 200
    assert body(first) == {
        "status": "degraded",
        "node": "n1",
        "draining": False,
        "database": "timeout",
        "offline": True,
        "calls_in_progress": 2,
        "spool": {"ok": True, "backlog": 5, "oldest_age_s": 12.346},
        "directory_age_s": 40.0,
    }
    assert probe.up() is False


def test_a_failing_database_without_spool_is_503_and_draining_is_503() -> None:
    """No spool and an error from the database: 503 "fail" with the error; while draining,
    503 "draining" even with the database fine."""
    clock = Clock()
    failing = DatabaseProbe(
        lambda: None,
        run_blocking=lambda fn: fail(ConnectionError("refused")),
        clock=clock,
    )
    request, _ = render(HealthResource("n1", failing, WorkerHooks(), draining=lambda: False))
    assert request.responseCode == 503
    assert body(request)["status"] == "fail"
    assert body(request)["database"] == "ConnectionError: refused"
    assert body(request)["spool"] is None

    fine = DatabaseProbe(lambda: None, run_blocking=maybeDeferred, clock=clock)
    request, _ = render(HealthResource("n1", fine, WorkerHooks(), draining=lambda: True))
    assert (request.responseCode, body(request)["status"]) == (503, "draining")
    assert not clock.getDelayedCalls()  # the probe's timer went with its answer


@pytest.mark.db
def test_sql_probe_on_a_real_database(engine: Engine) -> None:
    """The probe runs ``SELECT 1`` on the database and answers ok."""
    probe = DatabaseProbe(sql_probe(engine), run_blocking=maybeDeferred, clock=Clock())
    answers: list[str] = []
    probe.check().addCallback(answers.append)
    assert answers == ["ok"] and probe.up() is True
