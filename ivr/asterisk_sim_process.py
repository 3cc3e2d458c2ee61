"""The simulated Asterisk running a classic AGI script: one child process per call, on pipes.

Asterisk forks the script with the AGI() arguments on its command line, writes the environment
block on its stdin and reads its commands from its stdout; it tells the script about a hang-up
with SIGHUP and waits for the process to exit (``ivr.asterisk_sim`` lists the rules). This
driver does the same with real processes and real time, without a reactor, so a test process
can run it as often as it likes: a ``select()`` loop moves the bytes and keeps a ``task.Clock``
level with the wall clock, so the simulator's own timers (prompts, key pace, hang-ups) behave
as they do in memory. Use :func:`~ivr.asterisk_sim.accelerated` calls to keep runs short.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from twisted.internet.address import IPv4Address
from twisted.internet.interfaces import IAddress, ITransport
from twisted.internet.task import Clock
from zope.interface import implementer

from ivr.asterisk_sim import CallRecord, SimulatedAsterisk, SimulatedCall

#: After the session ends, how long the script may take to exit before it is killed. Asterisk
#: itself waits for ever, which is why the script must end quickly on its own.
EXIT_GRACE_S = 10.0

#: Longest sleep of the loop while a process is expected to exit (it is polled, not signalled).
_POLL_S = 0.01


@dataclass(frozen=True)
class ScriptRun:
    """One call's record (``record.exit_status`` is the script's) and what it wrote on stderr."""

    record: CallRecord
    stderr: bytes
    #: seconds from the spawn to the first byte the script wrote on stdout (its first command)
    first_output_s: float | None


_LOCAL = IPv4Address("TCP", "127.0.0.1", 0)


@implementer(ITransport)
class _PipeTransport:
    """The simulator's side of the script's pipes: what it writes goes to the script's stdin."""

    def __init__(self, script: _Script) -> None:
        self._script = script
        self.disconnecting = False

    def write(self, data: bytes) -> None:
        if not self.disconnecting:
            self._script.send(data)

    def writeSequence(self, data: Sequence[bytes]) -> None:
        self.write(b"".join(data))

    def loseConnection(self) -> None:
        if not self.disconnecting:
            self.disconnecting = True
            self._script.session_closed()

    def getPeer(self) -> IAddress:
        return _LOCAL

    def getHost(self) -> IAddress:
        return _LOCAL


class _Script:
    """One call: the child process, its pipes, and the simulated channel it talks to."""

    def __init__(
        self,
        argv: Sequence[str],
        call: SimulatedCall,
        clock: Clock,
        env: Mapping[str, str] | None,
        cwd: str | None,
    ) -> None:
        self.call = replace(call, network=False)
        self.clock = clock
        self.stderr = bytearray()
        self.first_output_s: float | None = None
        self.record: CallRecord | None = None
        self.session_ended_at: float | None = None
        self._spawned_at = time.monotonic()
        # Asterisk passes the AGI() arguments on the command line too: the dialplan's
        # ${EXTEN},${CALLERID(num)}.
        self.proc = subprocess.Popen(
            [*argv, self.call.called, self.call.caller or ""],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=None if env is None else dict(env),
            cwd=cwd,
            bufsize=0,
            close_fds=True,
        )
        assert self.proc.stdin and self.proc.stdout and self.proc.stderr
        self.stdin: int | None = self.proc.stdin.fileno()
        self.stdout: int | None = self.proc.stdout.fileno()
        self.stderr_fd: int | None = self.proc.stderr.fileno()
        self.sim = SimulatedAsterisk(self.call, clock, on_sighup=self.sighup)
        self.sim.finished.addCallback(self._finished)
        self.sim.makeConnection(_PipeTransport(self))

    # -- the simulator's requests -------------------------------------------------------------

    def send(self, data: bytes) -> None:
        if self.stdin is None:
            return
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(self.stdin, view) :]
        except OSError:  # the script closed its stdin or died: Asterisk ignores it too
            self._close_stdin()

    def sighup(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGHUP)

    def session_closed(self) -> None:
        """Asterisk ends the session: it stops talking to the script and waits for its exit."""
        self._close_stdin()
        self._close_stdout()
        if self.session_ended_at is None:
            self.session_ended_at = time.monotonic()

    # -- the loop's events --------------------------------------------------------------------

    def read_ready(self, fd: int) -> None:
        try:
            data = os.read(fd, 65536)
        except OSError:
            data = b""
        if fd == self.stderr_fd:
            if data:
                self.stderr += data
            else:
                self._close_stderr()
            return
        if not data:
            self._close_stdout()
            self.sim.readConnectionLost()  # the script closed its stdout or exited
            if self.session_ended_at is None:
                self.session_ended_at = time.monotonic()
            return
        if self.first_output_s is None:
            self.first_output_s = time.monotonic() - self._spawned_at
        self.sim.dataReceived(data)

    def check_exit(self) -> None:
        if self.record is not None:
            return
        status = self.proc.poll()
        overdue = (
            self.session_ended_at is not None
            and time.monotonic() - self.session_ended_at > EXIT_GRACE_S
        )
        if status is None and self.stdout is None and overdue:
            self.proc.kill()
            status = self.proc.wait()
        if status is None:
            return
        if self.stdout is not None:
            self._drain_stdout()
        self._drain_stderr()
        self.session_closed()
        self.sim.script_exited(status)

    def abandon(self, reason: str) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        status = self.proc.wait()
        self._drain_stderr()
        self.session_closed()
        if self.record is None:
            self.sim.abandon(reason)
        if self.record is None:  # pragma: no cover - abandon always finishes the record
            self.sim.script_exited(status)

    def fds(self) -> list[int]:
        return [fd for fd in (self.stdout, self.stderr_fd) if fd is not None]

    def result(self) -> ScriptRun:
        assert self.record is not None
        return ScriptRun(self.record, bytes(self.stderr), self.first_output_s)

    # -- inside ---------------------------------------------------------------------------------

    def _finished(self, record: CallRecord) -> CallRecord:
        self.record = record
        return record

    def _drain_stdout(self) -> None:
        while self.stdout is not None:
            ready, _, _ = select.select([self.stdout], [], [], 0)
            if not ready:
                break
            self.read_ready(self.stdout)

    def _drain_stderr(self) -> None:
        while self.stderr_fd is not None:
            ready, _, _ = select.select([self.stderr_fd], [], [], 0.2)
            if not ready:
                break
            self.read_ready(self.stderr_fd)
        self._close_stderr()

    def _close_stdin(self) -> None:
        if self.stdin is not None:
            self.stdin = None
            assert self.proc.stdin is not None
            with contextlib.suppress(OSError):
                self.proc.stdin.close()

    def _close_stdout(self) -> None:
        if self.stdout is not None:
            self.stdout = None
            assert self.proc.stdout is not None
            self.proc.stdout.close()

    def _close_stderr(self) -> None:
        if self.stderr_fd is not None:
            self.stderr_fd = None
            assert self.proc.stderr is not None
            self.proc.stderr.close()


def run_agi_scripts(
    argv: Sequence[str],
    calls: Sequence[SimulatedCall],
    *,
    env: Mapping[str, str] | None = None,
    cwd: str | None = None,
    stagger: float = 0.0,
    timeout: float = 120.0,
) -> list[ScriptRun]:
    """Run each call as Asterisk would run ``AGI(script,${EXTEN},${CALLERID(num)})``.

    ``argv`` starts the script (e.g. ``["/usr/local/bin/telegestion-agi"]``); the called and
    caller numbers are appended, as Asterisk appends the AGI() arguments. Calls start ``stagger``
    seconds apart and run at once; ``env`` is the scripts' whole environment (None: this
    process's). A call still running after ``timeout`` seconds is killed and its record says so.
    Results come back in ``calls`` order.
    """
    clock = Clock()
    base = time.monotonic()

    def now() -> float:
        return time.monotonic() - base

    def catch_up() -> None:
        """Bring the simulator's clock level with the wall clock one timer at a time, so that
        timers set by earlier ones (a key typed once a prompt started) keep their order even
        when this process was held up for a while."""
        target = now()
        while True:
            due = [d.getTime() for d in clock.getDelayedCalls() if d.getTime() <= target]
            if not due:
                break
            clock.advance(max(0.0, min(due) - clock.seconds()))
        if target > clock.seconds():
            clock.advance(target - clock.seconds())

    scripts: list[_Script | None] = [None] * len(calls)
    next_index = 0
    try:
        while True:
            running = [s for s in scripts if s is not None and s.record is None]
            if not running and next_index >= len(calls):
                break
            if now() > timeout:
                for script in running:
                    script.abandon(f"still running after {timeout:g} s: killed")
                break
            wake = [d.getTime() for d in clock.getDelayedCalls()]
            if next_index < len(calls):
                wake.append(next_index * stagger)
            wait = min(1.0, max(0.0, min(wake, default=now() + 1.0) - clock.seconds()))
            if any(s.stdout is None for s in running):
                wait = min(wait, _POLL_S)
            fds = {fd: script for script in running for fd in script.fds()}
            if fds:
                ready, _, _ = select.select(list(fds), [], [], wait)
                if ready:
                    # What the scripts wrote counts as arrived before any timer that fell due
                    # while this process was held up: a command sent before a key was due
                    # finds the key, whatever the delays of this side of the pipes.
                    due = min((d.getTime() for d in clock.getDelayedCalls()), default=None)
                    arrived = now() if due is None else min(now(), due - 1e-6)
                    if arrived > clock.seconds():
                        clock.advance(arrived - clock.seconds())
                for fd in ready:
                    fds[fd].read_ready(fd)
            else:
                time.sleep(wait)
            catch_up()
            while next_index < len(calls) and now() >= next_index * stagger:
                scripts[next_index] = _Script(argv, calls[next_index], clock, env, cwd)
                next_index += 1
            for script in running:
                script.check_exit()
    finally:
        for script in scripts:
            if script is not None and script.record is None:
                script.abandon("the driver stopped")
    return [script.result() for script in scripts if script is not None]


def run_agi_script(
    argv: Sequence[str],
    call: SimulatedCall,
    *,
    env: Mapping[str, str] | None = None,
    cwd: str | None = None,
    timeout: float = 60.0,
) -> ScriptRun:
    """One call: see :func:`run_agi_scripts`."""
    return run_agi_scripts(argv, [call], env=env, cwd=cwd, timeout=timeout)[0]


__all__ = ["EXIT_GRACE_S", "ScriptRun", "run_agi_script", "run_agi_scripts"]
