"""``telegestion serve``: the FastAGI server, and HTTP (health, metrics, Twilio), in one process.

Stopping (SIGTERM from systemd, or Ctrl-C) drains the worker instead of cutting calls: the
FastAGI port closes at once, so Asterisk sends new calls to the next worker of its SRV record;
HTTP stays up, ``/healthz`` answering 503 ``draining``; calls in progress go on for up to
``shutdown_grace_s``; any still running then is dropped (its journal is still written, outcome
``caller_hung_up`` — or ``punch_recorded`` when its punch was stored — with a ``hangup`` event
saying ``connection_lost``), and the process exits 0. A second signal ends the wait at once.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import logging
import signal
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from twisted.internet import task
from twisted.internet.defer import Deferred, maybeDeferred
from twisted.web import resource, server

from .. import logs
from .context import UsageError, open_context

log = logging.getLogger("telegestion.serve")

#: After the grace period, how long dropped calls may take to write their journal.
JOURNAL_GRACE_S = 10.0
#: How often the database probe and the gauges that need a query are refreshed.
REFRESH_S = 15.0


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "serve",
        help="run the FastAGI server for Asterisk, and the HTTP endpoints",
        description="Serve landline calls over FastAGI (Asterisk connects to --agi-port) and "
        "HTTP on --http-port: GET /healthz, GET /metrics (Prometheus), and the Twilio "
        "call-back webhooks under /twilio/voice/. Logs one JSON object per line on stderr. "
        "SIGTERM or Ctrl-C stops taking calls, lets the calls in progress finish (at most "
        "TELEGESTION_SHUTDOWN_GRACE_S, default 30 s) and exits 0.",
    )
    parser.add_argument("--agi-port", type=int, help="FastAGI port (default 4573)")
    parser.add_argument("--http-port", type=int, help="HTTP port (default 8080)")
    parser.add_argument("--node", help="this worker's name, part of each punch's key")
    parser.add_argument("--listen", default=None, help="interface to listen on (default: all)")
    parser.add_argument(
        "--log-format",
        choices=logs.LOG_FORMATS,
        default=None,
        help="json (default: one object per line, for a log shipper) or text",
    )
    parser.add_argument(
        "--sounds",
        type=Path,
        default=None,
        help="folder holding <lang>/telegestion/*.wav to check at start-up "
        "(default: the sounds of this checkout)",
    )
    parser.set_defaults(func=run)


def http_root(
    children: Mapping[bytes, resource.Resource], base: resource.Resource | None = None
) -> resource.Resource:
    """The HTTP tree of a worker: ``healthz``, ``metrics``, ``twilio``, and whatever else is
    mounted; one place, so adding a child is one line. ``base`` is the resource served at
    ``/`` itself (the coordinator pages), which the children are put on."""
    root = base if base is not None else resource.Resource()
    for name, child in children.items():
        root.putChild(name, child)
    return root


def directory_age_s(store: Any, now: Callable[[], dt.datetime]) -> float | None:
    """Seconds since the call store's directory was read from the database (or the saved
    copy it started from was); ``None`` before the first load."""
    own = getattr(store, "directory_age_s", None)
    if callable(own):
        return own()
    fetched = getattr(store, "directory_fetched_at", None)
    if fetched is not None:
        return max(0.0, (now() - fetched).total_seconds())
    loaded = getattr(store, "_loaded_at", -1.0)
    return time.monotonic() - loaded if loaded >= 0 else None


class Drain:
    """The stop sequence of the module docstring, on the reactor."""

    def __init__(
        self,
        reactor: Any,
        factory: Any,
        *,
        stop_listening: Callable[[], object],
        grace_s: float,
        journal_grace_s: float = JOURNAL_GRACE_S,
        on_start: Callable[[], None] = lambda: None,
    ) -> None:
        self.reactor = reactor
        self.factory = factory
        self.stop_listening = stop_listening
        self.grace_s = grace_s
        self.journal_grace_s = journal_grace_s
        self.on_start = on_start
        self.draining = False
        self._give_up: Callable[[], None] | None = None

    def signal(self, name: str) -> None:
        """A stop was asked (on the reactor thread): start draining, or hurry if already."""
        if not self.draining:
            self.draining = True
            log.info("%s: stopping; no new calls", name)
            maybeDeferred(self._drain).addErrback(
                lambda f: (log.error("drain failed: %s", f.getTraceback()), self._stop())
            )
        elif self._give_up is not None:
            log.warning("%s again: not waiting any longer for calls in progress", name)
            self._give_up()

    def _drain(self) -> Deferred[None]:
        from twisted.internet.defer import ensureDeferred

        return ensureDeferred(self._run())

    async def _run(self) -> None:
        await maybeDeferred(self.stop_listening)
        self.on_start()
        waiting = len(self.factory.in_progress)
        if waiting:
            log.info("waiting up to %g s for %d call(s) in progress", self.grace_s, waiting)
        if not await self._idle_within(self.grace_s):
            dropped = self.factory.drop_all("the server is stopping")
            log.warning(
                "grace of %g s over: dropped %d call(s); their journal says connection_lost",
                self.grace_s,
                dropped,
            )
            if not await self._idle_within(self.journal_grace_s):
                log.error(
                    "%d call(s) still writing their journal after %g s; stopping anyway",
                    len(self.factory.in_progress),
                    self.journal_grace_s,
                )
        self._stop()

    def _idle_within(self, seconds: float) -> Deferred[bool]:
        """True once no call is in progress, False after ``seconds`` or a second signal."""
        result: Deferred[bool] = Deferred()

        def settle(idle: bool) -> None:
            if not result.called:
                result.callback(idle)

        timer = self.reactor.callLater(seconds, settle, False)
        self.factory.when_idle().addCallback(lambda _: settle(True))
        self._give_up = lambda: settle(False)

        def over(idle: bool) -> bool:
            self._give_up = None
            if timer.active():
                timer.cancel()
            return idle

        return result.addCallback(over)

    def _stop(self) -> None:
        if self.reactor.running:
            self.reactor.stop()


def run(args: argparse.Namespace) -> int:
    from twisted.internet import reactor
    from twisted.internet.threads import deferToThreadPool
    from twisted.python.threadpool import ThreadPool

    from callback.web import twilio_resource
    from ivr.call_record import utc_now
    from ivr.flow_tuning import flow_settings
    from ivr.server import BUNDLED_SOUNDS, check_prompts, start_fastagi_worker

    from ..db import make_engine
    from ..health import DatabaseProbe, HealthResource, sql_probe
    from ..metrics import (
        GaugeRefresher,
        MetricsResource,
        OfflineCollector,
        WorkerHooks,
        WorkerMetrics,
        anomaly_counter,
        observe_store,
    )
    from ..settings import spool_path

    ctx = open_context(pre_ping=False)
    settings = dataclasses.replace(
        ctx.settings,
        **{
            k: v
            for k, v in {
                "agi_port": args.agi_port,
                "http_port": args.http_port,
                "node": args.node,
                "listen_interface": args.listen,
                "log_format": args.log_format,
            }.items()
            if v is not None
        },
    )
    logs.configure(node=settings.node, fmt=settings.log_format)
    _require_schema_or_copy(ctx, spool_path(settings))
    sounds = args.sounds or BUNDLED_SOUNDS
    missing = check_prompts(sounds)
    if missing:
        names = ", ".join(f"{m.language}/{m.prompt_id}" for m in missing[:5])
        more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        raise UsageError(f"prompt sound files missing in {sounds}: {names}{more}")

    metrics = WorkerMetrics()
    worker = start_fastagi_worker(
        reactor,
        ctx.sessions,
        node=settings.node,
        port=settings.agi_port,
        interface=settings.listen_interface,
        db_threads=settings.db_pool_size,
        default_region=settings.default_region,
        flow_settings=flow_settings(settings),
        spool_dir=spool_path(settings),
        db_wait_s=settings.db_wait_s,
    )
    instrument_worker(worker, metrics)

    # Health probes and gauge queries: their own thread and connection, never behind calls.
    ops_pool = ThreadPool(minthreads=1, maxthreads=2, name="telegestion-ops")
    ops_pool.start()
    ops_engine = make_engine(
        settings.database_url,
        statement_timeout_ms=min(settings.statement_timeout_ms, 2000),
        pool_size=2,
    )

    def on_ops_thread(fn: Callable[..., Any], *a: Any) -> Deferred[Any]:
        return deferToThreadPool(reactor, ops_pool, fn, *a)

    probe = DatabaseProbe(sql_probe(ops_engine), run_blocking=on_ops_thread, clock=reactor)
    hooks = WorkerHooks(
        calls_in_progress=lambda: len(worker.factory.in_progress),
        directory_age_s=lambda: directory_age_s(worker.store, utc_now),
        database_up=probe.up,
    )
    slow: dict[str, Callable[[], Any]] = {"anomalies_open": anomaly_counter(ops_engine)}
    refresher = GaugeRefresher(
        metrics, hooks, slow=slow, run_blocking=on_ops_thread, clock=reactor, interval_s=REFRESH_S
    )
    resilient = getattr(worker, "resilient", None)
    if resilient is not None:  # the outage spool (ivr.resilient_store)
        slow["spool_oldest_age_s"] = resilient.spool.oldest_age_s
        hooks.spool_backlog = resilient.backlog
        hooks.spool_oldest_age_s = refresher.reading("spool_oldest_age_s")
        hooks.spool_ok = lambda: True  # open since start-up; a write that fails is logged
        hooks.offline = lambda: resilient.db_state == "down"
        metrics.registry.register(OfflineCollector(resilient))

    # The Twilio call-back (SPEC.md section 4); answers 503 when Twilio is not configured.
    threadpool = reactor.getThreadPool()  # type: ignore[attr-defined]
    twilio = twilio_resource(settings, ctx.sessions, reactor=reactor, threadpool=threadpool)
    if twilio.service is not None:
        twilio.service.run_blocking = metrics.timed(logs.in_context(twilio.service.run_blocking))
        observe_store(twilio.service.webhooks.call_store, metrics)
        reactor.callWhenRunning(twilio.service.start)  # type: ignore[attr-defined]
        reactor.addSystemEventTrigger("before", "shutdown", twilio.service.stop)  # type: ignore[attr-defined]

    def stop_placing_callbacks() -> None:
        metrics.draining.set(1)
        if twilio.service is not None:
            twilio.service.stop()  # other workers place this worker's due call-backs

    drain = Drain(
        reactor,
        worker.factory,
        stop_listening=worker.port.stopListening,
        grace_s=settings.shutdown_grace_s,
        on_start=stop_placing_callbacks,
    )
    # The coordinator and support pages (SPEC.md section 7) at the root; the endpoints below
    # are its children and take precedence. Their work runs on the reactor's pool, not on the
    # calls' database threads.
    from telegestion.web.app import coordinator_site

    pages = coordinator_site(ctx.engine, settings, reactor, threadpool)
    root = http_root(
        {
            b"healthz": HealthResource(settings.node, probe, hooks, lambda: drain.draining),
            b"metrics": MetricsResource(metrics, before_scrape=refresher.read_hooks),
            b"twilio": twilio.resource,
        },
        base=pages,
    )
    site = _Site(root)
    site.noisy = False
    http = reactor.listenTCP(settings.http_port, site, interface=settings.listen_interface)  # type: ignore[attr-defined]

    def on_signal(signum: int, _frame: object) -> None:
        reactor.callFromThread(drain.signal, signal.Signals(signum).name)  # type: ignore[attr-defined]

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    refresh = task.LoopingCall(probe.check)
    refresh.clock = reactor
    reactor.callWhenRunning(refresh.start, REFRESH_S, True)  # type: ignore[attr-defined]
    reactor.callWhenRunning(refresher.start)  # type: ignore[attr-defined]
    for stop in (refresh.stop, refresher.stop, worker.stop, ops_pool.stop):
        reactor.addSystemEventTrigger("before", "shutdown", _quietly(stop))  # type: ignore[attr-defined]
    # Reconciliation's minute task: alerts that open and close with the clock (SPEC.md 5).
    from reconciliation.realtime import start_due_reconciler

    due = start_due_reconciler(reactor, ctx.engine, worker.threadpool)
    reactor.addSystemEventTrigger("before", "shutdown", due.stop)  # type: ignore[attr-defined]
    host, port = worker.address
    print(
        f"telegestion: node {settings.node}: FastAGI on {host or '0.0.0.0'}:{port},"
        f" HTTP on port {http.getHost().port} (pages at"
        f" http://localhost:{http.getHost().port}/), database"
        f" {ctx.engine.url.render_as_string(hide_password=True)}",
        flush=True,
    )
    log.info(
        "serving: FastAGI on port %d, HTTP on port %d, shutdown grace %g s",
        port,
        http.getHost().port,
        settings.shutdown_grace_s,
    )
    reactor.run(installSignalHandlers=False)  # type: ignore[attr-defined]
    ops_engine.dispose()
    ctx.engine.dispose()
    log.info("stopped")
    return 0


class _Site(server.Site):
    """Access lines for the webhooks, not for the health checks and scrapes every few seconds."""

    quiet_paths = (b"/healthz", b"/metrics")

    def log(self, request: Any) -> None:
        if request.path not in self.quiet_paths:
            super().log(request)


def _require_schema_or_copy(ctx: Any, spool_dir: Path) -> None:
    """The schema must be current; but a worker restarted during a database outage starts
    all the same when its spool folder holds a directory copy (it serves calls from it)."""
    from sqlalchemy.exc import OperationalError

    from ivr.resilient_store import COPY_FILE_NAME

    try:
        ctx.require_schema()
    except OperationalError as exc:
        if not (spool_dir / COPY_FILE_NAME).is_file():
            raise
        log.error(
            "database unreachable at start-up (%s): serving from the directory copy in %s",
            str(exc).splitlines()[0][:200],
            spool_dir,
        )


def instrument_worker(worker: Any, metrics: Any) -> None:
    """Metrics and log context on a FastAGI worker (``ivr.server.start_fastagi_worker``): its
    database work is timed and runs with the call's log context (its id), its offline work
    too, and the call store counts punches and outcomes."""
    from ..metrics import observe_store

    handler = worker.handler
    handler.run_blocking = metrics.timed(logs.in_context(handler.run_blocking))
    wait = getattr(handler, "database_wait", None)
    if wait is not None:  # the spool's own threads: the call id, not database time
        handler.database_wait = dataclasses.replace(
            wait, run_offline=logs.in_context(wait.run_offline)
        )
    observe_store(handler.store, metrics)
    worker.factory.command_timer = metrics.observe_agi_command


def _quietly(stop: Callable[[], object]) -> Callable[[], None]:
    """A shutdown step that may find its thing already stopped."""

    def run() -> None:
        try:
            stop()
        except Exception as exc:  # an already stopped loop, a closed port
            log.debug("shutdown step %s: %s", getattr(stop, "__name__", stop), exc)

    return run
