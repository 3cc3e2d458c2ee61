"""telegestion.logs: one JSON object per line, and the call id on lines logged anywhere a call's
work runs (the reactor, a database thread, Twisted's own logger)."""

from __future__ import annotations

import io
import json
import logging
import time
from collections.abc import Iterator
from typing import Any

import pytest
from twisted.internet import reactor
from twisted.internet.defer import Deferred, ensureDeferred
from twisted.internet.threads import deferToThreadPool
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.python.threadpool import ThreadPool

from telegestion import logs

log = logging.getLogger("tests.operations.logs")


@pytest.fixture
def lines() -> Iterator[io.StringIO]:
    """The formatted lines of ``tests.operations.*`` and ``twisted.test.*`` loggers."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(logs.JsonFormatter("n1"))
    watched = [logging.getLogger("tests.operations"), logging.getLogger("tests.twisted")]
    for logger in watched:
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
    try:
        yield out
    finally:
        for logger in watched:
            logger.removeHandler(handler)


def records(out: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.getvalue().splitlines()]


def wait(deferred: Deferred[Any], timeout: float = 5.0) -> Any:
    """Pump the global reactor until ``deferred`` fires (it cannot be restarted per test)."""
    outcome: list[Any] = []
    deferred.addBoth(outcome.append)
    deadline = time.monotonic() + timeout
    while not outcome:
        assert time.monotonic() < deadline, "nothing in time"
        reactor.iterate(0.002)  # type: ignore[attr-defined]
    if isinstance(outcome[0], Failure):
        outcome[0].raiseException()
    return outcome[0]


@pytest.fixture
def pool() -> Iterator[ThreadPool]:
    threads = ThreadPool(minthreads=1, maxthreads=1, name="telegestion-db")
    threads.start()
    yield threads
    threads.stop()


def test_a_line_is_one_json_object_with_the_bound_fields(lines: io.StringIO) -> None:
    """ts, level, logger, node, thread, the bound call id, the message, extras; no None."""
    with logs.bind(call="1795.7", transport=None):
        log.warning("two\nlines %s", "here", extra={"outcome": "error", "step": None})
    log.info("after")
    first, second = records(lines)
    assert first["call"] == "1795.7" and "transport" not in first
    assert first["msg"] == "two\nlines here" and first["outcome"] == "error"
    assert "step" not in first
    assert (first["level"], first["logger"], first["node"]) == (
        "warning",
        "tests.operations.logs",
        "n1",
    )
    assert first["ts"].endswith("+00:00") and first["thread"] == "MainThread"
    assert "call" not in second
    assert len(lines.getvalue().splitlines()) == 2


def test_an_exception_stays_on_its_line(lines: io.StringIO) -> None:
    """A traceback goes in the ``exc`` field of the same line, with the call id."""
    with logs.bind(call="c1"):
        try:
            raise ValueError("boom")
        except ValueError:
            log.exception("failed")
    (entry,) = records(lines)
    assert entry["call"] == "c1" and "ValueError: boom" in entry["exc"]


def test_database_thread_lines_carry_the_call_id_only_through_in_context(
    lines: io.StringIO, pool: ThreadPool
) -> None:
    """Twisted's pool runs work in an empty context; ``in_context`` carries the call id over."""

    def run(fn: Any, *args: Any) -> Deferred[Any]:
        return deferToThreadPool(reactor, pool, fn, *args)

    def db_work(label: str) -> None:
        log.info("query %s", label)

    with logs.bind(call="1795.8"):
        plain = run(db_work, "plain")
        carried = logs.in_context(run)(db_work, "carried")
    wait(plain)
    wait(carried)
    by_msg = {r["msg"]: r for r in records(lines)}
    assert "call" not in by_msg["query plain"]
    assert by_msg["query carried"]["call"] == "1795.8"
    assert "telegestion-db" in by_msg["query carried"]["thread"]


def test_a_coroutine_keeps_its_call_id_across_awaits(lines: io.StringIO, pool: ThreadPool) -> None:
    """A call's coroutine (``ensureDeferred``) binds its id once; lines after an await on a
    thread's result still carry it, and the caller's context is untouched."""
    run = logs.in_context(lambda fn, *a: deferToThreadPool(reactor, pool, fn, *a))

    async def call() -> None:
        logs.bind_here(call="1795.9")
        await run(lambda: log.info("in thread"))
        log.info("back on the reactor")

    wait(ensureDeferred(call()))
    log.info("outside")
    got = {r["msg"]: r.get("call") for r in records(lines)}
    assert got == {"in thread": "1795.9", "back on the reactor": "1795.9", "outside": None}


def test_twisted_log_events_become_records_of_their_namespace(lines: io.StringIO) -> None:
    """A Twisted Logger event goes to ``logging`` under its namespace, with the call id and
    its failure's traceback."""
    events: list[dict[str, Any]] = []
    tlog = Logger(namespace="tests.twisted.wire", observer=events.append)
    with logs.bind(call="1795.10"):
        tlog.warn("Dropping {peer}", peer="127.0.0.1:5")
        try:
            1 / 0  # noqa: B018
        except ZeroDivisionError:
            tlog.failure("handler failed")
        for event in events:
            logs.twisted_to_logging(event)
    warn, failure = records(lines)
    assert warn["logger"] == "tests.twisted.wire" and warn["level"] == "warning"
    assert warn["msg"] == "Dropping 127.0.0.1:5" and warn["call"] == "1795.10"
    assert failure["level"] == "critical" and "ZeroDivisionError" in failure["exc"]


def test_configure_refuses_an_unknown_format() -> None:
    """A mistyped log format is a clear error, not a silent default."""
    with pytest.raises(ValueError, match="json, text"):
        logs.configure(node="n", fmt="xml")


def test_a_twilio_webhook_logs_with_its_call_sid(lines: io.StringIO) -> None:
    """A refused webhook's warning carries the CallSid of the form as the call id."""
    from io import BytesIO

    from twisted.internet.defer import succeed
    from twisted.web.test.requesthelper import DummyRequest

    from callback.signature import WebhookSignature
    from callback.web import Webhook

    class Service:
        def rejected(self, *args: Any) -> Deferred[None]:
            return succeed(None)

    watched = logging.getLogger("callback.web")
    watched.addHandler(logging.getLogger("tests.operations").handlers[0])
    try:
        request = DummyRequest([b"twilio", b"voice", b"incoming"])
        request.method = b"POST"
        request.uri = b"/twilio/voice/incoming"
        body = b"CallSid=CA0123&From=%2B33612345678"
        request.content = BytesIO(body)
        request.args = {b"CallSid": [b"CA0123"], b"From": [b"+33612345678"]}
        request.requestHeaders.setRawHeaders(
            b"content-type", [b"application/x-www-form-urlencoded"]
        )
        hook = Webhook("incoming", Service(), WebhookSignature("token"), "https://tg.example")
        hook.render(request)
    finally:
        watched.removeHandler(logging.getLogger("tests.operations").handlers[0])
    (entry,) = [r for r in records(lines) if r["logger"] == "callback.web"]
    assert entry["call"] == "CA0123" and "refused incoming webhook" in entry["msg"]
    assert request.responseCode == 403
