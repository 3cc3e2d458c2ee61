"""Calls placed at chosen times of day through the real call program, without a network.

The demo needs a morning of calls at 07:58, 08:26… and support's tests need calls whose journal
is the one production writes. Both get it here: the FastAGI server's own pieces (the
``FastAGIFactory`` protocol, the ``FastAGICall`` handler, the ``CallStore`` on the real
database) are driven by the simulated Asterisk of ``ivr.asterisk_sim`` in memory, on a
``task.Clock``. Prompts last as long as their sound files and keys take their time, but in
virtual time: a morning of calls takes a second. The wall clock the store and the journal read
is that virtual clock placed on the day chosen, so punches, journal times and lock-outs carry
the times of the simulated morning.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from sqlalchemy.orm import Session, sessionmaker
from twisted.internet.defer import Deferred, maybeDeferred
from twisted.internet.task import Clock

from ivr.agi_channel import FastAGIFactory
from ivr.asterisk_sim import CallRecord, SimulatedCall, simulate_call
from ivr.call_store import CallStore
from ivr.fastagi_call import FastAGICall
from ivr.prompt_catalogue import prompt_durations, sound_path
from ivr.server import BUNDLED_SOUNDS


def _inline(fn: Callable[..., Any], *args: Any) -> Deferred[Any]:
    """Database work runs inline: the in-memory simulation has no thread to wait for."""
    return maybeDeferred(fn, *args)


def _durations(language: str) -> dict[str, float]:
    try:
        return {
            sound_path(prompt_id): seconds
            for prompt_id, seconds in prompt_durations(BUNDLED_SOUNDS, language).items()
        }
    except (FileNotFoundError, ValueError):
        return {}


class SimulatedPhone:
    """A FastAGI worker on a database, called by simulated carers at chosen instants."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        *,
        start: dt.datetime,
        node: str = "demo",
        region: str = "FR",
        language: str = "fr",
    ) -> None:
        if start.tzinfo is None or start.utcoffset() is None:
            raise ValueError("start must be timezone-aware")
        self.start = start.astimezone(dt.UTC)
        self.clock = Clock()
        self.store = CallStore(sessions, clock=self.now, default_region=region)
        self.handler = FastAGICall(self.store, run_blocking=_inline, node=node, clock=self.now)
        self.factory = FastAGIFactory(self.handler, clock=self.clock)
        self.language = language
        self.durations = _durations(language)

    def now(self) -> dt.datetime:
        """The simulated wall clock (UTC)."""
        return self.start + dt.timedelta(seconds=self.clock.seconds())

    def call(
        self,
        *,
        at: dt.datetime,
        caller: str | None,
        called: str,
        keys: str,
        withheld: bool = False,
        hang_up_after: float | None = None,
    ) -> CallRecord:
        """One call starting at ``at`` (not before the previous call's end); ``keys`` as for
        ``telegestion call --keys`` ("042 12345": each group typed over the next prompt)."""
        from telegestion.commands.call import key_script

        wait = (at - self.now()).total_seconds()
        if wait < 0:
            raise ValueError(f"{at.isoformat()} is before the simulated clock {self.now()}")
        self.clock.advance(wait)
        call = SimulatedCall(
            called=called,
            caller=caller,
            withheld=withheld,
            script=tuple(key_script(keys)),
            durations=self.durations,
            language=self.language,
            hang_up_after=hang_up_after,
        )
        return simulate_call(self.factory, call, self.clock)
