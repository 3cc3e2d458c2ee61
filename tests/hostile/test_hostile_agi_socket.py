"""Hostile FastAGI connections next to a well-behaved call on the same factory.

StringTransport and an injected ``task.Clock``, as in ``tests/ivr/test_agi_channel.py``; what
is added here is arbitrary bytes at the protocol level: the hostile connection is either still
waiting (its deadlines will end it) or dropped with one log line naming its peer and the
reason, ``dataReceived`` never raises into the reactor, and the neighbour's call goes on.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from twisted.internet import task
from twisted.internet.address import IPv4Address
from twisted.internet.defer import Deferred
from twisted.internet.testing import StringTransport
from twisted.logger import capturedLogs, formatEvent
from twisted.python.failure import Failure

from ivr.agi_channel import AgiChannel, AgiLimits, ConnectionLost, FastAGIFactory, FastAGIProtocol

ENV = b"agi_network: yes\nagi_uniqueid: 1795333838.1\nagi_arg_1: 0800123456\n\n"
GOOD_PEER = IPv4Address("TCP", "10.0.0.1", 40001)
BAD_PEER = IPv4Address("TCP", "203.0.113.66", 51234)
LIMITS = AgiLimits(max_line_length=256)


class Pair:
    """One factory, one hostile and one well-behaved connection; every handler's channel kept."""

    def __init__(self) -> None:
        self.clock = task.Clock()
        self.channels: list[AgiChannel] = []
        self.factory = FastAGIFactory(self._handler, clock=self.clock, limits=LIMITS)
        self.good, self.good_io = self._connect(GOOD_PEER)
        self.bad, self.bad_io = self._connect(BAD_PEER)

    def _handler(self, channel: AgiChannel) -> Deferred[None]:
        self.channels.append(channel)
        return Deferred()  # the call lasts until the test is done with it

    def _connect(self, peer: IPv4Address) -> tuple[FastAGIProtocol, StringTransport]:
        protocol = self.factory.buildProtocol(peer)
        assert isinstance(protocol, FastAGIProtocol)
        transport = StringTransport(peerAddress=peer)
        protocol.makeConnection(transport)
        return protocol, transport

    def good_channel(self) -> AgiChannel:
        [channel] = [c for c in self.channels if c.peer == "10.0.0.1:40001"]
        return channel


def fired(deferred: Deferred[Any]) -> Any:
    outcome: list[Any] = []
    deferred.addBoth(outcome.append)
    assert outcome, "the Deferred has not fired"
    return outcome[0]


def drop_lines(events: list[dict[str, Any]]) -> list[str]:
    return [formatEvent(e) for e in events if "Dropping FastAGI connection" in formatEvent(e)]


hostile_stream = st.lists(
    st.one_of(
        st.binary(max_size=80),
        st.sampled_from(
            [
                b"\n",
                b"\r\n",
                b"\x00",
                b"\xff",
                b"agi_x: ",
                b"200 result=0\n",
                b"520-x\n",
                b"HANGUP\n",
                b"x" * 300,
            ]
        ),
    ),
    max_size=30,
)


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(prefix_env=st.booleans(), pieces=hostile_stream)
def test_any_bytes_on_one_connection_leave_the_other_call_alone(
    prefix_env: bool, pieces: list[bytes]
) -> None:
    """Arbitrary segments, before or after a valid environment: typed outcome, neighbour intact."""
    pair = Pair()
    pair.good.dataReceived(ENV)
    channel = pair.good_channel()
    answered = channel.answer()
    with capturedLogs() as events:
        if prefix_env:
            pair.bad.dataReceived(ENV)
        for piece in pieces:
            pair.bad.dataReceived(piece)  # must never raise into the reactor
    if pair.bad_io.disconnecting:
        assert pair.bad.state == "closing"
        [line] = drop_lines(events)
        assert "203.0.113.66:51234" in line
        assert pair.factory.connections_dropped == 1
    else:
        assert pair.bad.state in ("awaiting-env", "in-call")
        assert drop_lines(events) == []
        assert pair.factory.connections_dropped == 0
    assert not pair.good_io.disconnecting
    assert pair.good_io.value() == b"ANSWER\n"
    pair.good.dataReceived(b"200 result=0\n")
    assert fired(answered) is None
    assert pair.good.state == "in-call"


def test_a_reply_line_of_a_megabyte_is_dropped_at_the_limit() -> None:
    """A 1 MiB line in 4 KiB segments: dropped at the first segment past the limit, rest ignored."""
    pair = Pair()
    pair.bad.dataReceived(ENV)
    [bad_channel] = pair.channels
    pending = bad_channel.get_variable("CALLERID(num)")
    with capturedLogs() as events:
        pair.bad.dataReceived(b"200 result=1 (")
        for _ in range(256):
            pair.bad.dataReceived(b"9" * 4096)
    assert pair.bad_io.disconnecting
    assert len(pair.bad._splitter.pending) <= LIMITS.max_line_length + 1
    [line] = drop_lines(events)
    assert "line longer than 256 bytes" in line
    failure = fired(pending)
    assert isinstance(failure, Failure) and failure.check(ConnectionLost)


def test_a_520_block_that_never_ends_is_dropped() -> None:
    """520- followed by usage lines forever: dropped after the block bound, the command fails."""
    pair = Pair()
    pair.good.dataReceived(ENV)
    pair.bad.dataReceived(ENV)
    bad_channel = next(c for c in pair.channels if c.peer.startswith("203."))
    pending = bad_channel.verbose("hello")
    with capturedLogs() as events:
        pair.bad.dataReceived(b"520-Invalid command syntax.  Proper usage follows:\n")
        for _ in range(2000):
            pair.bad.dataReceived(b"520-usage goes on\n")
    assert pair.bad_io.disconnecting
    [line] = drop_lines(events)
    assert "block longer than 500 lines" in line
    assert fired(pending).check(ConnectionLost)
    good = pair.good_channel()
    d = good.verbose("still here")
    pair.good.dataReceived(b"200 result=1\n")
    assert fired(d) is None


@pytest.mark.parametrize(
    ("stream", "reason"),
    [
        (b"agi_a: 1\n" * 300, "longer than 256 lines"),
        (b"agi_network: yes\r\nagi_\x00x: 1\r\n\r\n", "not an agi_ variable"),
        (b"\x00" * 1000, "line longer than 256 bytes"),
        (ENV + b"200 result=0\n", "reply with no command in flight"),
        (ENV + b"HANGUP\n" * 50 + b"\xff\xfe garbage\n", "not a reply"),
    ],
)
def test_each_kind_of_hostile_stream_is_dropped_with_its_reason(stream: bytes, reason: str) -> None:
    """Floods, NULs, unsolicited replies and garbage each give one clear log line and a drop."""
    pair = Pair()
    with capturedLogs() as events:
        pair.bad.dataReceived(stream)
    assert pair.bad_io.disconnecting
    [line] = drop_lines(events)
    assert reason in line and "203.0.113.66:51234" in line
    pair.good.dataReceived(ENV)
    assert not pair.good_io.disconnecting
