"""The "Anomalie télégestion" support ticket for one call.

Telephony support desks ask the same things about a failed punch: the day and exact time of the
call, the called and caller numbers, what was keyed, and what went wrong. The ticket answers
exactly those, in that order, as plain text to paste into a mail or a ticketing tool; the
call's journal reference closes it so the next person finds the call again. Times are local to
the call's company (UTC, said so, when the call reached no company).
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from .diagnosis import display_number
from .records import CallTrace

TITLE = "Anomalie télégestion"

_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def _when(at: dt.datetime, timezone: str) -> tuple[str, str]:
    shown = at.astimezone(ZoneInfo(timezone))
    day = f"{_DAYS[shown.weekday()]} {shown:%Y-%m-%d}"
    offset = shown.strftime("%z")
    return day, f"{shown:%H:%M:%S} ({timezone}, UTC{offset[:3]}:{offset[3:]})"


def _keyed(value: str | None, accepted: str | None) -> str:
    if not value:
        return "nothing keyed"
    return value + (f" (accepted: {accepted})" if accepted else "")


def ticket_text(trace: CallTrace) -> str:
    """The ticket as plain text, one field per line, the diagnosis as bullet points."""
    tz = trace.timezone
    day, time = _when(trace.started_at, tz)
    company = (
        f"{trace.company_code} {trace.company_name or ''}".strip()
        if trace.company_code
        else "none identified"
    )
    carer = None
    if trace.carer_ref:
        carer = f"{trace.carer_ref} {trace.carer_name or ''}".strip()
    lines = [
        TITLE,
        "=" * len(TITLE),
        f"Day:             {day}",
        f"Time:            {time}",
        f"Called number:   {display_number(trace.called_e164, trace.called_raw)}"
        + (f"  [{trace.called_raw}]" if trace.called_raw else ""),
        f"Caller number:   {display_number(trace.caller_e164, trace.caller_raw)}"
        + (f"  [{trace.caller_raw}]" if trace.caller_raw else ""),
        f"Company:         {company}",
        f"Company code:    {_keyed(trace.company_code_keyed, None)}"
        if trace.company_code_keyed is not None or trace.company_code is None
        else "Company code:    not asked (dedicated number)",
        f"Carer code:      {_keyed(trace.carer_code_keyed, carer)}",
        f"Outcome:         {trace.outcome or 'none (see below)'}"
        + (f", caller hung up at step {trace.hangup_step}" if trace.hangup_step else ""),
        "What went wrong:",
        *(f"  - {sentence}" for sentence in trace.diagnosis or ("no diagnosis",)),
        f"Call reference:  {trace.reference} (journal call {trace.call_id}, {trace.transport})",
    ]
    if trace.ended_at is not None:
        seconds = (trace.ended_at - trace.started_at).total_seconds()
        lines.insert(4, f"Duration:        {seconds:.0f} s")
    return "\n".join(lines) + "\n"
