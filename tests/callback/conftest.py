"""Fixtures of the call-back tests: the loopback reactor, the fake Twilio API, the directory,
and a faster database for each test.

Every test still runs on SQLite and on PostgreSQL (``tests/conftest.py`` decides whether
PostgreSQL runs, is skipped or must run), and still starts from an empty schema at head; but
the schema is migrated once per test process and emptied for each test (a copied SQLite file,
emptied PostgreSQL tables), since migrating for each of these many short calls would cost
more than the calls themselves. The migrations themselves are tested in ``tests/foundation``.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from callback_data import T0, Directory, populate
from callback_harness import FakeTwilioApi, LoopbackReactor, TestTime, TwilioSide, Worker
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.orm import Session, sessionmaker

from telegestion import migrate
from telegestion.db import make_engine, make_session_factory
from telegestion.model import Base


def _root(config: pytest.Config) -> ModuleType:
    """``tests/conftest.py``, for its PostgreSQL rules (skip, or fail when it is required)."""
    module = config.pluginmanager.get_plugin(str(Path(__file__).parents[1] / "conftest.py"))
    assert module is not None
    return module  # type: ignore[no-any-return]


@pytest.fixture(scope="session")
def _sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("callback-template") / "telegestion.db"
    engine = make_engine(f"sqlite:///{path}")
    migrate.upgrade(engine)
    engine.dispose()
    return path


@pytest.fixture(scope="session")
def _postgres_schema(request: pytest.FixtureRequest) -> Iterator[str | None]:
    """A schema at head for this test process, or ``None`` without PostgreSQL."""
    base = _root(request.config).PG_URL
    if not base:
        yield None
        return
    schema = f"cb_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    except Exception:  # pragma: no cover - PostgreSQL down: each test skips or fails
        admin.dispose()
        yield None
        return
    url = _root(request.config).with_search_path(base, schema)
    engine = make_engine(url)
    migrate.upgrade(engine)
    engine.dispose()
    try:
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(params=("sqlite", "postgresql"))
def db_url(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    _sqlite_template: Path,
    _postgres_schema: str | None,
) -> str:
    """An empty database at head: a copy of the migrated SQLite file, or the emptied schema."""
    if request.param == "sqlite":
        path = tmp_path / "telegestion.db"
        shutil.copyfile(_sqlite_template, path)
        return f"sqlite:///{path}"
    if _postgres_schema is None:
        _root(request.config).postgres_or_skip()
        pytest.fail(f"PostgreSQL at {_root(request.config).PG_URL} is unreachable")
    engine = make_engine(_postgres_schema)
    with engine.begin() as conn:  # DELETE is ten times faster than TRUNCATE on tiny tables
        for table in reversed(Base.metadata.sorted_tables):
            conn.execute(table.delete())
    engine.dispose()
    return _postgres_schema


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    """An engine on the test's database, already at head."""
    engine = make_engine(db_url)
    yield engine
    engine.dispose()


@pytest.fixture
def sessions(engine: Engine) -> sessionmaker[Session]:
    return make_session_factory(engine)


@pytest.fixture
def directory(sessions: sessionmaker[Session]) -> Directory:
    return populate(sessions)


@pytest.fixture(scope="session")
def loop() -> Iterator[LoopbackReactor]:
    reactor = LoopbackReactor()
    yield reactor
    reactor.stop()


@pytest.fixture
def fake_api(loop: LoopbackReactor) -> Iterator[FakeTwilioApi]:
    """Twilio's Calls API, faked on loopback; ``fake_api.calls()`` lists what it was asked."""
    api = FakeTwilioApi()
    port, number = loop.listen(api)
    api.url = f"http://127.0.0.1:{number}"
    yield api
    loop.call(port.stopListening)


@pytest.fixture
def test_time(loop: LoopbackReactor) -> TestTime:
    return TestTime(loop, T0)


@pytest.fixture
def twilio() -> TwilioSide:
    return TwilioSide()


@pytest.fixture
def make_worker(
    loop: LoopbackReactor,
    test_time: TestTime,
    db_url: str,
    fake_api: FakeTwilioApi,
) -> Iterator[Callable[..., Worker]]:
    """Start a worker with its own engine on the test database, as a separate process has."""
    started: list[tuple[Worker, Any]] = []

    def start(**options: float) -> Worker:
        engine = make_engine(db_url, pool_size=4)
        worker = Worker(loop, test_time, make_session_factory(engine), fake_api, **options)
        started.append((worker, engine))
        return worker

    yield start
    for worker, engine in started:
        worker.stop()
        engine.dispose()


@pytest.fixture
def worker(make_worker: Callable[..., Worker], directory: Directory) -> Worker:
    return make_worker()
