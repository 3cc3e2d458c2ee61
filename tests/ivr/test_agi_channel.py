"""The FastAGI protocol and channel, driven through StringTransport on an injected task.Clock."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import pytest
from twisted.internet import task
from twisted.internet.address import IPv4Address
from twisted.internet.defer import Deferred
from twisted.internet.error import ConnectionDone
from twisted.internet.testing import MemoryReactor, StringTransport
from twisted.logger import LogLevel, capturedLogs
from twisted.python.failure import Failure

from ivr.agi_channel import (
    FASTAGI_LISTEN_BACKLOG,
    AgiChannel,
    AgiCommandError,
    AgiLimits,
    ChannelHungUp,
    CommandInFlight,
    ConnectionLost,
    FastAGIFactory,
    FastAGIProtocol,
    GetDataResult,
    PlaybackFailed,
    ReplyTimeout,
    StreamResult,
    listen_fastagi,
)
from ivr.agi_wire import Reply, UnsafeArgument

T = TypeVar("T")

ENV = (
    b"agi_network: yes\n"
    b"agi_network_script: telegestion\n"
    b"agi_uniqueid: 1795333838.1\n"
    b"agi_callerid: 0145678912\n"
    b"agi_arg_1: 0800123456\n"
    b"agi_arg_2: 0145678912\n"
    b"\n"
)
DEAD = b"511 Command Not Permitted on a dead channel or intercept routine\n"
PEER = IPv4Address("TCP", "10.1.2.3", 40001)


class Call:
    """One FastAGI connection on a StringTransport; the handler hands its channel to the test."""

    def __init__(
        self,
        limits: AgiLimits | None = None,
        handler: Callable[[AgiChannel], Any] | None = None,
        factory: FastAGIFactory | None = None,
        clock: task.Clock | None = None,
    ) -> None:
        self.clock = clock or task.Clock()
        self.channels: list[AgiChannel] = []
        self.hold: Deferred[None] = Deferred()

        def keep(channel: AgiChannel) -> Deferred[None]:
            self.channels.append(channel)
            return self.hold

        self.factory = factory or FastAGIFactory(handler or keep, clock=self.clock, limits=limits)
        protocol = self.factory.buildProtocol(PEER)
        assert isinstance(protocol, FastAGIProtocol)
        self.protocol = protocol
        self.transport = StringTransport(peerAddress=PEER)
        self.protocol.makeConnection(self.transport)

    def start(self) -> AgiChannel:
        self.feed(ENV)
        assert self.channels, "the handler did not get a channel"
        return self.channels[-1]

    def feed(self, data: bytes) -> None:
        self.protocol.dataReceived(data)

    def sent(self) -> bytes:
        value = self.transport.value()
        self.transport.clear()
        return value

    @property
    def dropped(self) -> bool:
        return bool(self.transport.disconnecting)


def result_of(deferred: Deferred[T]) -> T:
    """The result of a Deferred that must have fired successfully."""
    outcome: list[Any] = []
    deferred.addBoth(outcome.append)
    assert outcome, "the Deferred has not fired"
    if isinstance(outcome[0], Failure):
        outcome[0].raiseException()
    return outcome[0]


def failure_of(deferred: Deferred[Any], *types: type[BaseException]) -> Failure:
    """The failure of a Deferred that must have failed with one of ``types``."""
    outcome: list[Any] = []
    deferred.addBoth(outcome.append)
    assert outcome, "the Deferred has not fired"
    assert isinstance(outcome[0], Failure), f"expected a failure, got {outcome[0]!r}"
    assert outcome[0].check(*types), outcome[0]
    return outcome[0]


def pending(deferred: Deferred[Any]) -> bool:
    fired: list[Any] = []
    deferred.addBoth(lambda r: fired.append(r) or r)
    return not fired


# -- the environment block -------------------------------------------------------------------


def test_handler_gets_the_parsed_environment() -> None:
    """The env block reaches the handler as typed data: script, args, call id."""
    call = Call()
    channel = call.start()
    assert channel.env.network_script == "telegestion"
    assert channel.env.args == ("0800123456", "0145678912")
    assert channel.env.uniqueid == "1795333838.1"
    assert channel.peer == "10.1.2.3:40001"
    assert call.factory.calls_started == 1


def test_environment_split_byte_by_byte_gives_the_same_call() -> None:
    """How TCP cuts the env block does not matter."""
    call = Call()
    for i in range(len(ENV)):
        call.feed(ENV[i : i + 1])
    assert [c.env.uniqueid for c in call.channels] == ["1795333838.1"]


def test_environment_must_arrive_within_its_deadline() -> None:
    """A silent client is dropped when the env timeout expires, and the drop is logged."""
    call = Call(AgiLimits(env_timeout=10.0))
    call.clock.advance(9.9)
    assert not call.dropped
    with capturedLogs() as events:
        call.clock.advance(0.2)
    assert call.dropped
    assert call.transport.disconnected  # aborted, not a polite close
    assert not call.channels
    warnings = [e for e in events if e["log_level"] == LogLevel.warn]
    assert warnings and warnings[0]["peer"] == "10.1.2.3:40001"
    assert "environment" in warnings[0]["reason"]
    assert call.factory.connections_dropped == 1


def test_half_an_environment_is_dropped_at_the_deadline() -> None:
    """A block that starts but never ends is dropped too."""
    call = Call()
    call.feed(b"agi_network: yes\nagi_uniqueid: 1.1\n")
    call.clock.advance(10.0)
    assert call.dropped
    assert not call.channels


def test_a_complete_environment_cancels_the_deadline() -> None:
    """Once the call runs, the env deadline no longer applies."""
    call = Call()
    call.start()
    call.clock.advance(11)
    assert not call.dropped


@pytest.mark.parametrize(
    "garbage",
    [
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
        b"agi_network: yes\nhello there\n\n",
        b"\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\n",
    ],
)
def test_garbage_before_or_in_the_environment_drops_the_connection(garbage: bytes) -> None:
    """Anything but agi_key: value lines drops the connection before any handler runs."""
    call = Call()
    with capturedLogs() as events:
        call.feed(garbage)
    assert call.dropped
    assert not call.channels
    assert any(e.get("peer") == "10.1.2.3:40001" for e in events)


def test_a_giant_line_in_the_environment_drops_the_connection() -> None:
    """A line longer than the limit drops the connection without waiting for its end."""
    call = Call(AgiLimits(max_line_length=1024))
    call.feed(b"agi_network: yes\nagi_x: " + b"a" * 1030)
    assert call.dropped
    assert not call.channels


def test_a_line_at_the_limit_is_accepted() -> None:
    """The limit is inclusive: a value filling it is fine."""
    call = Call(AgiLimits(max_line_length=64))
    line = b"agi_calleridname: " + b"n" * (64 - len(b"agi_calleridname: "))
    call.feed(line + b"\n" + ENV)
    assert not call.dropped
    assert call.channels[0].env.calleridname == "n" * 46


def test_a_giant_line_during_the_call_drops_it_and_fails_the_command() -> None:
    """An overlong reply line ends the call: the command in flight fails with ConnectionLost."""
    call = Call(AgiLimits(max_line_length=1024))
    channel = call.start()
    d = channel.get_variable("X")
    call.feed(b"200 result=1 (" + b"x" * 2000)
    assert call.dropped
    failure_of(d, ConnectionLost)


# -- replies ----------------------------------------------------------------------------------


def test_answer() -> None:
    """ANSWER is sent and '200 result=0' completes it."""
    call = Call()
    channel = call.start()
    d = channel.answer()
    assert call.sent() == b"ANSWER\n"
    assert pending(d)
    call.feed(b"200 result=0\n")
    assert result_of(d) is None


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        (b"200 result=12\n", GetDataResult("12", False)),
        (b"200 result=5678\n", GetDataResult("5678", False)),
        (b"200 result=9 (timeout)\n", GetDataResult("9", True)),
        (b"200 result= (timeout)\n", GetDataResult("", True)),
        (b"200 result=\n", GetDataResult("", False)),
        (b"200 result=*12*\n", GetDataResult("*12*", False)),
    ],
)
def test_get_data_reply_forms(reply: bytes, expected: GetDataResult) -> None:
    """Every GET DATA reply form of the transcripts becomes the right GetDataResult."""
    call = Call()
    channel = call.start()
    d = channel.get_data("telegestion/enter-carer-code", 8000, 6)
    assert call.sent() == b"GET DATA telegestion/enter-carer-code 8000 6\n"
    call.feed(reply)
    assert result_of(d) == expected


@pytest.mark.parametrize(
    ("escape", "reply", "expected"),
    [
        ("0123456789*#", b"200 result=0 endpos=5600\n", StreamResult(None, 5600)),
        ("*#", b"200 result=42 endpos=19040\n", StreamResult("*", 19040)),
        ("", b"200 result=0 endpos=57760\n", StreamResult(None, 57760)),
    ],
)
def test_stream_file_reply_forms(escape: str, reply: bytes, expected: StreamResult) -> None:
    """STREAM FILE quotes its escape digits and returns the key and the position."""
    call = Call()
    channel = call.start()
    d = channel.stream_file("vm-intro", escape)
    assert call.sent() == f'STREAM FILE vm-intro "{escape}"\n'.encode()
    call.feed(reply)
    assert result_of(d) == expected


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        (b"200 result=42\n", "*"),
        (b"200 result=35\n", "#"),
        (b"200 result=0\n", None),
        (b"200 result=55\n", "7"),
    ],
)
def test_wait_for_digit_converts_ascii_codes(reply: bytes, expected: str | None) -> None:
    """42 is '*', 35 is '#', 0 is no key."""
    call = Call()
    channel = call.start()
    d = channel.wait_for_digit(1500)
    assert call.sent() == b"WAIT FOR DIGIT 1500\n"
    call.feed(reply)
    assert result_of(d) == expected


def test_say_datetime_sends_format_and_zone_and_returns_the_key() -> None:
    """SAY DATETIME carries escape digits, format and zone; an escape key comes back."""
    call = Call()
    channel = call.start()
    d = channel.say_datetime(1795333838, "2", "HM", "Europe/Paris")
    assert call.sent() == b'SAY DATETIME 1795333838 "2" HM Europe/Paris\n'
    call.feed(b"200 result=50\n")
    assert result_of(d) == "2"
    with pytest.raises(ValueError):
        channel.say_datetime(0, "", tz="Europe/Paris")


def test_say_digits() -> None:
    """SAY DIGITS sends the digits and an always-quoted escape list."""
    call = Call()
    channel = call.start()
    d = channel.say_digits("0800")
    assert call.sent() == b'SAY DIGITS 0800 ""\n'
    call.feed(b"200 result=0\n")
    assert result_of(d) is None


def test_variables() -> None:
    """SET quotes values with spaces; GET returns the value, None when unset."""
    call = Call()
    channel = call.start()
    d = channel.set_variable("TG_CASE", "a normal")
    assert call.sent() == b'SET VARIABLE TG_CASE "a normal"\n'
    call.feed(b"200 result=1\n")
    assert result_of(d) is None
    d = channel.get_variable("TG_CASE")
    assert call.sent() == b"GET VARIABLE TG_CASE\n"
    call.feed(b"200 result=1 (a normal)\n")
    assert result_of(d) == "a normal"
    d = channel.get_variable("TG_UNSET")
    call.feed(b"200 result=0\n")
    assert result_of(d) is None


def test_a_variable_holding_hangup_is_data() -> None:
    """'(hangup)' as a GET VARIABLE value does not mark the channel hung up."""
    call = Call()
    channel = call.start()
    d = channel.get_variable("LAST_WORD")
    call.feed(b"200 result=1 (hangup)\n")
    assert result_of(d) == "hangup"
    assert not channel.hung_up


def test_get_full_variable() -> None:
    """GET FULL VARIABLE quotes the expression and returns its expansion."""
    call = Call()
    channel = call.start()
    d = channel.get_full_variable("${CALLERID(num)}|${CALLERID(dnid)}")
    assert call.sent() == b'GET FULL VARIABLE "${CALLERID(num)}|${CALLERID(dnid)}"\n'
    call.feed(b"200 result=1 (0145678912|0800123456)\n")
    assert result_of(d) == "0145678912|0800123456"


def test_verbose() -> None:
    """VERBOSE always quotes its message and sends the level."""
    call = Call()
    channel = call.start()
    d = channel.verbose("computing...", 3)
    assert call.sent() == b'VERBOSE "computing..." 3\n'
    call.feed(b"200 result=1\n")
    assert result_of(d) is None


def test_exec_returns_the_application_result() -> None:
    """EXEC returns the application's code; -2 (no such application) is an error."""
    call = Call()
    channel = call.start()
    d = channel.exec_app("Playback", "digits/2")
    assert call.sent() == b"EXEC Playback digits/2\n"
    call.feed(b"200 result=0\n")
    assert result_of(d) == 0
    d = channel.exec_app("NoSuchApplication", "foo")
    call.feed(b"200 result=-2\n")
    failure_of(d, AgiCommandError)


def test_gosub_trying_line_is_skipped() -> None:
    """'100 result=0 Trying...' is not the reply: the 200 that follows is."""
    call = Call()
    channel = call.start()
    d = channel.command("GOSUB sub s 1")
    call.feed(b"100 result=0 Trying...\n")
    assert pending(d)
    call.feed(b"200 result=0 Gosub complete\n")
    assert result_of(d).extra == "Gosub complete"


def test_channel_status() -> None:
    """CHANNEL STATUS returns the state number."""
    call = Call()
    channel = call.start()
    d = channel.channel_status()
    assert call.sent() == b"CHANNEL STATUS\n"
    call.feed(b"200 result=6\n")
    assert result_of(d) == 6


# -- hang-ups ---------------------------------------------------------------------------------


def test_our_hangup_marks_the_channel_and_the_later_hangup_line_is_harmless() -> None:
    """HANGUP answers '200 result=1'; the HANGUP line 40 ms later is only an event."""
    call = Call()
    channel = call.start()
    d = channel.hangup()
    assert call.sent() == b"HANGUP\n"
    call.feed(b"200 result=1\n")
    assert result_of(d) is None
    assert channel.hung_up
    call.clock.advance(0.04)
    call.feed(b"HANGUP\n")
    assert not call.dropped


def test_hangup_on_a_dead_channel_is_not_an_error() -> None:
    """HANGUP answered 511 (the caller was faster) completes normally."""
    call = Call()
    channel = call.start()
    d = channel.hangup()
    call.feed(DEAD)
    assert result_of(d) is None
    assert channel.hung_up


def test_hangup_line_while_idle_marks_the_channel() -> None:
    """Transcript c: HANGUP between commands only flips hung_up."""
    call = Call()
    channel = call.start()
    assert not channel.hung_up
    call.feed(b"HANGUP\n")
    assert channel.hung_up
    d = channel.get_variable("TG_UNSET")
    call.feed(b"200 result=0\n")
    assert result_of(d) is None


@pytest.mark.parametrize(
    "stream",
    [
        b"HANGUP\n200 result=1\n",
        b"HANGUP\n" + b"200 result=1\n",
        b"HAN" + b"GUP\n200 res" + b"ult=1\n",
    ],
)
def test_hangup_line_during_a_command_is_not_its_reply(stream: bytes) -> None:
    """A HANGUP line while a command waits marks the channel; the real reply still completes it."""
    call = Call()
    channel = call.start()
    d = channel.verbose("x")
    half = len(stream) // 2
    call.feed(stream[:half])
    call.feed(stream[half:])
    assert channel.hung_up
    assert result_of(d) is None


def test_hangup_line_right_after_a_reply_in_the_same_segment() -> None:
    """Reply and HANGUP in one segment: the command succeeds and the channel is marked."""
    call = Call()
    channel = call.start()
    d = channel.set_variable("A", "b")
    call.feed(b"200 result=1\nHANGUP\n")
    assert result_of(d) is None
    assert channel.hung_up


def test_dead_channel_reply_fails_with_channel_hung_up() -> None:
    """511 errbacks ChannelHungUp and marks the channel."""
    call = Call()
    channel = call.start()
    d = channel.stream_file("digits/1")
    call.feed(DEAD)
    failure_of(d, ChannelHungUp)
    assert channel.hung_up


def test_minus_one_confirmed_dead_by_the_probe_is_a_hangup() -> None:
    """Transcript b2: GET DATA -1 with no HANGUP line; the CHANNEL STATUS probe answers 511."""
    call = Call()
    channel = call.start()
    d = channel.get_data("beep", 10000, 6)
    call.sent()
    call.feed(b"200 result=-1\n")
    assert pending(d)
    assert call.sent() == b"CHANNEL STATUS\n"
    call.feed(DEAD)
    failure = failure_of(d, ChannelHungUp)
    assert not failure.check(PlaybackFailed)
    assert channel.hung_up


def test_minus_one_then_hangup_line_then_probe_reply() -> None:
    """Transcript b order: -1, the HANGUP line 40 ms later, then the probe's 511."""
    call = Call()
    channel = call.start()
    d = channel.get_data("beep", 10000, 6)
    call.feed(b"200 result=-1\n")
    call.clock.advance(0.04)
    call.feed(b"HANGUP\n")
    assert pending(d)
    call.feed(DEAD)
    failure_of(d, ChannelHungUp)


def test_minus_one_after_a_hangup_line_needs_no_probe() -> None:
    """When the HANGUP line came first, -1 is a hang-up at once: nothing more is sent."""
    call = Call()
    channel = call.start()
    d = channel.stream_file("welcome", "#")
    call.sent()
    call.feed(b"HANGUP\n200 result=-1 endpos=1200\n")
    failure_of(d, ChannelHungUp)
    assert call.sent() == b""


def test_minus_one_on_a_live_channel_is_a_missing_prompt() -> None:
    """Transcript g: -1 endpos=0 and a live probe is PlaybackFailed, logged as critical."""
    call = Call()
    channel = call.start()
    d = channel.stream_file("telegestion/no-such-prompt", "0123456789*#")
    call.sent()
    with capturedLogs() as events:
        call.feed(b"200 result=-1 endpos=0\n")
        assert call.sent() == b"CHANNEL STATUS\n"
        call.feed(b"200 result=6\n")
    failure = failure_of(d, PlaybackFailed)
    assert failure.value.sound == "telegestion/no-such-prompt"  # type: ignore[attr-defined]
    assert not failure.check(ChannelHungUp)
    assert not channel.hung_up
    assert any(
        e["log_level"] == LogLevel.critical and e.get("sound") == "telegestion/no-such-prompt"
        for e in events
    )


def test_get_data_minus_one_on_a_live_channel_is_a_missing_prompt() -> None:
    """GET DATA -1 with a live probe is PlaybackFailed too."""
    call = Call()
    channel = call.start()
    d = channel.get_data("telegestion/no-such-prompt", 1500, 4)
    call.feed(b"200 result=-1\n")
    call.feed(b"200 result=6\n")
    failure_of(d, PlaybackFailed)


def test_wait_for_digit_minus_one_on_a_live_channel_is_a_command_error() -> None:
    """No sound is involved: a live -1 from WAIT FOR DIGIT is reported as a command error."""
    call = Call()
    channel = call.start()
    d = channel.wait_for_digit(1000)
    call.feed(b"200 result=-1\n200 result=6\n")
    failure_of(d, AgiCommandError)


def test_hangup_line_during_the_probe_wins() -> None:
    """A HANGUP line during the probe makes it a hang-up, even if the probe says up."""
    call = Call()
    channel = call.start()
    d = channel.get_data("beep", 1000, 1)
    call.feed(b"200 result=-1\nHANGUP\n200 result=6\n")
    failure_of(d, ChannelHungUp)


# -- command errors ------------------------------------------------------------------------------


def test_unknown_command() -> None:
    """510 errbacks AgiCommandError with the code."""
    call = Call()
    channel = call.start()
    d = channel.command("FOO BAR")
    call.feed(b"510 Invalid or unknown command\n")
    error = failure_of(d, AgiCommandError).value
    assert error.code == 510  # type: ignore[attr-defined]


def test_usage_block_arriving_in_two_segments() -> None:
    """Transcript f: the usage text comes ~43 ms later; the command waits for the block end."""
    call = Call()
    channel = call.start()
    d = channel.command("GET DATA")
    call.feed(b"520-Invalid command syntax.  Proper usage follows:\n")
    assert pending(d)
    call.clock.advance(0.043)
    call.feed(b"Usage line one.\nUsage line two.\n520 End of proper usage.\n")
    error = failure_of(d, AgiCommandError).value
    assert error.code == 520  # type: ignore[attr-defined]
    assert error.usage == "Usage line one.\nUsage line two."  # type: ignore[attr-defined]


def test_one_line_usage_error_does_not_hang() -> None:
    """The one-line 520 fails the command at once."""
    call = Call()
    channel = call.start()
    d = channel.command("SAY NUMBER x y")
    call.feed(b"520 Invalid command syntax.  Proper usage not available.\n")
    error = failure_of(d, AgiCommandError).value
    assert error.code == 520  # type: ignore[attr-defined]
    assert error.usage is None  # type: ignore[attr-defined]
    d = channel.answer()  # the reader is not stuck waiting for a block end
    call.feed(b"200 result=0\n")
    assert result_of(d) is None


# -- the conversation rules -----------------------------------------------------------------------


def test_one_command_in_flight() -> None:
    """A second command before the first reply raises at once and sends nothing."""
    call = Call()
    channel = call.start()
    channel.answer()
    call.sent()
    with pytest.raises(CommandInFlight):
        channel.verbose("too early")
    with pytest.raises(CommandInFlight):
        channel.get_data("beep", 1000, 1)
    assert call.sent() == b""
    assert channel.busy


def test_line_break_in_an_argument_is_refused_before_sending() -> None:
    """An argument with a newline raises and nothing goes out."""
    call = Call()
    channel = call.start()
    with pytest.raises(UnsafeArgument):
        channel.get_variable("A\nHANGUP")
    assert call.sent() == b""
    assert not channel.busy


def test_unsolicited_reply_drops_the_connection() -> None:
    """A reply with no command in flight is a protocol violation."""
    call = Call()
    call.start()
    call.feed(b"200 result=0\n")
    assert call.dropped


def test_garbage_reply_drops_the_connection_and_fails_the_command() -> None:
    """A line that is no reply ends the call with ConnectionLost."""
    call = Call()
    channel = call.start()
    d = channel.answer()
    call.feed(b"hello\n")
    assert call.dropped
    failure_of(d, ConnectionLost)


def test_no_reply_within_the_default_deadline() -> None:
    """A command with no own timeout is dropped after command_timeout with ReplyTimeout."""
    call = Call(AgiLimits(command_timeout=60.0))
    channel = call.start()
    d = channel.verbose("x")
    call.clock.advance(59.9)
    assert pending(d)
    with capturedLogs() as events:
        call.clock.advance(0.2)
    failure_of(d, ReplyTimeout)
    assert call.dropped
    assert any("no reply" in str(e.get("reason", "")) for e in events)


def test_get_data_deadline_is_its_own_timeout_plus_the_prompt_margin() -> None:
    """GET DATA may take its timeout per digit plus the prompt: dropped only after that."""
    call = Call(AgiLimits(prompt_margin=30.0, command_timeout=10.0))
    channel = call.start()
    d = channel.get_data("beep", 8000, 6)
    call.clock.advance(30 + 48 - 0.1)
    assert pending(d)
    call.clock.advance(0.2)
    failure_of(d, ReplyTimeout)


def test_wait_for_digit_deadline_follows_its_timeout() -> None:
    """WAIT FOR DIGIT gets its timeout plus the reply margin."""
    call = Call(AgiLimits(reply_margin=5.0, command_timeout=1.0))
    channel = call.start()
    d = channel.wait_for_digit(4000)
    call.clock.advance(8.9)
    assert pending(d)
    call.clock.advance(0.2)
    failure_of(d, ReplyTimeout)


def test_a_timely_reply_cancels_the_deadline() -> None:
    """After the reply, the old deadline never fires."""
    call = Call(AgiLimits(command_timeout=1.0))
    channel = call.start()
    d = channel.answer()
    call.feed(b"200 result=0\n")
    call.clock.advance(5)
    assert result_of(d) is None
    assert not call.dropped


def test_the_probe_has_its_own_deadline() -> None:
    """An unanswered CHANNEL STATUS probe drops the call too."""
    call = Call(AgiLimits(probe_timeout=2.0))
    channel = call.start()
    d = channel.stream_file("x")
    call.feed(b"200 result=-1 endpos=0\n")
    call.clock.advance(2.1)
    failure_of(d, ReplyTimeout)


def test_end_of_stream_with_a_command_in_flight() -> None:
    """Asterisk closing the socket fails the pending command with ConnectionLost."""
    call = Call()
    channel = call.start()
    d = channel.get_data("beep", 8000, 6)
    call.protocol.connectionLost(Failure(ConnectionDone()))
    failure = failure_of(d, ConnectionLost)
    assert failure.check(ChannelHungUp)
    assert not channel.connected
    failure_of(channel.answer(), ConnectionLost)


def test_close_ends_the_session_and_fails_what_is_pending() -> None:
    """close() closes the transport politely; a pending command fails with ConnectionLost."""
    call = Call()
    channel = call.start()
    d = channel.wait_for_digit(1000)
    channel.close()
    assert call.transport.disconnecting
    assert not call.transport.disconnected  # a close, not an abort
    failure_of(d, ConnectionLost)
    call.feed(b"200 result=0\nHANGUP\n")  # late bytes are ignored
    failure_of(channel.verbose("late"), ConnectionLost)


def test_the_session_closes_when_the_handler_returns() -> None:
    """The server ends the session itself: Asterisk would keep it open forever."""
    call = Call()
    call.start()
    assert not call.transport.disconnecting
    call.hold.callback(None)
    assert call.transport.disconnecting


def test_a_failing_handler_is_logged_and_the_session_closed() -> None:
    """A bug in the handler is logged with the peer and does not leave the line open."""

    def broken(channel: AgiChannel) -> None:
        raise RuntimeError("boom")

    call = Call(handler=broken)
    with capturedLogs() as events:
        call.feed(ENV)
    assert call.transport.disconnecting
    assert any(
        e.get("log_failure") is not None and e.get("peer") == "10.1.2.3:40001" for e in events
    )


def test_a_coroutine_handler_runs() -> None:
    """An async def handler is accepted and its commands flow."""
    seen: list[Any] = []

    async def handler(channel: AgiChannel) -> None:
        await channel.answer()
        seen.append(await channel.get_data("beep", 2000, 4))

    call = Call(handler=handler)
    call.feed(ENV)
    assert call.sent() == b"ANSWER\n"
    call.feed(b"200 result=0\n")
    assert call.sent() == b"GET DATA beep 2000 4\n"
    call.feed(b"200 result= (timeout)\n")
    assert seen == [GetDataResult("", True)]
    assert call.transport.disconnecting


def test_a_stuck_call_is_dropped_after_the_call_timeout() -> None:
    """A handler that never finishes cannot hold the line forever."""
    call = Call(AgiLimits(call_timeout=300.0))
    call.start()
    call.clock.advance(299)
    assert not call.dropped
    call.clock.advance(2)
    assert call.dropped


def test_dropping_one_connection_leaves_the_others_alone() -> None:
    """Garbage on one connection drops it; another call of the same factory goes on."""
    clock = task.Clock()
    first = Call(clock=clock)
    second = Call(factory=first.factory, clock=clock)
    channel_one = first.start()
    second.feed(ENV)  # the shared factory's handler files channels under ``first``
    channel_two = first.channels[-1]
    assert channel_two is not channel_one
    d_one = channel_one.answer()
    d_two = channel_two.answer()
    first.feed(b"\xff garbage\n")
    assert first.dropped
    failure_of(d_one, ConnectionLost)
    assert not second.dropped
    second.feed(b"200 result=0\n")
    assert result_of(d_two) is None
    assert first.factory.connections_dropped == 1


def test_factory_tracks_open_connections() -> None:
    """open_connections counts live connections for /metrics."""
    call = Call()
    assert call.protocol in call.factory.open_connections
    call.protocol.connectionLost(Failure(ConnectionDone()))
    assert call.factory.open_connections == set()
    assert call.protocol.finished.called


def test_listen_uses_an_explicit_backlog() -> None:
    """The FastAGI port listens with a backlog sized for the 8:00 burst, not Twisted's 50."""
    reactor = MemoryReactor()
    factory = FastAGIFactory(lambda channel: None, clock=task.Clock())
    listen_fastagi(reactor, 4573, factory, interface="127.0.0.1")
    port, used_factory, backlog, interface = reactor.tcpServers[0]
    assert (port, used_factory, interface) == (4573, factory, "127.0.0.1")
    assert backlog == FASTAGI_LISTEN_BACKLOG
    assert backlog >= 512


def test_replies_are_typed_with_their_raw_lines() -> None:
    """The low-level command returns the Reply with its wire line for the journal."""
    call = Call()
    channel = call.start()
    d = channel.command("GET DATA beep abc 2")
    call.feed(b"200 result= (timeout)\n")
    reply = result_of(d)
    assert isinstance(reply, Reply)
    assert reply.lines == ("200 result= (timeout)",)
