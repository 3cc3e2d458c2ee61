"""Each rule of the landline call flow (SPEC.md section 3), through a scripted world."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import timedelta

import pytest

from ivr import prompt_ids as p
from ivr.effects import (
    Answer,
    CallStart,
    CheckLockout,
    CorrectPunch,
    Failure,
    Gather,
    Hangup,
    LookupCarer,
    LookupClient,
    LookupCompany,
    Play,
    Prompt,
    RecordCodeFailure,
    RecordPunch,
    RecordTaskCodes,
    ReportClientAbsent,
    is_channel_effect,
)
from ivr.flow import FlowSettings, run_call
from ivr.flow_driver import (
    HANG_UP,
    SAMPLE_CALLBACK_NUMBER,
    SAMPLE_CARER_EN_CODE,
    SAMPLE_CARER_FR_CODE,
    SAMPLE_CLIENT_EN_LANDLINE,
    SAMPLE_CLIENT_FR_LANDLINE,
    SAMPLE_DEDICATED_NUMBER,
    SAMPLE_INACTIVE_CARER_CODE,
    SAMPLE_SHARED_NUMBER,
    SAMPLE_UNKNOWN_LANDLINE,
    SILENCE,
    CallerAction,
    CallTranscript,
    ScriptedWorld,
    keys,
    run_scripted_call,
    sample_world,
)

SHARED = CallStart(SAMPLE_SHARED_NUMBER, SAMPLE_CLIENT_FR_LANDLINE)
DEDICATED = CallStart(SAMPLE_DEDICATED_NUMBER, SAMPLE_CLIENT_EN_LANDLINE)
WORLD = sample_world()
COMPANY = keys("123")
CARER = keys(SAMPLE_CARER_FR_CODE)
EN_CARER = keys(SAMPLE_CARER_EN_CODE)


def call(
    start: CallStart,
    actions: Sequence[CallerAction],
    world: ScriptedWorld = WORLD,
    settings: FlowSettings | None = None,
) -> CallTranscript:
    return run_scripted_call(start, world, actions, settings)


def departure_world() -> ScriptedWorld:
    """The sample world after an English arrival at 09:41, now at 11:02."""
    first = call(DEDICATED, [EN_CARER])
    assert first.summary.outcome == "punch_recorded"
    return WORLD.with_punches(first.punches).at(WORLD.now.replace(hour=11, minute=2))


def gathers(transcript: CallTranscript) -> list[Gather]:
    return transcript.of_type(Gather)


# --- Step 1: the called number -------------------------------------------------------------------


def test_unknown_called_number_is_not_in_service() -> None:
    """An unknown called number answers, says number-not-in-service and hangs up."""
    t = call(CallStart("0899999999", SAMPLE_CLIENT_FR_LANDLINE), [])
    assert [type(e) for e in t.channel_effects()] == [Answer, Play, Hangup]
    assert t.spoken() == [p.NUMBER_NOT_IN_SERVICE]
    assert t.summary.outcome == "unknown_called_number"
    assert t.of_type(CheckLockout) == []


def test_callback_number_is_not_a_landline_service() -> None:
    """A call-back number reached by a landline call is treated as not in service."""
    t = call(CallStart(SAMPLE_CALLBACK_NUMBER, SAMPLE_CLIENT_FR_LANDLINE), [CARER])
    assert t.summary.outcome == "unknown_called_number"
    assert t.of_type(RecordPunch) == []


# --- Lock-out ------------------------------------------------------------------------------------


def test_locked_out_caller_hears_service_unavailable() -> None:
    """A locked caller number hears service-unavailable before any code is asked."""
    world = replace(WORLD, locked_callers=frozenset({SHARED.caller_raw}))
    t = call(SHARED, [COMPANY, CARER], world)
    assert t.spoken() == [p.SERVICE_UNAVAILABLE]
    assert [type(e) for e in t.channel_effects()] == [Answer, Play, Hangup]
    assert t.summary.outcome == "locked_out"


def test_withheld_caller_is_never_checked_for_lockout() -> None:
    """A withheld number skips the lock-out check and can still punch."""
    world = replace(WORLD, locked_callers=frozenset({"", "anonymous"}))
    t = call(CallStart(SAMPLE_SHARED_NUMBER, "anonymous"), [COMPANY, CARER], world)
    assert t.of_type(CheckLockout) == []
    assert t.summary.outcome == "punch_recorded"


def test_failure_that_triggers_lockout_ends_the_call() -> None:
    """When RecordCodeFailure reports a lock-out, the caller hears service-unavailable at once."""
    world = replace(WORLD, lockout_after_failures=2)
    t = call(SHARED, [keys("999"), keys("998"), COMPANY], world)
    assert len(t.of_type(RecordCodeFailure)) == 2
    assert t.spoken()[-1] == p.SERVICE_UNAVAILABLE
    assert isinstance(t.channel_effects()[-1], Hangup)
    assert t.summary.outcome == "locked_out"
    assert t.unused_actions == (COMPANY,)


# --- Steps 2-4: welcome and codes ----------------------------------------------------------------


def test_shared_number_punch_asks_company_then_carer_code() -> None:
    """A shared-number call: welcome, company code, carer code, readback, goodbye."""
    t = call(SHARED, [COMPANY, CARER])
    assert t.spoken() == [
        p.WELCOME,
        p.ENTER_COMPANY_CODE,
        p.ENTER_CARER_CODE,
        p.ARRIVAL_RECORDED,
        "time 09:41",
        p.PRESS_2_TO_CORRECT,
        p.PRESS_9_IF_ABSENT,
        p.GOODBYE,
    ]
    assert t.of_type(RecordPunch) == [RecordPunch(1, 11, 101, SAMPLE_CLIENT_FR_LANDLINE)]
    assert t.summary.outcome == "punch_recorded"
    assert (t.summary.company_code_keyed, t.summary.carer_code_keyed) == ("123", "12345")


def test_welcome_can_be_keyed_over() -> None:
    """The welcome shares the first gather with the first code prompt (type-ahead)."""
    first = gathers(call(SHARED, [COMPANY, CARER]))[0]
    assert [s.prompt_id for s in first.segments] == [p.WELCOME, p.ENTER_COMPANY_CODE]
    assert first.max_digits == 3


def test_dedicated_number_asks_no_company_code() -> None:
    """A dedicated number goes from the welcome straight to the carer code."""
    t = call(DEDICATED, [EN_CARER])
    assert p.ENTER_COMPANY_CODE not in t.spoken()
    assert [s.prompt_id for s in gathers(t)[0].segments] == [p.WELCOME, p.ENTER_CARER_CODE]
    assert t.of_type(LookupCompany) == []
    assert t.summary.outcome == "punch_recorded"


def test_prompts_use_the_company_language_once_known() -> None:
    """Before the company code the default language is used; after it, the company's."""
    t = call(CallStart(SAMPLE_SHARED_NUMBER, SAMPLE_UNKNOWN_LANDLINE), [keys("456"), EN_CARER])
    assert [g.language for g in gathers(t)[:2]] == ["fr", "en"]
    assert t.of_type(Play)[-1].language == "en"


def test_unknown_company_code_is_asked_again() -> None:
    """An unknown company code says invalid-company-code and asks again."""
    t = call(SHARED, [keys("999"), COMPANY, CARER])
    assert [s.prompt_id for s in gathers(t)[1].segments] == [
        p.INVALID_COMPANY_CODE,
        p.ENTER_COMPANY_CODE,
    ]
    assert t.of_type(RecordCodeFailure) == [
        RecordCodeFailure(SHARED.caller_raw, "company_code", "unknown_company_code")
    ]
    assert t.summary.outcome == "punch_recorded"


def test_three_wrong_company_codes_end_the_call() -> None:
    """After 3 failed company codes: too-many-attempts, goodbye, hang up."""
    t = call(SHARED, [keys("999"), keys("998"), keys("997"), CARER])
    assert t.spoken()[-2:] == [p.TOO_MANY_ATTEMPTS, p.GOODBYE]
    assert isinstance(t.channel_effects()[-1], Hangup)
    assert t.summary.outcome == "company_code_failed"
    assert t.of_type(RecordPunch) == []
    assert t.summary.company_code_keyed == "997"


def test_inactive_carer_code_is_refused_three_times() -> None:
    """A carer code not among the company's active carers fails like a wrong one."""
    bad = keys(SAMPLE_INACTIVE_CARER_CODE)
    t = call(SHARED, [COMPANY, bad, bad, bad])
    assert t.spoken().count(p.INVALID_CARER_CODE) == 2
    assert t.summary.outcome == "carer_code_failed"
    reasons = [f.reason for f in t.of_type(RecordCodeFailure)]
    assert reasons == ["unknown_or_inactive_carer_code"] * 3


def test_carer_code_of_another_company_is_refused() -> None:
    """A valid carer code of another company is not a carer of this one."""
    t = call(SHARED, [COMPANY, EN_CARER, EN_CARER, EN_CARER])
    assert t.summary.outcome == "carer_code_failed"


def test_timeouts_count_as_attempts() -> None:
    """Three silent carer-code prompts end the call, each journaled as a timeout."""
    t = call(DEDICATED, [SILENCE, SILENCE, SILENCE])
    assert t.summary.outcome == "carer_code_failed"
    assert [f.reason for f in t.of_type(RecordCodeFailure)] == ["timeout"] * 3
    assert t.summary.carer_code_keyed == ""


def test_hash_ends_an_entry_early() -> None:
    """`#` after two digits ends the company code: refused as wrong length."""
    t = call(SHARED, [keys("12"), COMPANY, CARER])
    refused = next(d for d in t.journal("input") if d["field"] == "company_code")
    assert refused["reason"] == "wrong_length" and refused["valid"] is False
    assert t.summary.outcome == "punch_recorded"


def test_star_restart_gathers_the_rest_without_replaying_the_prompt() -> None:
    """`12*` fills GET DATA's 3 keys; the flow silently gathers 3 more for the restarted code."""
    t = call(SHARED, [keys("12*"), COMPANY, CARER])
    second = gathers(t)[1]
    assert second.segments == () and second.max_digits == 3
    assert t.of_type(RecordCodeFailure) == []
    assert t.summary.company_code_keyed == "12*123"
    assert any(d["reason"] == "restarted_with_star" for d in t.journal("input"))


def test_star_restart_mid_code_asks_only_missing_keys() -> None:
    """`1*234` fills a 5-key gather; 2 more keys complete the code keyed after the `*`."""
    t = call(DEDICATED, [keys("1*234"), keys("99")])
    assert (gathers(t)[1].segments, gathers(t)[1].max_digits) == ((), 2)
    assert t.of_type(LookupCarer) == [LookupCarer(2, "23499")]
    first_attempt = next(d for d in t.journal("input") if d.get("attempt") == 1)
    assert first_attempt["raw"] == "1*23499" and first_attempt["value"] == "23499"


def test_restarted_code_is_looked_up_from_the_keys_after_the_star() -> None:
    """`9*543` then `21` is the carer code 54321."""
    t = call(DEDICATED, [keys("9*543"), keys("21")])
    assert t.summary.outcome == "punch_recorded" and t.summary.carer_id == 21


def test_endless_star_restarts_fail_the_attempt() -> None:
    """A stuck `*` cannot hold the line: after 3 restarts the attempt fails."""
    t = call(SHARED, [keys("***")] * 4 + [COMPANY, CARER])
    reasons = [f.reason for f in t.of_type(RecordCodeFailure)]
    assert reasons == ["too_many_restarts"]
    assert t.summary.outcome == "punch_recorded"


def test_stray_hash_after_a_complete_code_costs_nothing() -> None:
    """`123#`: the `#` lands in the next gather; it is asked again with no attempt lost."""
    t = call(SHARED, [COMPANY, keys(""), CARER])
    assert [s.prompt_id for s in gathers(t)[2].segments] == [p.ENTER_CARER_CODE]
    assert t.of_type(RecordCodeFailure) == []
    assert t.summary.outcome == "punch_recorded"


def test_hash_around_a_code_from_a_lenient_transport_is_ignored() -> None:
    """Leading and trailing `#` passed through by a transport do not spoil a code."""
    t = call(SHARED, [keys("#123#"), keys("#12345#")])
    assert t.summary.outcome == "punch_recorded"
    assert t.of_type(RecordCodeFailure) == []


def test_repeated_empty_entries_end_up_counting() -> None:
    """`#` alone is free twice per code; after that it counts, so a stuck key cannot loop."""
    t = call(SHARED, [keys("")] * 6)
    assert [f.reason for f in t.of_type(RecordCodeFailure)] == ["empty"] * 3
    assert t.summary.outcome == "company_code_failed"


# --- Step 5: the client --------------------------------------------------------------------------


def test_unknown_landline_still_punches_without_a_client() -> None:
    """A caller number that is no client's landline punches with client None."""
    t = call(CallStart(SAMPLE_SHARED_NUMBER, SAMPLE_UNKNOWN_LANDLINE), [COMPANY, CARER])
    assert t.of_type(RecordPunch)[0].client_id is None
    assert t.summary.outcome == "punch_recorded" and t.summary.client_id is None


@pytest.mark.parametrize("caller", ["", "anonymous", "Unknown"])
def test_withheld_caller_punches_without_client_lookup(caller: str) -> None:
    """A withheld number is not looked up as a landline; the punch is recorded anyway."""
    t = call(CallStart(SAMPLE_SHARED_NUMBER, caller), [COMPANY, CARER])
    assert t.of_type(LookupClient) == []
    assert t.of_type(RecordPunch)[0].client_id is None
    assert t.summary.outcome == "punch_recorded"


def test_landline_of_another_company_is_not_this_companys_client() -> None:
    """The client is looked up within the company of the codes keyed."""
    t = call(CallStart(SAMPLE_SHARED_NUMBER, SAMPLE_CLIENT_EN_LANDLINE), [COMPANY, CARER])
    assert t.of_type(LookupClient) == [LookupClient(1, SAMPLE_CLIENT_EN_LANDLINE)]
    assert t.of_type(RecordPunch)[0].client_id is None


# --- Steps 6-7: punch kind and readback ----------------------------------------------------------


def test_second_call_within_14_hours_is_a_departure() -> None:
    """The carer's next call at the same client reads back a departure, without press-9."""
    t = call(DEDICATED, [EN_CARER, SILENCE, keys("")], departure_world())
    assert t.spoken()[2:5] == [p.DEPARTURE_RECORDED, "time 11:02", p.PRESS_2_TO_CORRECT]
    assert p.PRESS_9_IF_ABSENT not in t.spoken()
    assert [q.kind for q in t.punches] == ["arrival", "departure"]


def test_departure_readback_waits_for_a_correction() -> None:
    """A departure's readback ends on press-2-to-correct and then waits for the key."""
    t = call(DEDICATED, [EN_CARER], departure_world())
    readback = gathers(t)[1]
    assert readback.segments[-1] == Prompt(p.PRESS_2_TO_CORRECT)
    assert readback.timeout_s == FlowSettings().departure_readback_wait_s


def test_readback_offers_correction_and_absence_in_one_gather() -> None:
    """An arrival's readback, press-2 and press-9 are one gather: one wait for both keys."""
    readback = gathers(call(SHARED, [COMPANY, CARER]))[2]
    assert [getattr(s, "prompt_id", "time") for s in readback.segments] == [
        p.ARRIVAL_RECORDED,
        "time",
        p.PRESS_2_TO_CORRECT,
        p.PRESS_9_IF_ABSENT,
    ]
    assert readback.max_digits == 1


def test_press_2_flips_the_punch_and_reads_it_back() -> None:
    """2 at the readback corrects arrival to departure, journals it and reads it back."""
    t = call(SHARED, [COMPANY, CARER, keys("2")])
    assert t.of_type(CorrectPunch) == [CorrectPunch(1)]
    assert t.punches[0].kind == "departure"
    spoken = t.spoken()
    start = spoken.index(p.CORRECTION_RECORDED)
    assert spoken[start : start + 3] == [p.CORRECTION_RECORDED, p.DEPARTURE_RECORDED, "time 09:41"]
    assert any(d["action"] == "corrected" and d["was"] == "arrival" for d in t.journal("punch"))
    assert t.summary.outcome == "punch_recorded"


def test_a_second_2_undoes_the_correction_and_no_third_is_offered() -> None:
    """A slip of the finger can be undone; after two corrections 2 is no longer offered."""
    t = call(SHARED, [COMPANY, CARER, keys("2"), keys("2"), keys("2")])
    assert len(t.of_type(CorrectPunch)) == 2
    assert t.punches[0].kind == "arrival"
    last_readback = gathers(t)[-1]
    assert p.PRESS_2_TO_CORRECT not in [getattr(s, "prompt_id", "") for s in last_readback.segments]


def test_stray_key_at_the_readback_replays_it_once() -> None:
    """A `#` that cut the readback replays it once; a second stray key ends the call normally."""
    t = call(SHARED, [COMPANY, CARER, keys(""), keys("5")])
    assert t.spoken().count(p.ARRIVAL_RECORDED) == 2
    assert t.spoken()[-1] == p.GOODBYE
    assert t.summary.outcome == "punch_recorded"


# --- Step 8: task codes --------------------------------------------------------------------------


def test_departure_asks_task_codes_when_the_company_uses_them() -> None:
    """At a departure, task codes keyed with `*` are recorded and confirmed."""
    t = call(DEDICATED, [EN_CARER, SILENCE, keys("12*34")], departure_world())
    assert t.of_type(RecordTaskCodes) == [RecordTaskCodes(2, ("12", "34"))]
    assert t.spoken()[-2:] == [p.TASK_CODES_RECORDED, p.GOODBYE]
    assert t.punches[-1].task_codes == ("12", "34")


def test_invalid_task_code_is_asked_again() -> None:
    """A task code that is not two digits says invalid-task-code and asks again."""
    t = call(DEDICATED, [EN_CARER, SILENCE, keys("1*23"), keys("12")], departure_world())
    assert [s.prompt_id for s in gathers(t)[-1].segments] == [  # type: ignore[union-attr]
        p.INVALID_TASK_CODE,
        p.ENTER_TASK_CODES,
    ]
    assert t.of_type(RecordTaskCodes) == [RecordTaskCodes(2, ("12",))]


def test_no_task_code_is_not_an_error() -> None:
    """A carer with no task to give presses `#` (or waits) and the call ends normally."""
    t = call(DEDICATED, [EN_CARER, SILENCE, keys("")], departure_world())
    assert t.of_type(RecordTaskCodes) == []
    assert t.spoken()[-1] == p.GOODBYE and t.summary.outcome == "punch_recorded"


def test_arrival_asks_no_task_codes() -> None:
    """Task codes belong to departures only."""
    t = call(DEDICATED, [EN_CARER])
    assert p.ENTER_TASK_CODES not in t.spoken()


def test_company_without_task_codes_is_not_asked() -> None:
    """A departure at a company without task codes goes straight to goodbye."""
    first = call(SHARED, [COMPANY, CARER])
    world = WORLD.with_punches(first.punches).at(WORLD.now + timedelta(hours=2))
    t = call(SHARED, [COMPANY, CARER], world)
    assert t.punches[-1].kind == "departure"
    assert p.ENTER_TASK_CODES not in t.spoken()


def test_correction_to_departure_then_asks_task_codes() -> None:
    """An arrival corrected into a departure is a departure for step 8 too."""
    t = call(DEDICATED, [EN_CARER, keys("2"), SILENCE, keys("07")])
    assert t.of_type(RecordTaskCodes) == [RecordTaskCodes(1, ("07",))]


# --- Step 9: absence -----------------------------------------------------------------------------


def test_press_9_reports_the_client_absent() -> None:
    """9 at an arrival reports the client absent, confirms it, then says goodbye."""
    t = call(SHARED, [COMPANY, CARER, keys("9")])
    assert t.of_type(ReportClientAbsent) == [ReportClientAbsent(1)]
    assert t.spoken()[-2:] == [p.ABSENCE_RECORDED, p.GOODBYE]
    assert t.punches[0].client_absent


def test_press_9_is_not_offered_at_a_departure() -> None:
    """9 at a departure's readback is a stray key, not an absence report."""
    t = call(DEDICATED, [EN_CARER, keys("9"), SILENCE, keys("")], departure_world())
    assert t.of_type(ReportClientAbsent) == []


def test_absence_after_an_absence_report_is_a_new_arrival() -> None:
    """After an absence report the next call at that client is an arrival again."""
    first = call(SHARED, [COMPANY, CARER, keys("9")])
    world = WORLD.with_punches(first.punches).at(WORLD.now + timedelta(minutes=30))
    assert call(SHARED, [COMPANY, CARER], world).punches[-1].kind == "arrival"


# --- Step 10 and hang-ups ------------------------------------------------------------------------


def test_call_ends_with_goodbye_then_hangup() -> None:
    """A normal call ends with goodbye and the server's hang-up."""
    t = call(SHARED, [COMPANY, CARER])
    channel = t.channel_effects()
    assert channel[-2:] == [Play((Prompt(p.GOODBYE),), "fr"), Hangup()]
    assert t.summary.hangup_step is None


def test_hangup_during_the_readback_keeps_the_punch() -> None:
    """A carer who hangs up during the readback has punched: outcome punch_recorded."""
    t = call(SHARED, [COMPANY, CARER, HANG_UP])
    assert t.summary.outcome == "punch_recorded"
    assert t.summary.hangup_step == "readback" and t.summary.punch_id == 1
    assert {"step": "readback"} in t.journal("hangup")


def test_hangup_before_the_punch_is_caller_hung_up() -> None:
    """A hang-up during the carer code records nothing and says where it happened."""
    t = call(SHARED, [COMPANY, HANG_UP])
    assert t.summary.outcome == "caller_hung_up" and t.summary.hangup_step == "carer_code"
    assert t.of_type(RecordPunch) == []
    index = t.hung_up_at
    assert index is not None
    assert not any(is_channel_effect(e) for e in t.effects[index + 1 :])


def test_hangup_during_the_welcome_is_journaled_as_welcome() -> None:
    """Hanging up during the first gather is journaled at the welcome step."""
    t = call(SHARED, [HANG_UP])
    assert t.summary.hangup_step == "welcome" and t.summary.outcome == "caller_hung_up"


def test_hangup_during_a_closing_message_keeps_the_decided_outcome() -> None:
    """Hanging up during too-many-attempts does not turn a code failure into a hang-up."""
    t = call(SHARED, [keys("999"), keys("998"), keys("997"), HANG_UP])
    assert t.summary.outcome == "company_code_failed" and t.summary.hangup_step == "goodbye"


# --- Failures ------------------------------------------------------------------------------------


def test_database_failure_before_the_punch_is_a_technical_problem() -> None:
    """A failing lookup plays technical-problem and goodbye, hangs up, outcome error."""
    # World effects: 1 called number, 2 lock-out, 3 company lookup.
    world = replace(WORLD, failing_world_effects=frozenset({3}))
    t = call(SHARED, [COMPANY, CARER], world)
    assert t.spoken()[-2:] == [p.TECHNICAL_PROBLEM, p.GOODBYE]
    assert isinstance(t.channel_effects()[-1], Hangup)
    assert t.summary.outcome == "error"
    assert t.journal("error")[0]["effect"] == "LookupCompany"


def test_failure_before_answer_still_answers_to_explain() -> None:
    """When the very first lookup fails, the call is answered so the message can be heard."""
    world = replace(WORLD, failing_world_effects=frozenset({1}))
    t = call(SHARED, [], world)
    assert [type(e) for e in t.channel_effects()] == [Answer, Play, Hangup]
    assert t.summary.outcome == "error"


def test_failure_after_the_punch_ends_normally() -> None:
    """If the correction fails after the punch is stored, the carer hears a normal goodbye."""
    # World effects: called number, lock-out, company, carer, client, punch, correction (7).
    world = replace(WORLD, failing_world_effects=frozenset({7}))
    t = call(SHARED, [COMPANY, CARER, keys("2")], world)
    assert t.of_type(CorrectPunch) == [CorrectPunch(1)]
    assert p.TECHNICAL_PROBLEM not in t.spoken() and t.spoken()[-1] == p.GOODBYE
    assert t.summary.outcome == "punch_recorded"


def test_failed_prompt_is_a_technical_problem() -> None:
    """A gather that fails (a missing sound file) ends the call with outcome error."""
    flow = run_call(DEDICATED)
    effect = next(flow)
    while not isinstance(effect, Gather):
        reply = {
            "LookupCalledNumber": WORLD.called_numbers[SAMPLE_DEDICATED_NUMBER],
            "CheckLockout": False,
        }.get(type(effect).__name__)
        effect = flow.send(reply)
    effect = flow.send(Failure("sound file missing"))
    seen = []
    try:
        while True:
            seen.append(effect)
            effect = flow.send(None)
    except StopIteration as stop:
        summary = stop.value
    assert summary.outcome == "error"
    assert [type(e) for e in seen if is_channel_effect(e)] == [Play, Hangup]
