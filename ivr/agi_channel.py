"""FastAGI over Twisted: one connection per call, one command in flight, a deadline on everything.

Asterisk waits for the server forever and keeps the socket open after the caller hangs up, so
every wait here has a deadline from the injected clock, and a session ends only when we end it
(or Asterisk closes it). The grammar lives in :mod:`ivr.agi_wire`; this module only adds the
conversation rules: which reply belongs to which command, what a ``HANGUP`` line means, and how
to tell a hang-up from a missing prompt when both answer ``result=-1``.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from twisted.internet import tcp
from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.defer import Deferred, fail, maybeDeferred, succeed
from twisted.internet.interfaces import (
    IAddress,
    IDelayedCall,
    IListeningPort,
    IReactorTCP,
    IReactorTime,
)
from twisted.internet.protocol import Factory, Protocol, connectionDone
from twisted.logger import Logger
from twisted.python.failure import Failure

from ivr.agi_wire import (
    CODE_DEAD_CHANNEL,
    CODE_SUCCESS,
    DEFAULT_MAX_ENV_LINES,
    DEFAULT_MAX_LINE_LENGTH,
    AgiCommandError,
    AgiEnvironment,
    ChannelHungUp,
    CommandInFlight,
    ConnectionLost,
    EnvironmentReader,
    GetDataResult,
    HangupNotice,
    LineSplitter,
    LineTooLong,
    MalformedEnvironment,
    MalformedReply,
    PlaybackFailed,
    Quoted,
    Reply,
    ReplyReader,
    ReplyTimeout,
    StreamResult,
    encode_command_line,
    format_command,
    interpret_get_data,
    interpret_key_code,
    interpret_stream,
    interpret_variable,
)
from telegestion import logs

__all__ = [
    "FASTAGI_LISTEN_BACKLOG",
    "FASTAGI_PORT",
    "AgiChannel",
    "AgiCommandError",
    "AgiLimits",
    "ChannelHungUp",
    "CommandInFlight",
    "ConnectionLost",
    "FastAGIFactory",
    "FastAGIProtocol",
    "GetDataResult",
    "PlaybackFailed",
    "ReplyTimeout",
    "ServerShuttingDown",
    "StreamResult",
    "listen_fastagi",
]

FASTAGI_PORT = 4573

#: Listen backlog for the FastAGI port. At 8:00 hundreds of carers call within a minute and
#: Asterisk gives each connect attempt about 2 s before trying the next server; Twisted's
#: default backlog of 50 overflows in such a burst and the kernel drops the SYNs, so callers hear
#: silence. Linux silently caps this value at ``net.core.somaxconn`` (4096 on kernels >= 5.4,
#: 128 before): raise that sysctl too on an older host.
FASTAGI_LISTEN_BACKLOG = 1024

#: GET DATA with a timeout of 0 waits Asterisk's default, 6 s (transcript f).
ASTERISK_DEFAULT_GET_DATA_TIMEOUT_MS = 6000

_DTMF_KEYS = frozenset("0123456789*#ABCD")

#: The commands this server sends, longest first: the label of a command's latency, so the
#: metric has a bounded set of values whatever the arguments.
AGI_COMMAND_NAMES = (
    "GET FULL VARIABLE",
    "WAIT FOR DIGIT",
    "CHANNEL STATUS",
    "SET VARIABLE",
    "GET VARIABLE",
    "SAY DATETIME",
    "STREAM FILE",
    "SAY DIGITS",
    "GET DATA",
    "VERBOSE",
    "ANSWER",
    "HANGUP",
    "EXEC",
)

#: ``observer(command_name, seconds)``: the server's own time before sending a command.
CommandTimer = Callable[[str, float], None]


class ServerShuttingDown(ConnectionLost):
    """The server dropped the session because it is stopping (the drain's grace is over)."""


#: ``AGI_COMMAND_NAMES`` by their first word, longest first: a line is matched in a dictionary
#: lookup and a comparison or two (this runs before every command).
_COMMANDS_BY_FIRST_WORD: dict[str, tuple[str, ...]] = {}
for _name in AGI_COMMAND_NAMES:
    _first = _name.split(" ", 1)[0]
    _COMMANDS_BY_FIRST_WORD[_first] = (*_COMMANDS_BY_FIRST_WORD.get(_first, ()), _name)
del _name, _first


def command_name(line: str) -> str:
    """The command of an AGI line (``GET DATA``), or ``OTHER``: a metric label, never data."""
    for name in _COMMANDS_BY_FIRST_WORD.get(line.split(" ", 1)[0].upper(), ()):
        size = len(name)
        if line[:size].upper() == name and (len(line) == size or line[size] == " "):
            return name
    return "OTHER"


@dataclass(frozen=True)
class AgiLimits:
    """Every deadline and size limit of a FastAGI session, in seconds and bytes.

    One place, so an operator tuning for slow prompts or a hostile network changes numbers,
    not code.
    """

    #: the environment block must be complete this long after the connection opens
    env_timeout: float = 10.0
    #: a longer line (env or reply) drops the connection
    max_line_length: int = DEFAULT_MAX_LINE_LENGTH
    #: an environment block with more lines is garbage
    max_env_lines: int = DEFAULT_MAX_ENV_LINES
    #: deadline for a command with no timeout of its own (STREAM FILE, EXEC, VERBOSE…)
    command_timeout: float = 60.0
    #: added to GET DATA's own timeout: its timeout only starts once its prompt has played
    prompt_margin: float = 30.0
    #: added to WAIT FOR DIGIT's own timeout for transit and scheduling
    reply_margin: float = 5.0
    #: deadline for the CHANNEL STATUS probe that tells a hang-up from a missing prompt
    probe_timeout: float = 10.0
    #: a call still running after this long is dropped (a stuck handler must not hold a line)
    call_timeout: float = 900.0


class AgiChannel:
    """One call as the call handler sees it: typed commands that return Deferreds.

    ``env`` is the parsed environment block; ``hung_up`` turns True when Asterisk says the
    caller is gone (a ``HANGUP`` line or a ``511``), after our own HANGUP, and never from a
    ``result=-1`` alone. Commands still work after a hang-up where Asterisk allows them
    (VERBOSE, GET/SET VARIABLE, EXEC): the handler can finish its journal on the channel.
    """

    log = Logger()

    def __init__(
        self,
        wire: FastAGIProtocol,
        env: AgiEnvironment,
        clock: IReactorTime,
        limits: AgiLimits,
    ) -> None:
        self.env = env
        self.hung_up = False
        self._wire = wire
        self._clock = clock
        self._limits = limits
        self._pending: _Pending | None = None
        self._shut_reason: ChannelHungUp | None = None
        # When the server got the last word from Asterisk (the environment block, then each
        # reply): the time until the next command is the server's own (see CommandTimer).
        # A real clock on purpose: this measures the process, the injected clock drives waits.
        self._idle_since: float | None = time.perf_counter()

    @property
    def peer(self) -> str:
        """``host:port`` of the Asterisk that placed the call, for logs."""
        return self._wire.peer

    @property
    def connected(self) -> bool:
        """False once the session is over: every command then fails with ConnectionLost."""
        return self._shut_reason is None

    @property
    def busy(self) -> bool:
        """True while a command awaits its reply (sending another one would raise)."""
        return self._pending is not None

    # -- the low-level command ---------------------------------------------------------------

    def command(self, line: str, *, timeout: float | None = None) -> Deferred[Reply]:
        """Send one raw command line and return its reply.

        Errbacks :class:`ChannelHungUp` on ``511``, :class:`AgiCommandError` on ``510``/``520``,
        :class:`ReplyTimeout` when no reply comes within ``timeout`` (default
        ``limits.command_timeout``), :class:`ConnectionLost` when the session ends first.
        ``result=-1`` is returned as is: only the typed methods know whether it may be a
        missing prompt. Raises :class:`CommandInFlight` (a bug in the caller) if the previous
        command has not been answered, and :class:`~ivr.agi_wire.UnsafeArgument` on a line
        break in ``line``.
        """
        if self._pending is not None:
            raise CommandInFlight(
                f"{line!r} sent while {self._pending.line!r} still awaits its reply"
            )
        data = encode_command_line(line)
        if self._shut_reason is not None:
            return fail(ConnectionLost(f"{line!r} not sent: {self._shut_reason}"))
        deferred: Deferred[Reply] = Deferred()
        delay = self._limits.command_timeout if timeout is None else timeout
        timer = self._clock.callLater(delay, self._reply_overdue)
        self._pending = _Pending(line, deferred, timer, delay)
        self._time_command(line)
        self._wire.send(data)
        return deferred

    # -- typed commands -----------------------------------------------------------------------

    def answer(self) -> Deferred[None]:
        """Answer the channel (prompts before this would be early media, or nothing at all)."""
        return self._checked("ANSWER", sound=None).addCallback(_to_none)

    def get_data(self, file: str, timeout_ms: int, max_digits: int) -> Deferred[GetDataResult]:
        """Play ``file`` and collect up to ``max_digits`` keys; the caller may type over it.

        ``#`` ends the entry (not included), ``*`` is kept as a digit; ``timeout_ms`` applies
        after the prompt and between keys (0 means Asterisk's 6 s default). Errbacks
        :class:`PlaybackFailed` when the prompt is missing, :class:`ChannelHungUp` on a hang-up.
        """
        if timeout_ms < 0:
            raise ValueError("a negative GET DATA timeout would wait forever")
        if max_digits < 1:
            raise ValueError("max_digits must be at least 1")
        line = format_command("GET DATA", file, timeout_ms, max_digits)
        wait_s = (timeout_ms or ASTERISK_DEFAULT_GET_DATA_TIMEOUT_MS) / 1000
        deadline = self._limits.prompt_margin + wait_s * max_digits
        return self._checked(line, sound=file, timeout=deadline).addCallback(interpret_get_data)

    def stream_file(self, file: str, escape_digits: str = "") -> Deferred[StreamResult]:
        """Play ``file``; a key in ``escape_digits`` stops it and is returned.

        Keys not in ``escape_digits`` are lost (Asterisk does not buffer them).
        """
        _check_keys(escape_digits)
        line = format_command("STREAM FILE", file, Quoted(escape_digits))
        return self._checked(line, sound=file).addCallback(interpret_stream)

    def wait_for_digit(self, timeout_ms: int) -> Deferred[str | None]:
        """Wait for one key: ``'0'``…``'9'``, ``'*'``, ``'#'``, or None after ``timeout_ms``."""
        if timeout_ms < 0:
            raise ValueError("a negative WAIT FOR DIGIT timeout would wait forever")
        line = format_command("WAIT FOR DIGIT", timeout_ms)
        deadline = timeout_ms / 1000 + self._limits.reply_margin
        return self._checked(line, sound=None, timeout=deadline).addCallback(interpret_key_code)

    def say_datetime(
        self,
        epoch: int,
        escape_digits: str = "",
        fmt: str | None = None,
        tz: str | None = None,
    ) -> Deferred[str | None]:
        """Speak an instant (``fmt`` in Asterisk's say format, ``tz`` an IANA zone).

        Returns the escape key pressed, or None. ``tz`` needs ``fmt``: Asterisk reads them by
        position.
        """
        _check_keys(escape_digits)
        if tz is not None and fmt is None:
            raise ValueError("SAY DATETIME takes the time zone after the format: give fmt too")
        args: list[str | int | Quoted] = [int(epoch), Quoted(escape_digits)]
        if fmt is not None:
            args.append(fmt)
        if tz is not None:
            args.append(tz)
        line = format_command("SAY DATETIME", *args)
        return self._checked(line, sound=f"SAY DATETIME {epoch}").addCallback(interpret_key_code)

    def say_digits(self, digits: str, escape_digits: str = "") -> Deferred[str | None]:
        """Speak ``digits`` one by one; returns the escape key pressed, or None."""
        _check_keys(escape_digits)
        if not digits.isascii() or not digits.isdigit():
            raise ValueError(f"SAY DIGITS speaks decimal digits only, not {digits!r}")
        line = format_command("SAY DIGITS", digits, Quoted(escape_digits))
        return self._checked(line, sound=f"SAY DIGITS {digits}").addCallback(interpret_key_code)

    def set_variable(self, name: str, value: str) -> Deferred[None]:
        """Set a channel variable (works after a hang-up: the dialplan still reads it)."""
        line = format_command("SET VARIABLE", name, value)
        return self.command(line).addCallback(_to_none)

    def get_variable(self, name: str) -> Deferred[str | None]:
        """A channel variable or function (``CALLERID(num)``), None when unset.

        The value is data even when it is the word ``hangup``.
        """
        return self.command(format_command("GET VARIABLE", name)).addCallback(interpret_variable)

    def get_full_variable(self, expression: str) -> Deferred[str | None]:
        """Evaluate a ``${…}`` expression in the channel, None when Asterisk says unset."""
        line = format_command("GET FULL VARIABLE", Quoted(expression))
        return self.command(line).addCallback(interpret_variable)

    def verbose(self, message: str, level: int = 1) -> Deferred[None]:
        """Write to Asterisk's console and log (operators read it next to the call's channel)."""
        line = format_command("VERBOSE", Quoted(message), level)
        return self.command(line).addCallback(_to_none)

    def exec_app(self, app: str, args: str | None = None) -> Deferred[int]:
        """Run a dialplan application; returns its result code.

        ``-2`` (no such application) errbacks :class:`AgiCommandError`: it is always a
        configuration mistake.
        """
        line = format_command("EXEC", app) if args is None else format_command("EXEC", app, args)

        def result_of(reply: Reply) -> int:
            code = reply.result_int
            if code is None:
                raise MalformedReply(f"EXEC returned result={reply.result!r}")
            if code == -2:
                raise AgiCommandError(line, reply.code, f"no application {app!r} in Asterisk")
            return code

        return self.command(line).addCallback(result_of)

    def channel_status(self) -> Deferred[int]:
        """Asterisk's channel state (6 = up); errbacks ChannelHungUp on a dead channel."""

        def state_of(reply: Reply) -> int:
            state = reply.result_int
            if state is None:
                raise MalformedReply(f"CHANNEL STATUS returned result={reply.result!r}")
            return state

        return self.command("CHANNEL STATUS").addCallback(state_of)

    def hangup(self) -> Deferred[None]:
        """Hang up the caller. A channel that is already gone counts as done, not as an error."""

        def done(reply: Reply) -> None:
            if reply.result != "1":
                raise AgiCommandError("HANGUP", reply.code, f"result={reply.result}")
            self.hung_up = True

        def already_gone(failure: Failure) -> Failure | None:
            if failure.check(ConnectionLost) or not failure.check(ChannelHungUp):
                return failure
            self.hung_up = True  # 511: the caller hung up first, which is what we wanted
            return None

        return self.command("HANGUP").addCallbacks(done, already_gone)

    def close(self) -> None:
        """End the AGI session (Asterisk never does after a hang-up; the server must).

        Closing while the channel is up makes the dialplan go on with AGISTATUS=SUCCESS.
        A command still awaiting its reply errbacks :class:`ConnectionLost`.
        """
        self._wire.close_session()

    # -- inside -------------------------------------------------------------------------------

    def _time_command(self, line: str) -> None:
        since, self._idle_since = self._idle_since, None
        factory = self._wire.factory
        if since is None or factory is None or factory.command_timer is None:
            return
        factory.command_timer(command_name(line), time.perf_counter() - since)

    def _checked(
        self, line: str, *, sound: str | None, timeout: float | None = None
    ) -> Deferred[Reply]:
        """Send a channel command and settle an ambiguous ``result=-1`` before returning."""
        return self.command(line, timeout=timeout).addCallback(self._settle_failure, line, sound)

    def _settle_failure(
        self, reply: Reply, line: str, sound: str | None
    ) -> Reply | Deferred[Reply]:
        """Tell a hang-up from a failed prompt: both answer ``result=-1`` (transcripts b, g).

        A ``HANGUP`` line already seen settles it; otherwise a CHANNEL STATUS probe does: a dead
        channel answers 511, a live one its state.
        """
        if not reply.is_failure:
            return reply
        if self.hung_up:
            raise ChannelHungUp(f"{line!r} interrupted: the caller hung up")

        def alive(_: Reply) -> Reply:
            if self.hung_up:
                raise ChannelHungUp(f"{line!r} interrupted: the caller hung up")
            if sound is None:
                raise AgiCommandError(line, reply.code, "result=-1 on a live channel")
            self.log.critical(
                "Prompt {sound!r} could not be played on a live channel (call {uniqueid} "
                "from {peer}, language {language!r}): are the sound files installed?",
                sound=sound,
                uniqueid=self.env.uniqueid,
                peer=self.peer,
                language=self.env.language,
            )
            raise PlaybackFailed(sound, line)

        def dead(failure: Failure) -> Failure:
            if failure.check(ChannelHungUp) and not failure.check(ConnectionLost):
                return Failure(ChannelHungUp(f"{line!r} interrupted: the caller hung up"))
            return failure

        probe = self.command("CHANNEL STATUS", timeout=self._limits.probe_timeout)
        return probe.addCallbacks(alive, dead)

    def _on_reply(self, reply: Reply) -> None:
        pending = self._pending
        if pending is None:
            self._wire.drop(f"reply with no command in flight: {reply.lines[0][:80]!r}")
            return
        self._pending = None
        self._idle_since = time.perf_counter()
        if pending.timer.active():
            pending.timer.cancel()
        if reply.code == CODE_SUCCESS:
            pending.deferred.callback(reply)
        elif reply.code == CODE_DEAD_CHANNEL:
            self.hung_up = True
            pending.deferred.errback(ChannelHungUp(f"{pending.line!r}: {reply.message}"))
        else:
            pending.deferred.errback(
                AgiCommandError(pending.line, reply.code, reply.message, reply.usage)
            )

    def _on_hangup_notice(self) -> None:
        self.hung_up = True

    def _reply_overdue(self) -> None:
        pending = self._pending
        if pending is None:  # pragma: no cover - the timer is cancelled with the reply
            return
        reason = f"no reply to {pending.line!r} within {pending.delay:g} s"
        self._wire.drop(reason, ReplyTimeout(reason))

    def _shut(self, reason: ChannelHungUp) -> None:
        """The session is over: fail the command in flight and refuse any later one."""
        if self._shut_reason is None:
            self._shut_reason = reason
        pending, self._pending = self._pending, None
        if pending is not None:
            if pending.timer.active():
                pending.timer.cancel()
            pending.deferred.errback(reason)


@dataclass
class _Pending:
    line: str
    deferred: Deferred[Reply]
    timer: IDelayedCall
    delay: float


def write_now(transport: Any, data: bytes) -> None:
    """``transport.write(data)``, but sent at once when nothing is waiting to be sent.

    Twisted's ``write`` only buffers: the reactor registers the socket for writing, sends on
    its next turn and unregisters it, so each command cost two ``epoll_ctl`` calls and a
    reactor turn on top of its ``send``. One command in flight per call means the buffer is
    nearly always empty, so the command goes out straight away; whatever the socket does not
    take (or an error) goes through ``write`` as before, which keeps the order and the error
    handling Twisted's.
    """
    if (
        isinstance(transport, tcp.Connection)
        and transport.connected
        and not transport.disconnecting
        and not transport._writeDisconnected
        and not transport.dataBuffer
        and not transport._tempDataLen
    ):
        sent = transport.writeSomeData(data)
        if isinstance(sent, int) and sent > 0:
            data = data[sent:]
    if data:
        transport.write(data)


def _to_none(_: object) -> None:
    return None


def _check_keys(keys: str) -> None:
    if not _DTMF_KEYS.issuperset(keys):
        raise ValueError(f"escape digits must be DTMF keys (0-9, *, #, A-D), not {keys!r}")


def _describe(address: IAddress) -> str:
    if isinstance(address, IPv4Address | IPv6Address):
        return f"{address.host}:{address.port}"
    return str(address)


#: ``handler(channel)`` runs one call; it may return a Deferred, a coroutine or a plain value.
CallHandler = Callable[[AgiChannel], Any]

_AWAITING_ENV = "awaiting-env"
_IN_CALL = "in-call"
_CLOSING = "closing"
_CLOSED = "closed"


class FastAGIProtocol(Protocol):
    """The server side of one FastAGI connection.

    Reads the environment block, hands an :class:`AgiChannel` to the handler, routes each reply
    to the command in flight and each ``HANGUP`` line to the channel's state, and closes the
    session when the handler is done. Anything unexpected drops this connection only.
    """

    log = Logger()
    factory: FastAGIFactory | None = None

    def __init__(self, handler: CallHandler, clock: IReactorTime, limits: AgiLimits) -> None:
        self.channel: AgiChannel | None = None
        self.peer = "?"
        #: fires (with None) once the connection is closed, whoever closed it
        self.finished: Deferred[None] = Deferred()
        self._handler = handler
        self._clock = clock
        self._limits = limits
        self._splitter = LineSplitter(limits.max_line_length)
        self._env_reader = EnvironmentReader(limits.max_env_lines)
        self._replies = ReplyReader()
        self._state = _AWAITING_ENV
        self._timers: list[IDelayedCall] = []
        #: the call's id in every log line about it (``telegestion.logs``), once known
        self.call_id: str | None = None
        #: the log fields bound while this call's code runs (``telegestion.logs.enter``)
        self._log_fields: Mapping[str, str] | None = None
        self._handler_running = False

    @property
    def state(self) -> str:
        """``awaiting-env``, ``in-call``, ``closing`` or ``closed``: for tests and metrics."""
        return self._state

    @property
    def settled(self) -> bool:
        """True once the connection is closed and the call handler (its journal) is done."""
        return self._state == _CLOSED and not self._handler_running

    @contextlib.contextmanager
    def _about_call(self) -> Iterator[None]:
        fields = self._log_fields
        if fields is None:
            yield
            return
        token = logs.enter(fields)
        try:
            yield
        finally:
            logs.leave(token)

    def connectionMade(self) -> None:
        self.peer = _describe(self.transport.getPeer())
        self._timers.append(self._clock.callLater(self._limits.env_timeout, self._env_overdue))
        if self.factory is not None:
            self.factory.connection_opened(self)

    def dataReceived(self, data: bytes) -> None:
        # Every packet of every call: the log fields are bound without a context manager.
        fields = self._log_fields
        if fields is None:
            self._data_received(data)
            return
        token = logs.enter(fields)
        try:
            self._data_received(data)
        finally:
            logs.leave(token)

    def _data_received(self, data: bytes) -> None:
        if self._state not in (_AWAITING_ENV, _IN_CALL):
            return
        overflow: LineTooLong | None = None
        try:
            lines = self._splitter.feed(data)
        except LineTooLong as exc:
            lines, overflow = list(exc.lines_before), exc
        for line in lines:
            if self._state not in (_AWAITING_ENV, _IN_CALL):
                return
            self._line_received(line)
        if overflow is not None:
            self.drop(str(overflow))

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        with self._about_call():
            self._connection_lost(reason)

    def _connection_lost(self, reason: Failure) -> None:
        previous, self._state = self._state, _CLOSED
        self._cancel_timers()
        if self.channel is not None:
            self.channel._shut(ConnectionLost(f"connection closed: {reason.getErrorMessage()}"))
        elif previous == _AWAITING_ENV:
            self.log.info(
                "FastAGI connection from {peer} closed before its environment block",
                peer=self.peer,
            )
        if self.factory is not None:
            self.factory.connection_closed(self)
            self.factory.maybe_settled(self)
        if not self.finished.called:
            self.finished.callback(None)

    def send(self, data: bytes) -> None:
        """Write bytes for the channel (nothing once the session is closing)."""
        if self._state == _IN_CALL:
            write_now(self.transport, data)

    def close_session(self) -> None:
        """End the session normally: pending writes go out, then the connection closes."""
        if self._state not in (_AWAITING_ENV, _IN_CALL):
            return
        self._state = _CLOSING
        self._cancel_timers()
        if self.channel is not None:
            self.channel._shut(ConnectionLost("session closed by the server"))
        self.transport.loseConnection()

    def drop(self, reason: str, error: ChannelHungUp | None = None) -> None:
        """Abort this connection after a protocol violation or a missed deadline."""
        if self._state not in (_AWAITING_ENV, _IN_CALL):
            return
        self.log.warn(
            "Dropping FastAGI connection from {peer}: {reason}", peer=self.peer, reason=reason
        )
        self._state = _CLOSING
        self._cancel_timers()
        if self.factory is not None:
            self.factory.connections_dropped += 1
        if self.channel is not None:
            self.channel._shut(error or ConnectionLost(f"connection dropped: {reason}"))
        self.transport.abortConnection()

    def _line_received(self, line: bytes) -> None:
        if self._state == _AWAITING_ENV:
            try:
                env = self._env_reader.feed_line(line)
            except MalformedEnvironment as exc:
                self.drop(f"garbage in the environment block: {exc}")
                return
            if env is not None:
                self._start_call(env)
            return
        try:
            event = self._replies.feed_line(line)
        except MalformedReply as exc:
            self.drop(f"malformed reply: {exc}")
            return
        if event is None or self.channel is None:
            return
        if isinstance(event, HangupNotice):
            self.channel._on_hangup_notice()
        else:
            self.channel._on_reply(event)

    def _start_call(self, env: AgiEnvironment) -> None:
        self._cancel_timers()
        self._state = _IN_CALL
        self._timers.append(self._clock.callLater(self._limits.call_timeout, self._call_overdue))
        channel = self.channel = AgiChannel(self, env, self._clock, self._limits)
        self.call_id = env.uniqueid or None
        if self.call_id is not None:
            self._log_fields = logs.fields_with(call=self.call_id)
        if self.factory is not None:
            self.factory.calls_started += 1
        self._handler_running = True
        # The handler's coroutine copies this context (``ensureDeferred``): its log lines, and
        # its database work through ``logs.in_context``, carry the call id.
        with self._about_call():
            outcome: Deferred[object] = maybeDeferred(self._handler, channel)
        outcome.addBoth(self._handler_done)

    def _handler_done(self, result: object) -> None:
        self._handler_running = False
        with self._about_call():
            self._report_handler(result)
        self.close_session()
        if self.factory is not None:
            self.factory.maybe_settled(self)

    def _report_handler(self, result: object) -> None:
        if isinstance(result, Failure):
            uniqueid = self.channel.env.uniqueid if self.channel is not None else "?"
            if result.check(ChannelHungUp):
                self.log.info(
                    "Call {uniqueid} from {peer} ended: {reason}",
                    uniqueid=uniqueid,
                    peer=self.peer,
                    reason=result.getErrorMessage(),
                )
            else:
                self.log.failure(
                    "Call handler failed (call {uniqueid} from {peer})",
                    failure=result,
                    uniqueid=uniqueid,
                    peer=self.peer,
                )

    def _env_overdue(self) -> None:
        self.drop(f"no complete environment block within {self._limits.env_timeout:g} s")

    def _call_overdue(self) -> None:
        with self._about_call():
            self.drop(f"call still running after {self._limits.call_timeout:g} s")

    def _cancel_timers(self) -> None:
        for timer in self._timers:
            if timer.active():
                timer.cancel()
        self._timers.clear()


class FastAGIFactory(Factory):
    """Builds one :class:`FastAGIProtocol` per connection; ``handler(channel)`` runs the call.

    ``clock`` drives every deadline (inject a ``task.Clock`` in tests); ``limits`` holds them.
    The counters are for ``/metrics`` and ``/healthz``; ``command_timer`` (optional) is told
    the server's own time before each command it sends. ``in_progress`` holds every
    connection until it is closed *and* its handler is done (the journal written): what a
    draining server waits for (:meth:`when_idle`).
    """

    noisy = False

    def __init__(
        self,
        handler: CallHandler,
        clock: IReactorTime | None = None,
        limits: AgiLimits | None = None,
    ) -> None:
        if clock is None:
            from twisted.internet import reactor

            clock = reactor  # type: ignore[assignment]
        self.handler = handler
        self.clock: IReactorTime = clock  # type: ignore[assignment]
        self.limits = limits or AgiLimits()
        self.open_connections: set[FastAGIProtocol] = set()
        self.in_progress: set[FastAGIProtocol] = set()
        self.calls_started = 0
        self.connections_dropped = 0
        self.command_timer: CommandTimer | None = None
        self._idle_waiters: list[Deferred[None]] = []

    def buildProtocol(self, addr: IAddress) -> FastAGIProtocol:
        protocol = FastAGIProtocol(self.handler, self.clock, self.limits)
        protocol.factory = self
        return protocol

    def connection_opened(self, protocol: FastAGIProtocol) -> None:
        self.open_connections.add(protocol)
        self.in_progress.add(protocol)

    def connection_closed(self, protocol: FastAGIProtocol) -> None:
        self.open_connections.discard(protocol)

    def maybe_settled(self, protocol: FastAGIProtocol) -> None:
        """Forget a connection once it is closed and its handler done; wake idle waiters."""
        if not protocol.settled or protocol not in self.in_progress:
            return
        self.in_progress.discard(protocol)
        if not self.in_progress:
            waiters, self._idle_waiters = self._idle_waiters, []
            for waiter in waiters:
                if not waiter.called:  # a waiter given up on (cancelled) is skipped
                    waiter.callback(None)

    def when_idle(self) -> Deferred[None]:
        """Fires once no call is in progress (at once if none is)."""
        if not self.in_progress:
            return succeed(None)
        waiter: Deferred[None] = Deferred()
        self._idle_waiters.append(waiter)
        return waiter

    def drop_all(self, reason: str) -> int:
        """Drop every open session (a stopping server whose grace is over); returns how many.

        Each call's handler sees :class:`ServerShuttingDown` and still writes its journal.
        """
        dropping = list(self.open_connections)
        for protocol in dropping:
            with protocol._about_call():
                protocol.drop(reason, ServerShuttingDown(reason))
        return len(dropping)


def listen_fastagi(
    reactor: IReactorTCP,
    port: int,
    factory: FastAGIFactory,
    interface: str = "",
    backlog: int = FASTAGI_LISTEN_BACKLOG,
) -> IListeningPort:
    """Listen for Asterisk with a backlog sized for the 8:00 burst (see FASTAGI_LISTEN_BACKLOG).

    ``port`` 0 picks a free port (tests); ``interface`` "" listens on every IPv4 address.
    """
    return reactor.listenTCP(port, factory, backlog=backlog, interface=interface)
