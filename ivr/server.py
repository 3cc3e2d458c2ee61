"""Assembling a FastAGI worker: thread pool, database store, call handler, listening port.

Sizes fit together on purpose: the thread pool that runs database work has exactly as many
threads as the database pool has connections, so a thread never waits for a connection while
holding a call, and the statement timeout bounds how long any of them can be held.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker
from twisted.internet.interfaces import IListeningPort
from twisted.python.threadpool import ThreadPool

from ivr.agi_channel import AgiLimits, FastAGIFactory, listen_fastagi
from ivr.call_store import CallStore
from ivr.fastagi_call import FastAGICall, thread_pool_runner
from ivr.flow import FlowSettings
from ivr.prompt_catalogue import LANGUAGES, MissingPrompt, missing_prompts

#: The sounds shipped with this checkout, used when no other folder is configured.
BUNDLED_SOUNDS = Path(__file__).resolve().parent.parent / "asterisk_conf" / "sounds"


@dataclasses.dataclass
class FastAGIWorker:
    factory: FastAGIFactory
    handler: FastAGICall
    store: CallStore
    threadpool: ThreadPool
    port: IListeningPort

    @property
    def address(self) -> tuple[str, int]:
        addr = self.port.getHost()
        return addr.host, addr.port  # type: ignore[attr-defined]

    def stop(self) -> None:
        self.port.stopListening()
        self.threadpool.stop()


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
) -> FastAGIWorker:
    threadpool = ThreadPool(minthreads=1, maxthreads=db_threads, name="telegestion-db")
    threadpool.start()
    store = CallStore(sessions, default_region=default_region)
    handler = FastAGICall(
        store,
        run_blocking=thread_pool_runner(reactor, threadpool),  # type: ignore[arg-type]
        node=node,
        flow_settings=flow_settings,
    )
    factory = FastAGIFactory(handler, clock=reactor, limits=limits)  # type: ignore[arg-type]
    listening = listen_fastagi(reactor, port, factory, interface=interface)  # type: ignore[arg-type]
    return FastAGIWorker(factory, handler, store, threadpool, listening)
