"""``telegestion db``: the schema, created and upgraded only by the Alembic migrations."""

from __future__ import annotations

import argparse
from typing import Any

from .. import migrate
from .context import open_context


def register(sub: Any) -> None:
    parser = sub.add_parser("db", help="create or upgrade the database schema")
    db_sub = parser.add_subparsers(dest="db_command", metavar="ACTION", parser_class=type(parser))
    db_sub.required = True
    up = db_sub.add_parser(
        "upgrade", help="create or upgrade the schema on TELEGESTION_DATABASE_URL"
    )
    up.add_argument("revision", nargs="?", default="head", help="target revision (default: head)")
    up.set_defaults(func=upgrade)
    cur = db_sub.add_parser("current", help="print the schema revision of the database")
    cur.set_defaults(func=current)


def upgrade(args: argparse.Namespace) -> int:
    ctx = open_context()
    before = migrate.current_revision(ctx.engine)
    migrate.upgrade(ctx.engine, args.revision)
    after = migrate.current_revision(ctx.engine)
    where = ctx.engine.url.render_as_string(hide_password=True)
    if before == after:
        print(f"{where}: schema already at revision {after}")
    else:
        print(f"{where}: schema upgraded from {before or 'nothing'} to revision {after}")
    return 0


def current(args: argparse.Namespace) -> int:
    ctx = open_context()
    print(migrate.current_revision(ctx.engine) or "no schema")
    return 0
