"""``telegestion anomalies``: list anomalies, and ``anomalies resolve`` to answer one.

A resolution is appended to the anomaly's audit trail (who, when, reason code, note) and the
carer-days it changes are reconciled at once, so the realised intervention reflects it before
the command returns.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from ..localtime import LocalTimeError, parse_instant
from ..model.vocab import ANOMALY_CODES, ANOMALY_STATUSES, RESOLUTION_ACTIONS, RESOLUTION_REASONS
from .context import UsageError, open_context


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "anomalies",
        help="list anomalies (filters, table/csv/json), or resolve one",
        description="List anomalies, oldest first per company. Columns: id, company_code, code, "
        "status, carer_ref, client_ref, intervention_ref, at (local time of the punch or "
        "planned start), detail; --format json adds each anomaly's resolutions (the audit "
        "trail). 'telegestion anomalies resolve --help' answers one.",
    )
    parser.add_argument("--company", metavar="CODE", help="only this company (3-digit code)")
    parser.add_argument("--status", choices=ANOMALY_STATUSES, help="only this status")
    parser.add_argument("--code", choices=ANOMALY_CODES, metavar="CODE", help="only this code")
    parser.add_argument(
        "--format", choices=("table", "csv", "json"), default="table", help="default: table"
    )
    parser.set_defaults(func=run_list)
    actions = parser.add_subparsers(dest="anomalies_command", metavar="ACTION")
    resolve = actions.add_parser(
        "resolve",
        help="record a coordinator's resolution of one anomaly",
        description="Append a resolution to the anomaly's audit trail and reconcile what it "
        "changes. Actions: accept_punched (the punched times, without snapping to the plan), "
        "use_planned, set_times (--start and --end), link_to_intervention (--intervention REF), "
        "create_intervention (--intervention NEW-REF, times from the visit or --start/--end), "
        "mark_not_done, dismiss. Times are local to the company unless they carry an offset.",
    )
    resolve.add_argument("id", type=int, help="the anomaly id (first column of the list)")
    resolve.add_argument("--action", required=True, choices=RESOLUTION_ACTIONS)
    resolve.add_argument("--reason", required=True, choices=RESOLUTION_REASONS)
    resolve.add_argument("--note", default="", help="free text kept in the audit trail")
    resolve.add_argument("--start", metavar="TIME", help="YYYY-MM-DD HH:MM (set_times, create)")
    resolve.add_argument("--end", metavar="TIME", help="YYYY-MM-DD HH:MM (set_times, create)")
    resolve.add_argument("--intervention", metavar="REF", help="intervention_ref to link/create")
    resolve.add_argument("--user", metavar="LOGIN", help="who decides (a user login)")
    resolve.set_defaults(func=run_resolve)


def _table(header: tuple[str, ...], rows: list[tuple[Any, ...]]) -> str:
    cells = [tuple(str(c) for c in header)] + [tuple(str(c) for c in r) for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells
    ]
    return "\n".join(lines) + "\n"


def run_list(args: argparse.Namespace) -> int:
    from reconciliation.anomaly_list import COLUMNS, list_anomalies
    from reconciliation.exports import to_csv

    ctx = open_context()
    ctx.require_schema()
    lines = list_anomalies(
        ctx.engine, company_code=args.company, status=args.status, code=args.code
    )
    if args.format == "csv":
        sys.stdout.buffer.write(to_csv(COLUMNS, [line.cells() for line in lines]))
    elif args.format == "json":
        objects = [
            {
                **dict(zip(COLUMNS, line.cells(), strict=True)),
                "detail": line.detail,
                "resolutions": list(line.resolutions),
            }
            for line in lines
        ]
        sys.stdout.buffer.write(
            (json.dumps(objects, ensure_ascii=False, indent=2) + "\n").encode("utf-8")
        )
    else:
        sys.stdout.write(_table(COLUMNS, [line.cells() for line in lines]))
    sys.stdout.flush()
    return 0


def run_resolve(args: argparse.Namespace) -> int:
    from reconciliation.resolutions import ResolutionRefused, ResolutionRequest, resolve_anomaly

    ctx = open_context()
    ctx.require_schema()
    start = end = None
    if args.start or args.end:
        timezone = _timezone_of(ctx, args.id)
        try:
            start = parse_instant(args.start, timezone) if args.start else None
            end = parse_instant(args.end, timezone) if args.end else None
        except LocalTimeError as exc:
            raise UsageError(str(exc)) from None
    request = ResolutionRequest(
        anomaly_id=args.id,
        action=args.action,
        reason=args.reason,
        note=args.note,
        start=start,
        end=end,
        intervention_ref=args.intervention,
        user_login=args.user,
    )
    try:
        done = resolve_anomaly(ctx.engine, request)
    except ResolutionRefused as exc:
        raise UsageError(str(exc)) from None
    print(f"anomalies: {done.anomaly_key} resolved ({args.action}); {done.report}")
    return 0


def _timezone_of(ctx: Any, anomaly_id: int) -> str:
    from sqlalchemy import select

    from ..model import Anomaly, Company

    with ctx.sessions() as session:
        found = session.execute(
            select(Company.timezone)
            .join(Anomaly, Anomaly.company_id == Company.id)
            .where(Anomaly.id == anomaly_id)
        ).scalar()
    if found is None:
        raise UsageError(f"no anomaly with id {anomaly_id}")
    return str(found)
