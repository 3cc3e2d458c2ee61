"""The default timings keep a punch within SPEC.md's call-length budget (20 s / 25 s)."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from ivr import prompt_ids as p
from ivr.effects import CalledNumber, CallStart, Gather, Prompt
from ivr.flow import FlowSettings
from ivr.flow_driver import (
    SAMPLE_CARER_EN_CODE,
    SAMPLE_CARER_FR_CODE,
    SAMPLE_CLIENT_EN_LANDLINE,
    SAMPLE_CLIENT_FR_LANDLINE,
    SAMPLE_COMPANY_EN,
    SAMPLE_DEDICATED_NUMBER,
    SAMPLE_SHARED_NUMBER,
    CallerTiming,
    CallTranscript,
    ScriptedWorld,
    estimate_call_seconds,
    keys,
    run_scripted_call,
    sample_world,
)

# A carer who waits for the end of every prompt, with prompts in the middle of the 1.5-3 s the
# prompt texts are written for, keying at the slow end of 300-600 ms per digit.
PATIENT_CARER = CallerTiming(
    default_prompt_s=2.25, say_time_s=1.5, first_key_s=0.8, key_interval_s=0.6
)
# The budget is about the common punch; task codes are an optional extra of some companies.
WORLD = sample_world()
NO_TASK_CODES = replace(
    WORLD,
    called_numbers={
        **WORLD.called_numbers,
        SAMPLE_DEDICATED_NUMBER: CalledNumber(
            "dedicated", replace(SAMPLE_COMPANY_EN, task_codes_enabled=False)
        ),
    },
)
SHARED = CallStart(SAMPLE_SHARED_NUMBER, SAMPLE_CLIENT_FR_LANDLINE)
DEDICATED = CallStart(SAMPLE_DEDICATED_NUMBER, SAMPLE_CLIENT_EN_LANDLINE)
CODES = {SHARED: [keys("123"), keys(SAMPLE_CARER_FR_CODE)], DEDICATED: [keys(SAMPLE_CARER_EN_CODE)]}


def punch(start: CallStart, world: ScriptedWorld) -> CallTranscript:
    """A punch by a carer who keys the codes and then presses nothing."""
    return run_scripted_call(start, world, CODES[start])


def second_punch(start: CallStart) -> CallTranscript:
    """The departure an hour after the arrival."""
    first = punch(start, NO_TASK_CODES)
    later = NO_TASK_CODES.with_punches(first.punches).at(NO_TASK_CODES.now + timedelta(hours=1))
    return punch(start, later)


@pytest.mark.parametrize(("start", "budget_s"), [(DEDICATED, 20.0), (SHARED, 25.0)])
def test_arrival_fits_the_budget(start: CallStart, budget_s: float) -> None:
    """An arrival that waits out the correction and absence offers ends within the budget."""
    t = punch(start, NO_TASK_CODES)
    assert t.punches[-1].kind == "arrival"
    assert estimate_call_seconds(t, PATIENT_CARER) < budget_s


@pytest.mark.parametrize(("start", "budget_s"), [(DEDICATED, 20.0), (SHARED, 25.0)])
def test_departure_fits_the_budget(start: CallStart, budget_s: float) -> None:
    """A departure that waits out the full correction window ends within the budget."""
    t = second_punch(start)
    assert t.punches[-1].kind == "departure"
    assert estimate_call_seconds(t, PATIENT_CARER) < budget_s


@pytest.mark.parametrize("departure", [False, True])
def test_correction_window_lasts_four_seconds(departure: bool) -> None:
    """2 works for at least 4 s from the start of press-2-to-correct, even with short prompts."""
    t = second_punch(DEDICATED) if departure else punch(DEDICATED, NO_TASK_CODES)
    readback = next(g for g in t.of_type(Gather) if g.purpose == "readback")
    offer = readback.segments.index(Prompt(p.PRESS_2_TO_CORRECT))
    shortest = CallerTiming(default_prompt_s=1.5)
    window = sum(shortest.segment_s(s) for s in readback.segments[offer:]) + readback.timeout_s
    assert window >= 4.0


def test_a_slow_carer_never_times_out_between_digits() -> None:
    """The pause allowed between keys is many times a slow carer's 600 ms."""
    assert FlowSettings().code_timeout_s >= 5 * 0.6
