"""The schema is created only by the Alembic migrations, and they match the models."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, inspect

from telegestion import migrate
from telegestion.model import Base


def test_upgrade_head_matches_the_models(bare_engine: Engine) -> None:
    """After `upgrade head` autogenerate finds nothing to change."""
    migrate.upgrade(bare_engine)
    with bare_engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(ctx, Base.metadata)
    assert diff == []
    assert migrate.current_revision(bare_engine) == migrate.head_revision()


def test_downgrade_base_removes_every_table_and_upgrade_again_works(bare_engine: Engine) -> None:
    """`downgrade base` leaves only Alembic's bookkeeping, and the schema can be rebuilt."""
    migrate.upgrade(bare_engine)
    migrate.downgrade(bare_engine, "base")
    assert set(inspect(bare_engine).get_table_names()) <= {"alembic_version"}
    assert migrate.current_revision(bare_engine) is None
    migrate.upgrade(bare_engine)
    assert set(Base.metadata.tables) <= set(inspect(bare_engine).get_table_names())


def test_upgrade_is_idempotent(bare_engine: Engine) -> None:
    """Running `upgrade head` on an up-to-date database changes nothing."""
    migrate.upgrade(bare_engine)
    tables = set(inspect(bare_engine).get_table_names())
    migrate.upgrade(bare_engine)
    assert set(inspect(bare_engine).get_table_names()) == tables
