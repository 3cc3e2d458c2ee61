"""A command goes on the wire when it is sent, not on the reactor's next turn, and never
overtakes bytes Twisted still holds: over real loopback sockets (``ivr.agi_channel.write_now``).
"""

from __future__ import annotations

import select
import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest
from twisted.internet import reactor

from ivr.agi_channel import AgiChannel, FastAGIFactory, listen_fastagi, write_now

pytestmark = pytest.mark.slow

ENV = b"agi_request: agi://127.0.0.1/telegestion\nagi_uniqueid: 1700000000.1\n\n"


def pump_until(condition: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        reactor.iterate(0.002)  # type: ignore[attr-defined]


def received_without_the_reactor(sock: socket.socket, size: int, timeout: float = 1.0) -> bytes:
    """Read what the server already handed to the kernel; the reactor does not run here."""
    got = b""
    deadline = time.monotonic() + timeout
    while len(got) < size and time.monotonic() < deadline:
        ready, _, _ = select.select([sock], [], [], 0.05)
        if ready:
            got += sock.recv(4096)
    return got


@pytest.fixture
def connected() -> Iterator[tuple[socket.socket, AgiChannel]]:
    """An Asterisk-like client socket connected to our server, and the server's channel."""
    channels: list[AgiChannel] = []

    def handler(channel: AgiChannel) -> Any:
        channels.append(channel)
        from twisted.internet.defer import Deferred

        return Deferred()  # the test drives the channel itself

    factory = FastAGIFactory(handler)
    port = listen_fastagi(reactor, 0, factory, interface="127.0.0.1")
    client = socket.create_connection(("127.0.0.1", port.getHost().port))
    try:
        client.sendall(ENV)
        pump_until(lambda: bool(channels))
        yield client, channels[0]
    finally:
        client.close()
        for protocol in list(factory.open_connections):
            protocol.transport.abortConnection()
        stopped = port.stopListening()
        pump_until(lambda: stopped.called and not factory.open_connections)


def test_a_command_is_sent_before_the_reactor_turns(
    connected: tuple[socket.socket, AgiChannel],
) -> None:
    """The command line reaches Asterisk's socket while the reactor is not running."""
    client, channel = connected
    channel.command("ANSWER")
    assert received_without_the_reactor(client, len(b"ANSWER\n")) == b"ANSWER\n"


def test_bytes_held_by_twisted_go_first(connected: tuple[socket.socket, AgiChannel]) -> None:
    """With bytes still buffered in the transport, a direct write queues behind them."""
    client, channel = connected
    transport = channel._wire.transport
    transport.write(b"VERBOSE first\n")  # buffered until the reactor turns
    write_now(transport, b"VERBOSE second\n")
    assert received_without_the_reactor(client, 1, timeout=0.2) == b""
    expected = b"VERBOSE first\nVERBOSE second\n"
    got = b""
    deadline = time.monotonic() + 5
    while len(got) < len(expected) and time.monotonic() < deadline:
        reactor.iterate(0.002)  # type: ignore[attr-defined]
        got += received_without_the_reactor(client, 1, timeout=0.01)
    assert got == expected
