"""The AGI script's channel on pyst2: replies parsed by our wire grammar, pyst2's edges blunted.

Asterisk's side is a pair of pipes: its replies are written before the channel asks, since the
channel sends one command and then blocks for one reply; what the channel sent is read back
from the other pipe. No process, no signal: pyst2's SIGHUP flag is set by hand.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator

import pytest

from agi_scripts.pyst2_channel import Pyst2Channel
from ivr.agi_wire import ChannelHungUp, ConnectionLost, PlaybackFailed, ReplyTimeout

ENV = (
    b"agi_request: telegestion.agi\n"
    b"agi_channel: PJSIP/trunk-00000001\n"
    b"agi_language: fr\n"
    b"agi_uniqueid: 1795333838.4\n"
    b"agi_callerid: 0145678912\n"
    b"agi_calleridname: DUPONT Ren\xe9 \xc3\n"
    b"agi_arg_1: 0800123456\n"
    b"agi_arg_2: 0145678912\n"
    b"\n"
)
DEAD = b"511 Command Not Permitted on a dead channel or intercept routine\n"


class Asterisk:
    """The other ends of the channel's stdin and stdout."""

    def __init__(self) -> None:
        self.to_script_r, self.to_script_w = os.pipe()
        self.from_script_r, self.from_script_w = os.pipe()

    def say(self, data: bytes) -> None:
        os.write(self.to_script_w, data)

    def heard(self) -> list[str]:
        os.set_blocking(self.from_script_r, False)
        try:
            data = os.read(self.from_script_r, 65536)
        except BlockingIOError:
            data = b""
        return data.decode().splitlines()

    def close(self) -> None:
        for fd in (self.to_script_r, self.to_script_w, self.from_script_r, self.from_script_w):
            with contextlib.suppress(OSError):
                os.close(fd)


@pytest.fixture
def asterisk() -> Iterator[Asterisk]:
    pipes = Asterisk()
    yield pipes
    pipes.close()


def channel_on(asterisk: Asterisk) -> Pyst2Channel:
    """The channel built off the main thread, as pyst2 then installs no signal handler here."""
    asterisk.say(ENV)
    made: list[Pyst2Channel] = []
    worker = threading.Thread(
        target=lambda: made.append(
            Pyst2Channel.on_fds(asterisk.to_script_r, asterisk.from_script_w)
        )
    )
    worker.start()
    worker.join(5)
    return made[0]


def test_the_environment_survives_a_caller_name_that_is_not_utf8(asterisk: Asterisk) -> None:
    """pyst2 reads the block through our reader: bad bytes become U+FFFD, nothing crashes."""
    channel = channel_on(asterisk)
    assert channel.env.uniqueid == "1795333838.4"
    assert channel.env.calleridname == "DUPONT Ren\ufffd \ufffd"
    assert channel.env.args == ("0800123456", "0145678912")
    assert asterisk.heard() == []  # pyst2's debug chatter went nowhere near stdout


def test_answer_is_sent_once_however_often_it_is_asked(asterisk: Asterisk) -> None:
    """The script answers early; the call program's own answer then costs no command."""
    channel = channel_on(asterisk)
    asterisk.say(b"200 result=0\n200 result=0\n")  # a second one would be read, not awaited
    channel.answer()
    channel.answer()
    assert asterisk.heard() == ["ANSWER"]


def test_a_sighup_stops_channel_commands_before_they_are_sent(asterisk: Asterisk) -> None:
    """After SIGHUP the channel reads as hung up and refuses to answer, sending nothing."""
    channel = channel_on(asterisk)
    asterisk.say(b"200 result=0\n")  # would answer an ANSWER sent by mistake
    channel.agi._got_sighup = True  # what pyst2's handler does on SIGHUP
    assert channel.hung_up
    with pytest.raises(ChannelHungUp):
        channel.answer()
    assert asterisk.heard() == []


def test_minus_one_on_a_dead_channel_is_a_hang_up(asterisk: Asterisk) -> None:
    """`result=-1` then 511 to the CHANNEL STATUS probe: the caller hung up (AGISIGHUP=no)."""
    channel = channel_on(asterisk)
    asterisk.say(b"200 result=-1\n" + DEAD)
    with pytest.raises(ChannelHungUp) as raised:
        channel.get_data("telegestion/enter-carer-code", 2000, 5)
    assert not isinstance(raised.value, ConnectionLost)
    assert channel.hung_up
    assert asterisk.heard() == ["GET DATA telegestion/enter-carer-code 2000 5", "CHANNEL STATUS"]


def test_minus_one_on_a_live_channel_is_a_missing_prompt(asterisk: Asterisk) -> None:
    """`result=-1` and a live channel: the sound is missing, which is no hang-up (transcript g)."""
    channel = channel_on(asterisk)
    asterisk.say(b"200 result=-1 endpos=0\n200 result=6\n")
    with pytest.raises(PlaybackFailed):
        channel.stream_file("telegestion/welcome", "0123456789*#")
    assert not channel.hung_up


def test_a_hangup_line_between_replies_is_an_event_not_a_reply(asterisk: Asterisk) -> None:
    """A HANGUP line (FastAGI's habit) marks the channel and the command's reply still counts."""
    channel = channel_on(asterisk)
    asterisk.say(b"HANGUP\n200 result=1\n")
    channel.set_variable("TELEGESTION_STATUS", "caller_hung_up")
    assert channel.hung_up
    assert asterisk.heard() == ["SET VARIABLE TELEGESTION_STATUS caller_hung_up"]


def test_end_of_stream_is_connection_lost(asterisk: Asterisk) -> None:
    """Asterisk closing the pipe while a reply is awaited ends the session, as a hang-up."""
    channel = channel_on(asterisk)
    os.close(asterisk.to_script_w)
    with pytest.raises(ConnectionLost):
        channel.wait_for_digit(1000)
    assert channel.hung_up


def test_a_silent_asterisk_is_a_timeout_not_a_hang(asterisk: Asterisk) -> None:
    """No reply within the command's deadline: ReplyTimeout, never an endless wait."""
    channel = channel_on(asterisk)
    with pytest.raises(ReplyTimeout):
        channel.command("VERBOSE x 1", timeout=0.05)


def test_a_closed_stdout_is_connection_lost_not_a_crash(asterisk: Asterisk) -> None:
    """Asterisk gone from the other end of stdout: ConnectionLost, and the channel is over."""
    channel = channel_on(asterisk)
    os.close(asterisk.from_script_r)
    with pytest.raises(ConnectionLost):
        channel.command("VERBOSE x 1")
    assert channel.hung_up
