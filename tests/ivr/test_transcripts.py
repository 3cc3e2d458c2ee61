"""The real Asterisk transcripts, replayed against our FastAGI protocol and our simulator.

Replay: each transcript's ``<<`` bytes are played to :class:`FastAGIProtocol` in the recorded
order and at the recorded times (on a task.Clock), while a handler issues the recording server's
commands through the typed channel API; the test checks that we send exactly the ``>>`` bytes and
that the handler sees the typed results the transcript implies.

Where our channel sends something the recording server did not (the CHANNEL STATUS probe that
tells a hang-up from a missing prompt after ``result=-1``), the replayer answers it with what
Asterisk answers in that state (facts: 511 on a dead channel, the state 6 on a live one); these
replies are synthesized, and the test declares each one.

Simulator: the same handlers run against :mod:`ivr.asterisk_sim`, with a caller reconstructed
from the transcript's test-caller line; the simulator must send the same replies and notices in
the same order, the same environment block, and end with the same AGISTATUS.
"""

from __future__ import annotations

import os
import re
import shlex
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from twisted.internet import task
from twisted.internet.address import IPv4Address
from twisted.internet.defer import Deferred
from twisted.internet.error import ConnectionDone
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure

from ivr.agi_channel import AgiChannel, FastAGIFactory, FastAGIProtocol
from ivr.agi_wire import (
    AgiCommandError,
    ChannelHungUp,
    ConnectionLost,
    GetDataResult,
    HangupNotice,
    PlaybackFailed,
    Reply,
    ReplyReader,
    StreamResult,
    parse_environment_line,
)
from ivr.asterisk_sim import CallRecord, Pause, SimulatedCall, parse_keys, simulate_call

#: The real Asterisk 22 recordings, copied into the tests from the project's shared folder so
#: that no checkout ever runs without them (``TELEGESTION_AGI_TRANSCRIPTS`` points elsewhere).
TRANSCRIPTS = Path(
    os.environ.get(
        "TELEGESTION_AGI_TRANSCRIPTS", str(Path(__file__).resolve().parent / "asterisk-transcripts")
    )
)
assert len(list(TRANSCRIPTS.glob("*.txt"))) >= 15, f"transcripts missing at {TRANSCRIPTS}"

DEAD = b"511 Command Not Permitted on a dead channel or intercept routine\n"
LIVE = b"200 result=6\n"  # CHANNEL STATUS on an answered channel: AST_STATE_UP
PROBE = b"CHANNEL STATUS\n"

# -- reading a transcript ---------------------------------------------------------------------

_ENTRY = re.compile(r"^\s+(?P<ms>[0-9.]+) ms\s+(?P<kind><<|>>|##) (?P<text>.*)$")


@dataclass(frozen=True)
class Entry:
    at: float
    kind: str
    text: str

    @property
    def data(self) -> bytes:
        return self.text.replace("\\n", "\n").encode("utf-8")


@dataclass
class Transcript:
    name: str
    entries: list[Entry]
    caller: dict[str, Any]
    agistatus: str

    @property
    def env_lines(self) -> list[bytes]:
        data = b"".join(e.data for e in self.entries if e.kind == "<<")
        lines = data.split(b"\n")
        return lines[: lines.index(b"")]

    @property
    def reply_lines(self) -> list[str]:
        """What Asterisk sent after the env block, up to a half-close by the server."""
        lines: list[str] = []
        for entry in self.entries:
            if entry.kind == "##" and "half-closes" in entry.text:
                break
            if entry.kind == "<<":
                lines.extend(entry.data.decode().splitlines())
        return lines[lines.index("") + 1 :]

    @property
    def usage_blocks(self) -> list[str]:
        blocks, current = [], None
        for line in self.reply_lines:
            if line.startswith("520-"):
                current = []
            elif current is not None and line.startswith("520 "):
                blocks.append("\n".join(current))
                current = None
            elif current is not None:
                current.append(line)
        return blocks


def load(name: str) -> Transcript:
    path = next(TRANSCRIPTS.glob(f"{name}-*.txt"))
    entries, caller, status = [], {}, ""
    for line in path.read_text().splitlines():
        match = _ENTRY.match(line)
        if match:
            entries.append(Entry(float(match["ms"]) / 1000, match["kind"], match["text"]))
        elif line.startswith("# caller: "):
            caller = _caller_options(line[len("# caller: ") :])
        elif line.startswith("# AGISTATUS seen by the dialplan: "):
            status = line.rsplit(":", 1)[1].strip()
    return Transcript(name, entries, caller, status)


def _caller_options(command: str) -> dict[str, Any]:
    words = shlex.split(command)[1:]
    options: dict[str, Any] = {"var": [], "withhold": False}
    i = 0
    while i < len(words):
        key = words[i][2:]
        if key == "withhold":
            options["withhold"] = True
            i += 1
        elif key == "var":
            options["var"].append(words[i + 1])
            i += 2
        else:
            options[key] = words[i + 1]
            i += 2
    return options


# -- the recording server's handlers, written against our typed channel API --------------------


@dataclass
class Context:
    clock: task.Clock
    usage_blocks: list[str] | None
    endpos_tolerance: int = 0
    envs: list[dict[str, str]] = field(default_factory=list)

    def sleep(self, seconds: float) -> Deferred[None]:
        return task.deferLater(self.clock, seconds, lambda: None)

    def check_stream(self, result: StreamResult, digit: str | None, endpos: int) -> None:
        assert result.digit == digit
        assert abs(result.endpos - endpos) <= self.endpos_tolerance, result


Handler = Callable[[AgiChannel, Context], Awaitable[None]]


async def case_a(ch: AgiChannel, ctx: Context) -> None:
    assert ch.env.script_query == {"dnis": "0800123456", "cli": "0145678912"}
    assert ch.env.args == ("0800123456", "0145678912")
    await ch.answer()
    await ch.verbose("record_fastagi: case a (normal call)", 1)
    await ch.set_variable("TG_CASE", "a normal")
    assert await ch.get_variable("TG_CASE") == "a normal"
    assert await ch.get_variable("TG_UNSET") is None
    expanded = await ch.get_full_variable("${CALLERID(num)}|${CALLERID(dnid)}|${CHANNEL(language)}")
    assert expanded == "0145678912|0800123456|fr"
    assert await ch.get_data("beep", 8000, 6) == GetDataResult("12", False)
    assert await ch.get_data("beep", 8000, 4) == GetDataResult("5678", False)
    assert await ch.get_data("beep", 3000, 6) == GetDataResult("9", True)
    assert await ch.get_data("beep", 2000, 4) == GetDataResult("", True)
    assert await ch.wait_for_digit(8000) == "*"
    assert await ch.wait_for_digit(1500) is None
    ctx.check_stream(await ch.stream_file("digits/5", "0123456789*#"), None, 5600)
    assert await ch.say_digits("0800") is None
    assert await ch.exec_app("Playback", "digits/2") == 0
    await ch.hangup()
    assert ch.hung_up
    await ctx.sleep(0.45)


async def case_b(ch: AgiChannel, ctx: Context) -> None:
    await ch.answer()
    with pytest.raises(ChannelHungUp) as caught:
        await ch.get_data("beep", 10000, 6)  # the keys typed so far are lost
    assert not caught.errisinstance(PlaybackFailed)
    assert ch.hung_up
    await ctx.sleep(0.5)
    with pytest.raises(ChannelHungUp):
        await ch.stream_file("digits/1")
    await ch.verbose("after hangup", 1)
    await ch.set_variable("TG_AFTER", "yes")
    assert await ch.get_variable("TG_AFTER") == "yes"
    assert await ch.exec_app("Playback", "digits/1") == 0
    with pytest.raises(ChannelHungUp):
        await ch.wait_for_digit(1000)
    await ch.hangup()  # 511: already gone, which is fine


async def case_c(ch: AgiChannel, ctx: Context) -> None:
    await ch.answer()
    await ch.verbose("computing...", 1)
    assert not ch.hung_up
    await ctx.sleep(6.0)
    assert ch.hung_up  # the HANGUP line came while we were idle
    assert await ch.get_variable("TG_UNSET") is None
    await ch.set_variable("TG_STATE", "done")
    with pytest.raises(ChannelHungUp):
        await ch.answer()
    with pytest.raises(ChannelHungUp):
        await ch.get_data("beep", 2000, 4)
    await ch.hangup()


async def case_c2(ch: AgiChannel, ctx: Context) -> None:
    await ch.answer()
    await ctx.sleep(6.0)
    assert ch.hung_up
    assert not ch.connected
    with pytest.raises(ConnectionLost):
        await ch.get_variable("TG_UNSET")


CALLERID_FUNCTIONS = ("num", "name", "num-pres", "name-pres", "num-valid", "dnid")


async def case_d(
    ch: AgiChannel,
    ctx: Context,
    *,
    callerid: str,
    name: str,
    pres: int,
    arg2: str,
    functions: Sequence[str],
) -> None:
    assert (ch.env.callerid, ch.env.calleridname, ch.env.callingpres) == (callerid, name, pres)
    assert ch.env.args == ("0800123456", arg2)
    await ch.answer()
    for function, value in zip(CALLERID_FUNCTIONS, functions, strict=True):
        assert await ch.get_variable(f"CALLERID({function})") == value
    await ch.hangup()
    await ctx.sleep(0.45)


async def case_e(ch: AgiChannel, ctx: Context) -> None:
    await ch.answer()
    await ch.verbose("leaving without HANGUP", 1)
    ch.close()


async def case_e2(ch: AgiChannel, ctx: Context) -> None:
    ctx.envs.append(dict(ch.env.values))  # and return: the session closes without an answer


async def case_f(ch: AgiChannel, ctx: Context) -> None:
    await ch.answer()
    for line in ("FOO BAR", ""):
        with pytest.raises(AgiCommandError) as caught:
            await ch.command(line)
        assert caught.value.code == 510
    assert (await ch.command("answer")).result == "0"  # commands are case-insensitive
    bad = [
        "GET DATA",
        "WAIT FOR DIGIT",
        "WAIT FOR DIGIT abc",
        'SAY DIGITS abc ""',
        "STREAM FILE digits/1",
        "SET VARIABLE ONLYNAME",
        "GET VARIABLE",
    ]
    for index, line in enumerate(bad):
        with pytest.raises(AgiCommandError) as caught:
            await ch.command(line)
        assert caught.value.code == 520
        assert caught.value.usage
        if ctx.usage_blocks is not None:
            assert caught.value.usage == ctx.usage_blocks[index]
    with pytest.raises(AgiCommandError):
        await ch.exec_app("NoSuchApplication", "foo")
    reply = await ch.command("GET DATA beep abc 2")  # timeout 0: Asterisk's 6 s default
    assert (reply.result, reply.data) == ("", "timeout")
    await ch.hangup()
    await ctx.sleep(0.45)


async def case_g(ch: AgiChannel, ctx: Context) -> None:
    await ch.answer()
    with pytest.raises(PlaybackFailed) as caught:
        await ch.stream_file("telegestion/no-such-prompt", "0123456789*#")
    assert caught.value.sound == "telegestion/no-such-prompt"
    assert not ch.hung_up
    ctx.check_stream(await ch.stream_file("digits/1"), None, 3840)
    with pytest.raises(PlaybackFailed):
        await ch.get_data("telegestion/no-such-prompt", 1500, 4)
    assert await ch.exec_app("Playback", "telegestion/no-such-prompt") == 0
    assert await ch.get_variable("PLAYBACKSTATUS") == "FAILED"
    await ch.hangup()
    await ctx.sleep(0.45)


async def case_h(ch: AgiChannel, ctx: Context) -> None:
    await ch.answer()
    assert await ch.get_data("beep", 8000, 6) == GetDataResult("*12*", False)
    assert await ch.get_data("beep", 8000, 6) == GetDataResult("", False)
    assert await ch.wait_for_digit(8000) == "*"
    assert await ch.wait_for_digit(8000) == "#"
    ctx.check_stream(await ch.stream_file("vm-intro", "*#"), "*", 19040)
    ctx.check_stream(await ch.stream_file("vm-intro", "0123456789"), None, 57760)
    await ch.hangup()
    await ctx.sleep(0.45)


async def case_i(ch: AgiChannel, ctx: Context) -> None:
    await ch.answer()
    await ctx.sleep(3.0)
    assert await ch.wait_for_digit(1500) is None  # the '5' typed while idle is lost
    ctx.check_stream(await ch.stream_file("vm-intro"), None, 57760)
    assert await ch.wait_for_digit(1500) is None  # the '6' typed during the prompt is lost
    await ch.hangup()
    await ctx.sleep(0.45)


@dataclass(frozen=True)
class Case:
    name: str
    handler: Handler
    probes: tuple[bytes, ...] = ()


CASES = [
    Case("a", case_a),
    Case("b", case_b, (DEAD,)),
    Case("b2", case_b, (DEAD,)),
    Case("c", case_c),
    Case("c2", case_c2),
    Case(
        "d1",
        partial(
            case_d,
            callerid="unknown",
            name="unknown",
            pres=67,
            arg2="",
            functions=("", "", "allowed_not_screened", "allowed_not_screened", "0", "0800123456"),
        ),
    ),
    Case(
        "d2",
        partial(
            case_d,
            callerid="0145678912",
            name="unknown",
            pres=35,
            arg2="0145678912",
            functions=("0145678912", "", "prohib", "prohib", "1", "0800123456"),
        ),
    ),
    Case(
        "d3",
        partial(
            case_d,
            callerid="anonymous",
            name="Anonymous",
            pres=35,
            arg2="anonymous",
            functions=("anonymous", "Anonymous", "prohib", "prohib", "1", "0800123456"),
        ),
    ),
    Case(
        "d4",
        partial(
            case_d,
            callerid="0612345678",
            name="DUPONT Marie",
            pres=0,
            arg2="0612345678",
            functions=(
                "0612345678",
                "DUPONT Marie",
                "allowed_not_screened",
                "allowed_not_screened",
                "1",
                "0800123456",
            ),
        ),
    ),
    Case("e", case_e),
    Case("e2", case_e2),
    Case("f", case_f),
    Case("g", case_g, (LIVE, LIVE)),
    Case("h", case_h),
    Case("i", case_i),
]


def _run(handler: Handler, ctx: Context, outcome: list[Any]) -> Callable[[AgiChannel], Any]:
    def run(channel: AgiChannel) -> Deferred[Any]:
        done = Deferred.fromCoroutine(handler(channel, ctx))
        done.addBoth(outcome.append)
        return done

    return run


def _raise_if_failed(outcome: list[Any]) -> None:
    if outcome and isinstance(outcome[0], Failure):
        outcome[0].raiseException()


# -- replay -------------------------------------------------------------------------------------


def _as_recorded(data: bytes) -> list[bytes]:
    return [data]


def _byte_by_byte(data: bytes) -> list[bytes]:
    return [data[i : i + 1] for i in range(len(data))]


@pytest.mark.parametrize("split", [_as_recorded, _byte_by_byte], ids=["as-recorded", "bytewise"])
@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_replay_transcript(case: Case, split: Callable[[bytes], list[bytes]]) -> None:
    """Our protocol sends the recorded commands and reads the recorded replies as typed results."""
    transcript = load(case.name)
    clock = task.Clock()
    ctx = Context(clock, transcript.usage_blocks)
    outcome: list[Any] = []
    factory = FastAGIFactory(_run(case.handler, ctx, outcome), clock=clock)
    protocol = factory.buildProtocol(IPv4Address("TCP", "127.0.0.1", 4573))
    assert isinstance(protocol, FastAGIProtocol)
    transport = StringTransport()
    protocol.makeConnection(transport)
    probe_replies = list(case.probes)
    offset = 0

    def answer_probes() -> None:
        nonlocal offset
        while transport.value()[offset:].startswith(PROBE):
            assert probe_replies, f"{case.name}: unexpected CHANNEL STATUS probe"
            offset += len(PROBE)
            protocol.dataReceived(probe_replies.pop(0))

    for entry in transcript.entries:
        clock.advance(max(0.0, entry.at - clock.seconds()))
        answer_probes()
        _raise_if_failed(outcome)
        if entry.kind == "<<":
            for piece in split(entry.data):
                protocol.dataReceived(piece)
            answer_probes()
        elif entry.kind == ">>":
            sent = transport.value()[offset : offset + len(entry.data)]
            _raise_if_failed(outcome)
            assert sent == entry.data, f"{case.name} at {entry.at * 1000:.1f} ms"
            offset += len(entry.data)
        elif "server closes" in entry.text or "server half-closes" in entry.text:
            assert transport.disconnecting, f"{case.name}: still open at {entry.text!r}"
        elif entry.text.startswith("EOF"):
            protocol.connectionLost(Failure(ConnectionDone()))
    clock.advance(60)  # the handler's own pauses end; a stray deadline would fail it
    answer_probes()
    assert outcome, f"{case.name}: the handler did not finish"
    _raise_if_failed(outcome)
    assert transport.value()[offset:] == b"", f"{case.name}: sent more than the recording"
    assert not probe_replies, f"{case.name}: a declared probe was never sent"
    assert transport.disconnecting or protocol.state == "closed"


# -- the simulator against the same handlers --------------------------------------------------

# Sound lengths measured in the transcripts (endpos / 8000, or reply delays).
DURATIONS = {"beep": 0.44, "digits/1": 0.48, "digits/2": 0.6, "digits/5": 0.7, "vm-intro": 7.22}


def _call_from(transcript: Transcript) -> SimulatedCall:
    options = transcript.caller
    env = dict(parse_environment_line(line) for line in transcript.env_lines)
    script = []
    if options.get("dtmf"):
        script = [Pause(float(options.get("delay", 0))), *parse_keys(options["dtmf"])]
    hang_up_after = options.get("hangup-after")
    return SimulatedCall(
        called=options["dnis"],
        caller=options.get("cli") or None,
        caller_name=options.get("cli-name"),
        withheld=options["withhold"],
        script=script,
        hang_up_after=float(hang_up_after) if hang_up_after else None,
        durations=DURATIONS,
        known_sounds=set(DURATIONS),
        variables=dict(v.split("=", 1) for v in options["var"]),
        network_script=env["agi_network_script"],
        uniqueid=env["agi_uniqueid"],
        say_digit_duration=0.625,
    )


def _events(lines: Sequence[str]) -> list[tuple[Any, ...]]:
    """Replies and notices in a comparable form (usage text is Asterisk's, not ours)."""
    reader = ReplyReader()
    events: list[tuple[Any, ...]] = []
    for line in lines:
        event = reader.feed_line(line)
        if isinstance(event, HangupNotice):
            events.append(("HANGUP",))
        elif isinstance(event, Reply):
            shape = "usage block" if event.usage is not None else event.message
            events.append((event.code, event.result, event.data, event.endpos is None, shape))
        elif line.startswith("100 "):
            events.append((100,))
    return events


def _sim_replies(record: CallRecord) -> list[str]:
    """The simulator's replies, without those to our CHANNEL STATUS probes."""
    lines, skip = [], False
    for entry in record.dialogue:
        if entry.kind == "command":
            skip = entry.text == "CHANNEL STATUS"
        elif entry.kind in ("reply", "notice"):
            if skip and entry.kind == "reply":
                skip = False
                continue
            lines.append(entry.text)
    return lines


class _WireTap(FastAGIFactory):
    """Keeps every byte the server received, to check the simulator's record against it."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.received: list[bytes] = []

    def buildProtocol(self, addr: Any) -> FastAGIProtocol:
        protocol = super().buildProtocol(addr)
        receive = protocol.dataReceived

        def tapped(data: bytes) -> None:
            self.received.append(data)
            receive(data)

        protocol.dataReceived = tapped  # type: ignore[method-assign]
        return protocol


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_simulator_answers_like_the_recording(case: Case) -> None:
    """The simulator sends the recorded env block, replies and notices, and ends the same way."""
    transcript = load(case.name)
    clock = task.Clock()
    ctx = Context(clock, usage_blocks=None, endpos_tolerance=800)
    outcome: list[Any] = []
    envs: list[dict[str, str]] = []

    async def handler(channel: AgiChannel, context: Context) -> None:
        envs.append(dict(channel.env.values))
        await case.handler(channel, context)

    factory = _WireTap(_run(handler, ctx, outcome), clock=clock)
    record = simulate_call(factory, _call_from(transcript), clock)
    clock.advance(60)
    assert outcome, f"{case.name}: the handler did not finish"
    _raise_if_failed(outcome)

    recorded_env = dict(parse_environment_line(line) for line in transcript.env_lines)
    assert list(envs[0]) == list(recorded_env)
    ignored = {"agi_request", "agi_channel", "agi_threadid"}
    assert {k: v for k, v in envs[0].items() if k not in ignored} == {
        k: v for k, v in recorded_env.items() if k not in ignored
    }
    received = b"".join(factory.received).decode().split("\n")
    logged = [e.text for e in record.dialogue if e.kind in ("reply", "notice")]
    assert received[received.index("") + 1 : -1] == logged  # the record tells the truth
    assert _events(_sim_replies(record)) == _events(transcript.reply_lines)
    assert record.agistatus == transcript.agistatus
