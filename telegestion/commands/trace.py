"""``telegestion trace``: the calls from a number around a time, their journal and a diagnosis.

Support is asked "the carer called from Mme Dubois' home around 8 and it did not work". The
command takes that caller number as written, the approximate local time, and prints each call
of that number within ``--window`` minutes: what the journal holds (every prompt, key, lookup,
punch, error, hang-up), the punches with their anomalies, and what went wrong in plain words.
``--ticket`` prints the "Anomalie télégestion" ticket instead, ready to paste.

The time zone of ``--at``: ``--timezone`` when given; otherwise the zone of the companies the
directory links to the numbers (a client's landline, a carer's mobile, a dedicated or call-back
number of one company) when they all agree; otherwise ``Europe/Paris``. The output says which.

Exit status: 0 when calls were found, 1 when none (with the nearest calls of that number, if
any), 2 on bad input, like every command.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
from typing import TYPE_CHECKING, Any

from ..localtime import LocalTimeError, parse_instant, zone
from .context import UsageError, open_context

if TYPE_CHECKING:
    from ..support.records import CallTrace

DEFAULT_TIMEZONE = "Europe/Paris"


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "trace",
        help="the calls from a number around a time: journal, punches, diagnosis, ticket",
        description="Find the calls from --caller (to --called) within --window minutes of "
        "--at, and print each one's journal, punches and a plain-language diagnosis; with "
        "--ticket, the 'Anomalie télégestion' support ticket instead. Numbers in any written "
        "form ('01 45 67 89 12', '+33145678912'); --caller anonymous finds withheld numbers. "
        "--at is local time: --timezone, else the zone of the company the numbers belong to, "
        "else Europe/Paris. Exit status 1 when no call is found.",
    )
    parser.add_argument("--caller", required=True, metavar="NUMBER", help="the caller number")
    parser.add_argument("--called", metavar="NUMBER", help="only calls to this number")
    parser.add_argument(
        "--at", required=True, metavar="TIME", help='approximate time, "YYYY-MM-DD HH:MM"'
    )
    parser.add_argument(
        "--window",
        type=int,
        default=30,
        metavar="MINUTES",
        help="calls started up to this many minutes before or after --at (default 30)",
    )
    parser.add_argument("--timezone", metavar="ZONE", help="zone of --at, e.g. Europe/Paris")
    parser.add_argument(
        "--ticket", action="store_true", help="print the 'Anomalie télégestion' ticket"
    )
    parser.set_defaults(func=run)


def parse_at(text: str, timezone: str) -> dt.datetime:
    """``YYYY-MM-DD HH:MM`` (seconds and an explicit offset allowed) as an aware instant."""
    try:
        return parse_instant(text.replace("T", " "), timezone)
    except LocalTimeError as exc:
        raise UsageError(f'--at {text!r} is not a time "YYYY-MM-DD HH:MM": {exc}') from None


def guess_timezone(session: Any, caller: str, called: str | None, region: str) -> str | None:
    """The one zone of the companies the directory links to these numbers, if they agree."""
    from sqlalchemy import select

    from ..model import Carer, ClientLandline, Company, ServiceNumber
    from ..phones import to_e164

    zones: set[str] = set()
    caller_e164 = to_e164(caller, region)
    if caller_e164:
        zones.update(
            session.scalars(
                select(Company.timezone)
                .join(ClientLandline, ClientLandline.company_id == Company.id)
                .where(ClientLandline.number_e164 == caller_e164)
            )
        )
        zones.update(
            session.scalars(
                select(Company.timezone)
                .join(Carer, Carer.company_id == Company.id)
                .where(Carer.mobile_e164 == caller_e164)
            )
        )
    called_e164 = to_e164(called, region) if called else None
    if called_e164:
        zones.update(
            session.scalars(
                select(Company.timezone)
                .join(ServiceNumber, ServiceNumber.company_id == Company.id)
                .where(ServiceNumber.number_e164 == called_e164)
            )
        )
    return zones.pop() if len(zones) == 1 else None


def run(args: argparse.Namespace) -> int:
    from ..support.diagnosis import display_number, local
    from ..support.ticket import ticket_text
    from ..support.trace import calls_around, search_calls

    if args.window <= 0 or args.window > 24 * 60:
        raise UsageError("--window must be between 1 and 1440 minutes")
    if args.timezone is not None:
        try:
            zone(args.timezone)
        except LocalTimeError as exc:
            raise UsageError(f"--timezone: {exc}") from None
    ctx = open_context()
    ctx.require_schema()
    region = ctx.settings.default_region
    with ctx.sessions() as session:
        timezone = args.timezone
        how = "given"
        if timezone is None:
            timezone = guess_timezone(session, args.caller, args.called, region)
            how = "of the company these numbers belong to"
        if timezone is None:
            timezone, how = DEFAULT_TIMEZONE, "default"
        at = parse_at(args.at, timezone)
        window = dt.timedelta(minutes=args.window)
        traces = calls_around(
            session, caller=args.caller, called=args.called, at=at, window=window, region=region
        )
        if not traces:
            nearest = _nearest(session, args, at, region, search_calls)
    shown_caller = display_number(None, args.caller) if args.caller.strip() else "withheld"
    if not traces:
        print(
            f"No call from {shown_caller}"
            + (f" to {args.called}" if args.called else "")
            + f" between {local(at - window, timezone, seconds=False)} and "
            f"{local(at + window, timezone, seconds=False)} ({timezone}, {how})."
        )
        print(
            "Either the call never reached the server (check the operator and the Asterisk "
            "dialplan for that time), or the number or the time is not the one of the call."
        )
        for trace in nearest:
            print(
                f"  nearest call from that number: {local(trace.started_at, trace.timezone)} "
                f"({trace.timezone}), outcome {trace.outcome or 'none'}, call {trace.call_id}"
            )
        return 1
    if args.ticket:
        print("\n".join(ticket_text(trace) for trace in traces), end="")
        return 0
    print(
        f"{len(traces)} call(s) from {shown_caller} within {args.window} min of "
        f"{local(at, timezone, seconds=False)} ({timezone}, {how}):"
    )
    for trace in traces:
        print()
        print(render_trace(trace))
    return 0


def _nearest(
    session: Any, args: argparse.Namespace, at: dt.datetime, region: str, search: Any
) -> list[Any]:
    """The last call of that number before ``at`` and the first after it."""
    common = {"caller": args.caller, "called": args.called, "company_ids": None, "limit": 1}
    before = search(session, end=at, region=region, **common)
    after = search(session, start=at, region=region, newest_first=False, **common)
    return [*before, *after]


def _detail_text(detail: Any) -> str:
    parts = []
    for key, value in detail.items():
        if value is None:
            continue
        text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        parts.append(f"{key}={text}")
    return " ".join(parts)


def render_trace(trace: CallTrace) -> str:
    """One call for a terminal: header, diagnosis, punches, then the whole journal."""
    from ..support.diagnosis import display_number, local

    tz = trace.timezone
    lines = [f"Call {trace.call_id}  {trace.reference}  ({trace.transport})"]
    ended = ""
    if trace.ended_at is not None:
        seconds = (trace.ended_at - trace.started_at).total_seconds()
        ended = f", ended {local(trace.ended_at, tz)[11:]} ({seconds:.0f} s)"
    lines.append(f"  started   {local(trace.started_at, tz)} {tz}{ended}")
    lines.append(
        f"  called    {display_number(trace.called_e164, trace.called_raw)}"
        f"  [{trace.called_raw or ''}]"
    )
    lines.append(
        f"  caller    {display_number(trace.caller_e164, trace.caller_raw)}"
        f"  [{trace.caller_raw or ''}]"
        + (f"  presentation {trace.caller_presentation}" if trace.caller_presentation else "")
    )
    company = f"{trace.company_code} {trace.company_name}" if trace.company_code else "none"
    lines.append(f"  company   {company}")
    if trace.company_code_keyed is None and trace.company_code is not None:
        keyed = "company code not asked (dedicated number), carer code "
    else:
        keyed = f"company code {trace.company_code_keyed or '-'}, carer code "
    keyed += trace.carer_code_keyed or "-"
    if trace.carer_ref:
        keyed += f" ({trace.carer_ref} {trace.carer_name or ''})".rstrip()
    lines.append(f"  keyed     {keyed}")
    if trace.client_ref:
        lines.append(f"  client    {trace.client_ref} {trace.client_name or ''}".rstrip())
    outcome = trace.outcome or "none"
    if trace.hangup_step:
        outcome += f" (caller hung up at step {trace.hangup_step})"
    lines.append(f"  outcome   {outcome}")
    lines.append("Diagnosis:")
    lines.extend(f"  - {sentence}" for sentence in trace.diagnosis)
    if trace.punches:
        lines.append("Punches:")
        for p in trace.punches:
            anomalies = ", ".join(f"{a.code} ({a.status})" for a in p.anomalies) or "none"
            was = f", first {p.original_kind}" if p.original_kind else ""
            lines.append(
                f"  punch {p.punch_id}: {p.kind}{was} at {p.local_time}, {p.status}, "
                f"source {p.source}, client {p.client_ref or 'unknown'}; anomalies: {anomalies}"
            )
    lines.append("Journal:")
    for event in trace.events:
        stamp = event.at.astimezone(zone(tz)).strftime("%H:%M:%S.%f")[:-3]
        lines.append(f"  {event.seq:3d}  {stamp}  {event.kind:<7} {_detail_text(event.detail)}")
    return "\n".join(lines)
