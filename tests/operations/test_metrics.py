"""telegestion.metrics: what is counted, timed and refreshed, and how it is exposed."""

from __future__ import annotations

import contextlib
import datetime as dt
import threading
from typing import Any

import pytest
from ops_harness import load_examples
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker
from twisted.internet.defer import maybeDeferred
from twisted.internet.task import Clock
from twisted.web.test.requesthelper import DummyRequest

from ivr import effects as fx
from ivr.agi_channel import command_name
from ivr.call_record import CallRecord
from telegestion.metrics import (
    GaugeRefresher,
    MetricsResource,
    WorkerHooks,
    WorkerMetrics,
    anomaly_counter,
    observe_store,
)
from telegestion.model import Anomaly, Company

NOW = dt.datetime(2026, 11, 23, 8, 0, tzinfo=dt.UTC)


def record(transport: str = "fastagi", key: str = "1.1") -> CallRecord:
    return CallRecord("n1", key, transport, "0800123456", "0145678912", None, NOW)


def summary(outcome: str) -> fx.CallSummary:
    return fx.CallSummary(outcome, None, None, None, None, None, None, None)  # type: ignore[arg-type]


class FallingBackStore:
    """Shaped like ``ivr.resilient_store.ResilientStore``: ``answer`` goes offline itself when
    the database fails (here: always for punches), ``finish`` likewise."""

    def __init__(self) -> None:
        self.finished: list[str] = []

    def answer(self, effect: Any, call: CallRecord) -> Any:
        return self.answer_offline(effect, call)

    def answer_offline(self, effect: Any, call: CallRecord, why: str = "down") -> Any:
        return fx.PunchRecorded(-1, "departure", 8, 0)

    def finish(self, call: CallRecord, s: fx.CallSummary) -> None:
        self.finish_offline(call, s)

    def finish_offline(self, call: CallRecord, s: fx.CallSummary, why: str = "down") -> None:
        self.finished.append(s.outcome)


def value(metrics: WorkerMetrics, name: str, **labels: str) -> float | None:
    return metrics.registry.get_sample_value(name, labels)


def test_punches_and_outcomes_are_counted_once_including_offline() -> None:
    """A store that falls back to its offline path counts one offline punch and one call; the
    offline path called directly (the executor's fallback) counts too."""
    metrics = WorkerMetrics()
    store = FallingBackStore()
    observe_store(store, metrics)
    observe_store(store, metrics)  # observing twice changes nothing
    punch = fx.RecordPunch(1, 2, None, "0145678912")
    store.answer(punch, record())
    store.answer_offline(punch, record("twilio"))
    store.answer(fx.LookupCompany("042"), record())  # not a punch
    store.finish(record(), summary("punch_recorded"))
    assert store.finished == ["punch_recorded"]
    offline = {"kind": "departure", "offline": "true"}
    assert value(metrics, "telegestion_punches_total", source="landline", **offline) == 1
    assert value(metrics, "telegestion_punches_total", source="callback", **offline) == 1
    assert (
        value(metrics, "telegestion_calls_total", outcome="punch_recorded", transport="fastagi")
        == 1
    )


def test_database_time_is_measured_on_the_thread_by_operation() -> None:
    """``timed`` observes each operation under its name, on the thread that runs it, and
    counts those that raise."""
    metrics = WorkerMetrics()
    threads: list[str] = []

    def runner(fn: Any, *args: Any) -> Any:
        def guarded() -> None:
            with contextlib.suppress(RuntimeError):
                fn(*args)

        worker = threading.Thread(target=guarded, name="db-thread")
        worker.start()
        worker.join()

    class Store:
        def finish(self) -> None:
            threads.append(threading.current_thread().name)

        def answer(self) -> None:
            raise RuntimeError("database gone")

    store = Store()
    run = metrics.timed(runner)
    run(store.finish)
    run(store.finish)
    run(store.answer)
    assert threads == ["db-thread", "db-thread"]
    assert value(metrics, "telegestion_db_operation_seconds_count", operation="finish") == 2
    assert value(metrics, "telegestion_db_operation_seconds_count", operation="answer") == 1
    assert value(metrics, "telegestion_db_operation_errors_total", operation="answer") == 1


def test_agi_command_labels_are_a_closed_set() -> None:
    """Arguments never reach a label: any line maps to a known command or OTHER."""
    assert command_name('GET DATA "telegestion/welcome" 6000 5') == "GET DATA"
    assert command_name("get full variable ${X}") == "GET FULL VARIABLE"
    assert command_name("HANGUP") == "HANGUP"
    assert command_name("DATABASE PUT x y") == "OTHER"
    assert command_name("GET DATAX") == "OTHER"


@pytest.mark.db
def test_open_anomalies_are_refreshed_from_the_database_by_code_and_severity(
    engine: Engine, sessions: sessionmaker[Session]
) -> None:
    """The periodic job counts open anomalies per code and severity; a code that closes
    goes back to 0; the hooks are read at each refresh."""
    load_examples(sessions)
    with sessions.begin() as s:
        company = s.scalars(select(Company).where(Company.code == "042")).one()
        for i, (code, sev, status) in enumerate(
            [
                ("NO_PUNCH", "B", "open"),
                ("NO_PUNCH", "B", "open"),
                ("LATE_ARRIVAL", "W", "open"),
                ("LATE_ARRIVAL", "W", "resolved"),
            ]
        ):
            s.add(
                Anomaly(
                    company_id=company.id,
                    key=f"k{i}",
                    code=code,
                    severity=sev,
                    status=status,
                    at=NOW,
                    detail={},
                )
            )
    metrics = WorkerMetrics()
    clock = Clock()
    in_progress = [3]
    refresher = GaugeRefresher(
        metrics,
        WorkerHooks(calls_in_progress=lambda: in_progress[0], spool_backlog=lambda: 7),
        slow={"anomalies_open": anomaly_counter(engine), "broken": lambda: 1 / 0},
        run_blocking=maybeDeferred,
        clock=clock,
        interval_s=15,
        wall_clock=lambda: 1_800_000_000.0,
    )
    refresher.start()
    assert value(metrics, "telegestion_anomalies_open", code="NO_PUNCH", severity="B") == 2
    assert value(metrics, "telegestion_anomalies_open", code="LATE_ARRIVAL", severity="W") == 1
    assert value(metrics, "telegestion_calls_in_progress") == 3
    assert value(metrics, "telegestion_spool_backlog") == 7
    assert value(metrics, "telegestion_metrics_refreshed_timestamp_seconds") == 1_800_000_000
    assert "broken" not in refresher.latest

    with sessions.begin() as s:
        for row in s.scalars(select(Anomaly).where(Anomaly.code == "LATE_ARRIVAL")):
            row.status = "closed"
    in_progress[0] = 0
    clock.advance(15)
    assert value(metrics, "telegestion_anomalies_open", code="LATE_ARRIVAL", severity="W") == 0
    assert value(metrics, "telegestion_calls_in_progress") == 0
    refresher.stop()


def test_metrics_resource_serves_the_text_format() -> None:
    """GET /metrics: Prometheus' content type and a parsable body with the worker's series."""
    metrics = WorkerMetrics()
    metrics.observe_call("fastagi", "locked_out")
    metrics.observe_agi_command("ANSWER", 0.003)
    seen: list[bool] = []
    request = DummyRequest([b""])
    body = MetricsResource(metrics, before_scrape=lambda: seen.append(True)).render_GET(request)
    assert seen == [True]
    assert request.responseHeaders.getRawHeaders(b"content-type")[0].startswith(b"text/plain")
    families = {f.name: f for f in text_string_to_metric_families(body.decode())}
    calls = families["telegestion_calls"].samples
    assert any(s.labels == {"outcome": "locked_out", "transport": "fastagi"} for s in calls)
    assert families["telegestion_agi_command_seconds"].type == "histogram"


def test_each_worker_has_its_own_registry() -> None:
    """Two workers in one process (tests, benchmarks) never share a counter."""
    a, b = WorkerMetrics(), WorkerMetrics()
    a.observe_call("fastagi", "error")
    assert value(a, "telegestion_calls_total", outcome="error", transport="fastagi") == 1
    assert value(b, "telegestion_calls_total", outcome="error", transport="fastagi") is None
