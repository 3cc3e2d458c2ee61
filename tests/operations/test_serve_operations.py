"""`telegestion serve` as operators see it: /metrics, /healthz, JSON logs, SIGTERM drain."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from ops_harness import (
    FATOU,
    MME_DUBOIS,
    SHARED,
    UNKNOWN_NUMBER,
    Server,
    connect_refused,
    load_examples,
    place,
    start_calls,
    until,
)
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from telegestion.model import Call, CallEvent, Punch

pytestmark = [pytest.mark.slow, pytest.mark.db]


@pytest.fixture
def served(
    db_url: str, sessions: sessionmaker[Session], tmp_path: Path
) -> Iterator[tuple[Server, sessionmaker[Session]]]:
    load_examples(sessions)
    server = Server(db_url, tmp_path)
    try:
        yield server, sessions
    finally:
        server.kill()


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(found: dict, name: str, **labels: str) -> float | None:
    return found.get((name, frozenset(labels.items())))


def test_metrics_logs_and_health_after_calls(
    served: tuple[Server, sessionmaker[Session]], tmp_path: Path
) -> None:
    """Counters, histograms and gauges match the calls made; every log line is JSON and each
    call's end is logged from a database thread with the call's id."""
    server, _ = served
    calls = [
        {"called": SHARED, "caller": MME_DUBOIS, "keys": f">042>{FATOU}", "uniqueid": "1.1"},
        {"called": SHARED, "caller": MME_DUBOIS, "keys": f">042>{FATOU}", "uniqueid": "1.2"},
        {"called": UNKNOWN_NUMBER, "caller": MME_DUBOIS, "keys": "", "uniqueid": "1.3"},
    ]
    results = [place(server.agi_port, [spec], tmp_path)[0] for spec in calls]
    assert [r["status"] for r in results] == [
        "punch_recorded",
        "punch_recorded",
        "unknown_called_number",
    ]

    status, body = server.get("/metrics")
    assert status == 200
    found = samples(body.decode())
    calls = "telegestion_calls_total"
    assert value(found, calls, outcome="punch_recorded", transport="fastagi") == 2
    assert value(found, calls, outcome="unknown_called_number", transport="fastagi") == 1
    punch = {"source": "landline", "offline": "false"}
    assert value(found, "telegestion_punches_total", kind="arrival", **punch) == 1
    assert value(found, "telegestion_punches_total", kind="departure", **punch) == 1
    assert value(found, "telegestion_db_operation_seconds_count", operation="finish") == 3
    assert (value(found, "telegestion_agi_command_seconds_count", command="GET DATA") or 0) >= 4
    assert value(found, "telegestion_calls_in_progress") == 0
    assert (value(found, "telegestion_directory_age_seconds") or -1) >= 0

    status, health = server.health()
    assert status == 200
    assert health["status"] == "ok" and health["database"] == "ok"
    assert health["node"] == "ops" and health["draining"] is False
    assert health["calls_in_progress"] == 0 and health["directory_age_s"] >= 0

    records = server.log_records()  # every line parses as JSON
    assert all({"ts", "level", "logger", "node", "msg"} <= r.keys() for r in records)
    ended = {r["call"]: r for r in records if r["logger"] == "telegestion.calls"}
    assert set(ended) == {"1.1", "1.2", "1.3"}
    assert ended["1.3"]["outcome"] == "unknown_called_number"
    assert all("telegestion-db" in r["thread"] for r in ended.values())  # a DB thread
    assert not any(r["logger"] == "twisted" and "/healthz" in r["msg"] for r in records)


def test_sigterm_lets_the_call_in_progress_finish_and_refuses_new_ones(
    served: tuple[Server, sessionmaker[Session]], tmp_path: Path
) -> None:
    """SIGTERM: the port closes at once, /healthz says draining (503), the call in progress
    ends with its punch, then the process exits 0."""
    server, sessions = served
    spec = {"called": SHARED, "caller": MME_DUBOIS, "keys": f",042,{FATOU}", "uniqueid": "2.1"}
    running = start_calls(server.agi_port, [spec], tmp_path, speed=5)
    until(lambda: server.health()[1]["calls_in_progress"] == 1)
    server.terminate()
    until(lambda: connect_refused(server.agi_port))
    status, health = until(lambda: (h := server.health())[1]["draining"] and h)
    assert status == 503 and health["status"] == "draining"
    assert health["calls_in_progress"] == 1
    (result,) = running.finish()
    assert result["status"] == "punch_recorded" and result["agistatus"] == "HANGUP"
    assert server.wait() == 0
    with sessions() as s:
        call = s.scalars(select(Call).where(Call.call_key == "2.1")).one()
        assert call.outcome == "punch_recorded" and call.ended_at is not None
        assert s.scalar(select(Punch.kind).where(Punch.call_key == "2.1")) == "arrival"


def test_calls_still_running_after_the_grace_are_dropped_and_journaled(
    db_url: str, sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    """After shutdown_grace_s a running call is dropped, its journal written (hangup,
    connection_lost, logged with its id), and the process still exits 0."""
    load_examples(sessions)
    server = Server(db_url, tmp_path, TELEGESTION_SHUTDOWN_GRACE_S="0.5")
    try:
        spec = {"called": SHARED, "caller": MME_DUBOIS, "keys": f",042,{FATOU}", "uniqueid": "3.1"}
        running = start_calls(server.agi_port, [spec], tmp_path, speed=1)
        until(lambda: server.health()[1]["calls_in_progress"] == 1)
        server.terminate(signal.SIGINT)
        assert server.wait() == 0
        (result,) = running.finish()
        assert result["status"] is None  # the dialplan plays its apology
        with sessions() as s:
            call = s.scalars(select(Call).where(Call.call_key == "3.1")).one()
            assert call.outcome == "caller_hung_up" and call.ended_at is not None
            hangups = s.scalars(
                select(CallEvent.detail).where(
                    CallEvent.call_id == call.id, CallEvent.kind == "hangup"
                )
            ).all()
            assert any(d.get("why") == "connection_lost" for d in hangups)
        dropped = [r for r in server.log_records() if "Dropping FastAGI" in r["msg"]]
        assert dropped and dropped[0]["call"] == "3.1"
        assert dropped[0]["logger"] == "ivr.agi_channel.FastAGIProtocol"
    finally:
        server.kill()
