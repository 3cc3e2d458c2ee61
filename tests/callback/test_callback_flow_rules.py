"""The call-back call flow (SPEC.md section 4), pure: scripted carer, scripted directory."""

from __future__ import annotations

import datetime as dt

import pytest

from ivr import prompt_ids as p
from ivr.callback_flow import run_callback
from ivr.callback_prompts import INVALID_CHOICE, VISIT_NOT_LISTED
from ivr.effects import (
    CallbackStart,
    CallStart,
    CarerMatch,
    ClientLabel,
    CompanyInfo,
    Gather,
    Hangup,
    SayVisitChoice,
    VisitChoice,
    is_channel_effect,
)
from ivr.flow_driver import (
    SILENCE,
    CallTranscript,
    ScriptedPunch,
    ScriptedWorld,
    keys,
    resume_flow,
    run_scripted_call,
)

FR = CompanyInfo(1, "123", "fr", "Europe/Paris", task_codes_enabled=False)
EN = CompanyInfo(2, "456", "en", "Europe/London", task_codes_enabled=True)
FATOU = "+33612345678"
AMINA = "+33698765432"
JANE = "+447700900123"
CALLBACK = "+33970809000"
NOW = dt.datetime(2026, 11, 24, 9, 5)

WORLD = ScriptedWorld(
    companies={c.code: c for c in (FR, EN)},
    mobile_carers={
        (FATOU, "12345"): (CarerMatch(11, FR),),
        (AMINA, "11111"): (CarerMatch(31, FR), CarerMatch(32, EN)),
        (JANE, "54321"): (CarerMatch(21, EN),),
    },
    visit_choices={
        11: (
            VisitChoice(101, "planned", 9, 0, ClientLabel("mrs", "D")),
            VisitChoice(102, "planned", 11, 0, ClientLabel("mr", "M")),
        ),
        21: (VisitChoice(201, "planned", 8, 0, ClientLabel("mrs", "W")),),
        32: (VisitChoice(202, "planned", 8, 30, ClientLabel("mr", "P")),),
    },
    now=NOW,
)


def call(
    mobile: str,
    actions: list,  # type: ignore[type-arg]
    world: ScriptedWorld = WORLD,
    *,
    language: str = "fr",
    company_id: int | None = None,
    hang_up_at: int | None = None,
) -> CallTranscript:
    start = CallbackStart(mobile, CALLBACK, language, company_id)
    return run_scripted_call(
        CallStart(CALLBACK, mobile),
        world,
        actions,
        hang_up_at=hang_up_at,
        flow=run_callback(start),
    )


def gathers(transcript: CallTranscript) -> list[Gather]:
    return transcript.of_type(Gather)


def test_pin_then_menu_choice_punches_at_that_client() -> None:
    """The carer code as PIN, then key 2 of the menu: a punch at the second listed client."""
    t = call(FATOU, [keys("12345"), keys("2")])
    assert t.summary.outcome == "punch_recorded"
    assert t.summary.carer_id == 11 and t.summary.client_id == 102
    assert [(q.client_id, q.kind, q.caller_raw) for q in t.punches] == [(102, "arrival", FATOU)]
    assert t.spoken()[:6] == [
        p.WELCOME,
        p.ENTER_CARER_CODE,
        "choice 1 planned 09:00 client 101",
        "choice 2 planned 11:00 client 102",
        VISIT_NOT_LISTED,
        p.ARRIVAL_RECORDED,
    ]
    menu = gathers(t)[1]
    assert (menu.purpose, menu.max_digits, menu.language) == ("visit_menu", 1, "fr")


def test_zero_punches_with_the_client_unknown() -> None:
    """Key 0 (not listed) still records the punch, client unknown, for reconciliation."""
    t = call(FATOU, [keys("12345"), keys("0")])
    assert t.summary.outcome == "punch_recorded"
    assert [q.client_id for q in t.punches] == [None]
    assert {"field": "visit_menu", "reason": "not_listed"}.items() <= t.journal("input")[-2].items()


def test_nothing_planned_skips_the_menu() -> None:
    """With no visit to offer there is no menu: the punch is recorded with the client unknown."""
    world = ScriptedWorld(companies=WORLD.companies, mobile_carers=WORLD.mobile_carers, now=NOW)
    t = call(FATOU, [keys("12345")], world)
    assert [g.purpose for g in gathers(t)] == ["carer_code", "readback"]
    assert [q.client_id for q in t.punches] == [None]


def test_a_wrong_key_replays_the_menu() -> None:
    """A key that is no line is refused and the menu heard again; the next key counts."""
    t = call(FATOU, [keys("12345"), keys("7"), keys("1")])
    second_menu = gathers(t)[2]
    assert second_menu.segments[0].prompt_id == INVALID_CHOICE  # type: ignore[union-attr]
    assert [q.client_id for q in t.punches] == [101]


def test_silence_at_the_menu_punches_with_the_client_unknown() -> None:
    """A carer who keys nothing at two menus still gets the punch, client unknown."""
    t = call(FATOU, [keys("12345"), SILENCE, SILENCE])
    assert [g.purpose for g in gathers(t)].count("visit_menu") == 2
    assert [q.client_id for q in t.punches] == [None]
    assert t.journal("lookup")[-1] == {"what": "client", "found": False, "reason": "no_menu_choice"}


def test_an_open_visit_is_closed_by_a_departure() -> None:
    """Choosing the client of an open arrival records the departure (same punch-kind rule)."""
    arrived = ScriptedPunch(1, 1, 11, 101, FATOU, "arrival", NOW - dt.timedelta(hours=1))
    t = call(FATOU, [keys("12345"), keys("1")], WORLD.with_punches([arrived]))
    assert [(q.client_id, q.kind) for q in t.punches][-1] == (101, "departure")
    assert p.DEPARTURE_RECORDED in t.spoken()


def test_correction_flips_the_punch_as_on_a_landline() -> None:
    """Key 2 at the readback flips arrival to departure, as section 3 says."""
    t = call(FATOU, [keys("12345"), keys("1"), keys("2")])
    assert [q.kind for q in t.punches] == ["departure"]
    assert p.CORRECTION_RECORDED in t.spoken()


def test_three_wrong_pins_end_the_call() -> None:
    """A PIN that matches no carer of this mobile three times: too many attempts, no punch."""
    t = call(FATOU, [keys("99999"), keys("12346"), keys("54321")])
    assert t.summary.outcome == "carer_code_failed"
    assert t.punches == ()
    assert t.spoken()[-2:] == [p.TOO_MANY_ATTEMPTS, p.GOODBYE]


def test_same_code_in_two_companies_asks_the_company_code() -> None:
    """A mobile and code of carers in two companies: the company code decides, then English."""
    t = call(AMINA, [keys("11111"), keys("456"), keys("1")])
    assert [g.purpose for g in gathers(t)][:3] == ["carer_code", "company_code", "visit_menu"]
    assert t.summary.carer_id == 32 and t.summary.company_id == EN.company_id
    assert [q.client_id for q in t.punches] == [202]
    assert gathers(t)[2].language == "en"


def test_a_company_call_back_number_finds_only_its_carers() -> None:
    """A call-back number of one company: the same code elsewhere does not count, no question."""
    t = call(AMINA, [keys("11111"), keys("1")], company_id=EN.company_id)
    assert [g.purpose for g in gathers(t)][:2] == ["carer_code", "visit_menu"]
    assert t.summary.carer_id == 32


def test_a_locked_out_mobile_hears_service_unavailable() -> None:
    """A mobile locked out for guessing codes is told so and nothing is asked."""
    world = ScriptedWorld(**{**WORLD.__dict__, "locked_callers": frozenset({FATOU})})
    t = call(FATOU, [keys("12345")], world)
    assert t.summary.outcome == "locked_out"
    assert gathers(t) == []
    assert p.SERVICE_UNAVAILABLE in t.spoken()


def test_english_company_departure_asks_task_codes() -> None:
    """An English company using task codes: after a departure its task codes are asked."""
    arrived = ScriptedPunch(1, 2, 21, 201, JANE, "arrival", NOW - dt.timedelta(hours=1))
    t = call(
        JANE,
        [keys("54321"), keys("1"), SILENCE, keys("01*12")],
        WORLD.with_punches([arrived]),
        language="en",
    )
    assert [g.purpose for g in gathers(t)] == ["carer_code", "visit_menu", "readback", "task_codes"]
    assert t.punches[-1].task_codes == ("01", "12")
    assert all(g.language == "en" for g in gathers(t))


FULL_CALLS = {
    "arrival": (FATOU, [keys("12345"), keys("1")], WORLD),
    "departure_with_tasks": (
        JANE,
        [keys("54321"), keys("1"), SILENCE, keys("01")],
        WORLD.with_punches(
            [ScriptedPunch(1, 2, 21, 201, JANE, "arrival", NOW - dt.timedelta(hours=1))]
        ),
    ),
}


@pytest.mark.parametrize("name", sorted(FULL_CALLS))
def test_hang_up_at_every_step(name: str) -> None:
    """Hanging up at any channel effect ends the call at that step; a punch made stays made."""
    mobile, actions, world = FULL_CALLS[name]
    full = call(mobile, actions, world)
    assert full.summary.outcome == "punch_recorded"
    channel_at = [i for i, e in enumerate(full.effects) if is_channel_effect(e)]
    punch_at = next(i for i, e in enumerate(full.effects) if type(e).__name__ == "RecordPunch")
    for index in channel_at:
        if isinstance(full.effects[index], Hangup):
            continue  # the server's own hang-up: the call is over either way
        t = call(mobile, actions, world, hang_up_at=index)
        assert t.hung_up_at == index
        after = [e for e in t.effects[index + 1 :] if is_channel_effect(e)]
        assert after == [], f"the flow kept talking after a hang-up at {index}"
        made = len(t.punches) - len(world.punches)
        if index < punch_at:
            assert (t.summary.outcome, made) == ("caller_hung_up", 0)
        else:
            assert (t.summary.outcome, made) == ("punch_recorded", 1)
        assert t.summary.hangup_step is not None


def test_the_menu_step_is_named_in_the_summary() -> None:
    """A carer who hangs up at the menu is journaled as hanging up at ``visit_menu``."""
    full = call(FATOU, [keys("12345"), keys("1")])
    menu_at = next(
        i for i, e in enumerate(full.effects) if isinstance(e, Gather) and e.purpose == "visit_menu"
    )
    t = call(FATOU, [keys("12345"), keys("1")], hang_up_at=menu_at)
    assert t.summary.hangup_step == "visit_menu"
    assert any(isinstance(s, SayVisitChoice) for s in full.effects[menu_at].segments)  # type: ignore[union-attr]


def test_replayed_replies_resume_at_the_same_effect() -> None:
    """Feeding any prefix of a call's replies to a fresh flow stops at the effect that followed."""
    full = call(FATOU, [keys("12345"), keys("7"), keys("2"), keys("2")])
    start = CallbackStart(FATOU, CALLBACK, "fr", None)
    for n in range(len(full.replies)):
        resumed = resume_flow(run_callback(start), full.replies[:n])
        assert resumed.replayed.next_effect == full.effects[n]
    done = resume_flow(run_callback(start), full.replies)
    assert done.replayed.summary == full.summary
