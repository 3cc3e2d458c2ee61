"""Test harness: a FastAGI worker on a real database, driven by the simulated Asterisk.

Calls run in memory on a ``task.Clock`` (prompts and key pace keep their meaning, at no
wall-clock cost) while every world effect hits the real SQLite or PostgreSQL database; the
blocking runner runs database work inline, which the in-memory simulation needs.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session, sessionmaker
from twisted.internet.defer import maybeDeferred
from twisted.internet.task import Clock

from ivr.agi_channel import FastAGIFactory
from ivr.asterisk_sim import CallRecord, SimulatedCall, simulate_calls
from ivr.call_store import CallStore
from ivr.fastagi_call import FastAGICall
from ivr.flow import FlowSettings
from ivr.prompt_catalogue import prompt_durations, sound_path
from telegestion.importing import import_file

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
SOUNDS = ROOT / "asterisk_conf" / "sounds"

SHARED = "0800123456"
DEDICATED_117 = "0800117117"
MME_DUBOIS = "0145678912"  # client C-0001 of company 042
MME_FOURNIER = "0139524410"  # client J-103 of company 117
FATOU = "12345"  # carer I-01 of 042, active
SOPHIE_INACTIVE = "45678"  # carer I-04 of 042, inactive
AMINATA = "54321"  # carer J-A of 117


def load_examples(sessions: sessionmaker[Session]) -> None:
    for kind in ("companies", "numbers", "clients", "carers", "planning", "punches"):
        import_file(sessions, kind, EXAMPLES / f"{kind}.csv")


def real_durations(language: str = "fr") -> dict[str, float]:
    """Each prompt's real length, from the committed sound files."""
    return {sound_path(p): s for p, s in prompt_durations(SOUNDS, language).items()}


def inline(fn: Any, *args: Any) -> Any:
    return maybeDeferred(fn, *args)


class Worker:
    """One FastAGI worker (node) on a database, with its own virtual clock."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        node: str = "node1",
        flow_settings: FlowSettings | None = None,
    ) -> None:
        self.clock = Clock()
        self.store = CallStore(sessions)
        self.handler = FastAGICall(
            self.store, run_blocking=inline, node=node, flow_settings=flow_settings
        )
        self.factory = FastAGIFactory(self.handler, clock=self.clock)

    def calls(self, calls: Sequence[SimulatedCall], stagger: float = 0.0) -> list[CallRecord]:
        return simulate_calls(self.factory, calls, self.clock, stagger=stagger)

    def call(self, call: SimulatedCall) -> CallRecord:
        return self.calls([call])[0]
