"""What went wrong on a call, in the words of the person answering the phone at support.

A carer's complaint reaches support as "my punch at Mme Dubois' did not work this morning";
the journal holds the answer, but as prompt ids and reasons. :func:`diagnose` turns one call
(:class:`~telegestion.support.records.CallTrace`) and what the directory says about its numbers
and codes (:class:`DirectoryFacts`) into a few sentences, one rule per outcome of SPEC.md
section 3 and per reason a code was refused. Pure: no database, no clock, so each rule has a
worked example in the tests.

The sentences are in English, like the rest of the product's messages; the ticket that quotes
them carries the French title support desks know ("Anomalie télégestion").
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

import phonenumbers

from telegestion.phones import is_withheld

from .records import CallTrace, JournalEvent, PunchLine


@dataclass(frozen=True)
class CodeOwner:
    """A carer who holds a keyed carer code (or a mobile) somewhere in the directory.

    ``company_code`` None: a company the viewer may not see, named only as "another company".
    """

    company_code: str | None
    carer_ref: str | None
    name: str | None
    active: bool
    same_company: bool


@dataclass(frozen=True)
class LineOwner:
    """A client whose landline is the caller number (``company_code`` None: hidden company)."""

    company_code: str | None
    client_ref: str | None
    same_company: bool


@dataclass(frozen=True)
class Lockout:
    """The caller number's code failures around the call (``ivr.punch_rules`` counts them)."""

    failures: int
    """Failed entries counted toward a lock-out within the hour before the call's end."""
    since: dt.datetime | None
    until: dt.datetime | None


@dataclass(frozen=True)
class DirectoryFacts:
    """What the directory says, today, about the call's numbers and the codes keyed."""

    number_kind: str | None = None
    """The called number's kind (shared, dedicated, callback), None when it is not ours."""
    number_company_code: str | None = None
    caller_lines: tuple[LineOwner, ...] = ()
    caller_mobile_of: tuple[CodeOwner, ...] = ()
    carer_codes: Mapping[str, tuple[CodeOwner, ...]] = field(default_factory=dict)
    """Every refused 5-digit carer code keyed, with who holds it (nobody: empty)."""
    lockout: Lockout | None = None


# --- formatting helpers (also used by the ticket and the pages) -------------------------------


def local(at: dt.datetime | None, timezone: str, *, seconds: bool = True) -> str:
    """``2026-11-24 08:02:13`` in ``timezone``; empty for no time."""
    if at is None:
        return ""
    shown = at.astimezone(ZoneInfo(timezone))
    return shown.strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")


def clock_time(at: dt.datetime | None, timezone: str) -> str:
    """``08:02`` in ``timezone``."""
    return "" if at is None else at.astimezone(ZoneInfo(timezone)).strftime("%H:%M")


def display_number(e164: str | None, raw: str | None) -> str:
    """A number as people read it (``01 45 67 89 12``), ``withheld`` when there is none."""
    if e164:
        try:
            return phonenumbers.format_number(
                phonenumbers.parse(e164), phonenumbers.PhoneNumberFormat.NATIONAL
            )
        except phonenumbers.NumberParseException:
            return e164
    if raw is None or is_withheld(raw):
        return "withheld" if not raw or not raw.strip() else f"withheld ({raw.strip()})"
    return raw.strip()


STEP_WORDS: Mapping[str, str] = {
    "called_number": "before the call was answered",
    "welcome": "during the welcome",
    "company_code": "while asked for the company code",
    "carer_code": "while asked for the carer code",
    "client_lookup": "while the client was looked up",
    "visit_menu": "at the menu of visits (call-back)",
    "punch": "while the punch was being stored",
    "readback": "during the readback of the punch",
    "correction": "during a correction (key 2)",
    "task_codes": "while asked for the task codes",
    "absence": "while reporting the client absent (key 9)",
    "goodbye": "during the goodbye",
}

REASON_WORDS: Mapping[str, str] = {
    "unknown_company_code": "no company has this code",
    "unknown_or_inactive_carer_code": "not an active carer of the company",
    "timeout": "nothing or too little keyed before the time-out",
    "wrong_length": "wrong number of digits",
    "not_digits": "not digits",
    "too_many_restarts": "restarted with * too many times",
    "empty": "nothing keyed (# alone)",
    "restarted_with_star": "restarted with *",
}

ANOMALY_WORDS: Mapping[str, str] = {
    "MISSING_ARRIVAL": "a departure with no open arrival",
    "MISSING_DEPARTURE": "an arrival never closed by a departure",
    "NO_PUNCH": "a planned intervention with no visit",
    "UNPLANNED_VISIT": "a visit matching no planned intervention",
    "SUBSTITUTE_CARER": "another carer than planned did the visit",
    "UNKNOWN_CALLER_NUMBER": "the caller number names no client of the company",
    "CALLER_ID_WITHHELD": "the caller number was withheld",
    "OVERLAPPING_VISITS": "the carer was in two visits at once",
    "LATE_ARRIVAL": "arrival after the planned start plus tolerance",
    "EARLY_DEPARTURE": "departure before the planned end minus tolerance",
    "OVERTIME": "longer than planned plus tolerance",
    "TOO_SHORT": "a visit shorter than the minimum",
    "DUPLICATE_PUNCH": "the same punch twice within 10 minutes (this one is ignored)",
    "LOCATION_UNVERIFIED": "a call-back punch for a client who has a landline",
    "CODE_BRUTE_FORCE": "a lock-out after repeated wrong codes",
    "CLIENT_ABSENT": "the carer reported the client absent",
    "LATE_START_ALERT": "no arrival yet after the planned start",
}


def _company(code: str | None) -> str:
    return f"company {code}" if code else "another company"


def _times(n: int) -> str:
    return "1 attempt" if n == 1 else f"{n} attempts"


def _shown_keys(raw: str | None) -> str:
    return f"'{raw}'" if raw else "nothing"


# --- reading the journal --------------------------------------------------------------------


@dataclass(frozen=True)
class CodeAttempt:
    """One counted entry of a code, as the journal's ``input`` event tells it."""

    field: str
    raw: str
    value: str | None
    valid: bool
    reason: str | None


def code_attempts(events: Iterable[JournalEvent], field_name: str) -> list[CodeAttempt]:
    """The counted attempts at one code (a free ``#`` and ``*`` restarts are not attempts)."""
    found = []
    for event in events:
        d = event.detail
        if event.kind != "input" or d.get("field") != field_name or "attempt" not in d:
            continue
        found.append(
            CodeAttempt(
                field_name,
                str(d.get("raw") or ""),
                d.get("value"),
                bool(d.get("valid")),
                d.get("reason"),
            )
        )
    return found


def _lookup(events: Sequence[JournalEvent], what: str) -> Mapping[str, Any] | None:
    for event in reversed(events):
        if event.kind == "lookup" and event.detail.get("what") == what:
            return event.detail
    return None


def _errors(events: Sequence[JournalEvent]) -> list[Mapping[str, Any]]:
    return [e.detail for e in events if e.kind == "error"]


def _last_prompt(events: Sequence[JournalEvent]) -> str | None:
    for event in reversed(events):
        if event.kind == "prompt":
            return str(event.detail.get("prompt") or event.detail.get("say_time") or "")
    return None


def _error_text(detail: Mapping[str, Any]) -> str:
    parts = []
    for key in ("error", "effect", "reason", "detail", "step"):
        value = detail.get(key)
        if value:
            parts.append(f"{key} {value}")
    return ", ".join(parts) or "no detail"


# --- the rules ------------------------------------------------------------------------------


def diagnose(call: CallTrace, facts: DirectoryFacts) -> tuple[str, ...]:
    """The plain-language diagnosis of one call: the first sentence says what happened."""
    rule = _RULES.get(call.outcome or "", _no_outcome)
    return tuple(rule(call, facts))


def _unknown_called_number(call: CallTrace, facts: DirectoryFacts) -> list[str]:
    number = display_number(call.called_e164, call.called_raw)
    if facts.number_kind == "callback":
        return [
            f"The number called, {number}, is a call-back number: it works only through Twilio "
            "(the carer calls it from their registered mobile and is called back), not through "
            "Asterisk. Check the dialplan: this number should not reach the landline AGI."
        ]
    if facts.number_kind is not None:
        return [
            f"The number called, {number}, was not a number of the service at the time of the "
            f"call; it is one now ({facts.number_kind}): it was added after the call."
        ]
    return [
        f"The number called, {number}, is not a number of the service: the caller heard "
        "'number-not-in-service'. Either the carer dialled a wrong number, or the dialplan "
        "routes a number to the AGI that is missing from numbers.csv (check the dialplan and "
        "import the number)."
    ]


def _company_code_failed(call: CallTrace, facts: DirectoryFacts) -> list[str]:
    attempts = code_attempts(call.events, "company_code")
    listed = "; ".join(_attempt_words(a) for a in attempts) or "no entry journaled"
    return [
        f"No company code was accepted ({_times(len(attempts))}): {listed}. The caller heard "
        "'too-many-attempts' and no punch was recorded.",
        "Give the carer their company's 3-digit code (or their company's dedicated number).",
        *_caller_line_hint(call, facts),
    ]


def _attempt_words(attempt: CodeAttempt) -> str:
    reason = REASON_WORDS.get(attempt.reason or "", attempt.reason or "refused")
    if attempt.value:
        return f"{attempt.value} ({reason})"
    if not attempt.raw:
        return reason
    return f"'{attempt.raw}' ({reason})"


def _carer_code_failed(call: CallTrace, facts: DirectoryFacts) -> list[str]:
    attempts = code_attempts(call.events, "carer_code")
    company = _company(call.company_code)
    lines = []
    by_code: dict[str, int] = {}
    partial: list[CodeAttempt] = []
    for attempt in attempts:
        if attempt.value and not attempt.valid:
            by_code[attempt.value] = by_code.get(attempt.value, 0) + 1
        elif not attempt.valid:
            partial.append(attempt)
    for code, count in by_code.items():
        owners = facts.carer_codes.get(code, ())
        what = "an active carer" if any(o.same_company for o in owners) else "a carer"
        if call.transport == "twilio":
            mobile = display_number(call.caller_e164, call.caller_raw)
            head = f"Carer code {code} is not the code of an active carer with the mobile {mobile}"
        else:
            head = f"Carer code {code} is not {what} of {company}"
        lines.append(f"{head} ({_times(count)})" + _code_owner_words(code, owners))
    for attempt in partial:
        lines.append(f"Carer code entry: {_attempt_words(attempt)}.")
    if not lines:
        lines.append(f"No carer code was accepted for {company} (no entry journaled).")
    lines[0] = lines[0].rstrip(".") + "."
    total = len(attempts)
    lines.append(
        f"After {_times(total)} the caller heard 'too-many-attempts'; no punch was recorded."
    )
    return lines


def _code_owner_words(code: str, owners: Sequence[CodeOwner]) -> str:
    """Why a complete carer code was refused: inactive here, a carer elsewhere, or nobody's."""
    own = [o for o in owners if o.same_company]
    elsewhere = [o for o in owners if not o.same_company]
    if own:
        o = own[0]
        who = " ".join(x for x in (o.name, f"({o.carer_ref})" if o.carer_ref else "") if x)
        return (
            f": it is {who}, who is INACTIVE in this company. Reactivate the carer "
            "(carers.csv, active=true) if they still work here."
        )
    if elsewhere:
        named = ", ".join(
            _company(o.company_code)
            + (f" ({o.carer_ref}{', inactive' if not o.active else ''})" if o.company_code else "")
            for o in elsewhere
        )
        return (
            f": it is the code of a carer of {named}. The carer may have keyed the wrong "
            "company code, or called the wrong company's number."
        )
    return ": no carer of any company has this code (a typo, or a carer not yet imported)."


def _caller_line_hint(call: CallTrace, facts: DirectoryFacts) -> list[str]:
    if not facts.caller_lines:
        return []
    names = ", ".join(
        f"client {o.client_ref} of {_company(o.company_code)}"
        if o.company_code
        else "a client of another company"
        for o in facts.caller_lines
    )
    return [f"The caller number is the landline of {names}."]


def _caller_hung_up(call: CallTrace, facts: DirectoryFacts) -> list[str]:
    step = call.hangup_step or ""
    where = STEP_WORDS.get(step, f"at step {step}" if step else "at an unknown step")
    done = []
    if call.company_code_keyed:
        accepted = call.company_code is not None and any(
            a.valid for a in code_attempts(call.events, "company_code")
        )
        done.append(
            f"company code {_shown_keys(call.company_code_keyed)}"
            + (" accepted" if accepted else " not accepted")
        )
    if call.carer_code_keyed:
        accepted = any(a.valid for a in code_attempts(call.events, "carer_code"))
        done.append(
            f"carer code {_shown_keys(call.carer_code_keyed)}"
            + (" accepted" if accepted else " not accepted")
        )
    after = f" after keying {' and '.join(done)}" if done else " before keying anything"
    heard = _last_prompt(call.events)
    lines = [
        f"The caller hung up {where}{after}; no punch was recorded."
        + (f" Last prompt played: '{heard}'." if heard else "")
    ]
    refused = [a for a in code_attempts(call.events, "carer_code") if not a.valid and a.value]
    for code in dict.fromkeys(a.value for a in refused if a.value):
        lines.append(
            f"Carer code {code} was refused"
            + _code_owner_words(code, facts.carer_codes.get(code, ()))
        )
    return lines


def _locked_out(call: CallTrace, facts: DirectoryFacts) -> list[str]:
    number = display_number(call.caller_e164, call.caller_raw)
    tz = call.timezone
    lock = facts.lockout
    during = any(a for f in ("company_code", "carer_code") for a in code_attempts(call.events, f))
    head = (
        f"The caller number {number} was locked out during this call after one more wrong code"
        if during
        else f"The caller number {number} is locked out"
    )
    lines = []
    if lock is not None and lock.until is not None:
        lines.append(
            f"{head}: {lock.failures} failed code entries within an hour; locked from "
            f"{clock_time(lock.since, tz)} until {clock_time(lock.until, tz)} ({tz}). Every call "
            "from this number hears 'service-unavailable' until then (anomaly CODE_BRUTE_FORCE)."
        )
    else:
        lines.append(
            f"{head}: more than 5 failed code entries within an hour. Every call from this "
            "number hears 'service-unavailable' for an hour (anomaly CODE_BRUTE_FORCE)."
        )
    lines.append(
        "If the carers of this home key their codes wrongly, check their codes; if nobody "
        "there should be calling, the number may be guessing codes."
    )
    return lines


def _error(call: CallTrace, facts: DirectoryFacts) -> list[str]:
    errors = _errors(call.events)
    what = "; ".join(_error_text(e) for e in errors) or "the journal has no error event"
    step = STEP_WORDS.get(call.hangup_step or "", "")
    return [
        f"A technical error ended the call{(' ' + step) if step else ''}: {what}. The caller "
        "heard 'technical-problem'; no punch was recorded.",
        f"Check the server log around {local(call.started_at, call.timezone)} ({call.timezone}); "
        "the carer should call again, or the coordinator records the time by hand.",
    ]


def _punch_recorded(call: CallTrace, facts: DirectoryFacts) -> list[str]:
    if not call.punches:
        return ["The call ended with a punch, but the punch is no longer in the database."]
    lines = []
    for punch in call.punches:
        lines.extend(_punch_words(call, punch, facts))
    if call.hangup_step:
        where = STEP_WORDS.get(call.hangup_step, call.hangup_step)
        lines.append(f"The carer hung up {where}; the punch stands.")
    for error in _errors(call.events):
        lines.append(
            f"A technical error happened after the punch was stored ({_error_text(error)}); "
            "the punch stands."
        )
    return lines


def _punch_words(call: CallTrace, punch: PunchLine, facts: DirectoryFacts) -> list[str]:
    who = call.carer_name or call.carer_ref or "the carer"
    if call.carer_ref and call.carer_name:
        who = f"{call.carer_name} ({call.carer_ref})"
    client = (
        f"client {punch.client_ref}" + (f" {punch.client_name}" if punch.client_name else "")
        if punch.client_ref
        else "client unknown"
    )
    source = " by call-back" if punch.source == "callback" else ""
    lines = [
        f"Punch recorded{source}: {punch.kind} at {punch.local_time} ({call.timezone}) for {who}"
        f" of {_company(call.company_code)}, {client}."
    ]
    if punch.client_ref is None:
        lines.append(_unknown_client_words(call, punch, facts))
    if punch.original_kind:
        lines.append(
            f"The carer pressed 2 to correct it: first recorded as {punch.original_kind}, "
            f"now {punch.kind}."
        )
    if punch.status == "client_absent":
        lines.append(
            "The carer pressed 9: client absent (or door shut) reported; the coordinator was "
            "alerted at once (CLIENT_ABSENT) and the trip is kept for payroll."
        )
    if punch.task_codes:
        lines.append(f"Task codes keyed: {punch.task_codes}.")
    if punch.source == "callback" and not punch.location_verified and punch.client_ref:
        lines.append("Call-back punch: the place is not verified by a landline.")
    for anomaly in punch.anomalies:
        meaning = ANOMALY_WORDS.get(anomaly.code, "")
        subject = "it" if anomaly.about == "punch" else "its visit"
        lines.append(
            f"Reconciliation flagged {subject}: {anomaly.code} ({anomaly.status}, anomaly "
            f"{anomaly.anomaly_id}){': ' + meaning if meaning else ''}."
        )
    return lines


def _unknown_client_words(call: CallTrace, punch: PunchLine, facts: DirectoryFacts) -> str:
    company = _company(call.company_code)
    if punch.source == "callback":
        menu = _lookup(call.events, "visit_choices")
        if menu is not None and not menu.get("offered"):
            return (
                "The call-back offered no visit (nothing planned around that time): the punch "
                "has no client and reconciliation raises the anomaly."
            )
        return (
            "The carer keyed 0 (visit not listed) or chose nothing at the call-back's menu: "
            "the punch has no client and reconciliation raises the anomaly."
        )
    if punch.caller_withheld or is_withheld(call.caller_raw):
        return (
            "The caller number was withheld (presentation "
            f"{call.caller_presentation or 'unknown'}): the punch has no client "
            "(CALLER_ID_WITHHELD). The client's line may hide its number (ask the operator to "
            "lift caller-ID restriction), or the carer called from another phone."
        )
    number = display_number(call.caller_e164, call.caller_raw)
    others = [o for o in facts.caller_lines if not o.same_company]
    same = [o for o in facts.caller_lines if o.same_company]
    if same:
        return (
            f"The caller number {number} is now the landline of client {same[0].client_ref} of "
            f"{company}: it was added after the call, so the punch has no client; resolve its "
            "UNKNOWN_CALLER_NUMBER anomaly (link it to the planned intervention)."
        )
    mobile_of = [o for o in facts.caller_mobile_of if o.same_company]
    if mobile_of:
        o = mobile_of[0]
        carer = f"carer {o.carer_ref}" + (f" {o.name}" if o.name else "")
        return (
            f"The caller number {number} is not a landline of any client of {company} but the "
            f"registered mobile of {carer}: the carer called from their own mobile "
            "(UNKNOWN_CALLER_NUMBER). At a client without a landline, the call-back number is "
            "the way to punch."
        )
    text = (
        f"The caller number {number} is not a landline of any client of {company}: it may have "
        "changed, or the carer called from another phone (UNKNOWN_CALLER_NUMBER). Update the "
        "client's landlines in clients.csv."
    )
    if others:
        named = ", ".join(
            f"client {o.client_ref} of {_company(o.company_code)}"
            if o.company_code
            else "a client of another company"
            for o in others
        )
        text += f" It is the landline of {named}: the carer may work for both."
    return text


def _no_outcome(call: CallTrace, facts: DirectoryFacts) -> list[str]:
    """Rows with no outcome: call-back requests, unanswered call-backs, refused webhooks."""
    events = call.events
    if call.origin == "twilio-rejected":
        errors = _errors(events)
        why = _error_text(errors[0]) if errors else "no detail"
        return [
            f"A Twilio webhook was refused ({why}): its signature did not match. Nothing was "
            "done. Check TELEGESTION_PUBLIC_URL and the auth token, or someone forged a request."
        ]
    hangups = [e.detail for e in events if e.kind == "hangup"]
    reasons = {str(d.get("reason")) for d in hangups if d.get("reason")}
    statuses = [d for d in hangups if d.get("call_status")]
    lines: list[str] = []
    if "rejected_for_callback" in reasons:
        request = _lookup(events, "callback_request") or {}
        due = request.get("due_at")
        lines.append(
            "Call-back request: the call to the call-back number was refused as busy on "
            "purpose (free for the carer) and a call-back to the carer's mobile was scheduled"
            + (f" for {clock_time(dt.datetime.fromisoformat(due), call.timezone)}" if due else "")
            + "."
        )
        placed = [
            e.detail
            for e in events
            if e.kind == "lookup" and e.detail.get("what") == "callback_call"
        ]
        if placed:
            lines.append(f"The call-back was placed ({len(placed)} attempt(s)); see its own call.")
        for error in _errors(events):
            lines.append(f"Placing the call-back failed: {_error_text(error)}.")
    elif "rejected_no_callback" in reasons:
        lines.append(_refused_callback_words(call, facts))
    elif "answering_machine" in reasons:
        lines.append(
            "The call-back reached an answering machine: the server hung up and does not "
            "retry. The carer should answer the call-back themselves."
        )
    for status in statuses:
        retry = status.get("retry_at")
        lines.append(
            f"The call-back ended with Twilio status '{status['call_status']}'"
            + (
                f"; retried at {clock_time(dt.datetime.fromisoformat(retry), call.timezone)}."
                if retry
                else "."
            )
        )
    if not lines:
        lines.append(
            "The call has no outcome: it was still going on, or the worker serving it stopped "
            f"during the call. Check the server log around "
            f"{local(call.started_at, call.timezone)} ({call.timezone})."
        )
    return lines


def _refused_callback_words(call: CallTrace, facts: DirectoryFacts) -> str:
    number = display_number(call.caller_e164, call.caller_raw)
    called = _lookup(call.events, "called_number")
    if called is not None and not called.get("found"):
        return (
            f"The number called, {display_number(call.called_e164, call.called_raw)}, is not "
            "one of our call-back numbers: nothing was dialled."
        )
    mobile = _lookup(call.events, "carer_mobile")
    if mobile is not None and mobile.get("withheld"):
        return "Call-back refused: the mobile's number was withheld, so nothing was dialled."
    if mobile is not None and not mobile.get("found"):
        inactive = [o for o in facts.caller_mobile_of if not o.active]
        text = (
            f"Call-back refused: {number} is not the registered mobile of an active carer"
            + (f" of {_company(call.company_code)}" if call.company_code else "")
            + ", so nothing was dialled (no toll fraud)."
        )
        if inactive:
            text += " It is the mobile of an inactive carer."
        else:
            text += " Register the carer's mobile in carers.csv if it changed."
        return text
    request = _lookup(call.events, "callback_request")
    if request is not None and request.get("reason") == "rate_limited":
        return (
            "Call-back refused: this mobile already had a call-back within the last two "
            "minutes (at most one per mobile per two minutes)."
        )
    reason = request.get("reason") if request else None
    return f"Call-back refused ({reason or 'no reason journaled'}): nothing was dialled."


_RULES = {
    "punch_recorded": _punch_recorded,
    "unknown_called_number": _unknown_called_number,
    "company_code_failed": _company_code_failed,
    "carer_code_failed": _carer_code_failed,
    "caller_hung_up": _caller_hung_up,
    "locked_out": _locked_out,
    "error": _error,
}
