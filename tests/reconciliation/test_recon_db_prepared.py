"""The incremental path's reads are prepared once per PostgreSQL connection and reused; the batch
prepares nothing; a connection that lost its prepared statements still reconciles."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from recon_db_world import World, open_codes
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session, sessionmaker

from reconciliation.sql_access import _PREPARED_KEY, _prepared_form
from reconciliation.store import reconcile_after_punches, reconcile_range

NOW = datetime(2026, 5, 6, tzinfo=UTC)


def test_only_reads_are_prepared_and_names_become_numbers() -> None:
    """Each name becomes one numbered parameter, in order of first use; lists become arrays;
    casts (``::``) are left alone; writes are never prepared."""
    form = _prepared_form(
        "SELECT a FROM t WHERE x IN_LIST(:ids) AND y >= :lo AND z < :hi AND w::text = :lo"
    )
    assert form is not None
    assert form[:2] == (
        "SELECT a FROM t WHERE x = ANY($1) AND y >= $2 AND z < $3 AND w::text = $2",
        ("ids", "lo", "hi"),
    )
    # The prepared name is made from the text: the same text, the same name; another, another.
    assert (
        form[2]
        == _prepared_form(
            "SELECT a FROM t WHERE x IN_LIST(:ids) AND y >= :lo AND z < :hi AND w::text = :lo"
        )[2]
    )  # type: ignore[index]
    assert form[2] != _prepared_form("SELECT b FROM t WHERE x IN_LIST(:ids)")[2]  # type: ignore[index]
    assert _prepared_form("  WITH s AS (SELECT 1) SELECT * FROM s")[1] == ()  # type: ignore[index]
    assert _prepared_form("UPDATE t SET a = :a") is None
    assert _prepared_form("INSERT INTO t VALUES (:a)") is None


def _only_postgres(engine: Engine) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("prepared statements are PostgreSQL's")


def _prepared(engine: Engine) -> tuple[set[str], dict[str, str]]:
    """The names the pooled connection remembers, and the statements the server holds for it
    (name -> the statement as prepared)."""
    with engine.connect() as conn:
        remembered = set(conn.connection.info.get(_PREPARED_KEY, set()))
        held = dict(
            conn.execute(
                text(
                    "SELECT name, statement FROM pg_prepared_statements WHERE name LIKE 'tg_rec_%'"
                )
            ).all()
        )
    return remembered, held


def _day(w: World) -> tuple[int, int, int]:
    company = w.company("042")
    client = w.client(company, "C1", "+33145678912")
    carer = w.carer(company, "I1")
    w.plan(company, "P1", client, carer, "2026-05-04 08:00", "2026-05-04 09:00")
    w.plan(company, "P2", client, carer, "2026-05-05 08:00", "2026-05-05 09:00")
    return company, client, carer


def _arrival_reconciled(
    engine: Engine, sessions: sessionmaker[Session]
) -> tuple[World, tuple[int, int, int]]:
    """The day, on a pool with no connection yet, then an arrival reconciled incrementally."""
    w = World(sessions)
    company, client, carer = _day(w)
    engine.dispose()
    first = w.punch(company, carer, client, "arrival", "2026-05-04 08:05")
    reconcile_after_punches(engine, [first], now=NOW)
    return w, (company, client, carer)


def _late_arrival_reconciled(engine: Engine, w: World, day: tuple[int, int, int]) -> None:
    company, client, carer = day
    late = w.punch(company, carer, client, "arrival", "2026-05-05 08:40")
    reconcile_after_punches(engine, [late], now=NOW)


def test_reads_are_prepared_once_and_reused(
    engine: Engine, sessions: sessionmaker[Session]
) -> None:
    _only_postgres(engine)
    w, (company, client, carer) = _arrival_reconciled(engine, sessions)
    remembered, held = _prepared(engine)
    assert remembered, "the incremental run prepared its reads"
    assert remembered == set(held)
    prepared = [sql.split(" AS ", 1)[1] for sql in held.values()]
    assert all(sql.split(None, 1)[0] in ("SELECT", "WITH") for sql in prepared), "reads only"
    assert any("own_clients" in sql for sql in prepared), "the neighbourhood among them"

    second = w.punch(company, carer, client, "departure", "2026-05-04 09:02")
    reconcile_after_punches(engine, [second], now=NOW)
    again, held_again = _prepared(engine)
    assert again == remembered, "the same statements, executed again by name"
    assert held_again == held
    assert open_codes(sessions) == {}


def test_batch_chunks_prepare_nothing(engine: Engine, sessions: sessionmaker[Session]) -> None:
    """A chunk's reads carry hundreds of carers: they are planned for their actual arrays.
    (Planning the batch, a few small reads, may prepare.)"""
    _only_postgres(engine)
    w = World(sessions)
    company, client, carer = _day(w)
    w.punch(company, carer, client, "arrival", "2026-05-04 08:05")
    engine.dispose()
    assert reconcile_range(engine, None, None, now=NOW).counts.total > 0
    remembered, held = _prepared(engine)
    assert remembered == set(held)
    assert not any("own_clients" in sql or "FROM visits" in sql for sql in held.values())


def test_statements_deallocated_behind_its_back_are_prepared_again(
    engine: Engine, sessions: sessionmaker[Session]
) -> None:
    """DEALLOCATE ALL (a pooler, an operator) leaves the remembered names wrong: the run that
    meets it forgets them, is retried, and reconciles as if nothing happened."""
    _only_postgres(engine)
    w, day = _arrival_reconciled(engine, sessions)
    with engine.connect() as conn:
        conn.execute(text("DEALLOCATE ALL"))
        conn.commit()
    assert _prepared(engine)[1] == {}
    _late_arrival_reconciled(engine, w, day)
    remembered, held = _prepared(engine)
    assert remembered and remembered == set(held)
    assert "LATE_ARRIVAL" in {key.split(":")[0] for key in open_codes(sessions)}
    # What the retried run wrote is what a batch over the days writes: it finds nothing to do.
    assert reconcile_range(engine, None, None, now=NOW).counts.total == 0


def test_statements_the_server_already_holds_are_executed_as_they_are(
    engine: Engine, sessions: sessionmaker[Session]
) -> None:
    """A pooler may hand over a server connection where the same statement was prepared by
    another of our connections: PREPARE fails, the retried run first reads what the server
    holds (a name is made from its text, so it runs the same statement), and reconciles as if
    nothing happened."""
    _only_postgres(engine)
    w, day = _arrival_reconciled(engine, sessions)
    _, held = _prepared(engine)
    with engine.connect() as conn:
        conn.connection.info[_PREPARED_KEY].clear()  # as if another client had prepared them
    _late_arrival_reconciled(engine, w, day)
    again, held_again = _prepared(engine)
    assert held_again == held, "nothing prepared twice, nothing lost"
    assert again == set(held)
    assert reconcile_range(engine, None, None, now=NOW).counts.total == 0
