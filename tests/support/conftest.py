"""Fixtures for support tests: the example directory and a phone into the real call program."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session, sessionmaker
from support_world import EXAMPLES, SHARED, Place, paris

from telegestion.importing import import_file
from telegestion.support.simulated_phone import SimulatedPhone


@pytest.fixture
def examples(sessions: sessionmaker[Session]) -> sessionmaker[Session]:
    for kind in ("companies", "numbers", "clients", "carers", "planning"):
        import_file(sessions, kind, EXAMPLES / f"{kind}.csv")
    return sessions


@pytest.fixture
def phone(examples: sessionmaker[Session]) -> SimulatedPhone:
    """Calls through the FastAGI worker, from 07:00 Paris on the examples' day."""
    return SimulatedPhone(examples, start=paris(7, 0), node="node1")


@pytest.fixture
def place(phone: SimulatedPhone) -> Place:
    """``place(hour, minute, caller, keys, called=SHARED)`` -> the call's TELEGESTION_STATUS."""

    def call(
        hour: int, minute: int, caller: str | None, keys: str, called: str = SHARED, **kw: object
    ) -> str | None:
        record = phone.call(at=paris(hour, minute), caller=caller, called=called, keys=keys, **kw)
        return record.variables.get("TELEGESTION_STATUS")

    return call
