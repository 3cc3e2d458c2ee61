"""The simulated Asterisk in classic AGI mode: a script on pipes, SIGHUP instead of a HANGUP line.

The simulator is driven directly through a StringTransport (its writes to the script's stdin) on
a task.Clock; the process driver is stood in for by a counter of SIGHUPs and by calling
``script_exited`` where the real driver would see the process end.
"""

from __future__ import annotations

import pytest
from twisted.internet import task
from twisted.internet.address import IPv4Address
from twisted.internet.testing import StringTransport

from ivr.asterisk_sim import CallRecord, SimulatedAsterisk, SimulatedCall

CALLED = "0800123456"
CALLER = "0145678912"


class Script:
    """The simulator in classic mode with what a process driver would see of it."""

    def __init__(self, call: SimulatedCall) -> None:
        self.clock = task.Clock()
        self.sighups = 0
        self.sim = SimulatedAsterisk(call, self.clock, on_sighup=self._sighup)
        self.transport = StringTransport(peerAddress=IPv4Address("TCP", "127.0.0.1", 0))
        self.records: list[CallRecord] = []
        self.sim.finished.addCallback(self.records.append)
        self.sim.makeConnection(self.transport)

    def _sighup(self) -> None:
        self.sighups += 1

    def env(self) -> list[tuple[bytes, bytes]]:
        block = self.transport.value()
        self.transport.clear()
        assert block.endswith(b"\n\n")
        return [tuple(line.split(b": ", 1)) for line in block[:-2].split(b"\n")]  # type: ignore[misc]

    def send(self, line: bytes, then: float = 0.0) -> bytes:
        self.sim.dataReceived(line + b"\n")
        self.clock.advance(then)
        out = self.transport.value()
        self.transport.clear()
        return out

    def answered(self) -> None:
        self.env()
        assert self.send(b"ANSWER", 0.021) == b"200 result=0\n"


def classic(**kw: object) -> SimulatedCall:
    return SimulatedCall(CALLED, CALLER, network=False, **kw)  # type: ignore[arg-type]


def test_classic_environment_has_no_network_lines_and_names_the_script() -> None:
    """Same block as FastAGI without agi_network*; agi_request is the script's name."""
    env = dict(Script(classic(uniqueid="1795333838.7")).env())
    assert b"agi_network" not in env and b"agi_network_script" not in env
    assert env[b"agi_request"] == b"telegestion.agi"
    assert env[b"agi_uniqueid"] == b"1795333838.7"
    assert (env[b"agi_arg_1"], env[b"agi_arg_2"]) == (CALLED.encode(), CALLER.encode())


def test_fastagi_environment_still_starts_with_the_network_lines() -> None:
    """The default mode is unchanged: agi_network and agi_network_script come first."""
    keys = [key for key, _ in Script(SimulatedCall(CALLED, CALLER)).env()]
    assert keys[:3] == [b"agi_network", b"agi_network_script", b"agi_request"]


def test_a_caller_name_in_bytes_reaches_the_script_as_sent() -> None:
    """Latin-1 or a cut UTF-8 character is passed through raw, as the network delivered it."""
    name = b"DUPONT Ren\xe9 \xc3"
    env = dict(Script(classic(caller_name=name)).env())
    assert env[b"agi_calleridname"] == name


def test_hang_up_while_idle_sends_sighup_and_no_line() -> None:
    """An idle script gets SIGHUP at once; nothing is written on its stdin."""
    script = Script(classic(hang_up_after=0.5))
    script.answered()
    script.clock.advance(1)
    assert script.sighups == 1
    assert script.transport.value() == b""
    assert any(e.kind == "signal" and e.text == "SIGHUP" for e in script.sim._dialogue)


def test_hang_up_during_get_data_answers_minus_one_then_signals() -> None:
    """The command in flight gets `200 result=-1`, SIGHUP follows ~40 ms later (transcript b)."""
    script = Script(classic(hang_up_after=0.5, default_duration=5.0))
    script.answered()
    assert script.send(b"GET DATA beep 6000 5", 0.5) == b"200 result=-1\n"
    assert script.sighups == 0
    script.clock.advance(0.04)
    assert script.sighups == 1
    assert script.send(b"WAIT FOR DIGIT 100") == (
        b"511 Command Not Permitted on a dead channel or intercept routine\n"
    )
    assert script.send(b"SET VARIABLE TELEGESTION_STATUS caller_hung_up") == b"200 result=1\n"


def test_agisighup_no_sends_no_signal() -> None:
    """With AGISIGHUP=no only 511 tells the script that the caller is gone (transcript b2)."""
    script = Script(classic(hang_up_after=0.5, variables={"AGISIGHUP": "no"}))
    script.answered()
    script.clock.advance(5)
    assert script.sighups == 0
    assert script.send(b"CHANNEL STATUS").startswith(b"511 ")


def test_the_scripts_own_hangup_is_answered_then_signalled() -> None:
    """HANGUP from the script: `200 result=1`, then SIGHUP as for any hang-up (transcript a)."""
    script = Script(classic())
    script.answered()
    assert script.send(b"HANGUP") == b"200 result=1\n"
    script.clock.advance(0.04)
    assert script.sighups == 1


@pytest.mark.parametrize(("status", "agistatus"), [(0, "SUCCESS"), (1, "FAILURE"), (-9, "FAILURE")])
def test_exit_with_the_channel_up_decides_success_or_failure(status: int, agistatus: str) -> None:
    """Closing stdout and exiting 0 gives SUCCESS; a non-zero exit (or a kill) FAILURE."""
    script = Script(classic())
    script.answered()
    script.sim.readConnectionLost()  # the script closed its stdout
    assert script.sighups == 1  # Asterisk signals the end of the session, as with FastAGI's line
    assert script.transport.disconnecting
    assert script.records == []  # Asterisk waits for the process
    script.sim.script_exited(status)
    (record,) = script.records
    assert (record.agistatus, record.exit_status, record.hung_up_by) == (agistatus, status, None)
    assert record.server_closed


def test_a_failed_exit_after_a_hang_up_is_still_hangup() -> None:
    """res_agi only turns a live channel's AGISTATUS into FAILURE: a hung-up call stays HANGUP."""
    script = Script(classic(hang_up_after=0.2))
    script.answered()
    script.clock.advance(1)
    script.sim.readConnectionLost()
    script.sim.script_exited(1)
    (record,) = script.records
    assert (record.agistatus, record.exit_status, record.hung_up_by) == ("HANGUP", 1, "caller")


def test_fastagi_mode_ignores_the_sighup_hook() -> None:
    """Over FastAGI the hang-up is a HANGUP line, even when a hook is given."""
    clock = task.Clock()
    sighups: list[int] = []
    sim = SimulatedAsterisk(
        SimulatedCall(CALLED, CALLER, hang_up_after=0.5), clock, on_sighup=lambda: sighups.append(1)
    )
    transport = StringTransport(peerAddress=IPv4Address("TCP", "127.0.0.1", 4573))
    sim.makeConnection(transport)
    transport.clear()
    sim.dataReceived(b"ANSWER\n")
    clock.advance(0.021)
    clock.advance(1)
    assert transport.value() == b"200 result=0\nHANGUP\n"
    assert sighups == []
