"""A synchronous AGI channel on pyst2's ``AGI`` class, with the same operations and results as
the FastAGI ``AgiChannel``, so one call program (``ivr.agi_call``) serves both transports.

pyst2 is used as it is, not forked, with its sharp edges made harmless:

- its debug lines go to a null stream, not to Asterisk's console;
- its SIGHUP handler is installed only where Python allows it (the main thread of a script);
  a SIGHUP from Asterisk then marks the channel hung up instead of killing the process, and
  no further channel command is sent (a classic AGI gets no ``HANGUP`` line, and with
  ``AGISIGHUP=no`` not even the signal: then ``511`` on the next command tells);
- replies are never parsed by pyst2: its parser drops ``(timeout)`` after an empty GET DATA,
  raises on ``result=-1`` (which is also what a missing prompt answers), and treats the
  asynchronous ``HANGUP`` line and end of stream as unknown errors. Commands go out through
  pyst2's ``send_command``; replies come back through ``ivr.agi_wire``'s reader.
"""

from __future__ import annotations

import contextlib
import threading
from typing import Any

from asterisk.agi import AGI

from agi_scripts.fd_io import FdLineReader, FdWriter, NullStream
from ivr.agi_wire import (
    CODE_DEAD_CHANNEL,
    CODE_SUCCESS,
    AgiCommandError,
    AgiEnvironment,
    ChannelHungUp,
    ConnectionLost,
    GetDataResult,
    HangupNotice,
    PlaybackFailed,
    Quoted,
    Reply,
    ReplyReader,
    StreamResult,
    format_command,
    interpret_get_data,
    interpret_key_code,
    interpret_stream,
)


class QuietAGI(AGI):
    """pyst2's AGI, silent, and usable outside the main thread."""

    def __init__(self, stdin: Any, stdout: Any) -> None:
        if threading.current_thread() is threading.main_thread():
            super().__init__(stdin=stdin, stdout=stdout, stderr=NullStream())
            return
        # signal.signal() only works in the main thread: do what AGI.__init__ does without it.
        self.stdin, self.stdout, self.stderr = stdin, stdout, NullStream()
        self._got_sighup = False
        self.env = {}
        self._get_agi_env()


#: The deadline of a command with no timeout of its own (prompts are a few seconds).
COMMAND_TIMEOUT_S = 60.0
#: Added to GET DATA's and WAIT FOR DIGIT's own timeouts: the prompt plays before the timeout.
PROMPT_MARGIN_S = 30.0


class Pyst2Channel:
    def __init__(self, agi: QuietAGI, reader: FdLineReader) -> None:
        self.agi = agi
        self.reader = reader
        self._replies = ReplyReader()
        self._hung_up = False
        self._answered = False
        self._answer_error: ChannelHungUp | None = None
        # pyst2 keeps only the value; its AGI has already decoded and stripped each line.
        self.env = AgiEnvironment(dict(agi.env))

    @property
    def hung_up(self) -> bool:
        """Asterisk said so (511, end of stream) or signalled it (SIGHUP, caught by pyst2)."""
        return self._hung_up or bool(getattr(self.agi, "_got_sighup", False))

    @hung_up.setter
    def hung_up(self, value: bool) -> None:
        self._hung_up = value

    @classmethod
    def on_fds(cls, read_fd: int, write_fd: int) -> Pyst2Channel:
        reader = FdLineReader(read_fd)
        return cls(QuietAGI(reader, FdWriter(write_fd)), reader)

    # -- the conversation ------------------------------------------------------------------

    def command(self, line: str, timeout: float = COMMAND_TIMEOUT_S) -> Reply:
        """Send one command and return its final reply; 511 raises ChannelHungUp."""
        try:
            self.agi.send_command(line)
        except ConnectionLost:  # Asterisk closed our stdout: the session is over
            self.hung_up = True
            raise
        while True:
            raw = self.reader.read_line(timeout)
            if raw is None:
                self.hung_up = True
                raise ConnectionLost(f"{line!r}: Asterisk ended the AGI session")
            got = self._replies.feed_line(raw)
            if isinstance(got, HangupNotice):
                self.hung_up = True
                continue
            if got is None:
                continue
            break
        if got.code == CODE_SUCCESS:
            return got
        if got.code == CODE_DEAD_CHANNEL:
            self.hung_up = True
            raise ChannelHungUp(f"{line!r}: {got.message}")
        raise AgiCommandError(line, got.code, got.message, got.usage)

    def _checked(self, line: str, sound: str | None, timeout: float = COMMAND_TIMEOUT_S) -> Reply:
        """``result=-1`` is a hang-up or a missing prompt: a CHANNEL STATUS probe tells which."""
        reply = self.command(line, timeout)
        if not reply.is_failure:
            return reply
        if not self.hung_up:
            self.command("CHANNEL STATUS")  # raises ChannelHungUp (511) on a dead channel
        if self.hung_up:
            raise ChannelHungUp(f"{line!r} interrupted: the caller hung up")
        if sound is None:
            raise AgiCommandError(line, reply.code, "result=-1 on a live channel")
        raise PlaybackFailed(sound, line)

    # -- the operations of ivr.agi_call -------------------------------------------------------

    def answer(self) -> None:
        """Answer once: the script answers before its call program is even loaded, and the
        program's own answer then gets that result (or that hang-up) at no cost."""
        if self._answer_error is None and self.hung_up and not self._answered:
            self._answer_error = ChannelHungUp("the caller hung up before the answer")
        if self._answer_error is not None:
            raise self._answer_error
        if self._answered:
            return
        try:
            self._checked("ANSWER", None)
        except ChannelHungUp as exc:
            self._answer_error = exc
            raise
        self._answered = True

    def get_data(self, file: str, timeout_ms: int, max_digits: int) -> GetDataResult:
        line = format_command("GET DATA", file, timeout_ms, max_digits)
        deadline = PROMPT_MARGIN_S + (timeout_ms or 6000) / 1000 * max_digits
        return interpret_get_data(self._checked(line, file, deadline))

    def stream_file(self, file: str, escape_digits: str = "") -> StreamResult:
        line = format_command("STREAM FILE", file, Quoted(escape_digits))
        return interpret_stream(self._checked(line, file))

    def wait_for_digit(self, timeout_ms: int) -> str | None:
        line = format_command("WAIT FOR DIGIT", timeout_ms)
        return interpret_key_code(self._checked(line, None, PROMPT_MARGIN_S + timeout_ms / 1000))

    def say_datetime(self, epoch: int, escape_digits: str, fmt: str, tz: str) -> str | None:
        line = format_command("SAY DATETIME", int(epoch), Quoted(escape_digits), fmt, tz)
        return interpret_key_code(self._checked(line, f"SAY DATETIME {epoch}"))

    def set_variable(self, name: str, value: str) -> None:
        self.command(format_command("SET VARIABLE", name, value))

    def hangup(self) -> None:
        with contextlib.suppress(ChannelHungUp):
            self.command("HANGUP")
        self.hung_up = True
