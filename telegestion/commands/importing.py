"""``telegestion import KIND FILE.csv``: upsert a CSV file, all rows or none."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ..importing import KINDS, ImportFileError, ImportRejected, import_file
from ..model import utcnow
from .context import open_context


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "import",
        help="import a CSV file (companies, numbers, clients, carers, planning, punches)",
        description="Import a UTF-8 CSV file with a header row. Rows are upserted by their "
        "reference; a file with any bad row is reported line by line and nothing from it is "
        "written. Columns are listed in README.md.",
    )
    parser.add_argument("kind", choices=list(KINDS), help="what the file holds")
    parser.add_argument("file", help="path to the CSV file")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    ctx = open_context()
    ctx.require_schema()
    started = utcnow()
    try:
        report = import_file(ctx.sessions, args.kind, args.file)
    except ImportFileError as exc:
        print(f"telegestion import: {exc}", file=sys.stderr)
        return 2
    except ImportRejected as exc:
        for error in exc.errors:
            print(f"{exc.path}: {error}", file=sys.stderr)
        print(f"telegestion import: {exc}", file=sys.stderr)
        return 2
    print(report)
    if args.kind in ("punches", "planning") and (report.inserted or report.updated):
        # Punches and planning change reconciliation: bring the carers' days up to date now.
        from reconciliation.store import reconcile_after_import

        print(f"reconcile: {reconcile_after_import(ctx.engine, args.kind, started)}")
    return 0
