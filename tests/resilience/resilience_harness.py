"""Helpers of the offline-path tests: a worker whose database is unreachable, then back.

A *live* store works on the test database; a *dead* store is the same worker as it runs during
an outage: its engine points at a closed port, it starts from the directory copy the live store
saved, and it writes to the same spool folder. The in-memory worker drives whole calls through
the real flow (``ivr.asterisk_sim`` on a ``task.Clock``), its blocking work inline.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from twisted.internet.defer import maybeDeferred
from twisted.internet.task import Clock

from ivr.agi_channel import FastAGIFactory
from ivr.asterisk_sim import CallRecord, SimulatedCall, parse_keys, simulate_calls
from ivr.call_store import CallStore
from ivr.fastagi_call import FastAGICall
from ivr.flow import FlowSettings
from ivr.resilient_store import ResilientStore
from ivr.spool import Spool
from telegestion.db import make_engine, make_session_factory
from telegestion.importing import import_file
from telegestion.model import Call, CallEvent, Punch

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"

#: A PostgreSQL URL on a closed port: every connection is refused at once.
DEAD_URL = "postgresql+psycopg2://postgres@127.0.0.1:1/none"

SHARED = "0800123456"
DEDICATED_117 = "0800117117"
MME_DUBOIS = "0145678912"  # client C-0001 of company 042
MME_FOURNIER = "0139524410"  # client J-103 of company 117
UNKNOWN_PHONE = "0612000000"
FATOU = "12345"  # carer I-01 of 042, active
AMINATA = "54321"  # carer J-A of 117

FAST_FLOW = FlowSettings()


def load_examples(sessions: sessionmaker[Session]) -> None:
    for kind in ("companies", "numbers", "clients", "carers"):
        import_file(sessions, kind, EXAMPLES / f"{kind}.csv")


def resilient(sessions: sessionmaker[Session], spool_dir: Path, **kw: Any) -> ResilientStore:
    return ResilientStore(CallStore(sessions), Spool(spool_dir), **kw)


def live_store(sessions: sessionmaker[Session], spool_dir: Path) -> ResilientStore:
    """A worker on the test database, its directory copy saved in ``spool_dir``."""
    store = resilient(sessions, spool_dir)
    store.start()
    store.refresh_copy()
    return store


def dead_store(spool_dir: Path, **kw: Any) -> ResilientStore:
    """The same worker restarted during an outage: started from the saved copy."""
    store = resilient(make_session_factory(make_engine(DEAD_URL)), spool_dir, **kw)
    store.start()
    return store


def inline(fn: Any, *args: Any) -> Any:
    return maybeDeferred(fn, *args)


def run_calls(
    store: ResilientStore, calls: Sequence[SimulatedCall], node: str = "node1"
) -> list[CallRecord]:
    """Whole calls through the flow on this store, in memory."""
    clock = Clock()
    handler = FastAGICall(store, run_blocking=inline, node=node, flow_settings=FAST_FLOW)
    factory = FastAGIFactory(handler, clock=clock)
    return simulate_calls(factory, calls, clock)


def punch_call(caller: str | None, keys: str, called: str = SHARED, **kw: Any) -> SimulatedCall:
    return SimulatedCall(called=called, caller=caller, script=tuple(parse_keys(keys)), **kw)


def punch_rows(sessions: sessionmaker[Session]) -> list[Punch]:
    with sessions() as s:
        return list(s.scalars(select(Punch).where(Punch.source == "landline").order_by(Punch.at)))


def call_rows(sessions: sessionmaker[Session]) -> dict[str, Call]:
    with sessions() as s:
        return {c.call_key: c for c in s.scalars(select(Call))}


def event_kinds(sessions: sessionmaker[Session], call_key: str) -> list[tuple[int, str]]:
    with sessions() as s:
        rows = s.execute(
            select(CallEvent.seq, CallEvent.kind)
            .join(Call, Call.id == CallEvent.call_id)
            .where(Call.call_key == call_key)
            .order_by(CallEvent.seq)
        )
        return [(seq, kind) for seq, kind in rows]
