"""Properties of the call flow over generated calls: it always ends well, and replays exactly."""

from __future__ import annotations

import json
from dataclasses import fields, is_dataclass, replace
from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ivr.effects import (
    OUTCOMES,
    STEPS,
    Answer,
    CalledNumber,
    CallStart,
    CarerInfo,
    ClientInfo,
    CompanyInfo,
    Gather,
    Hangup,
    Journal,
    Keys,
    LookupCalledNumber,
    LookupCarer,
    LookupCompany,
    Play,
    Prompt,
    PunchRecorded,
    RecordPunch,
    SayTime,
)
from ivr.flow import FlowSettings
from ivr.flow_driver import (
    HANG_UP,
    SAMPLE_CALLBACK_NUMBER,
    SAMPLE_CARER_EN_CODE,
    SAMPLE_CARER_FR_CODE,
    SAMPLE_CLIENT_EN_LANDLINE,
    SAMPLE_CLIENT_FR_LANDLINE,
    SAMPLE_DEDICATED_NUMBER,
    SAMPLE_SHARED_NUMBER,
    SAMPLE_UNKNOWN_LANDLINE,
    SILENCE,
    CallTranscript,
    HangUp,
    ScriptedPunch,
    ScriptedWorld,
    keys,
    replay_call,
    run_scripted_call,
    sample_world,
)
from ivr.prompt_ids import ALL_PROMPT_IDS

WORLD = sample_world()
# Arrivals an hour ago at both sample clients, so that calls from their landlines are departures.
OPEN_ARRIVALS = (
    ScriptedPunch(
        1, 1, 11, 101, SAMPLE_CLIENT_FR_LANDLINE, "arrival", WORLD.now - timedelta(hours=1)
    ),
    ScriptedPunch(
        2, 2, 21, 201, SAMPLE_CLIENT_EN_LANDLINE, "arrival", WORLD.now - timedelta(hours=1)
    ),
)

# Keys a caller may press: noise, real codes and menu keys.
action = st.one_of(
    st.builds(Keys, st.text(alphabet="0123456789*#", max_size=7), st.booleans()),
    st.sampled_from(
        [
            keys("123"),
            keys("456"),
            keys(SAMPLE_CARER_FR_CODE),
            keys(SAMPLE_CARER_EN_CODE),
            keys("99999"),
            keys("2"),
            keys("9"),
            keys("12*34"),
            keys("1*2"),
            keys(""),
            SILENCE,
            HANG_UP,
        ]
    ),
)
# Mostly landline services, sometimes a number that is not one.
starts = st.builds(
    CallStart,
    st.sampled_from(
        [SAMPLE_SHARED_NUMBER, SAMPLE_DEDICATED_NUMBER] * 3 + [SAMPLE_CALLBACK_NUMBER, "0"]
    ),
    st.sampled_from(
        [SAMPLE_CLIENT_FR_LANDLINE, SAMPLE_CLIENT_EN_LANDLINE, SAMPLE_UNKNOWN_LANDLINE, "", "anon"]
    ),
)
worlds = st.builds(
    lambda failing, lockout, locked, earlier: replace(
        WORLD,
        failing_world_effects=failing,
        lockout_after_failures=lockout,
        locked_callers=frozenset({SAMPLE_UNKNOWN_LANDLINE}) if locked else frozenset(),
    ).with_punches(earlier),
    st.one_of(st.just(frozenset()), st.frozensets(st.integers(1, 12), max_size=2)),
    st.sampled_from([None, None, None, 1, 4, 6]),
    st.sampled_from([False, False, False, True]),
    st.sampled_from([(), OPEN_ARRIVALS]),
)


@st.composite
def scripts(draw: st.DrawFn, start: CallStart) -> list[Keys | HangUp]:
    """Any keys at all, or a carer's call for this number with noise around it, so that the
    later steps (readback, correction, absence, task codes) are reached often."""
    if draw(st.booleans()):
        return draw(st.lists(action, max_size=14))
    english = start.called_raw == SAMPLE_DEDICATED_NUMBER or draw(st.booleans())
    company = (
        [] if start.called_raw == SAMPLE_DEDICATED_NUMBER else [keys("456" if english else "123")]
    )
    carer = keys(SAMPLE_CARER_EN_CODE if english else SAMPLE_CARER_FR_CODE)
    before = draw(st.lists(action, max_size=1))
    menu = st.sampled_from([keys("2"), keys("9"), keys("12*34"), keys(""), SILENCE, HANG_UP])
    after = draw(st.lists(st.one_of(menu, action), max_size=8))
    return [*before, *company, carer, *after]


calls = starts.flatmap(lambda start: st.tuples(st.just(start), worlds, scripts(start)))
flow_settings = st.builds(
    FlowSettings,
    max_attempts=st.integers(1, 4),
    max_restarts=st.integers(0, 3),
    max_ignored_empty=st.integers(0, 2),
    max_corrections=st.integers(0, 2),
)


def check_call(t: CallTranscript, world: ScriptedWorld) -> None:
    """Every invariant a transport and the journal rely on."""
    summary = t.summary
    assert summary.outcome in OUTCOMES
    assert summary.hangup_step is None or summary.hangup_step in STEPS

    hung_up = t.hung_up_at
    if hung_up is not None:
        # After a hang-up the flow only writes to the journal.
        assert all(isinstance(e, Journal) for e in t.effects[hung_up + 1 :])
        assert summary.hangup_step is not None
    else:
        channel = t.channel_effects()
        assert channel[0] == Answer() and channel.count(Answer()) == 1
        assert channel[-1] == Hangup() and channel.count(Hangup()) == 1
        assert summary.hangup_step is None

    for effect in t.effects:
        if isinstance(effect, Gather | Play):
            for segment in effect.segments:
                if isinstance(segment, Prompt):
                    assert segment.prompt_id in ALL_PROMPT_IDS
                else:
                    assert isinstance(segment, SayTime)
                    assert 0 <= segment.hour < 24 and 0 <= segment.minute < 60
        if isinstance(effect, Gather):
            assert effect.max_digits >= 1 and effect.timeout_s > 0
        if isinstance(effect, Journal):
            json.dumps(dict(effect.detail))

    # A punch only for a company and an active carer code that the directory confirmed.
    companies: set[int] = set()
    carers: set[tuple[int, int]] = set()
    punched = False
    for effect, reply in zip(t.effects, t.replies, strict=True):
        if isinstance(effect, LookupCalledNumber) and reply is not None:
            company = getattr(reply, "company", None)
            if getattr(reply, "kind", "") == "dedicated" and company is not None:
                companies.add(company.company_id)
        if isinstance(effect, LookupCompany) and isinstance(reply, CompanyInfo):
            companies.add(reply.company_id)
        if isinstance(effect, LookupCarer) and isinstance(reply, CarerInfo):
            assert world.carers[(effect.company_id, effect.carer_code)] == reply
            carers.add((effect.company_id, reply.carer_id))
        if isinstance(effect, RecordPunch):
            assert effect.company_id in companies
            assert (effect.company_id, effect.carer_id) in carers
            punched = punched or isinstance(reply, PunchRecorded)
    assert (summary.punch_id is not None) == punched
    assert (summary.outcome == "punch_recorded") == punched


Call = tuple[CallStart, ScriptedWorld, list[Keys | HangUp]]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(calls, flow_settings)
def test_generated_calls_always_end_well(call: Call, s: FlowSettings) -> None:
    """Any keys, hang-ups and failures: a valid outcome, silence after a hang-up, honest punches."""
    start, world, script = call
    check_call(run_scripted_call(start, world, script, s), world)


@settings(max_examples=300, deadline=None)
@given(calls, st.integers(0, 80))
def test_hangup_thrown_at_any_effect_is_survived(call: Call, at: int) -> None:
    """A hang-up thrown at any effect, even a database one, ends the call quietly."""
    start, world, script = call
    check_call(run_scripted_call(start, world, script, hang_up_at=at), world)


@settings(max_examples=200, deadline=None)
@given(calls)
def test_replaying_the_replies_reproduces_the_call(call: Call) -> None:
    """Stored replies fed to a fresh flow give the same effects and summary (Twilio resume)."""
    start, world, script = call
    t = run_scripted_call(start, world, script)
    replayed = replay_call(start, t.replies)
    assert replayed.effects == t.effects
    assert replayed.summary == t.summary and replayed.next_effect is None


@settings(max_examples=60, deadline=None)
@given(calls)
def test_resuming_after_any_prefix_gives_the_next_effect(call: Call) -> None:
    """After any number of stored replies, the replayed flow asks for exactly the next effect."""
    start, world, script = call
    t = run_scripted_call(start, world, script)
    for done in range(len(t.replies)):
        resumed = replay_call(start, t.replies[:done])
        assert resumed.effects == t.effects[:done]
        assert resumed.next_effect == t.effects[done]


def test_a_full_call_replays_from_json_replies() -> None:
    """Replies survive a trip through JSON (as a webhook store keeps them) and still replay."""
    start = CallStart(SAMPLE_SHARED_NUMBER, SAMPLE_CLIENT_FR_LANDLINE)
    t = run_scripted_call(start, WORLD, [keys("123"), keys(SAMPLE_CARER_FR_CODE), keys("2")])
    stored = json.dumps([_encode(r) for r in t.replies])
    replayed = replay_call(start, [_decode(r) for r in json.loads(stored)])
    assert replayed.effects == t.effects and replayed.summary == t.summary


_REPLY_TYPES = {
    cls.__name__: cls
    for cls in (Keys, CalledNumber, CompanyInfo, CarerInfo, ClientInfo, PunchRecorded, HangUp)
}


def _encode(value: object) -> object:
    """A minimal store encoding, as a transport might write it: type name plus fields."""
    if is_dataclass(value) and not isinstance(value, type):
        encoded = {f.name: _encode(getattr(value, f.name)) for f in fields(value)}
        return {"type": type(value).__name__, **encoded}
    return value


def _decode(value: object) -> object:
    if isinstance(value, dict):
        kind = _REPLY_TYPES[value["type"]]
        return kind(**{k: _decode(v) for k, v in value.items() if k != "type"})
    return value
