"""The process driver of the simulated Asterisk: real child processes on pipes, real SIGHUP.

A tiny stand-in AGI script (plain Python, no database) shows what the driver does: arguments
on the command line, the classic environment block on stdin, SIGHUP on hang-up, the exit status
turned into AGISTATUS, stderr kept apart, and a script that never ends killed.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from ivr.asterisk_sim import HangUp, SimulatedCall
from ivr.asterisk_sim_process import run_agi_script, run_agi_scripts

pytestmark = pytest.mark.slow

CALLED = "0800123456"
CALLER = "0145678912"

STAND_IN = r"""
import signal, sys, time

hangups = []
signal.signal(signal.SIGHUP, lambda *_: hangups.append(time.monotonic()))
mode = sys.argv[1]
env = {}
while True:
    line = sys.stdin.buffer.readline()
    if line in (b"\n", b""):
        break
    key, _, value = line.rstrip(b"\n").partition(b": ")
    env[key.decode()] = value.decode("utf-8", "replace")


def command(text):
    sys.stdout.write(text + "\n")
    sys.stdout.flush()
    return sys.stdin.readline().strip()


command("ANSWER")
command("SET VARIABLE ARGS " + ",".join(sys.argv[2:]))
command("SET VARIABLE REQUEST " + env.get("agi_request", "-"))
command("SET VARIABLE NETWORK " + env.get("agi_network", "absent"))
if mode == "exit3":
    sys.stderr.write("stand-in: giving up\n")
    sys.exit(3)
if mode.startswith("wait-sighup"):
    deadline = time.monotonic() + float(mode.partition(":")[2] or 5)
    while not hangups and time.monotonic() < deadline:
        time.sleep(0.005)
    command("SET VARIABLE SIGHUP " + ("yes" if hangups else "no"))
    command("SET VARIABLE AFTER " + command("WAIT FOR DIGIT 10").split(" ", 1)[0])
    sys.exit(0)
if mode == "hang":
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    time.sleep(60)
command("HANGUP")
"""


@pytest.fixture
def stand_in(tmp_path: Path) -> list[str]:
    path = tmp_path / "stand_in.agi"
    path.write_text(STAND_IN)
    return [sys.executable, "-I", str(path)]


def test_the_script_gets_its_arguments_and_the_classic_environment(stand_in: list[str]) -> None:
    """Called and caller numbers on the command line; agi_request is the name; no agi_network."""
    run = run_agi_script([*stand_in, "normal"], SimulatedCall(CALLED, CALLER))
    variables = run.record.variables
    assert variables["ARGS"] == f"{CALLED},{CALLER}"
    assert (variables["REQUEST"], variables["NETWORK"]) == ("telegestion.agi", "absent")
    assert run.record.exit_status == 0
    assert run.record.agistatus == "HANGUP"  # the script hung up itself
    assert run.first_output_s is not None and run.first_output_s < 10


def test_a_non_zero_exit_on_a_live_channel_is_failure(stand_in: list[str]) -> None:
    """Exit 3 with the channel up: AGISTATUS=FAILURE; stderr is kept, apart from the dialogue."""
    run = run_agi_script([*stand_in, "exit3"], SimulatedCall(CALLED, CALLER))
    assert (run.record.exit_status, run.record.agistatus) == (3, "FAILURE")
    assert run.stderr == b"stand-in: giving up\n"
    assert run.record.hung_up_by is None


def test_a_caller_hang_up_is_a_sighup_and_channel_commands_get_511(stand_in: list[str]) -> None:
    """The caller hangs up: the script is signalled; a channel command then gets 511."""
    call = SimulatedCall(CALLED, CALLER, script=(HangUp(0.05),))
    run = run_agi_script([*stand_in, "wait-sighup"], call)
    assert run.record.variables["SIGHUP"] == "yes"
    assert run.record.variables["AFTER"] == "511"
    assert (run.record.agistatus, run.record.hung_up_by) == ("HANGUP", "caller")
    assert [e.text for e in run.record.dialogue if e.kind == "signal"][:1] == ["SIGHUP"]


def test_agisighup_no_sends_no_signal_to_the_process(stand_in: list[str]) -> None:
    """AGISIGHUP=no: the process is never signalled, only 511 tells."""
    call = SimulatedCall(CALLED, CALLER, script=(HangUp(0.05),), variables={"AGISIGHUP": "no"})
    run = run_agi_script([*stand_in, "wait-sighup:0.5"], call, timeout=20)
    assert run.record.variables["SIGHUP"] == "no"
    assert run.record.variables["AFTER"] == "511"
    assert not any(e.kind == "signal" for e in run.record.dialogue)


def test_a_script_that_never_ends_is_killed_at_the_timeout(stand_in: list[str]) -> None:
    """A stuck script does not stall the driver: killed, and the record says why."""
    run = run_agi_script([*stand_in, "hang"], SimulatedCall(CALLED, CALLER), timeout=1.0)
    assert run.record.error is not None and "killed" in run.record.error
    assert run.record.ended_at < 10


def test_calls_run_at_once_and_come_back_in_order(stand_in: list[str]) -> None:
    """Several scripts at once, staggered; each record is its own call's, in the given order."""
    calls = [SimulatedCall(CALLED, f"014567890{i}", uniqueid=f"1795.{i}") for i in range(3)]
    runs = run_agi_scripts([*stand_in, "normal"], calls, stagger=0.05)
    assert [r.record.uniqueid for r in runs] == ["1795.0", "1795.1", "1795.2"]
    assert [r.record.variables["ARGS"] for r in runs] == [
        f"{CALLED},014567890{i}" for i in range(3)
    ]
