"""Database fixtures: every database test runs on SQLite and on PostgreSQL, each on a fresh schema.

PostgreSQL comes from ``TELEGESTION_TEST_POSTGRES_URL``. Without it the PostgreSQL half of each
test is skipped, unless ``TELEGESTION_REQUIRE_POSTGRES=1`` (set by ``.ci/run``), in which case it
fails: CI must never pass by silently skipping PostgreSQL.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from telegestion import migrate
from telegestion.db import make_engine, make_session_factory

PG_URL = os.environ.get("TELEGESTION_TEST_POSTGRES_URL", "")
REQUIRE_PG = os.environ.get("TELEGESTION_REQUIRE_POSTGRES") == "1"
BACKENDS = ("sqlite", "postgresql")


def postgres_or_skip() -> str:
    if PG_URL:
        return PG_URL
    if REQUIRE_PG:
        pytest.fail("TELEGESTION_REQUIRE_POSTGRES=1 but TELEGESTION_TEST_POSTGRES_URL is not set")
    pytest.skip("PostgreSQL not configured (set TELEGESTION_TEST_POSTGRES_URL)")


def with_search_path(url: str, schema: str) -> str:
    parsed = make_url(url).update_query_dict({"options": f"-csearch_path={schema}"})
    return parsed.render_as_string(hide_password=False)


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A URL naming an empty database: a new SQLite file, or a new PostgreSQL schema."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'telegestion.db'}"
        return
    base = postgres_or_skip()
    schema = f"t_{uuid.uuid4().hex[:16]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    except Exception as exc:  # pragma: no cover - the machine's PostgreSQL is down
        admin.dispose()
        if REQUIRE_PG:
            pytest.fail(f"PostgreSQL at {base} unreachable: {exc}")
        pytest.skip(f"PostgreSQL at {base} unreachable")
    try:
        yield with_search_path(base, schema)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def bare_engine(db_url: str) -> Iterator[Engine]:
    """An engine on an empty database (no migration run)."""
    engine = make_engine(db_url)
    yield engine
    engine.dispose()


@pytest.fixture
def engine(bare_engine: Engine) -> Engine:
    """An engine on a database migrated to head."""
    migrate.upgrade(bare_engine)
    return bare_engine


@pytest.fixture
def sessions(engine: Engine) -> sessionmaker[Session]:
    return make_session_factory(engine)
