"""Engines and sessions for the embedded SQLite default and for PostgreSQL.

The per-dialect settings live here so that every entry point (server, command line, tests) gets
the same durability and the same limits: SQLite in WAL mode with a busy timeout and full sync
(a punch read back to a carer must survive a power cut); PostgreSQL with a statement timeout, a
sized pool and a liveness check on checkout.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import Pool


def make_engine(
    url: str,
    *,
    statement_timeout_ms: int = 5000,
    pool_size: int = 10,
    poolclass: type[Pool] | None = None,
    pre_ping: bool = True,
) -> Engine:
    """``poolclass=NullPool`` for a short-lived process (an AGI script) that needs no pool.

    ``pre_ping`` tests each connection on checkout (one more round trip): right for commands
    and pages; the FastAGI server turns it off on its hot path, where a connection broken by a
    database restart fails one operation, is discarded by the pool, and the call is answered.
    """
    parsed = make_url(url)
    extra: dict[str, Any] = {"poolclass": poolclass} if poolclass is not None else {}
    if parsed.get_backend_name() == "sqlite":
        engine = create_engine(
            url, connect_args={"timeout": 30, "check_same_thread": False}, **extra
        )

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            if parsed.database not in (None, "", ":memory:"):
                cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=FULL")
            cur.execute(f"PRAGMA busy_timeout={int(statement_timeout_ms) or 30000}")
            cur.close()

        return engine

    connect_args: dict[str, Any] = {"connect_timeout": 5}
    if parsed.get_backend_name() == "postgresql":
        # A server that vanished from the network (host down, link cut) is noticed within
        # seconds instead of the kernel's two hours, so its threads fail and calls go offline.
        connect_args.update(keepalives=1, keepalives_idle=5, keepalives_interval=2)
        connect_args["keepalives_count"] = 3
        options = parsed.query.get("options", "")
        if isinstance(options, tuple):
            options = " ".join(options)
        connect_args["options"] = f"{options} -c statement_timeout={int(statement_timeout_ms)}"
        parsed = parsed.difference_update_query(["options"])
    if poolclass is None:
        extra = {
            "pool_size": pool_size,
            "max_overflow": 0,
            "pool_pre_ping": pre_ping,
            "pool_timeout": 10,
        }
    return create_engine(parsed, connect_args=connect_args, **extra)


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One short unit of work: commit on success, roll back on any error."""
    with factory() as session, session.begin():
        yield session
