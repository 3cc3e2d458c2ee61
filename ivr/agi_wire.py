"""The AGI / FastAGI wire format: environment block, replies, commands.

Pure on purpose: the FastAGI server (Twisted) and the classic AGI script (pyst2, stdin/stdout)
speak exactly the same bytes, so they share this one grammar, and hypothesis can hammer it without
a reactor. Everything here works on complete lines; splitting a byte stream into lines is
:class:`LineSplitter`'s job, so that how TCP cuts the stream never changes what is parsed.

The facts behind every rule are in ``ASTERISK-AGI-FACTS.md`` and the real Asterisk transcripts;
the docstring of :func:`parse_reply` lists the wire lines this module is tested against.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from urllib.parse import parse_qsl

# --------------------------------------------------------------------------------------------
# Errors of the wire itself (the parser's own typed errors)
# --------------------------------------------------------------------------------------------


class AgiWireError(Exception):
    """Bytes that do not follow the AGI grammar.

    The only exception the parsers in this module raise on bad input: callers catch this one
    type and drop the connection, whatever the peer sent.
    """


class LineTooLong(AgiWireError):
    """A line grew past the limit without an end: a broken or hostile peer, never Asterisk."""

    def __init__(self, limit: int, lines_before: Sequence[bytes] = ()) -> None:
        super().__init__(f"line longer than {limit} bytes")
        self.limit = limit
        #: complete lines that arrived before the overlong one, so a caller may still act on them
        self.lines_before: tuple[bytes, ...] = tuple(lines_before)


class MalformedEnvironment(AgiWireError):
    """The ``agi_*`` block is not ``agi_key: value`` lines ended by an empty line."""


class MalformedReply(AgiWireError):
    """A line where a reply was due is not a reply Asterisk could have sent."""


class UnsafeArgument(AgiWireError, ValueError):
    """A command or argument that cannot be sent safely (a line break would split the command)."""


# --------------------------------------------------------------------------------------------
# What a command can end in, above the wire (shared by FastAGI and classic AGI)
# --------------------------------------------------------------------------------------------


class ChannelHungUp(Exception):
    """The caller is gone: the call flow must stop speaking and only journal.

    Raised for a ``511`` reply, for a ``result=-1`` confirmed as a hang-up, and (through
    :class:`ConnectionLost`) when the connection to Asterisk ends.
    """


class ConnectionLost(ChannelHungUp):
    """The AGI session itself ended (Asterisk closed it, or we dropped it)."""


class ReplyTimeout(ConnectionLost):
    """Asterisk did not answer a command in time; the session was dropped.

    A subclass of :class:`ConnectionLost` because the call cannot go on, but distinct so the
    journal can say "server-side timeout" instead of "caller hung up".
    """


class PlaybackFailed(Exception):
    """A prompt could not be played on a live channel: a missing sound file.

    This is an installation fault (sounds not deployed, wrong language folder), never the
    caller's doing; it must reach a coordinator, not be journaled as a hang-up.
    """

    def __init__(self, sound: str, command: str) -> None:
        super().__init__(
            f"sound {sound!r} could not be played ({command!r} failed on a live channel)"
        )
        self.sound = sound
        self.command = command


class AgiCommandError(Exception):
    """Asterisk refused a command (``510`` unknown, ``520`` bad syntax, or an unusable result).

    Always a bug on our side or a version mismatch with Asterisk: the usage text is kept so the
    log says which argument was wrong.
    """

    def __init__(self, command: str, code: int, message: str, usage: str | None = None) -> None:
        text = f"{command!r} refused: {code} {message}"
        if usage:
            text += f"\n{usage}"
        super().__init__(text)
        self.command = command
        self.code = code
        self.message = message
        self.usage = usage


class CommandInFlight(RuntimeError):
    """A second command was sent before the first one's reply.

    Asterisk aborts a running GET DATA or STREAM FILE when a new command arrives and never
    answers the aborted one, so overlapping commands would silently lose a reply.
    """


# --------------------------------------------------------------------------------------------
# Lines
# --------------------------------------------------------------------------------------------

DEFAULT_MAX_LINE_LENGTH = 16 * 1024


class LineSplitter:
    """Cuts a byte stream into LF-terminated lines, refusing any line longer than a limit.

    Twisted's LineReceiver would do, but its default limit (16 KiB, silently enforced by closing
    the connection) and its delimiter handling are easy to misconfigure; owning the few lines of
    logic keeps the limit explicit and the behaviour independent of segment boundaries. A
    trailing CR is dropped so that a hand-typed test session (telnet, CRLF) still works.
    """

    def __init__(self, max_length: int = DEFAULT_MAX_LINE_LENGTH) -> None:
        if max_length < 1:
            raise ValueError("max_length must be positive")
        self.max_length = max_length
        self._buffer = bytearray()
        self._failed = False

    @property
    def pending(self) -> bytes:
        """Bytes of a line not yet ended (lost if the stream ends now)."""
        return bytes(self._buffer)

    def feed(self, data: bytes) -> list[bytes]:
        """Return the complete lines (without LF) that ``data`` finishes.

        Raises :class:`LineTooLong` as soon as an unfinished line exceeds the limit (without
        waiting for its end, which may never come); the lines completed before it are carried
        by the exception. After that the splitter refuses any further input.
        """
        if self._failed:
            raise LineTooLong(self.max_length)
        buffer = self._buffer
        lines: list[bytes] = []
        search_from = len(buffer)  # the kept partial line holds no LF
        buffer += data
        start = 0
        while (newline := buffer.find(b"\n", search_from)) >= 0:
            line = bytes(buffer[start:newline])
            start = search_from = newline + 1
            if line.endswith(b"\r"):
                line = line[:-1]
            if len(line) > self.max_length:
                raise self._fail(lines)
            lines.append(line)
        del buffer[:start]
        # An unfinished line is already too long if even dropping a final CR cannot save it.
        if len(buffer) > self.max_length + 1 or (
            len(buffer) == self.max_length + 1 and not buffer.endswith(b"\r")
        ):
            raise self._fail(lines)
        return lines

    def _fail(self, lines_before: list[bytes]) -> LineTooLong:
        """Refuse from now on, and let go of the overlong bytes: a dropped peer holds no memory."""
        self._failed = True
        self._buffer.clear()
        return LineTooLong(self.max_length, lines_before)


def decode_text(raw: bytes) -> str:
    """Decode wire bytes the way Asterisk means them: UTF-8, never failing, never a NUL.

    Caller names come from the network and can be Latin-1 or cut in the middle of a character;
    a replacement character in a journal is better than a crashed call. A NUL is replaced too:
    Asterisk cannot send one (C strings), but anything can connect to the FastAGI port, and
    PostgreSQL text cannot hold a NUL: one in ``agi_callerid`` made the punch itself fail to be
    stored (tests/hostile/test_hostile_ivr_calls.py).
    """
    return raw.decode("utf-8", errors="replace").replace("\x00", "\ufffd")


# --------------------------------------------------------------------------------------------
# The environment block
# --------------------------------------------------------------------------------------------

_ENV_LINE = re.compile(rb"(agi_[A-Za-z0-9_]+):(?: (.*)|)", re.DOTALL)
_ARG_KEY = re.compile(r"agi_arg_([0-9]{1,6})")
DEFAULT_MAX_ENV_LINES = 256


@dataclass(frozen=True)
class AgiEnvironment:
    """The ``agi_*`` variables Asterisk sends before the first command.

    Keys are kept exactly as sent (``agi_callerid``), unknown ones included, because newer
    Asterisk versions add variables and the journal should keep what the PBX said.
    """

    values: Mapping[str, str] = field(default_factory=dict)

    def get(self, key: str, default: str = "") -> str:
        """The value of ``key`` (full name, e.g. ``agi_dnid``), or ``default`` when absent."""
        return self.values.get(key, default)

    @property
    def network(self) -> bool:
        """True for FastAGI (``agi_network: yes``), False for a classic AGI script."""
        return self.get("agi_network") == "yes"

    @property
    def network_script(self) -> str:
        """Path and query of the ``agi://`` URL, e.g. ``telegestion?dnis=0800123456``."""
        return self.get("agi_network_script")

    @property
    def script_name(self) -> str:
        """The script part of :attr:`network_script`, without the query."""
        return self.network_script.partition("?")[0]

    @property
    def script_query(self) -> dict[str, str]:
        """The query of the ``agi://`` URL; a dialplan may pass the numbers there too."""
        query = self.network_script.partition("?")[2]
        return dict(parse_qsl(query, keep_blank_values=True))

    @property
    def args(self) -> tuple[str, ...]:
        """``agi_arg_1``, ``agi_arg_2``… in numeric order: the AGI() arguments after the URL."""
        numbered: list[tuple[int, str]] = []
        for key, value in self.values.items():
            match = _ARG_KEY.fullmatch(key)
            if match:
                numbered.append((int(match.group(1)), value))
        return tuple(value for _, value in sorted(numbered))

    def arg(self, number: int) -> str:
        """AGI() argument ``number`` (1-based), or "" when the dialplan did not pass it."""
        return self.get(f"agi_arg_{number}")

    @property
    def request(self) -> str:
        return self.get("agi_request")

    @property
    def channel(self) -> str:
        return self.get("agi_channel")

    @property
    def language(self) -> str:
        return self.get("agi_language")

    @property
    def uniqueid(self) -> str:
        """Asterisk's call id (``1795333838.1``); with the node name, the punch's unique key."""
        return self.get("agi_uniqueid")

    @property
    def version(self) -> str:
        return self.get("agi_version")

    @property
    def callerid(self) -> str:
        """The caller number as Asterisk has it; ``unknown`` when there is none (transcript d1)."""
        return self.get("agi_callerid")

    @property
    def calleridname(self) -> str:
        return self.get("agi_calleridname")

    @property
    def callingpres(self) -> int | None:
        """Presentation code: 0 allowed, 35 withheld but present, 67 no number (d1–d4)."""
        return _small_int(self.get("agi_callingpres"))

    @property
    def dnid(self) -> str:
        return self.get("agi_dnid")

    @property
    def rdnis(self) -> str:
        return self.get("agi_rdnis")

    @property
    def context(self) -> str:
        return self.get("agi_context")

    @property
    def extension(self) -> str:
        return self.get("agi_extension")

    @property
    def priority(self) -> str:
        return self.get("agi_priority")

    @property
    def accountcode(self) -> str:
        return self.get("agi_accountcode")


def parse_environment_line(line: bytes) -> tuple[str, str]:
    """Split one ``agi_key: value`` line; the value is decoded leniently, the key strictly.

    The key must look like an AGI variable: a port scanner, an HTTP request or a confused
    client sent to the FastAGI port is garbage and must not reach the call flow.
    """
    match = _ENV_LINE.fullmatch(line)
    if match is None:
        raise MalformedEnvironment(f"not an agi_ variable: {line[:80]!r}")
    key = match.group(1).decode("ascii")
    value = decode_text(match.group(2) or b"")
    return key, value


class EnvironmentReader:
    """Collects the environment block line by line, for a reader that gets lines one at a time."""

    def __init__(self, max_lines: int = DEFAULT_MAX_ENV_LINES) -> None:
        self.max_lines = max_lines
        self._values: dict[str, str] = {}
        self._count = 0

    def feed_line(self, line: bytes) -> AgiEnvironment | None:
        """Take one line; return the environment once the empty line ends it."""
        if line == b"":
            if not self._values:
                raise MalformedEnvironment("empty environment block")
            return AgiEnvironment(MappingProxyType(dict(self._values)))
        self._count += 1
        if self._count > self.max_lines:
            raise MalformedEnvironment(f"environment block longer than {self.max_lines} lines")
        key, value = parse_environment_line(line)
        self._values[key] = value
        return None


def parse_environment(
    lines: Iterable[bytes], max_lines: int = DEFAULT_MAX_ENV_LINES
) -> AgiEnvironment:
    """Parse a whole block (lines without LF), e.g. what a classic AGI script reads on stdin."""
    reader = EnvironmentReader(max_lines)
    for line in lines:
        env = reader.feed_line(line)
        if env is not None:
            return env
    raise MalformedEnvironment("environment block not ended by an empty line")


# --------------------------------------------------------------------------------------------
# Replies
# --------------------------------------------------------------------------------------------

CODE_TRYING = 100
CODE_SUCCESS = 200
CODE_INVALID_COMMAND = 510
CODE_DEAD_CHANNEL = 511
CODE_USAGE = 520

HANGUP_LINE = "HANGUP"
MAX_REPLY_BLOCK_LINES = 500

_STATUS_LINE = re.compile(r"([0-9]{3})(?:([ -])(.*))?", re.DOTALL)
_SMALL_INT = re.compile(r"-?[0-9]{1,18}")
_ENDPOS_TAIL = re.compile(r"(?:\((?P<data>.*)\) )?endpos=(?P<endpos>-?[0-9]{1,18})", re.DOTALL)
_DTMF_DIGITS = re.compile(r"[0-9A-D*#]*")


def _small_int(text: str) -> int | None:
    """An integer that cannot blow up: Python refuses int() on very long digit strings."""
    return int(text) if _SMALL_INT.fullmatch(text) else None


@dataclass(frozen=True)
class Reply:
    """One reply from Asterisk, complete (a ``520-`` block is one reply).

    ``result`` is the raw text after ``result=`` (``""`` is a real value: GET DATA ended by
    ``#``); ``data`` is the text in parentheses, uninterpreted (``(timeout)`` after GET DATA,
    a variable's value after GET VARIABLE, even when that value is ``hangup``).
    """

    code: int
    result: str | None = None
    data: str | None = None
    endpos: int | None = None
    extra: str = ""
    message: str = ""
    usage: str | None = None
    lines: tuple[str, ...] = ()

    @property
    def result_int(self) -> int | None:
        """``result`` as an integer, None when it is not one (digits from GET DATA)."""
        return None if self.result is None else _small_int(self.result)

    @property
    def is_failure(self) -> bool:
        """``200 result=-1``: a hang-up or a failed playback; only a probe tells which."""
        return self.code == CODE_SUCCESS and self.result == "-1"


@dataclass(frozen=True)
class HangupNotice:
    """The bare ``HANGUP`` line: an event Asterisk sends on its own, never a reply."""


HANGUP_NOTICE = HangupNotice()


def parse_reply(lines: Sequence[str]) -> Reply:
    """Parse one complete reply: a single line, or a ``NNN-`` … ``NNN `` block.

    The real forms, from the Asterisk 22 transcripts (each is a test vector):

    - ``200 result=0`` (ANSWER, WAIT FOR DIGIT timeout, EXEC), ``200 result=1`` (VERBOSE,
      SET VARIABLE, HANGUP)
    - ``200 result=12``, ``200 result=5678``, ``200 result=*12*`` (GET DATA digits, ``*`` kept)
    - ``200 result=9 (timeout)`` and ``200 result= (timeout)`` (GET DATA timeout, digits or none)
    - ``200 result=`` (GET DATA ended by ``#`` before any digit)
    - ``200 result=42`` / ``200 result=35`` (WAIT FOR DIGIT: ASCII code of ``*`` / ``#``)
    - ``200 result=0 endpos=5600``, ``200 result=42 endpos=19040``, ``200 result=-1 endpos=0``
      (STREAM FILE: played, interrupted by ``*``, missing file)
    - ``200 result=-1`` (GET DATA on a hang-up or a missing file: the same line)
    - ``200 result=-2`` (EXEC of an unknown application)
    - ``200 result=1 (a normal)``, ``200 result=1 ()``, ``200 result=1 (hangup)`` (GET VARIABLE:
      the value is data, even the word "hangup")
    - ``100 result=0 Trying...`` (before a Gosub's real reply; :class:`ReplyReader` skips it)
    - ``510 Invalid or unknown command``
    - ``511 Command Not Permitted on a dead channel or intercept routine``
    - ``520-Invalid command syntax.  Proper usage follows:`` / usage lines /
      ``520 End of proper usage.``
    - ``520 Invalid command syntax.  Proper usage not available.`` (one line, no block)

    The asynchronous ``HANGUP`` line is not a reply: :class:`ReplyReader` turns it into a
    :class:`HangupNotice` and this function refuses it.
    """
    if not lines:
        raise MalformedReply("empty reply")
    first = lines[0]
    match = _STATUS_LINE.fullmatch(first)
    if match is None:
        raise MalformedReply(f"not a reply: {first[:80]!r}")
    code = int(match.group(1))
    separator = match.group(2) or " "
    rest = match.group(3) or ""
    if len(lines) == 1:
        if separator == "-":
            raise MalformedReply(f"unterminated {code}- block")
        return _parse_status_line(code, rest, first)
    if separator != "-":
        raise MalformedReply(f"a {code} reply does not continue over several lines")
    last = lines[-1]
    end = _STATUS_LINE.fullmatch(last)
    if end is None or int(end.group(1)) != code or (end.group(2) or " ") != " ":
        raise MalformedReply(f"{code}- block not ended by a '{code} ' line")
    return Reply(
        code=code,
        message=rest,
        usage="\n".join(lines[1:-1]),
        lines=tuple(lines),
    )


def _parse_status_line(code: int, rest: str, line: str) -> Reply:
    if code not in (CODE_TRYING, CODE_SUCCESS):
        return Reply(code=code, message=rest, lines=(line,))
    if not rest.startswith("result="):
        raise MalformedReply(f"{code} reply without result=: {line[:80]!r}")
    value, _, tail = rest[len("result=") :].partition(" ")
    data: str | None = None
    endpos: int | None = None
    extra = ""
    if len(tail) >= 2 and tail.startswith("(") and tail.endswith(")"):
        data = tail[1:-1]
    elif (found := _ENDPOS_TAIL.fullmatch(tail)) is not None:
        data = found.group("data")
        endpos = int(found.group("endpos"))
    else:
        extra = tail
    return Reply(code=code, result=value, data=data, endpos=endpos, extra=extra, lines=(line,))


class ReplyReader:
    """Groups reply lines into replies and events, one line at a time.

    Asterisk writes the ``520-`` usage text in a separate TCP segment tens of milliseconds
    after the first line, and a reader that expects a block after the one-line ``520`` form
    waits forever; reading line by line with an explicit block state avoids both traps.
    """

    def __init__(self, max_block_lines: int = MAX_REPLY_BLOCK_LINES) -> None:
        self.max_block_lines = max_block_lines
        self._block: list[str] | None = None
        self._block_code = ""

    @property
    def in_block(self) -> bool:
        """True while a ``NNN-`` block has started and not ended."""
        return self._block is not None

    def feed_line(self, line: bytes | str) -> Reply | HangupNotice | None:
        """Return a complete reply, a hang-up notice, or None (line absorbed, keep reading)."""
        text = decode_text(line) if isinstance(line, bytes) else line
        if self._block is not None:
            self._block.append(text)
            if text == self._block_code or text.startswith(self._block_code + " "):
                block, self._block = self._block, None
                return parse_reply(block)
            if len(self._block) > self.max_block_lines:
                raise MalformedReply(
                    f"{self._block_code}- block longer than {self.max_block_lines} lines"
                )
            return None
        if text == HANGUP_LINE:
            return HANGUP_NOTICE
        match = _STATUS_LINE.fullmatch(text)
        if match is None:
            raise MalformedReply(f"not a reply: {text[:80]!r}")
        if match.group(2) == "-":
            self._block = [text]
            self._block_code = match.group(1)
            return None
        reply = parse_reply([text])
        if reply.code == CODE_TRYING:
            return None
        return reply


# --------------------------------------------------------------------------------------------
# Typed results of the commands the call flow uses
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GetDataResult:
    """What GET DATA collected: ``digits`` may be empty; ``*`` is an ordinary digit."""

    digits: str
    timed_out: bool


@dataclass(frozen=True)
class StreamResult:
    """How a STREAM FILE ended: the escape digit pressed (or None) and the sample reached."""

    digit: str | None
    endpos: int


_ASCII_DTMF = {ord(c): c for c in "0123456789*#ABCD"}


def digit_from_ascii(code: int) -> str | None:
    """WAIT FOR DIGIT and STREAM FILE answer the key's ASCII code (42 is ``*``); 0 is no key."""
    if code == 0:
        return None
    try:
        return _ASCII_DTMF[code]
    except KeyError:
        raise MalformedReply(f"{code} is not the ASCII code of a DTMF key") from None


def _require_success(reply: Reply) -> Reply:
    if reply.code != CODE_SUCCESS or reply.result is None:
        raise MalformedReply(f"expected a 200 reply, got {reply.lines!r}")
    if reply.is_failure:
        raise MalformedReply("result=-1 must be confirmed as a hang-up or a failure first")
    return reply


def interpret_get_data(reply: Reply) -> GetDataResult:
    """``200 result=<digits> [(timeout)]`` as typed data."""
    _require_success(reply)
    digits = reply.result or ""
    if not _DTMF_DIGITS.fullmatch(digits):
        raise MalformedReply(f"GET DATA returned non-DTMF characters: {digits[:40]!r}")
    return GetDataResult(digits=digits, timed_out=reply.data == "timeout")


def interpret_key_code(reply: Reply) -> str | None:
    """``200 result=<ascii>`` (WAIT FOR DIGIT, SAY …) as the key pressed, or None."""
    _require_success(reply)
    code = reply.result_int
    if code is None:
        raise MalformedReply(f"expected a key code, got {reply.result!r}")
    return digit_from_ascii(code)


def interpret_stream(reply: Reply) -> StreamResult:
    """``200 result=<ascii> endpos=<n>`` as the escape digit and the position reached."""
    return StreamResult(digit=interpret_key_code(reply), endpos=reply.endpos or 0)


def interpret_variable(reply: Reply) -> str | None:
    """``200 result=1 (<value>)`` is a value (possibly empty); ``200 result=0`` is unset."""
    _require_success(reply)
    if reply.result == "0":
        return None
    if reply.result == "1":
        return reply.data if reply.data is not None else ""
    raise MalformedReply(f"GET VARIABLE returned result={reply.result!r}")


# --------------------------------------------------------------------------------------------
# Commands
# --------------------------------------------------------------------------------------------

_FORBIDDEN = ("\n", "\r", "\x00")
_NEEDS_QUOTES = frozenset(' \t"\\')


@dataclass(frozen=True)
class Quoted:
    """An argument always sent in double quotes, like escape digits (``"*#"``, ``""``).

    Quoting a value without spaces changes nothing for Asterisk, but it is how the recorded
    transcripts send escape digits, and it keeps an empty list of digits a visible ``""``.
    """

    value: str


def _refuse_unsafe(text: str, what: str) -> None:
    for char in _FORBIDDEN:
        if char in text:
            raise UnsafeArgument(
                f"{what} contains {char!r}, which would split the command: {text[:60]!r}"
            )


def quote_argument(value: str, *, always: bool = False) -> str:
    """One argument as Asterisk's argument splitter reads it back.

    Asterisk splits on spaces and tabs outside double quotes, and a backslash makes the next
    character literal; so ``"`` and ``\\`` are escaped, and an empty value is sent as ``""``
    (without quotes it would vanish and shift every argument after it).
    """
    _refuse_unsafe(value, "argument")
    if not always and value and not _NEEDS_QUOTES.intersection(value):
        return value
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def format_command(command: str, *args: str | int | Quoted) -> str:
    """Build one command line (without LF): ``format_command("GET DATA", "beep", 8000, 6)``."""
    _refuse_unsafe(command, "command")
    if not command.strip():
        raise UnsafeArgument("empty command")
    parts = [command]
    for arg in args:
        if isinstance(arg, Quoted):
            parts.append(quote_argument(arg.value, always=True))
        elif isinstance(arg, bool):
            raise TypeError("a bool is not an AGI argument; pass 0/1 or a string")
        elif isinstance(arg, int):
            parts.append(str(arg))
        else:
            parts.append(quote_argument(arg))
    return " ".join(parts)


def encode_command_line(line: str) -> bytes:
    """The bytes to send for one command line: UTF-8 and exactly one LF at the end."""
    _refuse_unsafe(line, "command line")
    return line.encode("utf-8") + b"\n"


def split_arguments(line: str) -> list[str]:
    """Split a command line the way Asterisk does: the inverse of :func:`format_command`.

    Spaces and tabs separate words outside double quotes; a double quote toggles quoting and
    starts a word even when nothing follows (so ``""`` is an empty argument); a backslash makes
    the next character literal. Used by the simulated Asterisk, and by tests to check that what
    we send is read back as we meant it.
    """
    words: list[str] = []
    current: list[str] | None = None
    quoted = False
    escaped = False
    for char in line:
        if escaped:
            if current is None:
                current = []
            current.append(char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == '"':
            quoted = not quoted
            if quoted and current is None:
                current = []
        elif char in " \t" and not quoted:
            if current is not None:
                words.append("".join(current))
                current = None
        else:
            if current is None:
                current = []
            current.append(char)
    if current is not None:
        words.append("".join(current))
    return words
