"""``telegestion reconcile``: the batch reconciliation of any range of days (SPEC.md section 5)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ..localtime import LocalTimeError, parse_date, parse_instant
from .context import UsageError, open_context


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "reconcile",
        help="match punches to planned interventions, raise anomalies, write realised times",
        description="Reconcile every carer's days from --from to --to (local days of each "
        "company, both included): visits, matches, anomalies and the realised interventions "
        "billing and payroll read. Without dates, every day that has a punch or a planned "
        "intervention. Safe to re-run: the result is the one the incremental path gives, "
        "nothing is duplicated and coordinators' resolutions are kept.",
    )
    parser.add_argument("--from", dest="first", metavar="DATE", help="first day, YYYY-MM-DD")
    parser.add_argument("--to", dest="last", metavar="DATE", help="last day, YYYY-MM-DD")
    parser.add_argument("--company", metavar="CODE", help="only this company (3-digit code)")
    parser.add_argument(
        "--as-of",
        metavar="TIME",
        help="reconcile as things stood at TIME (ISO 8601; UTC unless it has an offset), "
        "to replay a past day exactly; default: now",
    )
    parser.set_defaults(func=run)


def day_range(args: argparse.Namespace, *, required: bool) -> tuple[Any, Any]:
    """``--from``/``--to`` as dates: both or neither (both when ``required``)."""
    if (args.first is None) != (args.last is None) or (required and args.first is None):
        raise UsageError("give both --from DATE and --to DATE (YYYY-MM-DD)")
    if args.first is None:
        return None, None
    try:
        first, last = parse_date(args.first), parse_date(args.last)
    except LocalTimeError as exc:
        raise UsageError(str(exc)) from None
    if last < first:
        raise UsageError(f"--to {last} is before --from {first}")
    return first, last


def run(args: argparse.Namespace) -> int:
    from reconciliation.store import reconcile_range

    first, last = day_range(args, required=False)
    now = None
    if args.as_of is not None:
        try:
            now = parse_instant(args.as_of.replace(" ", "T"), "UTC")
        except LocalTimeError as exc:
            raise UsageError(f"--as-of: {exc}") from None
    ctx = open_context()
    ctx.require_schema()

    def progress(plan: Any, index: int, part: Any) -> None:
        if sys.stderr.isatty():
            print(
                f"\r{plan.code}: chunk {index + 1}/{len(plan.chunks)}",
                end="",
                file=sys.stderr,
                flush=True,
            )

    try:
        report = reconcile_range(
            ctx.engine, first, last, company_code=args.company, now=now, progress=progress
        )
    except LookupError as exc:
        raise UsageError(str(exc)) from None
    if sys.stderr.isatty():
        print(file=sys.stderr)
    print(f"reconcile: {report}")
    return 0
