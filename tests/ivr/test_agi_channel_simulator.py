"""The simulated Asterisk: wire behaviour, DTMF semantics, caller scripts, AGISTATUS.

Most tests run whole calls in memory on a task.Clock (``simulate_call``) against our own
FastAGI server; a few drive the simulator directly through a StringTransport to see its writes.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from twisted.internet import task
from twisted.internet.address import IPv4Address
from twisted.internet.testing import StringTransport

from ivr.agi_channel import AgiChannel, FastAGIFactory
from ivr.agi_wire import ChannelHungUp, GetDataResult, PlaybackFailed, StreamResult
from ivr.asterisk_sim import (
    CallRecord,
    HangUp,
    KeyPace,
    Keys,
    Pause,
    SimulatedAsterisk,
    SimulatedCall,
    WaitForInput,
    WaitForPrompt,
    accelerated,
    next_uniqueid,
    parse_keys,
    simulate_call,
    simulate_calls,
)

CALLED = "0800123456"
CALLER = "0145678912"

Handler = Callable[[AgiChannel, task.Clock], Awaitable[Any]]


def run(handler: Handler, call: SimulatedCall) -> tuple[CallRecord, list[Any]]:
    """Run one call in memory; return the record and what the handler returned or raised."""
    clock = task.Clock()
    outcome: list[Any] = []

    async def wrapped(channel: AgiChannel) -> None:
        try:
            outcome.append(await handler(channel, clock))
        except Exception as exc:
            outcome.append(exc)

    record = simulate_call(FastAGIFactory(wrapped, clock=clock), call, clock)
    clock.advance(120)
    return record, outcome


def on_string(call: SimulatedCall) -> tuple[SimulatedAsterisk, StringTransport, task.Clock]:
    """The simulator alone, its writes in a StringTransport."""
    clock = task.Clock()
    sim = SimulatedAsterisk(call, clock)
    transport = StringTransport(peerAddress=IPv4Address("TCP", "127.0.0.1", 4573))
    sim.makeConnection(transport)
    transport.clear()  # the environment block
    return sim, transport, clock


def answered(sim: SimulatedAsterisk, transport: StringTransport, clock: task.Clock) -> None:
    sim.dataReceived(b"ANSWER\n")
    clock.advance(0.021)
    assert transport.value() == b"200 result=0\n"
    transport.clear()


def key_entries(record: CallRecord) -> list[tuple[float, str, str]]:
    return [(e.at, e.text, e.detail) for e in record.dialogue if e.kind == "key"]


def at(record: CallRecord, kind: str, text: str) -> float:
    return next(e.at for e in record.dialogue if e.kind == kind and e.text == text)


# -- the environment block --------------------------------------------------------------------

TRANSCRIPT_A_KEYS = [
    "agi_network",
    "agi_network_script",
    "agi_request",
    "agi_channel",
    "agi_language",
    "agi_type",
    "agi_uniqueid",
    "agi_version",
    "agi_callerid",
    "agi_calleridname",
    "agi_callingpres",
    "agi_callingani2",
    "agi_callington",
    "agi_callingtns",
    "agi_dnid",
    "agi_rdnis",
    "agi_context",
    "agi_extension",
    "agi_priority",
    "agi_enhanced",
    "agi_accountcode",
    "agi_threadid",
    "agi_arg_1",
    "agi_arg_2",
]


def env_of(call: SimulatedCall) -> list[tuple[str, str]]:
    clock = task.Clock()
    sim = SimulatedAsterisk(call, clock)
    transport = StringTransport(peerAddress=IPv4Address("TCP", "127.0.0.1", 4573))
    sim.makeConnection(transport)
    block = transport.value().decode()
    assert block.endswith("\n\n")
    return [tuple(line.split(": ", 1)) for line in block[:-2].split("\n")]  # type: ignore[misc]


def test_environment_block_has_the_keys_of_transcript_a_in_order() -> None:
    """Same keys, same order as a real Asterisk 22, the numbers in agi_arg_1/2."""
    env = env_of(SimulatedCall(CALLED, CALLER, uniqueid="1795333838.1"))
    assert [key for key, _ in env] == TRANSCRIPT_A_KEYS
    values = dict(env)
    assert values["agi_network"] == "yes"
    assert values["agi_network_script"] == "telegestion"
    assert values["agi_request"] == "agi://127.0.0.1:4573/telegestion"
    assert values["agi_uniqueid"] == "1795333838.1"
    assert (values["agi_arg_1"], values["agi_arg_2"]) == (CALLED, CALLER)
    assert (values["agi_callerid"], values["agi_callingpres"]) == (CALLER, "0")
    assert values["agi_dnid"] == CALLED
    assert values["agi_accountcode"] == ""


def test_a_call_without_number_arrives_as_unknown_67() -> None:
    """No number: agi_callerid unknown, presentation 67, empty agi_arg_2 (transcript d1)."""
    values = dict(env_of(SimulatedCall(CALLED, None)))
    assert values["agi_callerid"] == "unknown"
    assert values["agi_calleridname"] == "unknown"
    assert values["agi_callingpres"] == "67"
    assert values["agi_arg_2"] == ""


def test_a_withheld_number_is_present_with_presentation_35() -> None:
    """CLIR keeps the number and marks it restricted (transcript d2)."""
    values = dict(env_of(SimulatedCall(CALLED, CALLER, withheld=True)))
    assert (values["agi_callerid"], values["agi_callingpres"]) == (CALLER, "35")


def test_unique_ids_look_like_asterisk_and_never_repeat() -> None:
    """<epoch>.<sequence>, unique per call: the punch idempotency key relies on it."""
    ids = [next_uniqueid() for _ in range(200)]
    assert all(re.fullmatch(r"[0-9]{10}\.[0-9]+", uid) for uid in ids)
    assert len(set(ids)) == 200


# -- replies on the wire ------------------------------------------------------------------------


def test_answer_takes_its_time() -> None:
    """ANSWER is answered after the answer delay, not at once."""
    sim, transport, clock = on_string(SimulatedCall(CALLED, CALLER))
    sim.dataReceived(b"ANSWER\n")
    assert transport.value() == b""
    clock.advance(0.021)
    assert transport.value() == b"200 result=0\n"


def test_usage_text_arrives_in_a_second_write() -> None:
    """520-: the first line at once, the usage text and end line ~43 ms later."""
    sim, transport, clock = on_string(SimulatedCall(CALLED, CALLER))
    sim.dataReceived(b"GET DATA\n")
    assert transport.value() == b"520-Invalid command syntax.  Proper usage follows:\n"
    clock.advance(0.043)
    rest = transport.value().decode().split("\n")
    assert rest[-2] == "520 End of proper usage."
    assert len(rest) >= 4  # first line, some usage, the end line


def test_commands_without_usage_get_the_one_line_520() -> None:
    """The one-line 520 form exists too, and arrives alone."""
    sim, transport, clock = on_string(SimulatedCall(CALLED, CALLER))
    sim.dataReceived(b"SAY NUMBER\n")
    clock.advance(1)
    assert transport.value() == b"520 Invalid command syntax.  Proper usage not available.\n"


@pytest.mark.parametrize("line", [b"FOO BAR\n", b"\n", b"GET\n"])
def test_unknown_commands_get_510(line: bytes) -> None:
    """Unknown or empty commands are answered 510."""
    sim, transport, _ = on_string(SimulatedCall(CALLED, CALLER))
    sim.dataReceived(line)
    assert transport.value() == b"510 Invalid or unknown command\n"


def test_commands_are_case_insensitive() -> None:
    """'answer' works like 'ANSWER' (transcript f)."""
    sim, transport, clock = on_string(SimulatedCall(CALLED, CALLER))
    sim.dataReceived(b"answer\n")
    clock.advance(0.021)
    assert transport.value() == b"200 result=0\n"


def test_a_new_command_aborts_a_running_one_without_reply() -> None:
    """A command sent during GET DATA aborts it; the aborted one never gets a reply."""
    sim, transport, clock = on_string(SimulatedCall(CALLED, CALLER, default_duration=1.0))
    answered(sim, transport, clock)
    sim.dataReceived(b'GET DATA beep 2000 3\nVERBOSE "x" 1\n')
    clock.advance(30)
    assert transport.value() == b"200 result=1\n"


def test_dead_channel_refuses_channel_commands_but_not_the_others() -> None:
    """After a hang-up: 511 for channel commands, 200 for VERBOSE, variables and EXEC."""
    call = SimulatedCall(CALLED, CALLER, hang_up_after=0.5)
    sim, transport, clock = on_string(call)
    answered(sim, transport, clock)
    clock.advance(1)
    assert transport.value() == b"HANGUP\n"  # idle: the notice comes at once
    transport.clear()
    dead = b"511 Command Not Permitted on a dead channel or intercept routine\n"
    for line in (
        b"ANSWER",
        b'STREAM FILE digits/1 ""',
        b"GET DATA beep 2000 4",
        b"WAIT FOR DIGIT 1000",
        b"CHANNEL STATUS",
        b"HANGUP",
    ):
        sim.dataReceived(line + b"\n")
        assert transport.value() == dead, line
        transport.clear()
    for line, reply in (
        (b'VERBOSE "after hangup" 1', b"200 result=1\n"),
        (b"SET VARIABLE TG_AFTER yes", b"200 result=1\n"),
        (b"GET VARIABLE TG_AFTER", b"200 result=1 (yes)\n"),
        (b"EXEC Playback digits/1", b"200 result=0\n"),
        (b"EXEC NoSuchApplication foo", b"200 result=-2\n"),
    ):
        sim.dataReceived(line + b"\n")
        assert transport.value() == reply, line
        transport.clear()


def test_gosub_sends_trying_before_its_reply() -> None:
    """'100 result=0 Trying...' then the real reply; our channel returns the latter."""

    async def handler(channel: AgiChannel, clock: task.Clock) -> Any:
        return await channel.command("GOSUB sub s 1")

    record, outcome = run(handler, SimulatedCall(CALLED, CALLER))
    assert record.replies[:2] == ["100 result=0 Trying...", "200 result=0 Gosub complete"]
    assert outcome[0].extra == "Gosub complete"


# -- DTMF ---------------------------------------------------------------------------------------


def test_keys_typed_over_a_get_data_prompt_count() -> None:
    """The carer types the company code over the prompt: GET DATA gets every key."""

    async def handler(channel: AgiChannel, clock: task.Clock) -> GetDataResult:
        await channel.answer()
        return await channel.get_data("telegestion/enter-company-code", 5000, 3)

    call = SimulatedCall(
        CALLED,
        CALLER,
        script=[WaitForPrompt("enter-company-code"), Pause(0.3), Keys("042")],
        durations={"telegestion/enter-company-code": 3.0},
    )
    record, outcome = run(handler, call)
    assert outcome == [GetDataResult("042", False)]
    prompt_start = at(record, "prompt", "telegestion/enter-company-code")
    assert key_entries(record)[0][0] < prompt_start + 3.0  # typed while the prompt played
    assert record.keys_lost == ""


def test_keys_typed_while_idle_are_lost() -> None:
    """Transcript i: a key while no command reads keys is gone; the next read times out."""

    async def handler(channel: AgiChannel, clock: task.Clock) -> Any:
        await channel.answer()
        await task.deferLater(clock, 3.0, lambda: None)
        return await channel.wait_for_digit(1500)

    record, outcome = run(handler, SimulatedCall(CALLED, CALLER, script=[Pause(1), Keys("5")]))
    assert outcome == [None]
    assert record.keys_lost == "5"


def test_keys_during_a_prompt_without_escape_digits_are_lost() -> None:
    """STREAM FILE with no escape digits ignores keys; they are not kept for later."""

    async def handler(channel: AgiChannel, clock: task.Clock) -> Any:
        await channel.answer()
        played = await channel.stream_file("vm-intro")
        return played, await channel.wait_for_digit(1500)

    call = SimulatedCall(CALLED, CALLER, script=[Pause(1), Keys("6")], durations={"vm-intro": 7.22})
    record, outcome = run(handler, call)
    assert outcome == [(StreamResult(None, 57760), None)]
    assert record.keys_lost == "6"


def test_an_escape_key_cuts_the_prompt_and_is_returned() -> None:
    """Transcript h: '*' during STREAM FILE "*#" stops it; endpos is where it stopped."""

    async def handler(channel: AgiChannel, clock: task.Clock) -> StreamResult:
        await channel.answer()
        return await channel.stream_file("vm-intro", "*#")

    call = SimulatedCall(
        CALLED,
        CALLER,
        script=[Pause(2.0), Keys("*")],
        durations={"vm-intro": 7.22},
        answer_delay=0.0,
    )
    record, outcome = run(handler, call)
    assert outcome[0].digit == "*"
    assert outcome[0].endpos == (2.0 + 0.12) * 8000
    assert record.keys_read == "*"


def test_get_data_hash_alone_and_star_kept() -> None:
    """'#' before any key is an empty entry without timeout; '*' is an ordinary key."""

    async def handler(channel: AgiChannel, clock: task.Clock) -> list[GetDataResult]:
        await channel.answer()
        first = await channel.get_data("beep", 8000, 6)
        second = await channel.get_data("beep", 8000, 6)
        return [first, second]

    call = SimulatedCall(
        CALLED, CALLER, script=[Keys("*12*#"), WaitForInput(), Keys("#")], durations={"beep": 0.44}
    )
    _, outcome = run(handler, call)
    assert outcome == [[GetDataResult("*12*", False), GetDataResult("", False)]]


def test_get_data_returns_as_soon_as_the_last_key_arrives() -> None:
    """At max digits GET DATA answers at once, without waiting for a timeout."""

    async def handler(channel: AgiChannel, clock: task.Clock) -> GetDataResult:
        await channel.answer()
        return await channel.get_data("beep", 8000, 4)

    record, outcome = run(handler, SimulatedCall(CALLED, CALLER, script=[Keys("5678")]))
    assert outcome == [GetDataResult("5678", False)]
    last_key = key_entries(record)[-1][0]
    assert at(record, "reply", "200 result=5678") == last_key


def test_get_data_timeout_starts_when_the_prompt_ends() -> None:
    """No key: the reply comes prompt length + timeout after the command (2.44 s, transcript a)."""

    async def handler(channel: AgiChannel, clock: task.Clock) -> GetDataResult:
        await channel.answer()
        return await channel.get_data("beep", 2000, 4)

    record, outcome = run(handler, SimulatedCall(CALLED, CALLER, durations={"beep": 0.44}))
    assert outcome == [GetDataResult("", True)]
    sent = at(record, "command", "GET DATA beep 2000 4")
    assert at(record, "reply", "200 result= (timeout)") == pytest.approx(sent + 2.44)


def test_get_data_times_out_between_keys() -> None:
    """Keys then silence: the keys so far come back with (timeout)."""

    async def handler(channel: AgiChannel, clock: task.Clock) -> GetDataResult:
        await channel.answer()
        return await channel.get_data("beep", 3000, 6)

    _, outcome = run(handler, SimulatedCall(CALLED, CALLER, script=[Pause(1), Keys("9")]))
    assert outcome == [GetDataResult("9", True)]


def test_wait_for_digit_returns_ascii_codes_on_the_wire() -> None:
    """WAIT FOR DIGIT: '*' is 42 and '#' is 35 on the wire; no key is 0."""

    async def handler(channel: AgiChannel, clock: task.Clock) -> list[str | None]:
        await channel.answer()
        return [await channel.wait_for_digit(3000) for _ in range(3)]

    call = SimulatedCall(CALLED, CALLER, script=[Keys("*"), WaitForInput(), Keys("#")])
    record, outcome = run(handler, call)
    assert outcome == [["*", "#", None]]
    assert "200 result=42" in record.replies
    assert "200 result=35" in record.replies


def test_keys_follow_the_pace() -> None:
    """Each key sounds 120 ms and the next starts 250 ms after (the transcripts' SendDTMF)."""

    async def handler(channel: AgiChannel, clock: task.Clock) -> GetDataResult:
        await channel.answer()
        return await channel.get_data("beep", 8000, 5)

    record, _ = run(handler, SimulatedCall(CALLED, CALLER, script=[Keys("12345")]))
    times = [t for t, _, _ in key_entries(record)]
    assert [round(b - a, 6) for a, b in itertools.pairwise(times)] == [0.37] * 4
    assert times[0] == pytest.approx(0.021 + 0.12)


def test_a_custom_pace() -> None:
    """A slower carer's pace is honoured."""

    async def handler(channel: AgiChannel, clock: task.Clock) -> GetDataResult:
        await channel.answer()
        return await channel.get_data("beep", 8000, 2)

    call = SimulatedCall(CALLED, CALLER, script=[Keys("12", pace=KeyPace(0.2, 0.4))])
    record, _ = run(handler, call)
    times = [t for t, _, _ in key_entries(record)]
    assert times[1] - times[0] == pytest.approx(0.6)


def test_careful_carer_waits_for_the_end_of_each_prompt() -> None:
    """WaitForInput(after_prompt=True) types only once the GET DATA prompt has finished."""

    async def handler(channel: AgiChannel, clock: task.Clock) -> GetDataResult:
        await channel.answer()
        return await channel.get_data("telegestion/enter-carer-code", 5000, 5)

    call = SimulatedCall(
        CALLED,
        CALLER,
        script=parse_keys(",12345"),
        durations={"telegestion/enter-carer-code": 2.5},
    )
    record, outcome = run(handler, call)
    assert outcome == [GetDataResult("12345", False)]
    prompt_end = at(record, "prompt", "telegestion/enter-carer-code") + 2.5
    assert key_entries(record)[0][0] >= prompt_end


def test_hurried_carer_types_over_the_prompt() -> None:
    """WaitForInput() types as soon as keys are read, cutting the prompt."""

    async def handler(channel: AgiChannel, clock: task.Clock) -> GetDataResult:
        await channel.answer()
        return await channel.get_data("telegestion/enter-carer-code", 5000, 5)

    call = SimulatedCall(
        CALLED,
        CALLER,
        script=parse_keys(">12345"),
        durations={"telegestion/enter-carer-code": 2.5},
    )
    record, outcome = run(handler, call)
    assert outcome == [GetDataResult("12345", False)]
    prompt_end = at(record, "prompt", "telegestion/enter-carer-code") + 2.5
    assert key_entries(record)[0][0] < prompt_end


# -- hang-ups and AGISTATUS ----------------------------------------------------------------------


def test_caller_hangs_up_during_get_data() -> None:
    """Transcript b: -1 for GET DATA at the hang-up, the HANGUP line 40 ms later."""

    async def handler(channel: AgiChannel, clock: task.Clock) -> Any:
        await channel.answer()
        try:
            await channel.get_data("beep", 10000, 6)
        except ChannelHungUp:
            await task.deferLater(clock, 0.5, lambda: None)
            return channel.hung_up
        return None

    call = SimulatedCall(CALLED, CALLER, script=[Pause(1), Keys("12")], hang_up_after=4.0)
    record, outcome = run(handler, call)
    assert outcome == [True]
    minus_one = at(record, "reply", "200 result=-1")
    assert at(record, "notice", "HANGUP") == pytest.approx(minus_one + 0.040)
    assert minus_one == pytest.approx(0.021 + 4.0)
    assert (record.agistatus, record.hung_up_by) == ("HANGUP", "caller")
    assert record.server_closed


def test_agisighup_no_sends_no_hangup_line() -> None:
    """Transcript b2: with AGISIGHUP=no only -1 and the 511s tell the server."""

    async def handler(channel: AgiChannel, clock: task.Clock) -> Any:
        await channel.answer()
        try:
            await channel.get_data("beep", 10000, 6)
        except ChannelHungUp:
            await task.deferLater(clock, 0.5, lambda: None)

    call = SimulatedCall(CALLED, CALLER, hang_up_after=4.0, variables={"AGISIGHUP": "no"})
    record, _ = run(handler, call)
    assert "HANGUP" not in record.replies
    assert "200 result=-1" in record.replies
    assert record.agistatus == "HANGUP"


def test_agiexitonhangup_sends_hangup_twice_and_closes() -> None:
    """Transcript c2: with AGIEXITONHANGUP=yes Asterisk ends the session itself."""

    async def handler(channel: AgiChannel, clock: task.Clock) -> None:
        await channel.answer()
        await task.deferLater(clock, 6.0, lambda: None)

    call = SimulatedCall(CALLED, CALLER, hang_up_after=3.0, variables={"AGIEXITONHANGUP": "yes"})
    record, _ = run(handler, call)
    assert record.replies == ["200 result=0", "HANGUP", "HANGUP"]
    assert not record.server_closed
    assert record.ended_at == pytest.approx(3.021)


def test_server_hangup_is_answered_then_notified() -> None:
    """Transcript a: our HANGUP gets '200 result=1', then the HANGUP line 40 ms later."""

    async def handler(channel: AgiChannel, clock: task.Clock) -> None:
        await channel.answer()
        await channel.set_variable("TELEGESTION_STATUS", "punch_recorded")
        await channel.hangup()
        await task.deferLater(clock, 0.5, lambda: None)

    record, _ = run(handler, SimulatedCall(CALLED, CALLER))
    assert record.replies[-2:] == ["200 result=1", "HANGUP"]
    assert at(record, "notice", "HANGUP") == pytest.approx(at(record, "command", "HANGUP") + 0.04)
    assert (record.agistatus, record.hung_up_by) == ("HANGUP", "server")
    assert record.variables["TELEGESTION_STATUS"] == "punch_recorded"
    assert record.talk_seconds == pytest.approx(0.0)


def test_server_closing_with_the_channel_up_is_success() -> None:
    """Transcript e: closing without HANGUP lets the dialplan go on with SUCCESS."""

    async def handler(channel: AgiChannel, clock: task.Clock) -> None:
        await channel.answer()
        channel.close()

    record, _ = run(handler, SimulatedCall(CALLED, CALLER))
    assert (record.agistatus, record.hung_up_by, record.server_closed) == ("SUCCESS", None, True)


def test_a_missing_stream_file_makes_failure_stick() -> None:
    """Transcript g: STREAM FILE of a missing sound makes AGISTATUS FAILURE despite HANGUP."""

    async def handler(channel: AgiChannel, clock: task.Clock) -> Any:
        await channel.answer()
        try:
            await channel.stream_file("telegestion/no-such-prompt", "0123456789*#")
        except PlaybackFailed as exc:
            await channel.hangup()
            return exc.sound
        return None

    call = SimulatedCall(CALLED, CALLER, known_sounds={"telegestion/welcome"})
    record, outcome = run(handler, call)
    assert outcome == ["telegestion/no-such-prompt"]
    assert "200 result=-1 endpos=0" in record.replies
    assert record.agistatus == "FAILURE"


def test_a_missing_get_data_prompt_does_not_make_failure() -> None:
    """GET DATA of a missing sound answers -1 but the dialplan still sees HANGUP after ours."""

    async def handler(channel: AgiChannel, clock: task.Clock) -> Any:
        await channel.answer()
        try:
            await channel.get_data("telegestion/no-such-prompt", 1500, 4)
        except PlaybackFailed:
            await channel.hangup()

    call = SimulatedCall(CALLED, CALLER, known_sounds={"beep"})
    record, _ = run(handler, call)
    assert "200 result=-1" in record.replies
    assert record.agistatus == "HANGUP"


def test_exec_playback_of_a_missing_sound_sets_playbackstatus() -> None:
    """EXEC Playback of a missing sound answers 0 and sets PLAYBACKSTATUS=FAILED."""

    async def handler(channel: AgiChannel, clock: task.Clock) -> Any:
        await channel.answer()
        code = await channel.exec_app("Playback", "telegestion/no-such-prompt")
        return code, await channel.get_variable("PLAYBACKSTATUS")

    _, outcome = run(handler, SimulatedCall(CALLED, CALLER, known_sounds={"beep"}))
    assert outcome == [(0, "FAILED")]


def test_a_server_that_never_closes_is_given_up_on() -> None:
    """After a hang-up the simulator closes a session the server left open, and says so."""

    async def handler(channel: AgiChannel, clock: task.Clock) -> None:
        await channel.answer()
        await task.deferLater(clock, 600, lambda: None)

    call = SimulatedCall(CALLED, CALLER, hang_up_after=1.0, max_linger_after_hangup=30.0)
    record, _ = run(handler, call)
    assert not record.server_closed
    assert record.ended_at == pytest.approx(0.021 + 1.0 + 30.0)
    assert any("left the session open" in e.text for e in record.dialogue if e.kind == "note")


def test_an_unanswered_call_is_abandoned_by_the_caller() -> None:
    """A server that never answers: the caller hangs up after the ring timeout."""

    async def handler(channel: AgiChannel, clock: task.Clock) -> None:
        await task.deferLater(clock, 100, lambda: None)

    record, _ = run(handler, SimulatedCall(CALLED, CALLER, ring_timeout=20.0))
    assert not record.answered
    assert (record.hung_up_by, record.agistatus) == ("caller", "HANGUP")
    assert record.hung_up_at == pytest.approx(20.0)


def test_the_absolute_timeout_hangs_up() -> None:
    """The dialplan's TIMEOUT(absolute) ends a call that lasts too long."""

    async def handler(channel: AgiChannel, clock: task.Clock) -> None:
        await channel.answer()
        while True:
            await channel.wait_for_digit(5000)

    call = SimulatedCall(CALLED, CALLER, max_call_seconds=60.0)
    record, outcome = run(handler, call)
    assert record.hung_up_by == "timeout"
    assert record.hung_up_at == pytest.approx(60.0)
    assert isinstance(outcome[0], ChannelHungUp)


def test_caller_hangs_up_during_the_readback() -> None:
    """A carer hanging up during a prompt: STREAM FILE answers -1 with the position reached."""

    async def handler(channel: AgiChannel, clock: task.Clock) -> Any:
        await channel.answer()
        try:
            await channel.stream_file("telegestion/arrival-recorded", "2")
        except ChannelHungUp:
            return "hung up"
        return "played"

    call = SimulatedCall(
        CALLED,
        CALLER,
        script=[WaitForPrompt("arrival-recorded"), HangUp(after=0.5)],
        durations={"telegestion/arrival-recorded": 2.0},
    )
    record, outcome = run(handler, call)
    assert outcome == ["hung up"]
    assert "200 result=-1 endpos=4000" in record.replies


# -- scripts, records, many calls ---------------------------------------------------------------


def test_parse_keys() -> None:
    """The compact key language of the command line."""
    assert parse_keys("12#Ww,5>6H") == [
        Keys("12#"),
        Pause(1.0),
        Pause(0.5),
        WaitForInput(after_prompt=True),
        Keys("5"),
        WaitForInput(),
        Keys("6"),
        HangUp(),
    ]
    with pytest.raises(ValueError):
        parse_keys("12x")
    with pytest.raises(ValueError):
        Keys("1a")


def test_accelerated_shrinks_simulator_times_only() -> None:
    """accelerated() divides the simulator's durations, not the server's timeouts."""
    call = SimulatedCall(
        CALLED,
        CALLER,
        script=[Pause(2.0), Keys("1", pace=KeyPace(0.2, 0.4)), HangUp(after=1.0)],
        durations={"welcome": 3.0},
        hang_up_after=10.0,
    )
    fast = accelerated(call, 10)
    assert fast.script == (Pause(0.2), Keys("1", pace=KeyPace(0.02, 0.04)), HangUp(after=0.1))
    assert fast.durations == {"welcome": 0.3}
    assert fast.hang_up_after == 1.0
    assert fast.pace == KeyPace(0.012, 0.025)
    assert fast.default_duration == pytest.approx(0.2)


def test_say_datetime_is_spoken_in_the_requested_zone() -> None:
    """The record shows the time SAY DATETIME would speak, in the given zone."""

    async def handler(channel: AgiChannel, clock: task.Clock) -> Any:
        await channel.answer()
        return await channel.say_datetime(1795330980, "", "HM", "Europe/Paris")

    record, outcome = run(handler, SimulatedCall(CALLED, CALLER))
    assert outcome == [None]
    spoken = next(e for e in record.dialogue if e.kind == "prompt" and e.text == "say:datetime")
    assert spoken.detail == "2026-11-22 08:03 Europe/Paris"


def test_many_calls_in_memory() -> None:
    """simulate_calls runs calls side by side; records come back in order, ids distinct."""
    clock = task.Clock()

    async def handler(channel: AgiChannel) -> None:
        await channel.answer()
        got = await channel.get_data("telegestion/enter-carer-code", 5000, 5)
        await channel.set_variable("TELEGESTION_STATUS", got.digits)
        await channel.hangup()

    calls = [
        SimulatedCall(CALLED, f"01456789{n:02d}", script=parse_keys(f">{n:05d}")) for n in range(25)
    ]
    factory = FastAGIFactory(handler, clock=clock)
    records = simulate_calls(factory, calls, clock, stagger=0.5)
    assert [r.variables["TELEGESTION_STATUS"] for r in records] == [f"{n:05d}" for n in range(25)]
    assert len({r.uniqueid for r in records}) == 25
    assert records[10].started_at - records[0].started_at == pytest.approx(5.0)
    assert factory.calls_started == 25
    assert factory.open_connections == set()


def test_render_shows_prompts_keys_and_status() -> None:
    """The human rendering names prompts, keys and the outcome; wire=True adds every line."""

    async def handler(channel: AgiChannel, clock: task.Clock) -> None:
        await channel.answer()
        await channel.get_data("telegestion/enter-carer-code", 5000, 5)
        await channel.set_variable("TELEGESTION_STATUS", "punch_recorded")
        await channel.hangup()

    record, _ = run(handler, SimulatedCall(CALLED, CALLER, script=parse_keys(">12345")))
    text = record.render()
    assert "prompt  telegestion/enter-carer-code" in text
    assert "key     1  (read by GET DATA)" in text
    assert text.splitlines()[-1].startswith("AGISTATUS=HANGUP  TELEGESTION_STATUS=punch_recorded")
    assert "GET DATA" not in text.replace("(read by GET DATA)", "")
    assert ">>      GET DATA telegestion/enter-carer-code 5000 5" in record.render(wire=True)


def test_a_giant_line_from_the_server_ends_the_simulated_call() -> None:
    """The simulator protects itself too: an endless line closes the session with an error."""
    sim, transport, _ = on_string(SimulatedCall(CALLED, CALLER))
    sim.dataReceived(b"VERBOSE " + b"x" * (70 * 1024))
    assert transport.disconnecting


def test_the_channel_language_can_be_switched() -> None:
    """SET VARIABLE CHANNEL(language) changes what CHANNEL(language) reads back."""

    async def handler(channel: AgiChannel, clock: task.Clock) -> Any:
        before = await channel.get_variable("CHANNEL(language)")
        await channel.set_variable("CHANNEL(language)", "en")
        return before, await channel.get_full_variable("${CHANNEL(language)}")

    _, outcome = run(handler, SimulatedCall(CALLED, CALLER, language="fr"))
    assert outcome == [("fr", "en")]
