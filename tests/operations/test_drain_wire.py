"""What a draining worker waits for (``FastAGIFactory.in_progress``) and what it measures on
the wire (``command_timer``), on a StringTransport and a task.Clock."""

from __future__ import annotations

from typing import Any

from twisted.internet import task
from twisted.internet.address import IPv4Address
from twisted.internet.defer import Deferred
from twisted.internet.error import ConnectionDone
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure

from ivr.agi_channel import AgiChannel, FastAGIFactory, FastAGIProtocol, ServerShuttingDown
from telegestion import logs

ENV = (
    b"agi_network: yes\n"
    b"agi_uniqueid: 1795333838.7\n"
    b"agi_arg_1: 0800123456\n"
    b"agi_arg_2: 0145678912\n"
    b"\n"
)
PEER = IPv4Address("TCP", "10.1.2.3", 40001)


class Worker:
    """A factory whose handler hands each channel to the test and finishes when told."""

    def __init__(self) -> None:
        self.channels: list[AgiChannel] = []
        self.journal: Deferred[None] = Deferred()
        self.bound: list[dict[str, str]] = []
        self.errors: list[Failure] = []
        self.timed: list[tuple[str, float]] = []

        async def handler(channel: AgiChannel) -> None:
            self.bound.append(dict(logs.bound_fields()))
            self.channels.append(channel)
            try:
                await channel.answer()
            except Exception:
                self.errors.append(Failure())
            await self.journal  # the journal is written after the session ended

        def run(channel: AgiChannel) -> Deferred[None]:
            from twisted.internet.defer import ensureDeferred

            return ensureDeferred(handler(channel))

        self.factory = FastAGIFactory(run, clock=task.Clock())
        self.factory.command_timer = lambda name, s: self.timed.append((name, s))

    def connect(self) -> tuple[FastAGIProtocol, StringTransport]:
        protocol = self.factory.buildProtocol(PEER)
        transport = StringTransport(peerAddress=PEER)
        protocol.makeConnection(transport)
        return protocol, transport


def fired(d: Deferred[Any]) -> bool:
    return bool(d.called)


def test_a_call_is_in_progress_until_its_journal_is_written() -> None:
    """A connection closed by the caller still counts while its handler writes the journal;
    ``when_idle`` fires only then."""
    worker = Worker()
    idle_before = worker.factory.when_idle()
    assert fired(idle_before)
    protocol, _ = worker.connect()
    protocol.dataReceived(ENV)
    idle = worker.factory.when_idle()
    assert len(worker.factory.in_progress) == 1 and not fired(idle)
    protocol.connectionLost(Failure(ConnectionDone()))
    assert not worker.factory.open_connections
    assert len(worker.factory.in_progress) == 1 and not fired(idle)
    worker.journal.callback(None)
    assert not worker.factory.in_progress and fired(idle)


def test_drop_all_ends_each_session_with_server_shutting_down() -> None:
    """At the end of the grace the command in flight fails with ServerShuttingDown (a
    ConnectionLost: the call program journals a lost connection) and the socket is aborted."""
    worker = Worker()
    protocol, transport = worker.connect()
    protocol.dataReceived(ENV)
    assert worker.factory.drop_all("the server is stopping") == 1
    assert transport.disconnecting or transport.disconnected
    (error,) = worker.errors
    assert error.check(ServerShuttingDown)
    assert worker.factory.connections_dropped == 1


def test_the_handler_runs_with_the_call_id_bound() -> None:
    """The call's coroutine starts in a context carrying ``call`` = agi_uniqueid."""
    worker = Worker()
    protocol, _ = worker.connect()
    protocol.dataReceived(ENV)
    assert worker.bound == [{"call": "1795333838.7"}]
    assert logs.bound_fields() == {}


def test_each_command_reports_the_servers_own_time_once() -> None:
    """The time from the environment block to the first command is reported under its name;
    a command is timed once, not again while it waits for its reply."""
    worker = Worker()
    protocol, transport = worker.connect()
    protocol.dataReceived(ENV)
    assert transport.value() == b"ANSWER\n"
    assert [name for name, _ in worker.timed] == ["ANSWER"]
    assert 0 <= worker.timed[0][1] < 1
