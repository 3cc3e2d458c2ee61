"""A FastAGI worker on real sockets whose database is unreachable, then back: every call
completes, and once the database answers every punch the carers heard is there exactly once.

The database is made unreachable without a fake: SQLite through a folder symlink that does not
exist yet, PostgreSQL through a TCP relay on a port nobody listens on yet. "Back" creates the
symlink, or starts the relay. The global reactor is pumped with ``reactor.iterate``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from resilience_harness import (
    DEDICATED_117,
    MME_DUBOIS,
    MME_FOURNIER,
    call_rows,
    event_kinds,
    live_store,
    load_examples,
    punch_call,
    punch_rows,
)
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker
from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.python.failure import Failure

from ivr.asterisk_sim import SimulatedCall, accelerated, place_calls
from ivr.flow import FlowSettings
from ivr.server import start_fastagi_worker
from telegestion.db import make_engine, make_session_factory

pytestmark = [pytest.mark.slow, pytest.mark.db]

T = TypeVar("T")

QUICK_FLOW = FlowSettings(
    code_timeout_s=2.0,
    arrival_readback_wait_s=0.2,
    departure_readback_wait_s=0.2,
    task_codes_timeout_s=1.0,
)


def wait(deferred: Deferred[T], timeout: float = 30.0) -> T:
    """Pump the reactor until ``deferred`` fires; its result, or its failure raised."""
    outcome: list[Any] = []
    deferred.addBoth(outcome.append)
    deadline = time.monotonic() + timeout
    while not outcome:
        if time.monotonic() > deadline:
            raise AssertionError(f"nothing after {timeout} s")
        reactor.iterate(0.002)  # type: ignore[attr-defined]
    if isinstance(outcome[0], Failure):
        outcome[0].raiseException()
    return outcome[0]


def pump_until(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        reactor.iterate(0.01)  # type: ignore[attr-defined]


class Relay:
    """A TCP relay to PostgreSQL on a fixed port, started when the database is to be back."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        self.port = probe.getsockname()[1]
        probe.close()  # nobody listens there until start()
        self.server: socket.socket | None = None
        self.sockets: list[socket.socket] = []

    def start(self) -> None:
        server = socket.create_server(("127.0.0.1", self.port))
        self.server = server
        threading.Thread(target=self._accept, args=(server,), daemon=True).start()

    def _accept(self, server: socket.socket) -> None:
        while True:
            try:
                client, _ = server.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            self.sockets += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        if self.server is not None:
            self.server.close()
        for s in self.sockets:
            s.close()


@dataclasses.dataclass
class Gate:
    """The worker's database URL, unreachable until ``open()``."""

    url: str
    open: Callable[[], None]


@pytest.fixture
def gate(db_url: str, tmp_path: Path) -> Iterator[Gate]:
    if db_url.startswith("sqlite"):
        real = Path(make_url(db_url).database or "")
        link = tmp_path / "gate"
        yield Gate(f"sqlite:///{link / real.name}", lambda: link.symlink_to(real.parent))
        return
    parsed = make_url(db_url)
    relay = Relay((parsed.host or "127.0.0.1", parsed.port or 5432))
    try:
        yield Gate(
            parsed.set(host="127.0.0.1", port=relay.port).render_as_string(hide_password=False),
            relay.start,
        )
    finally:
        relay.close()


def quick(call: SimulatedCall) -> SimulatedCall:
    return accelerated(call, 20)


def test_calls_during_an_outage_reach_the_database_once_it_is_back(
    sessions: sessionmaker[Session], gate: Gate, tmp_path: Path
) -> None:
    """Punches over real FastAGI sockets while the database is unreachable are read back; when
    it is back the worker replays its spool by itself: each punch once, with the kind heard,
    and each call's journal."""
    load_examples(sessions)
    folder = tmp_path / "spool"
    live_store(sessions, folder).spool.close()  # the copy a worker saved before the outage
    engine = make_engine(gate.url, pool_size=4)
    worker = start_fastagi_worker(
        reactor,
        make_session_factory(engine),
        node="e2e",
        port=0,
        interface="127.0.0.1",
        db_threads=4,
        flow_settings=QUICK_FLOW,
        spool_dir=folder,
        db_wait_s=1.0,
        maintenance_interval_s=0.1,
        retry_s=0.2,
    )
    store = worker.resilient
    assert store is not None
    try:
        host, port = worker.address
        first = [
            quick(punch_call(MME_DUBOIS, ">042>12345")),
            quick(punch_call(MME_FOURNIER, ">54321", called=DEDICATED_117)),
        ]
        records = wait(place_calls(reactor, host, port, first))
        records += wait(
            place_calls(reactor, host, port, [quick(punch_call(MME_DUBOIS, ">042>12345>2"))])
        )
        assert [r.variables.get("TELEGESTION_STATUS") for r in records] == ["punch_recorded"] * 3
        heard = [
            next(p for p in r.prompts if p.endswith("-recorded")).split("/")[1] for r in records
        ]
        assert heard == ["arrival-recorded", "arrival-recorded", "departure-recorded"]
        pump_until(lambda: store.backlog() == 7)  # 3 punches, 1 correction, 3 journals
        assert store.db_state == "down" and store.offline_calls == 3
        assert punch_rows(sessions) == []
        journals = {e.call_key: e for e in store.spool.entries() if e.kind == "journal"}

        gate.open()
        pump_until(lambda: store.db_state == "up" and store.backlog() == 0)

        rows = {p.call_key: p for p in punch_rows(sessions)}
        assert len(rows) == 3
        assert [(rows[r.uniqueid].kind, rows[r.uniqueid].original_kind) for r in records] == [
            ("arrival", None),
            ("arrival", None),
            ("arrival", "departure"),  # heard as a departure, corrected with key 2
        ]
        calls = call_rows(sessions)
        for record in records:
            assert calls[record.uniqueid].outcome == "punch_recorded"
            spooled = journals[record.uniqueid].payload["events"]
            assert event_kinds(sessions, record.uniqueid) == [
                (i + 1, kind) for i, (_, kind, _) in enumerate(spooled)
            ]
    finally:
        worker.stop()
        engine.dispose()


@contextlib.contextmanager
def punches_locked(db_url: str) -> Iterator[None]:
    """Another session holds the punches table: inserts wait (the database is "too slow")."""
    engine = make_engine(db_url)
    conn = engine.connect()
    try:
        if db_url.startswith("sqlite"):
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            conn.exec_driver_sql("LOCK TABLE punches IN EXCLUSIVE MODE")
        yield
    finally:
        conn.rollback()
        conn.close()
        engine.dispose()


def test_a_punch_the_database_is_too_slow_for_is_spooled_and_counted_once(
    db_url: str, sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    """The punch insert waits on a lock longer than the call may wait, holding the worker's
    only database thread: the carer hears the readback from the spool, the next call completes
    offline without waiting for that thread, and once the lock goes the late insert and the
    replay meet: one punch per call, with the kind each carer heard."""
    load_examples(sessions)
    engine = make_engine(db_url, pool_size=2)
    worker = start_fastagi_worker(
        reactor,
        make_session_factory(engine),
        node="e2e",
        port=0,
        interface="127.0.0.1",
        db_threads=1,
        flow_settings=QUICK_FLOW,
        spool_dir=tmp_path / "spool",
        db_wait_s=0.5,
        maintenance_interval_s=0.1,
        retry_s=0.2,
    )
    store = worker.resilient
    assert store is not None
    host, port = worker.address

    def call(*args: Any, **kw: Any) -> list[Any]:
        return wait(place_calls(reactor, host, port, [quick(punch_call(*args, **kw))]))

    try:
        records = call(MME_DUBOIS, ">042>12345")
        with punches_locked(db_url):
            records += call(MME_DUBOIS, ">042>12345")
            assert store.db_timeouts == 1 and store.db_state == "down"
            records += call(MME_FOURNIER, ">54321", called=DEDICATED_117)
            assert store.offline_calls == 2 and store.db_timeouts == 1
        assert [r.variables.get("TELEGESTION_STATUS") for r in records] == ["punch_recorded"] * 3
        assert [next(p for p in r.prompts if p.endswith("-recorded")) for r in records] == [
            "telegestion/arrival-recorded",
            "telegestion/departure-recorded",
            "telegestion/arrival-recorded",
        ]
        pump_until(lambda: store.db_state == "up" and store.backlog() == 0)
        rows = {p.call_key: p.kind for p in punch_rows(sessions)}
        assert [rows[r.uniqueid] for r in records] == ["arrival", "departure", "arrival"]
        assert len(rows) == 3
        assert call_rows(sessions)[records[1].uniqueid].outcome == "punch_recorded"
    finally:
        worker.stop()
        engine.dispose()
