"""The FastAGI executor of ``ivr.agi_call``: channel operations on a Twisted ``AgiChannel``,
blocking database work on a thread pool, so the reactor that serves every call never waits."""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from collections import Counter
from collections.abc import Callable
from typing import Any

from twisted.internet.defer import Deferred, ensureDeferred
from twisted.internet.defer import TimeoutError as WaitRanOut
from twisted.internet.interfaces import IReactorFromThreads, IReactorTime
from twisted.internet.threads import deferToThreadPool
from twisted.python.threadpool import ThreadPool

from ivr import effects as fx
from ivr.agi_call import AgiProgram, Blocking, ChannelOp, agi_call
from ivr.agi_channel import AgiChannel
from ivr.agi_wire import ChannelHungUp
from ivr.call_store import CallStore, utc_now
from ivr.flow import FlowSettings
from ivr.resilient_store import ResilientStore

log = logging.getLogger(__name__)

RunBlocking = Callable[..., Deferred[Any]]
"""Runs a blocking function off the reactor thread and fires with its result."""


def thread_pool_runner(reactor: IReactorFromThreads, pool: ThreadPool) -> RunBlocking:
    """The production runner: database work on a thread pool sized to the connection pool."""

    def run(fn: Callable[..., Any], *args: Any) -> Deferred[Any]:
        return deferToThreadPool(reactor, pool, fn, *args)

    return run


@dataclasses.dataclass(frozen=True)
class DatabaseWait:
    """How long a call waits for a database operation that has an offline fallback, and where
    that fallback runs: threads of its own, since a frozen database holds the database threads."""

    seconds: float
    timer: IReactorTime
    run_offline: RunBlocking


async def run_op(op: Blocking, run_blocking: RunBlocking, wait: DatabaseWait | None) -> Any:
    """One blocking operation; past ``wait.seconds`` its fallback answers instead (the late
    database work goes on, on its thread, and its result is dropped)."""
    if op.offline:
        return await (wait.run_offline if wait is not None else run_blocking)(op.fn, *op.args)
    running = run_blocking(op.fn, *op.args)
    if op.fallback is None or wait is None:
        return await running
    running.addTimeout(wait.seconds, wait.timer)
    try:
        return await running
    except WaitRanOut:
        log.warning("database gave no answer within %.1f s: going offline", wait.seconds)
    return await run_op(op.fallback, run_blocking, wait)


async def execute(
    program: AgiProgram,
    channel: AgiChannel,
    run_blocking: RunBlocking,
    wait: DatabaseWait | None = None,
) -> fx.CallSummary:
    """Drive an AGI call program over a FastAGI channel until it returns its summary."""
    result: Any = None
    error: BaseException | None = None
    while True:
        try:
            op = program.throw(error) if error is not None else program.send(result)
        except StopIteration as stop:
            return stop.value
        result, error = None, None
        try:
            if isinstance(op, Blocking):
                result = await run_op(op, run_blocking, wait)
            elif op.live and channel.hung_up:
                raise ChannelHungUp("the caller hung up")
            else:
                result = await getattr(channel, op.name)(*op.args)
        except Exception as exc:
            error = exc


class FastAGICall:
    """Handler for :class:`~ivr.agi_channel.FastAGIFactory`: ``handler(channel) -> Deferred``."""

    def __init__(
        self,
        store: CallStore | ResilientStore,
        *,
        run_blocking: RunBlocking,
        node: str,
        flow_settings: FlowSettings | None = None,
        clock: Callable[[], dt.datetime] = utc_now,
        database_wait: DatabaseWait | None = None,
    ) -> None:
        self.store = store
        self.run_blocking = run_blocking
        self.database_wait = database_wait
        self.node = node
        self.flow_settings = flow_settings or FlowSettings()
        self.clock = clock
        self.outcomes: Counter[str] = Counter()

    def __call__(self, channel: AgiChannel) -> Deferred[None]:
        return ensureDeferred(self._run(channel))

    async def _run(self, channel: AgiChannel) -> None:
        program = agi_call(
            channel.env,
            self.store,  # type: ignore[arg-type]
            node=self.node,
            transport="fastagi",
            region=self.store.default_region,
            flow_settings=self.flow_settings,
            clock=self.clock,
        )
        try:
            summary = await execute(program, channel, self.run_blocking, self.database_wait)
            self.outcomes[summary.outcome] += 1
        finally:
            channel.close()


__all__ = [
    "ChannelOp",
    "DatabaseWait",
    "FastAGICall",
    "RunBlocking",
    "execute",
    "run_op",
    "thread_pool_runner",
]
