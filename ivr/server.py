"""Assembling a FastAGI worker: thread pool, database store, call handler, listening port.

Sizes fit together on purpose: the thread pool that runs database work has exactly as many
threads as the database pool has connections, so a thread never waits for a connection while
holding a call, and the statement timeout bounds how long any of them can be held.

With a spool folder, the worker survives a database outage (``ivr.resilient_store``): calls
wait at most ``db_wait_s`` for the database, the offline path (spool writes, fsync) runs on a
small pool of its own so that a frozen database holding every database thread cannot delay it,
and a maintenance loop on a third, single thread probes the database, replays the spool (at
once at start-up too: a worker killed mid-outage replays what it spooled) and keeps the
directory copy fresh.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker
from twisted.internet.interfaces import IListeningPort
from twisted.internet.task import LoopingCall
from twisted.internet.threads import deferToThreadPool
from twisted.python.threadpool import ThreadPool

from ivr.agi_channel import AgiLimits, FastAGIFactory, listen_fastagi
from ivr.call_store import CallStore
from ivr.fastagi_call import DatabaseWait, FastAGICall, thread_pool_runner
from ivr.flow import FlowSettings
from ivr.prompt_catalogue import LANGUAGES, MissingPrompt, missing_prompts
from ivr.resilient_store import ResilientStore
from ivr.spool import Spool

#: The sounds shipped with this checkout, used when no other folder is configured.
BUNDLED_SOUNDS = Path(__file__).resolve().parent.parent / "asterisk_conf" / "sounds"


@dataclasses.dataclass
class FastAGIWorker:
    factory: FastAGIFactory
    handler: FastAGICall
    store: CallStore | ResilientStore
    threadpool: ThreadPool
    port: IListeningPort
    #: the offline side, when the worker has a spool folder
    resilient: ResilientStore | None = None
    offline_pool: ThreadPool | None = None
    maintenance_pool: ThreadPool | None = None
    maintenance: LoopingCall | None = None

    @property
    def address(self) -> tuple[str, int]:
        addr = self.port.getHost()
        return addr.host, addr.port  # type: ignore[attr-defined]

    def stop(self) -> None:
        self.port.stopListening()
        if self.maintenance is not None and self.maintenance.running:
            self.maintenance.stop()
        self.threadpool.stop()
        for pool in (self.offline_pool, self.maintenance_pool):
            if pool is not None:
                pool.stop()
        if self.resilient is not None:
            self.resilient.spool.close()


def check_prompts(sounds_root: Path) -> list[MissingPrompt]:
    """Every prompt in every language, found before the first carer calls."""
    return missing_prompts(sounds_root, LANGUAGES)


def start_fastagi_worker(
    reactor: object,
    sessions: sessionmaker[Session],
    *,
    node: str,
    port: int,
    interface: str = "",
    db_threads: int = 10,
    default_region: str = "FR",
    flow_settings: FlowSettings | None = None,
    limits: AgiLimits | None = None,
    spool_dir: str | Path | None = None,
    db_wait_s: float = 2.0,
    maintenance_interval_s: float = 1.0,
    retry_s: float = 5.0,
) -> FastAGIWorker:
    """``spool_dir`` None: no offline path (a database failure fails the call's effect)."""
    threadpool = ThreadPool(minthreads=1, maxthreads=db_threads, name="telegestion-db")
    threadpool.start()
    store = CallStore(sessions, default_region=default_region)
    if spool_dir is None:
        handler = FastAGICall(
            store,
            run_blocking=thread_pool_runner(reactor, threadpool),  # type: ignore[arg-type]
            node=node,
            flow_settings=flow_settings,
        )
        factory = FastAGIFactory(handler, clock=reactor, limits=limits)  # type: ignore[arg-type]
        listening = listen_fastagi(reactor, port, factory, interface=interface)  # type: ignore[arg-type]
        return FastAGIWorker(factory, handler, store, threadpool, listening)

    resilient = ResilientStore(store, Spool(spool_dir), retry_s=retry_s)
    resilient.start()
    offline_pool = ThreadPool(minthreads=1, maxthreads=2, name="telegestion-spool")
    offline_pool.start()
    maintenance_pool = ThreadPool(minthreads=1, maxthreads=1, name="telegestion-replay")
    maintenance_pool.start()
    handler = FastAGICall(
        resilient,
        run_blocking=thread_pool_runner(reactor, threadpool),  # type: ignore[arg-type]
        node=node,
        flow_settings=flow_settings,
        database_wait=DatabaseWait(
            db_wait_s,
            reactor,  # type: ignore[arg-type]
            thread_pool_runner(reactor, offline_pool),  # type: ignore[arg-type]
        ),
    )
    factory = FastAGIFactory(handler, clock=reactor, limits=limits)  # type: ignore[arg-type]
    listening = listen_fastagi(reactor, port, factory, interface=interface)  # type: ignore[arg-type]
    maintenance = LoopingCall(_maintenance_tick(reactor, maintenance_pool, resilient))
    maintenance.clock = reactor  # type: ignore[assignment]
    maintenance.start(maintenance_interval_s, now=True)
    return FastAGIWorker(
        factory,
        handler,
        resilient,
        threadpool,
        listening,
        resilient=resilient,
        offline_pool=offline_pool,
        maintenance_pool=maintenance_pool,
        maintenance=maintenance,
    )


def _maintenance_tick(
    reactor: object, pool: ThreadPool, store: ResilientStore
) -> Callable[[], None]:
    """A tick of the maintenance loop: one step on the maintenance thread, skipped while the
    previous one still runs (a replay stuck on a frozen database holds nothing else)."""
    busy = False

    def done(_: object) -> None:
        nonlocal busy
        busy = False

    def tick() -> None:
        nonlocal busy
        if busy:
            return
        busy = True
        deferToThreadPool(reactor, pool, store.maintain).addBoth(done)  # type: ignore[arg-type]

    return tick
