"""Fixtures of the page tests: the loopback server, the agency on a fresh database (SQLite and
PostgreSQL through ``db_url``), and browsers logged in as each user."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker
from web_harness import Agency, Browser, Clock, LoopbackServer, build_agency, paris

from telegestion.settings import Settings


@pytest.fixture(scope="session")
def loopback() -> Iterator[LoopbackServer]:
    server = LoopbackServer()
    yield server
    server.stop()


@pytest.fixture
def clock() -> Clock:
    """14:00 in Paris on the agency's day: A1 is done, A2 missed, A3 still to come."""
    return Clock(paris("14:00"))


@pytest.fixture
def agency(engine: Engine, sessions: sessionmaker[Session], clock: Clock) -> Agency:
    return build_agency(engine, sessions, clock.now)


@pytest.fixture
def port(loopback: LoopbackServer, engine: Engine, agency: Agency, clock: Clock) -> Iterator[int]:
    yield loopback.serve(engine, Settings(), clock)
    loopback.close_ports()


@pytest.fixture
def browser(port: int) -> Browser:
    """A browser that has not logged in."""
    return Browser(port)


def _logged_in(port: int, login: str) -> Browser:
    b = Browser(port)
    answer = b.log_in(login)
    assert answer.status == 303, answer.text
    return b


@pytest.fixture
def coord(port: int) -> Browser:
    """Coordinator of company 042."""
    return _logged_in(port, "coord042")


@pytest.fixture
def support(port: int) -> Browser:
    """Support of company 042."""
    return _logged_in(port, "support042")


@pytest.fixture
def other(port: int) -> Browser:
    """Coordinator of company 117 only."""
    return _logged_in(port, "coord117")
