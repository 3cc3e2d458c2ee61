"""A call's reconciliation never keeps a call thread waiting on a long run (PostgreSQL locks)."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest
from recon_db_world import World, open_codes
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session, sessionmaker

from reconciliation.background import LATER, reconcile_call


def test_busy_carer_is_reconciled_later_not_waited_for(
    engine: Engine, sessions: sessionmaker[Session]
) -> None:
    """While a batch holds the carer, the call's reconciliation hands over within a fraction
    of a second, and the background thread completes it once the carer is free."""
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite has one writer at a time: there is no carer lock to wait on")
    w = World(sessions)
    company = w.company("042")
    client = w.client(company, "C1", "+33145678912")
    carer = w.carer(company, "I1")
    w.punch(company, carer, client, "departure", "2026-05-04 10:00")
    with engine.connect() as batch:
        batch.execute(text("SELECT id FROM carers WHERE id = :id FOR NO KEY UPDATE"), {"id": carer})
        began = time.perf_counter()
        reconcile_call(engine, "test", "call-1", datetime(2026, 5, 5, tzinfo=UTC))
        assert time.perf_counter() - began < 2.0
        assert open_codes(sessions) == {}
        batch.rollback()
    LATER.drain()
    assert {key.split(":")[0] for key in open_codes(sessions)} == {
        "MISSING_ARRIVAL",
        "UNPLANNED_VISIT",
    }
