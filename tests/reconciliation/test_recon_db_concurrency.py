"""Workers reconciling the same carer-days at the same time leave a consistent database."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, date, datetime

from recon_db_world import World, forget_results, state
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from reconciliation.store import reconcile_after_punches, reconcile_carer_days, reconcile_range

NOW = datetime(2026, 12, 1, tzinfo=UTC)
DAYS = (date(2026, 5, 4), date(2026, 5, 5))


def test_parallel_runs_on_the_same_days_agree_with_one_batch(
    engine: Engine, sessions: sessionmaker[Session]
) -> None:
    """Three threads (batch, per-punch, per-carer-day) on the same carers, interleaved: no
    error, no duplicate, and the rows are the ones one batch writes."""
    w = World(sessions)
    company = w.company("042")
    clients = [w.client(company, f"C{n}", f"+3314567890{n}") for n in range(3)]
    carers = [w.carer(company, f"I{n}") for n in range(4)]
    punches = []
    for day in DAYS:
        for n, carer in enumerate(carers):
            client = clients[n % 3]  # carers 0 and 3 share client 0: substitutes compete
            w.plan(company, f"P{day.day}-{n}", client, carer, f"{day} 09:00", f"{day} 10:00")
            punches.append(w.punch(company, carer, client, "arrival", f"{day} 09:0{n}"))
            punches.append(w.punch(company, carer, client, "departure", f"{day} 10:0{n}"))
    errors: list[BaseException] = []

    def guarded(work: Callable[[], object]) -> threading.Thread:
        def body() -> None:
            try:
                work()
            except BaseException as exc:
                errors.append(exc)

        return threading.Thread(target=body)

    threads = [
        guarded(lambda: [reconcile_range(engine, DAYS[0], DAYS[1], now=NOW) for _ in range(3)]),
        guarded(lambda: [reconcile_after_punches(engine, [p], now=NOW) for p in punches]),
        guarded(
            lambda: [
                reconcile_carer_days(engine, [(c, d) for c in carers for d in DAYS], now=NOW)
                for _ in range(3)
            ]
        ),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    together = state(sessions)
    forget_results(sessions)
    reconcile_range(engine, DAYS[0], DAYS[1], now=NOW)
    assert state(sessions) == together
