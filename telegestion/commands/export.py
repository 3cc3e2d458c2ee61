"""``telegestion export {realised,payroll,billing}``: the core model for billing and payroll.

The bytes written depend only on the data: rows in a fixed order, local times with their
offset, so a re-export after a correction differs only in the lines it changed.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from .context import UsageError, open_context
from .reconcile import day_range


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "export",
        help="export realised interventions, payroll or billing (CSV or JSON) to stdout",
        description="Write one export of the planned interventions starting from --from to --to "
        "(local days, both included) to standard output. realised: one row per planned "
        "intervention with its status; payroll: realised interventions per carer and day; "
        "billing: realised minutes per client, financer, service and month. Reads what "
        "reconciliation wrote (telegestion serve keeps it current; else run telegestion "
        "reconcile first).",
    )
    parser.add_argument("kind", choices=("realised", "payroll", "billing"))
    parser.add_argument("--from", dest="first", metavar="DATE", help="first day, YYYY-MM-DD")
    parser.add_argument("--to", dest="last", metavar="DATE", help="last day, YYYY-MM-DD")
    parser.add_argument("--company", metavar="CODE", help="only this company (3-digit code)")
    parser.add_argument("--format", choices=("csv", "json"), default="csv", help="default: csv")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from reconciliation.export_rows import UnknownCompany, intervention_rows
    from reconciliation.exports import render

    first, last = day_range(args, required=True)
    ctx = open_context()
    ctx.require_schema()
    try:
        rows = intervention_rows(ctx.engine, first, last, company_code=args.company)
    except UnknownCompany as exc:
        raise UsageError(str(exc)) from None
    sys.stdout.buffer.write(render(args.kind, rows, args.format))
    sys.stdout.flush()
    return 0
