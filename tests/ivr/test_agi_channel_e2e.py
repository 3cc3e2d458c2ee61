"""End to end over real loopback sockets: the simulator calls our FastAGI server.

The global reactor is pumped with ``reactor.iterate`` (it cannot be restarted between tests);
simulated calls are accelerated so the whole file runs in about a second.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from typing import Any, TypeVar

import pytest
from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.python.failure import Failure

from ivr.agi_channel import AgiChannel, AgiLimits, FastAGIFactory, listen_fastagi
from ivr.asterisk_sim import SimulatedCall, accelerated, parse_keys, place_call, place_calls

pytestmark = pytest.mark.slow

T = TypeVar("T")


def wait(deferred: Deferred[T], timeout: float = 10.0) -> T:
    """Pump the reactor until ``deferred`` fires; return its result or raise its failure."""
    outcome: list[Any] = []
    deferred.addBoth(outcome.append)
    deadline = time.monotonic() + timeout
    while not outcome:
        if time.monotonic() > deadline:
            raise AssertionError(f"nothing after {timeout} s")
        reactor.iterate(0.002)  # type: ignore[attr-defined]
    if isinstance(outcome[0], Failure):
        outcome[0].raiseException()
    return outcome[0]


def pump_until(condition: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        reactor.iterate(0.002)  # type: ignore[attr-defined]


async def punch_like(channel: AgiChannel) -> None:
    """A trivial handler shaped like a punch: answer, read a code, set the status, hang up."""
    await channel.answer()
    await channel.stream_file("telegestion/welcome", "0123456789*#")
    got = await channel.get_data("telegestion/enter-carer-code", 3000, 5)
    await channel.set_variable("TELEGESTION_STATUS", f"carer={got.digits}")
    await channel.hangup()


@pytest.fixture
def server() -> Iterator[tuple[int, FastAGIFactory]]:
    """Our FastAGI server on a free loopback port, with a short env timeout."""
    factory = FastAGIFactory(punch_like, limits=AgiLimits(env_timeout=0.5))
    port = listen_fastagi(reactor, 0, factory, interface="127.0.0.1")
    try:
        yield port.getHost().port, factory
    finally:
        wait(port.stopListening())


def quick(call: SimulatedCall) -> SimulatedCall:
    return accelerated(call, 50)


def test_one_call_over_loopback(server: tuple[int, FastAGIFactory]) -> None:
    """A simulated carer punches over TCP: keys read, status set, hung up by the server."""
    port, factory = server
    call = quick(SimulatedCall("0800123456", "0145678912", script=parse_keys(",12345")))
    record = wait(place_call(reactor, "127.0.0.1", port, call))
    assert record.connected and record.answered
    assert record.variables["TELEGESTION_STATUS"] == "carer=12345"
    assert (record.agistatus, record.hung_up_by, record.server_closed) == (
        "HANGUP",
        "server",
        True,
    )
    assert record.prompts[:2] == ["telegestion/welcome", "telegestion/enter-carer-code"]
    assert factory.calls_started == 1


def test_many_concurrent_calls_over_loopback(server: tuple[int, FastAGIFactory]) -> None:
    """Forty calls at once all complete, each with its own id and its own keys."""
    port, factory = server
    calls = [
        quick(SimulatedCall("0800123456", f"06123456{n:02d}", script=parse_keys(f",{n:05d}")))
        for n in range(40)
    ]
    records = wait(place_calls(reactor, "127.0.0.1", port, calls, concurrency=40), timeout=20)
    assert [r.variables.get("TELEGESTION_STATUS") for r in records] == [
        f"carer={n:05d}" for n in range(40)
    ]
    assert len({r.uniqueid for r in records}) == 40
    pump_until(lambda: not factory.open_connections)


def test_no_server_is_a_failure_record() -> None:
    """Nobody listening: the dialplan would see AGISTATUS=FAILURE; no exception."""
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    free_port = probe.getsockname()[1]
    probe.close()
    record = wait(place_call(reactor, "127.0.0.1", free_port, SimulatedCall("0800", "0145")))
    assert (record.connected, record.agistatus) == (False, "FAILURE")
    assert record.error and "connect" in record.error


def test_garbage_and_silent_clients_are_dropped_without_hurting_a_call(
    server: tuple[int, FastAGIFactory],
) -> None:
    """A garbage client and a silent one are dropped; a real call at the same time completes."""
    port, factory = server
    garbage = socket.create_connection(("127.0.0.1", port))
    silent = socket.create_connection(("127.0.0.1", port))
    garbage.sendall(b"GET / HTTP/1.1\r\n\r\n")
    call = quick(SimulatedCall("0800123456", "0145678912", script=parse_keys(",54321")))
    record = wait(place_call(reactor, "127.0.0.1", port, call))
    assert record.variables["TELEGESTION_STATUS"] == "carer=54321"
    for sock in (garbage, silent):  # both closed by the server (silent after 0.5 s)
        sock.setblocking(False)
        pump_until(lambda s=sock: _closed(s))
        sock.close()
    assert factory.connections_dropped == 2


def _closed(sock: socket.socket) -> bool:
    try:
        return sock.recv(1024) == b""
    except BlockingIOError:
        return False
    except ConnectionResetError:
        return True
