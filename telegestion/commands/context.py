"""What every command needs: the settings, an engine and a session factory, built once."""

from __future__ import annotations

import dataclasses

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from ..db import make_engine, make_session_factory
from ..migrate import current_revision, head_revision
from ..settings import Settings, load_settings


class UsageError(Exception):
    """A command that cannot run as asked; the message is shown as is."""


class SchemaNotReady(Exception):
    """The database has no schema or an old one; ``telegestion db upgrade`` fixes it."""


@dataclasses.dataclass
class Context:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]

    def require_schema(self) -> None:
        current = current_revision(self.engine)
        if current != head_revision():
            where = self.engine.url.render_as_string(hide_password=True)
            state = "no schema" if current is None else f"schema at revision {current}"
            raise SchemaNotReady(f"{where} has {state}; run: telegestion db upgrade")


def open_context(settings: Settings | None = None, *, pre_ping: bool = True) -> Context:
    settings = settings or load_settings()
    engine = make_engine(
        settings.database_url,
        statement_timeout_ms=settings.statement_timeout_ms,
        pool_size=settings.db_pool_size,
        pre_ping=pre_ping,
    )
    return Context(settings, engine, make_session_factory(engine))
