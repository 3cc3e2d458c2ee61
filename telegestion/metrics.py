"""Prometheus metrics of one worker, and ``GET /metrics`` in the Prometheus text format.

Each worker has its own :class:`~prometheus_client.CollectorRegistry` (no process-wide
globals), so tests and several workers in one process stay independent.

What is measured where, so the hot path pays only a counter increment or a clock read:

- calls by outcome and transport, punches by kind and source: counted when the call store
  answers ``RecordPunch`` and writes a call's outcome (:func:`observe_store`), on the thread
  that does it, for FastAGI and Twilio calls alike;
- AGI command latency: the FastAGI channel reports the server's own time before each command
  (``FastAGIFactory.command_timer``);
- database latency: the time of each blocking operation, on its thread (:meth:`timed`);
- everything that needs a query or a look at the disk (anomalies open, spool backlog,
  database up, directory age) is refreshed every ``refresh_s`` by :class:`GaugeRefresher` on
  a thread, never at scrape time: a scrape never waits for the database.

Label values come from closed sets (outcomes, punch kinds, AGI command names, anomaly codes),
so the number of series stays bounded whatever the traffic.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any, TypeVar

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from twisted.internet import task
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime
from twisted.python.failure import Failure
from twisted.web import resource, server

log = logging.getLogger(__name__)
#: One line per call at its end (outcome, transport), with the call id from the log context.
call_log = logging.getLogger("telegestion.calls")

T = TypeVar("T")

#: Where punches come from, by call transport (SPEC.md: ``punches.source``).
PUNCH_SOURCE_OF_TRANSPORT = {"fastagi": "landline", "agi": "landline", "twilio": "callback"}

#: AGI commands are answered in milliseconds by the server (a lookup from memory) or in tens
#: of milliseconds (one transaction); above a second a carer hears silence.
AGI_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
DB_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


@dataclasses.dataclass
class WorkerHooks:
    """What the worker knows about itself, as small callables read off the reactor thread by
    the gauges and ``/healthz``. Each one is optional: ``None`` means "not known here", and
    the gauge or the field is left out rather than reported as zero.

    - ``calls_in_progress``: calls whose journal is not written yet;
    - ``directory_age_s``: seconds since the in-memory directory was loaded;
    - ``spool_backlog`` / ``spool_oldest_age_s``: punches and journals waiting in the
      outage spool, and the age of the oldest;
    - ``spool_ok``: the spool can take a punch now (the worker can serve calls with the
      database down);
    - ``database_up``: the last answer of the worker's database probe;
    - ``offline``: the worker's calls run from the directory copy and the spool because the
      database failed them.
    """

    calls_in_progress: Callable[[], int] | None = None
    directory_age_s: Callable[[], float | None] | None = None
    spool_backlog: Callable[[], int] | None = None
    spool_oldest_age_s: Callable[[], float | None] | None = None
    spool_ok: Callable[[], bool] | None = None
    database_up: Callable[[], bool | None] | None = None
    offline: Callable[[], bool] | None = None


class WorkerMetrics:
    """The metrics of one worker, on their own registry."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.calls = Counter(
            "telegestion_calls",
            "Calls ended on this worker, by outcome (SPEC.md 3) and transport.",
            ["outcome", "transport"],
            registry=r,
        )
        self.punches = Counter(
            "telegestion_punches",
            "Punches recorded by calls on this worker, by kind and source; offline=true when "
            "kept in the outage spool because the database was down.",
            ["kind", "source", "offline"],
            registry=r,
        )
        self.agi_command_seconds = Histogram(
            "telegestion_agi_command_seconds",
            "The server's own time before each AGI command: from Asterisk's previous reply "
            "(or the environment block) to the command written.",
            ["command"],
            buckets=AGI_BUCKETS,
            registry=r,
        )
        self.db_seconds = Histogram(
            "telegestion_db_operation_seconds",
            "Time of each blocking database operation, on its worker thread.",
            ["operation"],
            buckets=DB_BUCKETS,
            registry=r,
        )
        self.db_errors = Counter(
            "telegestion_db_operation_errors",
            "Blocking database operations that raised.",
            ["operation"],
            registry=r,
        )
        self.calls_in_progress = Gauge(
            "telegestion_calls_in_progress",
            "FastAGI calls connected or still writing their journal.",
            registry=r,
        )
        self.directory_age = Gauge(
            "telegestion_directory_age_seconds",
            "Seconds since the in-memory directory (numbers, companies, carers) was loaded.",
            registry=r,
        )
        self.spool_backlog = Gauge(
            "telegestion_spool_backlog",
            "Entries waiting in the outage spool to be written to the database.",
            registry=r,
        )
        self.spool_oldest_age = Gauge(
            "telegestion_spool_oldest_age_seconds",
            "Age of the oldest entry waiting in the outage spool (0 when empty).",
            registry=r,
        )
        self.database_up = Gauge(
            "telegestion_database_up",
            "1 when the last database probe of this worker succeeded, else 0.",
            registry=r,
        )
        self.offline = Gauge(
            "telegestion_offline",
            "1 while this worker's calls run offline (directory copy and spool): the "
            "database failed or did not answer them in time.",
            registry=r,
        )
        self.anomalies_open = Gauge(
            "telegestion_anomalies_open",
            "Open anomalies in the database, by code and severity (B blocks export).",
            ["code", "severity"],
            registry=r,
        )
        self.draining = Gauge(
            "telegestion_draining",
            "1 while the worker is stopping: it takes no new call and finishes the others.",
            registry=r,
        )
        self.last_refresh = Gauge(
            "telegestion_metrics_refreshed_timestamp_seconds",
            "When the gauges that need a query were last refreshed (Unix time).",
            registry=r,
        )
        self._anomaly_series: set[tuple[str, str]] = set()
        # Label children by value, looked up once: ``labels()`` takes a lock and builds a key
        # on every call, and these are observed several times per call (bounded label sets).
        self._agi_children: dict[str, Any] = {}
        self._db_children: dict[str, Any] = {}

    # --- observations ---------------------------------------------------------------------

    def observe_call(self, transport: str, outcome: str) -> None:
        self.calls.labels(outcome=outcome, transport=transport).inc()

    def observe_punch(self, kind: str, transport: str, offline: bool = False) -> None:
        source = PUNCH_SOURCE_OF_TRANSPORT.get(transport, transport)
        self.punches.labels(kind=kind, source=source, offline=str(offline).lower()).inc()

    def observe_agi_command(self, command: str, seconds: float) -> None:
        """A ``FastAGIFactory.command_timer``."""
        child = self._agi_children.get(command)
        if child is None:
            child = self._agi_children[command] = self.agi_command_seconds.labels(command=command)
        child.observe(seconds)

    def set_anomalies_open(self, counts: Mapping[tuple[str, str], int]) -> None:
        """Replace the open anomaly counts; a code no longer open goes back to 0."""
        for code, severity in self._anomaly_series - counts.keys():
            self.anomalies_open.labels(code=code, severity=severity).set(0)
        for (code, severity), n in counts.items():
            self.anomalies_open.labels(code=code, severity=severity).set(n)
        self._anomaly_series |= set(counts)

    def timed(self, run_blocking: Callable[..., T]) -> Callable[..., T]:
        """A runner like ``run_blocking`` that times each function on the thread that runs it
        (queueing for a thread is not database time), labelled by the function's name."""
        errors = self.db_errors
        children = self._db_children
        histogram = self.db_seconds

        def run(fn: Callable[..., Any], *args: Any) -> T:
            name = _operation_name(fn)
            observed = children.get(name)
            if observed is None:
                observed = children[name] = histogram.labels(operation=name)

            def timed_fn(*inner: Any) -> Any:
                started = time.perf_counter()
                try:
                    return fn(*inner)
                except BaseException:
                    errors.labels(operation=name).inc()
                    raise
                finally:
                    observed.observe(time.perf_counter() - started)

            return run_blocking(timed_fn, *args)

        return run

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


def _operation_name(fn: Callable[..., Any]) -> str:
    """``answer``, ``finish``… for a bound method, the function's name otherwise: a small,
    fixed set, one per operation in the code."""
    inner = getattr(fn, "__func__", fn)
    if isinstance(inner, functools.partial):
        inner = inner.func
    return getattr(inner, "__name__", type(inner).__name__)


def observe_store(store: Any, metrics: WorkerMetrics) -> None:
    """Count punches and call outcomes as ``store`` records them, and log one line per call
    when its outcome is written.

    ``store`` is a ``CallStore`` or anything with its ``answer(effect, call)`` and
    ``finish(call, summary)``; the offline paths of a ``ResilientStore`` (``answer_offline``,
    ``finish_offline``) are observed too. The methods are wrapped on this instance only; one
    that falls back to another on the same thread (``answer`` going offline) counts once. A
    punch kept in the spool has no database id yet (a negative id): ``offline="true"``.
    """
    if getattr(store, "_telegestion_observed", False):
        return
    from ivr import effects as fx

    depth = threading.local()

    def outermost(method: Callable[..., Any], after: Callable[..., None]) -> Callable[..., Any]:
        @functools.wraps(method)
        def observed(*args: Any) -> Any:
            level = getattr(depth, "n", 0)
            depth.n = level + 1
            result: Any = None
            try:
                result = method(*args)
                return result
            finally:
                depth.n = level
                if level == 0:
                    after(result, *args)

        return observed

    def punched(reply: Any, effect: Any, call: Any, *_: Any) -> None:
        if isinstance(effect, fx.RecordPunch) and isinstance(reply, fx.PunchRecorded):
            metrics.observe_punch(reply.kind, call.transport, offline=reply.punch_id < 0)

    def ended(_: Any, call: Any, summary: Any, *__: Any) -> None:
        metrics.observe_call(call.transport, summary.outcome)
        call_log.info(
            "call ended: %s",
            summary.outcome,
            extra={
                "outcome": summary.outcome,
                "transport": call.transport,
                "hangup_step": summary.hangup_step,
            },
        )

    for name, after in (
        ("answer", punched),
        ("answer_offline", punched),
        ("finish", ended),
        ("finish_offline", ended),
    ):
        method = getattr(store, name, None)
        if method is not None:
            setattr(store, name, outermost(method, after))
    store._telegestion_observed = True


class GaugeRefresher:
    """Refreshes the gauges every ``interval_s``: the in-memory hooks on the reactor, then the
    ``slow`` readings (a query, a look at the spool file) in one job run by ``run_blocking``
    (a thread). One job at a time; a slow database makes the values older, never the scrape
    or ``/healthz`` slower. ``latest`` keeps each slow reading for others (``/healthz``);
    the reading named ``anomalies_open`` feeds the anomaly gauge."""

    def __init__(
        self,
        metrics: WorkerMetrics,
        hooks: WorkerHooks,
        *,
        slow: Mapping[str, Callable[[], Any]],
        run_blocking: Callable[..., Deferred[Any]],
        clock: IReactorTime,
        interval_s: float = 15.0,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.metrics = metrics
        self.hooks = hooks
        self.slow = dict(slow)
        self.run_blocking = run_blocking
        self.clock = clock
        self.interval_s = interval_s
        self.wall_clock = wall_clock
        self.latest: dict[str, Any] = {}
        self._loop: task.LoopingCall | None = None
        self._running: Deferred[None] | None = None

    def start(self) -> None:
        self._loop = task.LoopingCall(self.refresh)
        self._loop.clock = self.clock
        self._loop.start(self.interval_s, now=True)

    def stop(self) -> None:
        if self._loop is not None and self._loop.running:
            self._loop.stop()

    def reading(self, name: str) -> Callable[[], Any]:
        """A hook that gives the latest slow reading ``name`` (``None`` before the first)."""
        return lambda: self.latest.get(name)

    def refresh(self) -> Deferred[None] | None:
        """Read the hooks now (cheap, in memory) and start the slow job unless one runs."""
        self.read_hooks()
        if self._running is not None or not self.slow:
            return None
        d = self._running = self.run_blocking(self._read_slow)

        def done(readings: dict[str, Any]) -> None:
            self.latest.update(readings)
            if "anomalies_open" in readings:
                self.metrics.set_anomalies_open(readings["anomalies_open"])
            self.metrics.last_refresh.set(self.wall_clock())
            self.read_hooks()

        def over(result: object) -> None:
            self._running = None
            if isinstance(result, Failure):
                log.error("metrics: refresh failed: %s", result.getErrorMessage())

        d.addCallback(done).addBoth(over)
        return d

    def _read_slow(self) -> dict[str, Any]:
        """On the thread: every slow reading; one that fails is left out (and logged)."""
        readings: dict[str, Any] = {}
        for name, read in self.slow.items():
            try:
                readings[name] = read()
            except Exception as exc:
                log.warning("metrics: %s not refreshed: %s", name, exc)
        return readings

    def read_hooks(self) -> None:
        m, h = self.metrics, self.hooks
        _set(m.calls_in_progress, h.calls_in_progress)
        _set(m.directory_age, h.directory_age_s)
        _set(m.spool_backlog, h.spool_backlog)
        _set(m.spool_oldest_age, h.spool_oldest_age_s, default=0.0)
        _set(m.database_up, h.database_up)
        _set(m.offline, h.offline)


class OfflineCollector:
    """The outage counters a ``ResilientStore`` keeps (``ivr.resilient_store``), read at
    scrape time: plain attributes in memory, no I/O."""

    def __init__(self, store: Any) -> None:
        self.store = store

    def collect(self) -> Iterator[Metric]:
        store, spool = self.store, self.store.spool
        counters = (
            ("telegestion_outages", "Database outages seen (up to down).", store.outages),
            (
                "telegestion_offline_calls",
                "Calls that wrote at least once to the spool.",
                store.offline_calls,
            ),
            (
                "telegestion_db_wait_timeouts",
                "Database operations a call stopped waiting for (db_wait_s).",
                store.db_timeouts,
            ),
            (
                "telegestion_spool_appended",
                "Entries written to the spool.",
                spool.appended_total,
            ),
            (
                "telegestion_spool_replayed",
                "Spool entries replayed into the database.",
                spool.replayed_total,
            ),
        )
        for name, doc, count in counters:
            yield CounterMetricFamily(name, doc, value=count)
        yield GaugeMetricFamily(
            "telegestion_spool_set_aside",
            "Spool entries the database refused for good (kept for support).",
            value=spool.set_aside_count(),
        )
        yield GaugeMetricFamily(
            "telegestion_outage_seconds",
            "Seconds since the current database outage began (0 when up).",
            value=store.outage_s(),
        )


def _safe(fn: Callable[[], T]) -> T | None:
    try:
        return fn()
    except Exception:
        log.exception("metrics: a worker hook failed")
        return None


def _set(gauge: Gauge, hook: Callable[[], Any] | None, default: float | None = None) -> None:
    """The hook's value (a bool as 0/1); ``None`` (not known) leaves the gauge as it was."""
    if hook is None:
        return
    value = _safe(hook)
    if value is None:
        value = default
    if value is not None:
        gauge.set(float(value))


def anomaly_counter(engine: Any) -> Callable[[], dict[tuple[str, str], int]]:
    """A blocking function counting open anomalies by (code, severity): one indexed query."""
    from sqlalchemy import func, select

    from telegestion.model import Anomaly

    statement = (
        select(Anomaly.code, Anomaly.severity, func.count())
        .where(Anomaly.status == "open")
        .group_by(Anomaly.code, Anomaly.severity)
    )

    def count_open_anomalies() -> dict[tuple[str, str], int]:
        with engine.connect() as conn:
            return {(code, sev): n for code, sev, n in conn.execute(statement)}

    return count_open_anomalies


class MetricsResource(resource.Resource):
    """``GET /metrics``: the registry in Prometheus' text format, built on the reactor from
    values already in memory (no query, no lock held for long)."""

    isLeaf = True

    def __init__(self, metrics: WorkerMetrics, before_scrape: Callable[[], None] | None = None):
        super().__init__()
        self.metrics = metrics
        self.before_scrape = before_scrape

    def render_GET(self, request: server.Request) -> bytes:
        if self.before_scrape is not None:
            self.before_scrape()
        request.setHeader(b"content-type", CONTENT_TYPE_LATEST.encode())
        return self.metrics.exposition()


__all__ = [
    "GaugeRefresher",
    "MetricsResource",
    "OfflineCollector",
    "WorkerHooks",
    "WorkerMetrics",
    "anomaly_counter",
    "observe_store",
]
