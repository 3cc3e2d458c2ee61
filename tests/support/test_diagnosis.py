"""The diagnosis rules, one worked example per outcome of SPEC.md section 3 and per reason.

Each example is a call as the journal writes it (events with the flow's details) and what the
directory says; the expected sentences are written from the rule, not from the code's output.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

import pytest

from ivr.entry import (
    REASON_EMPTY,
    REASON_NOT_DIGITS,
    REASON_TIMEOUT,
    REASON_TOO_MANY_RESTARTS,
    REASON_WRONG_LENGTH,
)
from telegestion.support.diagnosis import (
    CodeOwner,
    DirectoryFacts,
    LineOwner,
    Lockout,
    diagnose,
    display_number,
)
from telegestion.support.records import AnomalyRef, CallTrace, JournalEvent, PunchLine
from telegestion.support.ticket import ticket_text

T0 = dt.datetime(2026, 11, 24, 7, 58, tzinfo=dt.UTC)  # 08:58 in Paris


def call(outcome: str | None, *events: tuple[str, dict[str, Any]], **fields: Any) -> CallTrace:
    base: dict[str, Any] = {
        "call_id": 7,
        "origin": "node1",
        "call_key": "1764000000.42",
        "transport": "fastagi",
        "started_at": T0,
        "ended_at": T0 + dt.timedelta(seconds=14),
        "called_raw": "0800123456",
        "called_e164": "+33800123456",
        "caller_raw": "0145678912",
        "caller_e164": "+33145678912",
        "caller_presentation": "0",
        "company_id": 1,
        "company_code": "042",
        "company_name": "Aide à Domicile du Val de Marne",
        "company_timezone": "Europe/Paris",
        "company_code_keyed": "042",
        "carer_code_keyed": None,
        "carer_ref": None,
        "carer_name": None,
        "client_ref": None,
        "client_name": None,
        "outcome": outcome,
        "hangup_step": None,
    }
    base.update(fields)
    journal = tuple(
        JournalEvent(i, T0 + dt.timedelta(seconds=i), kind, detail)
        for i, (kind, detail) in enumerate(events, 1)
    )
    return CallTrace(**base, events=journal)


def carer_input(raw: str, attempt: int, *, valid: bool, reason: str | None = None) -> Any:
    value = raw if len(raw) == 5 and raw.isdigit() else None
    return (
        "input",
        {
            "field": "carer_code",
            "raw": raw,
            "valid": valid,
            "reason": reason,
            "value": value,
            "attempt": attempt,
        },
    )


def company_input(raw: str, attempt: int, *, valid: bool, reason: str | None = None) -> Any:
    value = raw if len(raw) == 3 and raw.isdigit() else None
    return (
        "input",
        {
            "field": "company_code",
            "raw": raw,
            "valid": valid,
            "reason": reason,
            "value": value,
            "attempt": attempt,
        },
    )


def punch(**fields: Any) -> PunchLine:
    base: dict[str, Any] = {
        "punch_id": 3,
        "kind": "arrival",
        "original_kind": None,
        "at": T0 + dt.timedelta(seconds=9),
        "local_time": "08:58",
        "status": "recorded",
        "source": "landline",
        "location_verified": True,
        "caller_withheld": False,
        "client_ref": "C-0001",
        "client_name": "Mme Jeanne Dubois",
        "task_codes": None,
    }
    base.update(fields)
    return PunchLine(**base)


UNKNOWN = "unknown_or_inactive_carer_code"
FATOU = {"carer_code_keyed": "12345", "carer_ref": "I-01", "carer_name": "Fatou Diallo"}


# --- unknown_called_number --------------------------------------------------------------------


def test_unknown_called_number_points_at_the_dialplan_or_a_wrong_number() -> None:
    """A number not in the directory: the wrong number dialled, or a dialplan route missing."""
    trace = call(
        "unknown_called_number",
        ("lookup", {"what": "called_number", "called_raw": "0800999999", "found": False}),
        called_raw="0800999999",
        called_e164="+33800999999",
        company_id=None,
        company_code=None,
        company_code_keyed=None,
    )
    (sentence,) = diagnose(trace, DirectoryFacts())
    assert sentence.startswith("The number called, 0 800 99 99 99, is not a number of the service")
    assert "dialplan" in sentence and "wrong number" in sentence


def test_unknown_called_number_that_is_a_callback_number() -> None:
    """A call-back number routed to the landline AGI is a dialplan mistake, said as such."""
    trace = call("unknown_called_number", company_id=None, company_code=None)
    (sentence,) = diagnose(trace, DirectoryFacts(number_kind="callback"))
    assert "is a call-back number" in sentence and "Twilio" in sentence


def test_unknown_called_number_added_since() -> None:
    """A number that is in the directory now was added after the call."""
    trace = call("unknown_called_number", company_id=None, company_code=None)
    (sentence,) = diagnose(trace, DirectoryFacts(number_kind="shared"))
    assert "added after the call" in sentence


# --- company_code_failed ----------------------------------------------------------------------


def test_company_code_failed_lists_each_attempt_with_its_reason() -> None:
    """Each attempt at the company code is shown with what was keyed and why it was refused."""
    trace = call(
        "company_code_failed",
        company_input("024", 1, valid=False, reason="unknown_company_code"),
        company_input("04", 2, valid=False, reason="timeout"),
        company_input("4*2", 3, valid=False, reason="too_many_restarts"),
        company_id=None,
        company_code=None,
        company_code_keyed="4*2",
    )
    lines = diagnose(trace, DirectoryFacts())
    assert lines[0] == (
        "No company code was accepted (3 attempts): 024 (no company has this code); "
        "'04' (nothing or too little keyed before the time-out); "
        "'4*2' (restarted with * too many times). The caller heard 'too-many-attempts' and no "
        "punch was recorded."
    )


def test_company_code_failed_names_the_client_whose_line_called() -> None:
    """The caller's landline tells support which company the carer was working for."""
    trace = call(
        "company_code_failed",
        company_input("024", 1, valid=False, reason="unknown_company_code"),
        company_id=None,
        company_code=None,
    )
    facts = DirectoryFacts(caller_lines=(LineOwner("042", "C-0001", False),))
    assert diagnose(trace, facts)[-1] == (
        "The caller number is the landline of client C-0001 of company 042."
    )


# --- carer_code_failed ------------------------------------------------------------------------


def test_carer_code_failed_unknown_code_counts_attempts() -> None:
    """The brief's example: a code nobody has, keyed three times."""
    trace = call(
        "carer_code_failed",
        *(carer_input("12354", n, valid=False, reason=UNKNOWN) for n in (1, 2, 3)),
        carer_code_keyed="12354",
    )
    lines = diagnose(trace, DirectoryFacts(carer_codes={"12354": ()}))
    assert lines[0].startswith("Carer code 12354 is not a carer of company 042 (3 attempts)")
    assert "no carer of any company has this code" in lines[0]
    assert lines[-1] == (
        "After 3 attempts the caller heard 'too-many-attempts'; no punch was recorded."
    )


def test_carer_code_failed_inactive_carer_of_the_company() -> None:
    """A code of an inactive carer of the company names the carer and says INACTIVE."""
    trace = call(
        "carer_code_failed",
        *(carer_input("45678", n, valid=False, reason=UNKNOWN) for n in (1, 2, 3)),
    )
    owner = CodeOwner("042", "I-04", "Sophie Caron", active=False, same_company=True)
    lines = diagnose(trace, DirectoryFacts(carer_codes={"45678": (owner,)}))
    assert lines[0].startswith(
        "Carer code 45678 is not an active carer of company 042 (3 attempts): it is Sophie "
        "Caron (I-04), who is INACTIVE"
    )


def test_carer_code_failed_code_of_another_company() -> None:
    """A code of another company's carer suggests a wrong company code or number."""
    trace = call(
        "carer_code_failed",
        *(carer_input("54321", n, valid=False, reason=UNKNOWN) for n in (1, 2, 3)),
    )
    owner = CodeOwner("117", "J-A", None, active=True, same_company=False)
    lines = diagnose(trace, DirectoryFacts(carer_codes={"54321": (owner,)}))
    assert lines[0].startswith(
        "Carer code 54321 is not a carer of company 042 (3 attempts): it is the code of a "
        "carer of company 117 (J-A)."
    )
    assert "wrong company code" in lines[0]


def test_carer_code_failed_hides_a_company_the_viewer_may_not_see() -> None:
    """For a page user, another company is "another company", never its code or carer."""
    trace = call(
        "carer_code_failed",
        *(carer_input("54321", n, valid=False, reason=UNKNOWN) for n in (1, 2, 3)),
    )
    owner = CodeOwner(None, None, None, active=True, same_company=False)
    line = diagnose(trace, DirectoryFacts(carer_codes={"54321": (owner,)}))[0]
    assert "a carer of another company." in line and "117" not in line


def test_callback_carer_code_failed_names_the_mobile() -> None:
    """On a call-back the code is checked against the carers owning the mobile."""
    trace = call(
        "carer_code_failed",
        *(carer_input("12345", n, valid=False, reason=UNKNOWN) for n in (1, 2, 3)),
        transport="twilio",
        caller_raw="+33699999999",
        caller_e164="+33699999999",
        company_id=None,
        company_code=None,
    )
    owner = CodeOwner("042", "I-01", None, active=True, same_company=False)
    line = diagnose(trace, DirectoryFacts(carer_codes={"12345": (owner,)}))[0]
    assert line.startswith(
        "Carer code 12345 is not the code of an active carer with the mobile 06 99 99 99 99 "
        "(3 attempts): it is the code of a carer of company 042 (I-01)."
    )


def test_carer_code_failed_incomplete_entries_say_why() -> None:
    """Entries that were not 5 digits are listed with their reason, not as a code."""
    trace = call(
        "carer_code_failed",
        carer_input("123", 1, valid=False, reason="timeout"),
        carer_input("", 2, valid=False, reason="empty"),
        carer_input("1234", 3, valid=False, reason="timeout"),
    )
    lines = diagnose(trace, DirectoryFacts())
    assert lines[:3] == (
        "Carer code entry: '123' (nothing or too little keyed before the time-out).",
        "Carer code entry: nothing keyed (# alone).",
        "Carer code entry: '1234' (nothing or too little keyed before the time-out).",
    )


# --- caller_hung_up ---------------------------------------------------------------------------


def test_caller_hung_up_says_at_which_step_after_what() -> None:
    """The step, what was keyed and accepted, and the last prompt heard."""
    trace = call(
        "caller_hung_up",
        company_input("042", 1, valid=True),
        ("prompt", {"prompt": "enter-carer-code"}),
        ("hangup", {"during": "Gather", "why": "caller_hung_up"}),
        ("hangup", {"step": "carer_code"}),
        hangup_step="carer_code",
    )
    (line,) = diagnose(trace, DirectoryFacts())
    assert line == (
        "The caller hung up while asked for the carer code after keying company code '042' "
        "accepted; no punch was recorded. Last prompt played: 'enter-carer-code'."
    )


def test_caller_hung_up_before_keying_anything() -> None:
    """A hang-up during the welcome: nothing keyed."""
    trace = call(
        "caller_hung_up",
        ("prompt", {"prompt": "welcome"}),
        hangup_step="welcome",
        company_code_keyed=None,
        company_id=None,
        company_code=None,
    )
    (line,) = diagnose(trace, DirectoryFacts())
    assert line.startswith("The caller hung up during the welcome before keying anything;")


def test_caller_hung_up_after_a_refused_carer_code_explains_the_code() -> None:
    """A carer who gives up after a refused code gets the code's explanation too."""
    trace = call(
        "caller_hung_up",
        company_input("042", 1, valid=True),
        carer_input("45678", 1, valid=False, reason=UNKNOWN),
        hangup_step="carer_code",
        carer_code_keyed="45678",
    )
    owner = CodeOwner("042", "I-04", "Sophie Caron", active=False, same_company=True)
    lines = diagnose(trace, DirectoryFacts(carer_codes={"45678": (owner,)}))
    assert "carer code '45678' not accepted" in lines[0]
    assert lines[1].startswith("Carer code 45678 was refused: it is Sophie Caron (I-04), who is")


# --- locked_out -------------------------------------------------------------------------------


def test_locked_out_says_since_until_and_how_many_failures() -> None:
    """A locked-out number: failures counted, lock-out times in the company's zone."""
    trace = call(
        "locked_out",
        ("lookup", {"what": "lockout", "locked": True}),
        ("prompt", {"prompt": "service-unavailable"}),
    )
    since = dt.datetime(2026, 11, 24, 7, 40, tzinfo=dt.UTC)
    facts = DirectoryFacts(lockout=Lockout(6, since, since + dt.timedelta(hours=1)))
    lines = diagnose(trace, facts)
    assert lines[0] == (
        "The caller number 01 45 67 89 12 is locked out: 6 failed code entries within an hour; "
        "locked from 08:40 until 09:40 (Europe/Paris). Every call from this number hears "
        "'service-unavailable' until then (anomaly CODE_BRUTE_FORCE)."
    )


def test_locked_out_during_the_call() -> None:
    """The failure that crosses the threshold during the call is said to have done it."""
    trace = call(
        "locked_out",
        carer_input("11111", 1, valid=False, reason=UNKNOWN),
    )
    lines = diagnose(trace, DirectoryFacts())
    assert lines[0].startswith(
        "The caller number 01 45 67 89 12 was locked out during this call after one more wrong"
    )


# --- error ------------------------------------------------------------------------------------


def test_error_quotes_the_journal() -> None:
    """A technical error: what the journal's error event says, and where to look."""
    trace = call(
        "error",
        ("error", {"step": "carer_code", "effect": "LookupCarer", "reason": "database: Timeout"}),
    )
    lines = diagnose(trace, DirectoryFacts())
    assert lines[0] == (
        "A technical error ended the call: effect LookupCarer, reason database: Timeout, step "
        "carer_code. The caller heard 'technical-problem'; no punch was recorded."
    )
    assert lines[1].startswith("Check the server log around 2026-11-24 08:58:00 (Europe/Paris)")


# --- punch_recorded ---------------------------------------------------------------------------


def test_punch_recorded_plain() -> None:
    """A good punch: kind, local time, carer, company, client."""
    trace = dataclasses.replace(call("punch_recorded", **FATOU), punches=(punch(),))
    assert diagnose(trace, DirectoryFacts()) == (
        "Punch recorded: arrival at 08:58 (Europe/Paris) for Fatou Diallo (I-01) of company "
        "042, client C-0001 Mme Jeanne Dubois.",
    )


def test_punch_recorded_from_an_unknown_number_may_have_changed() -> None:
    """The brief's example: a caller number unknown to the company may have changed."""
    trace = dataclasses.replace(
        call("punch_recorded", caller_raw="0145678999", caller_e164="+33145678999", **FATOU),
        punches=(punch(client_ref=None, client_name=None),),
    )
    lines = diagnose(trace, DirectoryFacts())
    assert lines[0].endswith("client unknown.")
    assert lines[1].startswith(
        "The caller number 01 45 67 89 99 is not a landline of any client of company 042: "
        "it may have changed"
    )


def test_punch_recorded_from_a_landline_of_another_company() -> None:
    """An unknown number that another company knows: the carer may work for both."""
    trace = dataclasses.replace(
        call("punch_recorded", **FATOU), punches=(punch(client_ref=None, client_name=None),)
    )
    facts = DirectoryFacts(caller_lines=(LineOwner("117", "J-101", False),))
    assert diagnose(trace, facts)[1].endswith(
        "It is the landline of client J-101 of company 117: the carer may work for both."
    )


def test_punch_recorded_from_the_carers_own_mobile() -> None:
    """A carer calling from their own mobile is told apart from a changed landline."""
    trace = dataclasses.replace(
        call("punch_recorded", caller_raw="0734567890", caller_e164="+33734567890", **FATOU),
        punches=(punch(client_ref=None, client_name=None),),
    )
    owner = CodeOwner("042", "I-03", "Nadia Benali", active=True, same_company=True)
    assert diagnose(trace, DirectoryFacts(caller_mobile_of=(owner,)))[1] == (
        "The caller number 07 34 56 78 90 is not a landline of any client of company 042 but "
        "the registered mobile of carer I-03 Nadia Benali: the carer called from their own "
        "mobile (UNKNOWN_CALLER_NUMBER). At a client without a landline, the call-back number "
        "is the way to punch."
    )


def test_punch_recorded_with_withheld_number() -> None:
    """A withheld number: no client, and the presentation the network gave."""
    trace = dataclasses.replace(
        call(
            "punch_recorded",
            caller_raw="anonymous",
            caller_e164=None,
            caller_presentation="35",
            **FATOU,
        ),
        punches=(punch(client_ref=None, client_name=None, caller_withheld=True),),
    )
    line = diagnose(trace, DirectoryFacts())[1]
    assert line.startswith(
        "The caller number was withheld (presentation 35): the punch has no client "
        "(CALLER_ID_WITHHELD)."
    )


def test_punch_recorded_corrected_absent_tasks_and_anomalies() -> None:
    """Key 2, key 9, task codes and reconciliation's anomalies are each one sentence."""
    trace = dataclasses.replace(
        call("punch_recorded", **FATOU),
        punches=(
            punch(
                kind="departure",
                original_kind="arrival",
                status="client_absent",
                task_codes="01 12",
                anomalies=(AnomalyRef(9, "LATE_ARRIVAL", "open", "W"),),
            ),
        ),
    )
    lines = diagnose(trace, DirectoryFacts())
    assert lines[1] == (
        "The carer pressed 2 to correct it: first recorded as arrival, now departure."
    )
    assert lines[2].startswith("The carer pressed 9: client absent")
    assert lines[3] == "Task codes keyed: 01 12."
    assert lines[4] == (
        "Reconciliation flagged it: LATE_ARRIVAL (open, anomaly 9): arrival after the planned "
        "start plus tolerance."
    )


def test_anomaly_about_the_visit_is_said_so() -> None:
    """An anomaly raised about the punch's visit (on another punch) reads "its visit"."""
    late = AnomalyRef(9, "LATE_ARRIVAL", "resolved", "W", about="visit")
    trace = dataclasses.replace(
        call("punch_recorded", **FATOU), punches=(punch(kind="departure", anomalies=(late,)),)
    )
    assert diagnose(trace, DirectoryFacts())[1].startswith(
        "Reconciliation flagged its visit: LATE_ARRIVAL (resolved, anomaly 9)"
    )


def test_punch_recorded_then_hang_up_or_error_keeps_the_punch() -> None:
    """A hang-up during the readback or an error after the punch: the punch stands."""
    trace = dataclasses.replace(
        call(
            "punch_recorded",
            ("error", {"step": "readback", "effect": "Play", "reason": "missing prompt"}),
            hangup_step="readback",
            **FATOU,
        ),
        punches=(punch(),),
    )
    lines = diagnose(trace, DirectoryFacts())
    assert "The carer hung up during the readback of the punch; the punch stands." in lines
    assert lines[-1].startswith("A technical error happened after the punch was stored")


def test_callback_punch_not_listed() -> None:
    """A call-back punch with key 0: no client, reconciliation raises the anomaly."""
    trace = dataclasses.replace(
        call(
            "punch_recorded",
            ("lookup", {"what": "visit_choices", "offered": [{"key": "1"}]}),
            transport="twilio",
            **FATOU,
        ),
        punches=(punch(source="callback", location_verified=False, client_ref=None),),
    )
    lines = diagnose(trace, DirectoryFacts())
    assert lines[0].startswith("Punch recorded by call-back: arrival")
    assert lines[1].startswith("The carer keyed 0 (visit not listed)")


# --- no outcome: call-back requests and the rest -----------------------------------------------


def test_callback_request_granted() -> None:
    """The incoming call to the call-back number is refused on purpose; the call-back is due."""
    due = (T0 + dt.timedelta(seconds=5)).isoformat()
    trace = call(
        None,
        ("lookup", {"what": "called_number", "found": True}),
        ("lookup", {"what": "carer_mobile", "found": True, "withheld": False}),
        (
            "lookup",
            {"what": "callback_request", "granted": True, "reason": "created", "due_at": due},
        ),
        ("hangup", {"by": "server", "reason": "rejected_for_callback"}),
        transport="twilio",
        origin="twilio",
    )
    assert diagnose(trace, DirectoryFacts())[0].endswith(
        "a call-back to the carer's mobile was scheduled for 08:58."
    )


def test_callback_refused_for_an_unregistered_mobile() -> None:
    """A mobile that is no active carer's: refused, nothing dialled."""
    trace = call(
        None,
        ("lookup", {"what": "called_number", "found": True}),
        ("lookup", {"what": "carer_mobile", "found": False, "withheld": False}),
        ("hangup", {"by": "server", "reason": "rejected_no_callback"}),
        transport="twilio",
        origin="twilio",
        caller_raw="+33612345679",
        caller_e164="+33612345679",
    )
    (line,) = diagnose(trace, DirectoryFacts())
    assert line.startswith(
        "Call-back refused: 06 12 34 56 79 is not the registered mobile of an active carer"
    )


def test_callback_rate_limited_and_unanswered() -> None:
    """The rate limit and Twilio's no-answer status have their own sentences."""
    limited = call(
        None,
        ("lookup", {"what": "carer_mobile", "found": True, "withheld": False}),
        ("lookup", {"what": "callback_request", "granted": False, "reason": "rate_limited"}),
        ("hangup", {"by": "server", "reason": "rejected_no_callback"}),
        transport="twilio",
    )
    assert "within the last two minutes" in diagnose(limited, DirectoryFacts())[0]
    retry = (T0 + dt.timedelta(minutes=1)).isoformat()
    unanswered = call(
        None,
        ("hangup", {"call_status": "no-answer", "attempt": 1, "retry_at": retry}),
        transport="twilio",
    )
    assert diagnose(unanswered, DirectoryFacts()) == (
        "The call-back ended with Twilio status 'no-answer'; retried at 08:59.",
    )


def test_no_outcome_points_at_the_log() -> None:
    """A call with no outcome and nothing else said: still going, or its worker stopped."""
    trace = call(None, ("prompt", {"prompt": "welcome"}), ended_at=None)
    (line,) = diagnose(trace, DirectoryFacts())
    assert line.startswith("The call has no outcome")


def test_refused_webhook() -> None:
    """A webhook refused for its signature says so."""
    trace = call(
        None,
        ("error", {"error": "bad_signature", "path": "/twilio/voice/flow"}),
        origin="twilio-rejected",
        transport="twilio",
    )
    assert diagnose(trace, DirectoryFacts())[0].startswith(
        "A Twilio webhook was refused (error bad_signature)"
    )


# --- formatting and the ticket ------------------------------------------------------------------


def test_display_number() -> None:
    """Numbers are shown the way people read them; no number reads 'withheld'."""
    assert display_number("+33145678912", "0145678912") == "01 45 67 89 12"
    assert display_number(None, "anonymous") == "withheld (anonymous)"
    assert display_number(None, "") == "withheld"
    assert display_number(None, "12#") == "12#"


def test_ticket_has_every_field_support_asks_for() -> None:
    """Day, precise local time, both numbers, what was keyed, what went wrong, reference."""
    trace = call(
        "carer_code_failed",
        *(carer_input("12354", n, valid=False, reason=UNKNOWN) for n in (1, 2, 3)),
        carer_code_keyed="12354",
    )
    trace = dataclasses.replace(trace, diagnosis=diagnose(trace, DirectoryFacts()))
    text = ticket_text(trace)
    lines = text.splitlines()
    assert lines[0] == "Anomalie télégestion"
    assert "Day:             Tuesday 2026-11-24" in lines
    assert "Time:            08:58:00 (Europe/Paris, UTC+01:00)" in lines
    assert "Called number:   0 800 12 34 56  [0800123456]" in lines
    assert "Caller number:   01 45 67 89 12  [0145678912]" in lines
    assert "Company code:    042" in lines
    assert "Carer code:      12354" in lines
    assert any(
        line.startswith("  - Carer code 12354 is not a carer of company 042") for line in lines
    )
    assert lines[-1] == "Call reference:  node1/1764000000.42 (journal call 7, fastagi)"


def test_ticket_of_a_call_with_no_company_is_in_utc() -> None:
    """No company, no zone to guess: the ticket says UTC."""
    trace = call(
        "unknown_called_number",
        company_id=None,
        company_code=None,
        company_timezone=None,
        company_code_keyed=None,
    )
    text = ticket_text(trace)
    assert "Time:            07:58:00 (UTC, UTC+00:00)" in text
    assert "Company:         none identified" in text
    assert "Company code:    nothing keyed" in text


@pytest.mark.parametrize(
    ("reason", "words"),
    [
        (REASON_TIMEOUT, "nothing or too little keyed before the time-out"),
        (REASON_WRONG_LENGTH, "wrong number of digits"),
        (REASON_NOT_DIGITS, "not digits"),
        (REASON_TOO_MANY_RESTARTS, "restarted with * too many times"),
        (REASON_EMPTY, "nothing keyed (# alone)"),
    ],
)
def test_every_entry_reason_of_the_flow_has_plain_words(reason: str, words: str) -> None:
    """Each reason ``ivr.entry`` gives for a refused entry is explained, at either code."""
    company = call(
        "company_code_failed",
        company_input("0*4", 1, valid=False, reason=reason),
        company_id=None,
        company_code=None,
    )
    carer = call("carer_code_failed", carer_input("12*3", 1, valid=False, reason=reason))
    assert f"'0*4' ({words})" in diagnose(company, DirectoryFacts())[0]
    assert diagnose(carer, DirectoryFacts())[0] == f"Carer code entry: '12*3' ({words})."
