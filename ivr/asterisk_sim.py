"""A simulated Asterisk: places calls on a FastAGI server and behaves like the real one on the wire.

Part of the product, not only of the tests: ``telegestion call`` uses it to try a running server
by hand, the test suite uses it to drive whole calls, the load benchmark to play the 8:00 burst.
What it reproduces comes from the real Asterisk 22 transcripts and ``ASTERISK-AGI-FACTS.md``:

- the environment block (same keys, same order), the reply forms of every command, ``511`` on a
  dead channel while VERBOSE, GET/SET VARIABLE and EXEC still answer ``200``;
- the unsolicited ``HANGUP`` line (right away when idle; ~40 ms after the ``-1`` reply of the
  command in flight; ~40 ms after ``200 result=1`` of the server's own HANGUP), none with
  ``AGISIGHUP=no``, twice then EOF with ``AGIEXITONHANGUP=yes`` (set them in ``variables``);
- the ``520-`` usage block whose text arrives in a second write ~43 ms later;
- DTMF as a caller lives it: a key is read only if a command reading keys is running when the key
  ends (GET DATA, WAIT FOR DIGIT, or STREAM FILE / SAY with that key as an escape digit);
  otherwise it is lost, because Asterisk keeps no buffer between commands;
- missing sounds (when ``known_sounds`` is given): STREAM FILE ``200 result=-1 endpos=0`` and a
  sticky ``AGISTATUS=FAILURE``, GET DATA ``200 result=-1``, EXEC Playback ``200 result=0`` with
  ``PLAYBACKSTATUS=FAILED``;
- the AGISTATUS the dialplan would see: FAILURE (no connection, failed STREAM FILE), HANGUP (the
  channel was hung up by anyone), SUCCESS (the server closed with the channel up).

Not from a transcript, so assumptions kept simple: GET DATA plays ``a&b`` prompt lists in turn
(as Asterisk's Read does); SAY prompts take fixed durations; an EXEC of Wait, Set, NoOp works,
other applications than Playback/Wait/Set/NoOp/Verbose/Log/Hangup answer ``-2``.

Two ways to run calls: over TCP in real time (:func:`place_call`, :func:`place_calls`), or in
memory on a ``task.Clock`` (:func:`simulate_call`, :func:`simulate_calls`), where a call with
minutes of prompts runs in milliseconds and always the same way.

Classic AGI (``SimulatedCall(network=False)``): Asterisk runs a script per call on a pipe pair
instead of connecting. From ``res_agi.c``: the environment block loses its ``agi_network`` and
``agi_network_script`` lines (``agi_request`` is the script name); where FastAGI gets a
``HANGUP`` line, the script gets SIGHUP (the ``on_sighup`` hook; none with ``AGISIGHUP=no``);
the session ends when the script closes its stdout or exits, after which Asterisk sends SIGHUP
and waits for the process; a non-zero exit status turns an otherwise SUCCESS AGISTATUS into
FAILURE. ``ivr.asterisk_sim_process`` runs such calls against a real child process.
"""

from __future__ import annotations

import itertools
import random
import re
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from twisted.internet.address import IPv4Address
from twisted.internet.defer import Deferred, DeferredSemaphore, gatherResults
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
from twisted.internet.error import ConnectionDone
from twisted.internet.error import ConnectionLost as TCPConnectionLost
from twisted.internet.interfaces import (
    IAddress,
    IDelayedCall,
    IHalfCloseableProtocol,
    IProtocolFactory,
    IReactorTCP,
    IReactorTime,
    ITransport,
)
from twisted.internet.protocol import Protocol, connectionDone
from twisted.internet.task import Clock
from twisted.python.failure import Failure
from zope.interface import implementer

from ivr.agi_wire import LineSplitter, LineTooLong, decode_text, split_arguments

ASTERISK_VERSION = "22.10.1"
SAMPLES_PER_SECOND = 8000  # endpos counts 8 kHz samples (transcripts: 0.7 s of digits/5 = 5600)
DTMF_KEYS = frozenset("0123456789*#ABCD")

DEAD_CHANNEL_REPLY = "511 Command Not Permitted on a dead channel or intercept routine"
UNKNOWN_COMMAND_REPLY = "510 Invalid or unknown command"
USAGE_FIRST_LINE = "520-Invalid command syntax.  Proper usage follows:"
USAGE_LAST_LINE = "520 End of proper usage."
USAGE_UNAVAILABLE_REPLY = "520 Invalid command syntax.  Proper usage not available."
HANGUP_LINE = "HANGUP"

# --------------------------------------------------------------------------------------------
# What the caller does
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class KeyPace:
    """How long each key sounds and the silence before the next (the transcripts' 120 + 250 ms)."""

    tone: float = 0.12
    gap: float = 0.25


@dataclass(frozen=True)
class Keys:
    """Type these keys, one after the other at the call's pace (or ``pace``)."""

    digits: str
    pace: KeyPace | None = None

    def __post_init__(self) -> None:
        if not DTMF_KEYS.issuperset(self.digits):
            raise ValueError(f"not DTMF keys: {self.digits!r}")


@dataclass(frozen=True)
class Pause:
    """Do nothing for a while (the caller listens)."""

    seconds: float


@dataclass(frozen=True)
class WaitForPrompt:
    """Wait until a prompt starts (or, with ``ended``, finishes or is cut).

    ``sound`` matches the file name as the server sent it or its last path part
    (``welcome`` matches ``telegestion/welcome``); None matches any prompt. A prompt already
    playing satisfies a wait for its start.
    """

    sound: str | None = None
    ended: bool = False


@dataclass(frozen=True)
class WaitForInput:
    """Wait until the IVR is reading keys and has not received any yet.

    With ``after_prompt``, also wait for its prompt to finish: the careful carer who listens to
    each prompt to the end. Without it, the carer who types over the prompt.
    """

    after_prompt: bool = False


@dataclass(frozen=True)
class HangUp:
    """Hang up, ``after`` seconds from now."""

    after: float = 0.0


Action = Keys | Pause | WaitForPrompt | WaitForInput | HangUp


def parse_keys(spec: str) -> list[Action]:
    """Turn a compact key string into a script, for the command line.

    Keys ``0-9 * # A-D`` are typed; ``W`` pauses 1 s and ``w`` 0.5 s (as Asterisk's SendDTMF);
    ``,`` waits until the IVR asks for keys and its prompt has finished; ``>`` waits until it
    asks for keys (typing over the prompt); ``H`` hangs up. Example: ``",042,12345#"``.
    """
    actions: list[Action] = []
    pending = ""
    for char in spec:
        if char in DTMF_KEYS:
            pending += char
            continue
        if pending:
            actions.append(Keys(pending))
            pending = ""
        if char == "W":
            actions.append(Pause(1.0))
        elif char == "w":
            actions.append(Pause(0.5))
        elif char == ",":
            actions.append(WaitForInput(after_prompt=True))
        elif char == ">":
            actions.append(WaitForInput())
        elif char == "H":
            actions.append(HangUp())
        elif not char.isspace():
            raise ValueError(f"unexpected {char!r} in key script {spec!r}")
    if pending:
        actions.append(Keys(pending))
    return actions


# --------------------------------------------------------------------------------------------
# One call: configuration and record
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SimulatedCall:
    """One call to place: who calls, what the caller does, how the simulated PBX behaves.

    ``caller`` None or "" is a call with no number at all (``agi_callerid: unknown``,
    ``agi_callingpres: 67``, empty ``agi_arg_2``); ``withheld`` keeps the number but marks it
    restricted (``agi_callingpres: 35``), as a CLIR call really arrives. The script starts when
    the server answers; ``hang_up_after`` (seconds after the answer) hangs up whatever the script
    is doing. ``durations`` gives seconds per sound name (or last path part); ``known_sounds``,
    when given, lists the sounds that exist. ``variables`` are channel variables set by the
    dialplan before the AGI, e.g. ``{"AGISIGHUP": "no"}`` or ``{"AGIEXITONHANGUP": "yes"}``.
    ``caller_name`` may be bytes: Asterisk passes a name as the network delivered it, which can
    be Latin-1 or cut in the middle of a UTF-8 character. ``network`` False is a classic AGI
    script named ``agi_script`` (see the module docstring).
    """

    called: str
    caller: str | None = None
    caller_name: str | bytes | None = None
    withheld: bool = False
    script: Sequence[Action] = ()
    hang_up_after: float | None = None
    durations: Mapping[str, float] = field(default_factory=dict)
    default_duration: float = 2.0
    known_sounds: Collection[str] | None = None
    variables: Mapping[str, str] = field(default_factory=dict)
    pace: KeyPace = KeyPace()
    language: str = "fr"
    network_script: str = "telegestion"
    network: bool = True
    agi_script: str = "telegestion.agi"
    uniqueid: str | None = None
    answer_delay: float = 0.021
    hangup_notice_delay: float = 0.040
    usage_delay: float = 0.043
    say_digit_duration: float = 0.6
    say_datetime_duration: float = 2.4
    #: a caller hangs up if nobody answers within this time
    ring_timeout: float = 60.0
    #: the dialplan's TIMEOUT(absolute): the channel is hung up after this long
    max_call_seconds: float = 3600.0
    #: after a hang-up, the simulator closes the session itself if the server has not
    max_linger_after_hangup: float = 30.0


def accelerated(call: SimulatedCall, factor: float) -> SimulatedCall:
    """The same call with every simulator-side duration divided by ``factor``.

    For quick real-time runs over TCP: prompts, key pace, pauses and caller hang-up times shrink;
    timeouts the server puts in its commands do not (they are the server's to choose).
    """
    if factor <= 0:
        raise ValueError("factor must be positive")

    def scaled(action: Action) -> Action:
        if isinstance(action, Keys) and action.pace is not None:
            return Keys(action.digits, _scaled_pace(action.pace, factor))
        if isinstance(action, Pause):
            return Pause(action.seconds / factor)
        if isinstance(action, HangUp):
            return HangUp(action.after / factor)
        return action

    return replace(
        call,
        script=tuple(scaled(action) for action in call.script),
        hang_up_after=None if call.hang_up_after is None else call.hang_up_after / factor,
        durations={name: seconds / factor for name, seconds in call.durations.items()},
        default_duration=call.default_duration / factor,
        pace=_scaled_pace(call.pace, factor),
        answer_delay=call.answer_delay / factor,
        hangup_notice_delay=call.hangup_notice_delay / factor,
        usage_delay=call.usage_delay / factor,
        say_digit_duration=call.say_digit_duration / factor,
        say_datetime_duration=call.say_datetime_duration / factor,
    )


def _scaled_pace(pace: KeyPace, factor: float) -> KeyPace:
    return KeyPace(pace.tone / factor, pace.gap / factor)


@dataclass(frozen=True)
class DialogueEntry:
    """One thing that happened, ``at`` seconds after the connection opened.

    ``kind``: ``command`` (from the server), ``reply`` and ``notice`` (to the server), ``prompt``
    (a sound starts), ``key`` (detail says which command read it, or that it was lost),
    ``caller`` (the caller hangs up…), ``signal`` (classic AGI: SIGHUP sent to the script),
    ``note`` (what else the simulator noticed).
    """

    at: float
    kind: str
    text: str
    detail: str = ""


@dataclass(frozen=True)
class CallRecord:
    """Everything a test, the ``call`` command or the benchmark wants to know about one call."""

    call: SimulatedCall
    uniqueid: str
    connected: bool
    answered: bool
    agistatus: str
    #: "caller", "server", "timeout" (the dialplan's absolute timeout) or None (still up)
    hung_up_by: str | None
    #: True when the FastAGI server ended the session; False when Asterisk (AGIEXITONHANGUP)
    #: or the simulator giving up on a server that left it open did
    server_closed: bool
    dialogue: tuple[DialogueEntry, ...]
    variables: Mapping[str, str]
    #: the clock's time when the connection opened (the other times count from it, in seconds)
    started_at: float
    answered_at: float | None
    hung_up_at: float | None
    ended_at: float
    error: str | None = None
    #: classic AGI: the script's exit status (negative: killed by that signal), None if unknown
    exit_status: int | None = None

    @property
    def commands(self) -> list[str]:
        return [entry.text for entry in self.dialogue if entry.kind == "command"]

    @property
    def replies(self) -> list[str]:
        return [entry.text for entry in self.dialogue if entry.kind in ("reply", "notice")]

    @property
    def prompts(self) -> list[str]:
        """The sounds that started playing, in order."""
        return [entry.text for entry in self.dialogue if entry.kind == "prompt"]

    @property
    def keys_read(self) -> str:
        """The keys some command read, in order."""
        return "".join(e.text for e in self.dialogue if e.kind == "key" and e.detail != "lost")

    @property
    def keys_lost(self) -> str:
        """The keys typed while nothing was reading keys."""
        return "".join(e.text for e in self.dialogue if e.kind == "key" and e.detail == "lost")

    @property
    def talk_seconds(self) -> float | None:
        """From the answer to the hang-up (or the end of the session): the call's length."""
        if self.answered_at is None:
            return None
        end = self.hung_up_at if self.hung_up_at is not None else self.ended_at
        return end - self.answered_at

    def render(self, *, wire: bool = False) -> str:
        """The dialogue for a human: prompts, keys and events; with ``wire``, every line."""
        shown = {"prompt", "key", "caller", "note"}
        if wire:
            shown |= {"command", "reply", "notice", "signal"}
        labels = {"command": ">>", "reply": "<<", "notice": "<<"}
        lines = []
        for entry in self.dialogue:
            if entry.kind not in shown:
                continue
            label = labels.get(entry.kind, entry.kind)
            detail = f"  ({entry.detail})" if entry.detail else ""
            lines.append(f"{entry.at:9.3f} s  {label:<7} {entry.text}{detail}")
        status = self.variables.get("TELEGESTION_STATUS")
        summary = f"AGISTATUS={self.agistatus}"
        if status is not None:
            summary += f"  TELEGESTION_STATUS={status}"
        if self.talk_seconds is not None:
            summary += f"  talk={self.talk_seconds:.1f} s"
        if self.error:
            summary += f"  error: {self.error}"
        lines.append(summary)
        return "\n".join(lines)


_SEQUENCE = itertools.count(random.SystemRandom().randrange(1, 1_000_000))


def next_uniqueid() -> str:
    """A fresh ``<epoch>.<sequence>`` id like Asterisk's, unique per call.

    The sequence starts at a random point so that several simulator processes (the benchmark)
    do not hand out the same ids: the punch idempotency key is built from it.
    """
    return f"{int(time.time())}.{next(_SEQUENCE)}"


# --------------------------------------------------------------------------------------------
# The simulated channel
# --------------------------------------------------------------------------------------------


class _BadSyntax(Exception):
    """A command's arguments are wrong: Asterisk answers 520."""


@dataclass(frozen=True)
class _CommandSpec:
    words: tuple[str, ...]
    method: str
    allowed_when_dead: bool
    usage: tuple[str, ...] | None


# Usage texts are our own words; Asterisk's are longer. Commands with no usage text get the
# one-line 520 form, as Asterisk sends for commands registered without one.
_COMMANDS: tuple[_CommandSpec, ...] = tuple(
    sorted(
        (
            _CommandSpec(("ANSWER",), "_answer", False, ("Answers the channel.",)),
            _CommandSpec(("CHANNEL", "STATUS"), "_channel_status", False, None),
            _CommandSpec(
                ("EXEC",),
                "_exec",
                True,
                ("Runs the given <replaceable>application</replaceable> with its options.",),
            ),
            _CommandSpec(
                ("GET", "DATA"),
                "_get_data",
                False,
                (
                    "Plays <replaceable>file</replaceable> and collects keys until '#', the",
                    "maximum count or the timeout; the keys are the result.",
                ),
            ),
            _CommandSpec(
                ("GET", "FULL", "VARIABLE"),
                "_get_full_variable",
                True,
                ("Expands an expression in the channel and returns it in parentheses.",),
            ),
            _CommandSpec(
                ("GET", "VARIABLE"),
                "_get_variable",
                True,
                (
                    "Result 1 and the value in parentheses when the variable is set, 0 when not.",
                    "Example: 200 result=1 (some value)",
                ),
            ),
            _CommandSpec(("GOSUB",), "_gosub", False, None),
            _CommandSpec(("HANGUP",), "_hangup", False, ("Hangs up the channel.",)),
            _CommandSpec(("NOOP",), "_noop", True, None),
            _CommandSpec(
                ("SAY", "DATETIME"),
                "_say_datetime",
                False,
                ("Speaks a time given in seconds since the epoch; escape keys stop it.",),
            ),
            _CommandSpec(
                ("SAY", "DIGITS"),
                "_say_digits",
                False,
                ("Speaks a number digit by digit; escape keys stop it.",),
            ),
            _CommandSpec(("SAY", "NUMBER"), "_say_number", False, None),
            _CommandSpec(
                ("SET", "VARIABLE"),
                "_set_variable",
                True,
                ("Sets a channel variable: SET VARIABLE <name> <value>.",),
            ),
            _CommandSpec(
                ("STREAM", "FILE"),
                "_stream_file",
                False,
                (
                    "Plays <replaceable>file</replaceable>; a key among the escape digits stops it",
                    "and its ASCII code is the result, with the sample reached as endpos.",
                    "<variable>PLAYBACKSTATUS</variable> is not set by this command.",
                ),
            ),
            _CommandSpec(
                ("VERBOSE",),
                "_verbose",
                True,
                ("Writes a message to the console at the given level.",),
            ),
            _CommandSpec(
                ("WAIT", "FOR", "DIGIT"),
                "_wait_for_digit",
                False,
                (
                    "Waits up to <replaceable>timeout</replaceable> ms for one key;",
                    "-1 waits forever.",
                ),
            ),
        ),
        key=lambda spec: -len(spec.words),
    )
)


def _find_command(words: Sequence[str]) -> tuple[_CommandSpec | None, list[str]]:
    upper = [word.upper() for word in words]
    for spec in _COMMANDS:
        if tuple(upper[: len(spec.words)]) == spec.words:
            return spec, list(words[len(spec.words) :])
    return None, []


_LEADING_INT = re.compile(r"\s*([+-]?[0-9]{1,12})")


def _atoi(text: str) -> int:
    """C's atoi: the leading integer, 0 when there is none (Asterisk reads timeouts so)."""
    match = _LEADING_INT.match(text)
    return int(match.group(1)) if match else 0


def _scan_int(text: str) -> int:
    """C's sscanf %d: the leading integer, or a syntax error when there is none."""
    match = _LEADING_INT.match(text)
    if match is None:
        raise _BadSyntax
    return int(match.group(1))


def _wire_bytes(value: str | bytes) -> bytes:
    return value if isinstance(value, bytes) else value.encode("utf-8")


def _text(value: str | bytes) -> str:
    return value if isinstance(value, str) else decode_text(value)


def _is_true(value: str | None) -> bool:
    return (value or "").strip().lower() in ("yes", "true", "y", "t", "1", "on")


class _Running:
    """A command that takes time; only one runs at once."""

    name = ""
    reads_keys = False
    prompt_finished = True
    keys_received = 0

    def accepts(self, key: str) -> bool:
        return False

    def key(self, key: str) -> None:
        raise AssertionError("a command that reads no keys got one")  # pragma: no cover

    def hung_up(self) -> str:
        """Stop because the caller hung up; return the reply Asterisk then sends."""
        self.stop()
        return "200 result=-1"

    def stop(self) -> None:
        """Stop without a reply (aborted by a new command, or the session ended)."""


class _Player:
    """Plays sounds one after the other, telling the channel when each starts and ends."""

    def __init__(
        self,
        sim: SimulatedAsterisk,
        sounds: Sequence[tuple[str, float, str]],
        done: Callable[[], None],
    ) -> None:
        self._sim = sim
        self._sounds = sounds
        self._done = done
        self._index = -1
        self._timer: IDelayedCall | None = None
        self._started = 0.0
        self.playing = False

    def start(self) -> None:
        self._advance()

    def stop(self) -> float:
        """Cut the sound playing; return how long it had played."""
        self._sim._cancel(self._timer)
        if not self.playing:
            return 0.0
        self.playing = False
        self._sim._prompt_ended(self._sounds[self._index][0])
        return self._sim._now() - self._started

    def _advance(self) -> None:
        if self.playing:
            self.playing = False
            self._sim._prompt_ended(self._sounds[self._index][0])
        self._index += 1
        if self._index >= len(self._sounds):
            self._done()
            return
        sound, seconds, detail = self._sounds[self._index]
        self.playing = True
        self._started = self._sim._now()
        self._sim._prompt_started(sound, detail)
        self._timer = self._sim._later(seconds, self._advance)


class _Timed(_Running):
    """Something that just takes time (ANSWER, EXEC Wait/Playback): keys are lost meanwhile."""

    def __init__(self, sim: SimulatedAsterisk, name: str, reply: Callable[[], str | None]) -> None:
        self.name = name
        self._sim = sim
        self._reply = reply
        self._timer: IDelayedCall | None = None
        self._player: _Player | None = None

    def after(self, seconds: float) -> None:
        self._timer = self._sim._later(seconds, self._finish)

    def play(self, sounds: Sequence[tuple[str, float, str]]) -> None:
        self._player = _Player(self._sim, sounds, self._finish)
        self._player.start()

    def stop(self) -> None:
        self._sim._cancel(self._timer)
        if self._player is not None:
            self._player.stop()

    def _finish(self) -> None:
        text = self._reply()
        if text is not None:
            self._sim._finished(self, text)


class _GetData(_Running):
    """GET DATA: prompt(s) the caller may type over, then keys until #, the count or a timeout."""

    name = "GET DATA"
    reads_keys = True

    def __init__(
        self,
        sim: SimulatedAsterisk,
        sounds: Sequence[tuple[str, float, str]],
        timeout: float | None,
        max_digits: int,
    ) -> None:
        self._sim = sim
        self._timeout = timeout
        self._max = max_digits
        self._digits = ""
        self._timer: IDelayedCall | None = None
        self.prompt_finished = False
        self.keys_received = 0
        self._player = _Player(sim, sounds, self._prompt_done)

    def start(self) -> None:
        self._player.start()

    def accepts(self, key: str) -> bool:
        return True

    def key(self, key: str) -> None:
        self.keys_received += 1  # before the prompt stops: a script waiting on it must not wake
        if not self.prompt_finished:
            self._player.stop()
            self.prompt_finished = True
        if key == "#":
            self._finish(f"200 result={self._digits}")
            return
        self._digits += key
        if len(self._digits) >= self._max:
            self._finish(f"200 result={self._digits}")
        else:
            self._arm()

    def stop(self) -> None:
        self._player.stop()
        self._sim._cancel(self._timer)

    def _prompt_done(self) -> None:
        self.prompt_finished = True
        self._arm()
        self._sim._poke()

    def _arm(self) -> None:
        self._sim._cancel(self._timer)
        if self._timeout is not None:
            self._timer = self._sim._later(self._timeout, self._timed_out)

    def _timed_out(self) -> None:
        self._finish(f"200 result={self._digits} (timeout)")

    def _finish(self, text: str) -> None:
        self.stop()
        self._sim._finished(self, text)


class _Playback(_Running):
    """STREAM FILE and SAY …: sounds that escape keys may cut; other keys are lost."""

    reads_keys = True

    def __init__(
        self,
        sim: SimulatedAsterisk,
        name: str,
        sounds: Sequence[tuple[str, float, str]],
        escape: str,
        *,
        start_sample: int | None = None,
    ) -> None:
        self.name = name
        self._sim = sim
        self._escape = frozenset(escape) & DTMF_KEYS
        self.reads_keys = bool(self._escape)
        self.prompt_finished = False
        self.keys_received = 0
        self._start_sample = start_sample
        self._total = sum(seconds for _, seconds, _ in sounds)
        self._player = _Player(sim, sounds, self._played)

    def start(self) -> None:
        self._player.start()

    def accepts(self, key: str) -> bool:
        return key in self._escape

    def key(self, key: str) -> None:
        self.keys_received += 1
        elapsed = self._player.stop()
        self._sim._finished(self, self._result(ord(key), elapsed))

    def hung_up(self) -> str:
        return self._result(-1, self._player.stop())

    def stop(self) -> None:
        self._player.stop()

    def _played(self) -> None:
        self.prompt_finished = True
        self._sim._finished(self, self._result(0, self._total))

    def _result(self, code: int, elapsed: float) -> str:
        if self._start_sample is None:
            return f"200 result={code}"
        endpos = self._start_sample + round(elapsed * SAMPLES_PER_SECOND)
        return f"200 result={code} endpos={endpos}"


class _WaitForDigit(_Running):
    name = "WAIT FOR DIGIT"
    reads_keys = True

    def __init__(self, sim: SimulatedAsterisk, timeout: float | None) -> None:
        self._sim = sim
        self.keys_received = 0
        self._timer = None if timeout is None else sim._later(timeout, self._timed_out)

    def accepts(self, key: str) -> bool:
        return True

    def key(self, key: str) -> None:
        self.keys_received += 1
        self.stop()
        self._sim._finished(self, f"200 result={ord(key)}")

    def stop(self) -> None:
        self._sim._cancel(self._timer)

    def _timed_out(self) -> None:
        self._sim._finished(self, "200 result=0")


@implementer(IHalfCloseableProtocol)
class SimulatedAsterisk(Protocol):
    """The Asterisk side of one FastAGI connection, with a scripted caller on the channel.

    ``finished`` fires with the :class:`CallRecord` once the connection is closed. In classic
    mode (``call.network`` False) the transport is the script's pipes, ``on_sighup`` signals
    the script, and the process driver reports the exit with :meth:`script_exited`.
    """

    def __init__(
        self,
        call: SimulatedCall,
        clock: IReactorTime,
        *,
        on_sighup: Callable[[], None] | None = None,
    ) -> None:
        self.call = call
        self.clock = clock
        self.on_sighup = on_sighup
        self._exit_status: int | None = None
        self.finished: Deferred[CallRecord] = Deferred()
        self.uniqueid = call.uniqueid or next_uniqueid()
        self.channel_name = f"Local/{call.called}@telegestion-sim-{next(_SEQUENCE):08x};2"
        self._variables: dict[str, str] = dict(call.variables)
        self._language = call.language
        self._dialogue: list[DialogueEntry] = []
        self._splitter = LineSplitter(64 * 1024)
        self._timers: set[IDelayedCall] = set()
        self._t0 = clock.seconds()
        self._ever_connected = False
        self._closing = False
        self._done = False
        self._server_closed = False
        self._failed = False
        self._answered_at: float | None = None
        self._dead = False
        self._hung_up_at: float | None = None
        self._hung_up_by: str | None = None
        self._running: _Running | None = None
        self._script_position = 0
        self._waiting_for: Callable[[], bool] | None = None
        self._playing: str | None = None
        self._prompt_events: list[tuple[str, str]] = []
        self._error: str | None = None

    # -- connection --------------------------------------------------------------------------

    def connectionMade(self) -> None:
        self._ever_connected = True
        self._t0 = self.clock.seconds()
        peer = self.transport.getPeer()
        host = getattr(peer, "host", "127.0.0.1")
        port = getattr(peer, "port", 4573)
        if self.call.network:
            self._request = f"agi://{host}:{port}/{self.call.network_script}"
        else:
            self._request = self.call.agi_script
        block = b"".join(
            key.encode("ascii") + b": " + _wire_bytes(value) + b"\n"
            for key, value in self._environment()
        )
        self.transport.write(block + b"\n")
        self._later(self.call.ring_timeout, self._ring_timeout)
        self._later(self.call.max_call_seconds, self._absolute_timeout)

    def dataReceived(self, data: bytes) -> None:
        if self._closing or self._done:
            return
        try:
            lines = self._splitter.feed(data)
        except LineTooLong as exc:
            self._error = f"the server sent a line longer than {exc.limit} bytes"
            self._close()
            return
        for raw in lines:
            if self._closing or self._done:
                return
            self._command(decode_text(raw))

    def readConnectionLost(self) -> None:
        """The server half-closed: Asterisk still writes HANGUP, then closes (transcript e).

        Classic AGI: the script closed its stdout (or exited); Asterisk sends it SIGHUP the same
        way, then waits for it to exit (:meth:`script_exited`).
        """
        self._server_closed = True
        if self._sighup():
            self._write_notice()
        self._close()

    def script_exited(self, status: int) -> None:
        """Classic AGI: the script's process ended with ``status``; the session is over."""
        self._exit_status = status
        if not self._done:
            self.connectionLost(Failure(ConnectionDone()))

    def writeConnectionLost(self) -> None:
        """Nothing to do: we only half-close when closing entirely."""

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        if not self._closing:
            self._server_closed = True
        if self._running is not None:
            self._running.stop()
            self._running = None
            self._note("the command in flight was cut by the end of the session")
        if not self._dead and self._answered_at is not None and self._server_closed:
            self._note("the server ended the AGI session with the channel up; the dialplan goes on")
        self._finish()

    def abandon(self, reason: str) -> None:
        """End the record here, as if the simulator pulled the plug (a stalled simulation)."""
        self._error = reason
        self._closing = True
        self.connectionLost(Failure(ConnectionDone()))

    def connection_failed(self, reason: Failure) -> None:
        """No connection: the dialplan sees AGISTATUS=FAILURE."""
        self._error = f"could not connect: {reason.getErrorMessage()}"
        self._finish()

    # -- what the server asks ------------------------------------------------------------------

    def _command(self, line: str) -> None:
        self._log("command", line)
        if self._running is not None:
            aborted, self._running = self._running, None
            aborted.stop()
            self._note(f"{aborted.name} aborted by the next command; it gets no reply")
        words = split_arguments(line)
        spec, args = _find_command(words)
        if spec is None:
            self._reply(UNKNOWN_COMMAND_REPLY)
            return
        if self._dead and not spec.allowed_when_dead:
            self._reply(DEAD_CHANNEL_REPLY)
            return
        try:
            getattr(self, spec.method)(args)
        except _BadSyntax:
            self._usage(spec)

    def _answer(self, args: list[str]) -> None:
        def answered() -> str:
            if self._answered_at is None:
                self._answered_at = self._now()
                self._later(0, self._start_caller)
            return "200 result=0"

        running = _Timed(self, "ANSWER", answered)
        self._start(running)
        running.after(self.call.answer_delay)

    def _channel_status(self, args: list[str]) -> None:
        self._reply("200 result=6" if self._answered_at is not None else "200 result=4")

    def _exec(self, args: list[str]) -> None:
        if not args:
            raise _BadSyntax
        app = args[0].lower()
        options = args[1] if len(args) > 1 else ""
        known = ("playback", "wait", "set", "noop", "verbose", "log", "hangup")
        if app not in known:
            self._note(f"no application {args[0]!r}")
            self._reply("200 result=-2")
            return
        if self._dead:
            self._reply("200 result=0")
            return
        if app == "set":
            name, _, value = options.partition("=")
            self._variables[name.strip()] = value
            self._reply("200 result=0")
        elif app == "hangup":
            self._reply("200 result=-1")
            self._channel_dies("server")
        elif app == "wait":
            running = _Timed(self, "EXEC Wait", lambda: "200 result=0")
            self._start(running)
            try:
                seconds = float(options or "0")
            except ValueError:
                seconds = 0.0
            running.after(max(0.0, seconds))
        elif app == "playback":
            files = [name for name in options.partition(",")[0].split("&") if name]
            present = [name for name in files if self._exists(name)]
            status = "SUCCESS" if len(present) == len(files) else "FAILED"
            for missing in set(files) - set(present):
                self._note(f"sound {missing!r} does not exist")

            def played() -> str:
                self._variables["PLAYBACKSTATUS"] = status
                return "200 result=0"

            running = _Timed(self, "EXEC Playback", played)
            self._start(running)
            running.play([(name, self._duration(name), "") for name in present])
        else:
            self._reply("200 result=0")

    def _get_data(self, args: list[str]) -> None:
        if not args:
            raise _BadSyntax
        files = [name for name in args[0].split("&") if name] or [args[0]]
        missing = [name for name in files if not self._exists(name)]
        if missing:
            self._note(f"sound {missing[0]!r} does not exist")
            self._reply("200 result=-1")
            return
        timeout_ms = _atoi(args[1]) if len(args) > 1 else 0
        timeout = None if timeout_ms < 0 else (timeout_ms or 6000) / 1000
        max_digits = _atoi(args[2]) if len(args) > 2 else 1024
        if max_digits <= 0:
            max_digits = 1024
        sounds = [(name, self._duration(name), "") for name in files]
        running = _GetData(self, sounds, timeout, max_digits)
        self._start(running)
        running.start()

    def _get_full_variable(self, args: list[str]) -> None:
        if not args:
            raise _BadSyntax
        self._reply(f"200 result=1 ({self._expand(args[0])})")

    def _get_variable(self, args: list[str]) -> None:
        if not args:
            raise _BadSyntax
        value = self._lookup(args[0])
        self._reply("200 result=0" if value is None else f"200 result=1 ({value})")

    def _gosub(self, args: list[str]) -> None:
        if len(args) < 3:
            raise _BadSyntax
        self._reply("100 result=0 Trying...")
        running = _Timed(self, "GOSUB", lambda: "200 result=0 Gosub complete")
        self._start(running)
        running.after(0.001)

    def _hangup(self, args: list[str]) -> None:
        self._reply("200 result=1")
        self._channel_dies("server")

    def _noop(self, args: list[str]) -> None:
        self._reply("200 result=0")

    def _say_datetime(self, args: list[str]) -> None:
        if len(args) < 2:
            raise _BadSyntax
        epoch = _scan_int(args[0])
        zone_name = args[3] if len(args) > 3 else "UTC"
        try:
            zone: ZoneInfo = ZoneInfo(zone_name)
        except (ZoneInfoNotFoundError, ValueError):
            zone = ZoneInfo("UTC")
        try:
            spoken = datetime.fromtimestamp(epoch, UTC).astimezone(zone).strftime("%Y-%m-%d %H:%M")
        except (OverflowError, OSError, ValueError):
            spoken = str(epoch)
        sounds = [("say:datetime", self.call.say_datetime_duration, f"{spoken} {zone.key}")]
        running = _Playback(self, "SAY DATETIME", sounds, args[1])
        self._start(running)
        running.start()

    def _say_digits(self, args: list[str]) -> None:
        if len(args) < 2:
            raise _BadSyntax
        _scan_int(args[0])
        digits = [char for char in args[0] if char.isdigit()]
        sounds = [
            (
                f"digits/{char}",
                self.call.durations.get(f"digits/{char}", self.call.say_digit_duration),
                "",
            )
            for char in digits
        ]
        running = _Playback(self, "SAY DIGITS", sounds, args[1])
        self._start(running)
        running.start()

    def _say_number(self, args: list[str]) -> None:
        if len(args) < 2:
            raise _BadSyntax
        number = _scan_int(args[0])
        seconds = self.call.say_digit_duration * max(1, len(str(abs(number))))
        running = _Playback(self, "SAY NUMBER", [("say:number", seconds, str(number))], args[1])
        self._start(running)
        running.start()

    def _set_variable(self, args: list[str]) -> None:
        if len(args) < 2:
            raise _BadSyntax
        if args[0].upper() == "CHANNEL(LANGUAGE)":
            self._language = args[1]  # Asterisk now plays sounds from that language's folder
        else:
            self._variables[args[0]] = args[1]
        self._reply("200 result=1")

    def _stream_file(self, args: list[str]) -> None:
        if len(args) < 2:
            raise _BadSyntax
        name = args[0]
        if not self._exists(name):
            self._note(f"sound {name!r} does not exist")
            self._failed = True  # res_agi counts a failed STREAM FILE: AGISTATUS=FAILURE sticks
            self._reply("200 result=-1 endpos=0")
            return
        offset = max(0, _atoi(args[2])) if len(args) > 2 else 0
        seconds = max(0.0, self._duration(name) - offset / SAMPLES_PER_SECOND)
        running = _Playback(
            self, "STREAM FILE", [(name, seconds, "")], args[1], start_sample=offset
        )
        self._start(running)
        running.start()

    def _verbose(self, args: list[str]) -> None:
        if not args:
            raise _BadSyntax
        self._reply("200 result=1")

    def _wait_for_digit(self, args: list[str]) -> None:
        if not args:
            raise _BadSyntax
        timeout_ms = _scan_int(args[0])
        timeout = None if timeout_ms < 0 else timeout_ms / 1000
        self._start(_WaitForDigit(self, timeout))

    def _usage(self, spec: _CommandSpec) -> None:
        if spec.usage is None:
            self._reply(USAGE_UNAVAILABLE_REPLY)
            return
        self._reply(USAGE_FIRST_LINE)
        rest = [*spec.usage, USAGE_LAST_LINE]
        self._later(self.call.usage_delay, self._reply_lines, rest)

    # -- the caller ---------------------------------------------------------------------------

    def _start_caller(self) -> None:
        if self.call.hang_up_after is not None:
            self._later(self.call.hang_up_after, self._caller_hangs_up)
        self._next_action()

    def _next_action(self) -> None:
        if self._dead or self._closing or self._done:
            return
        if self._script_position >= len(self.call.script):
            return
        action = self.call.script[self._script_position]
        self._script_position += 1
        if isinstance(action, Keys):
            self._type(action.digits, 0, action.pace or self.call.pace)
        elif isinstance(action, Pause):
            self._later(action.seconds, self._next_action)
        elif isinstance(action, WaitForPrompt):
            self._wait_until(self._prompt_condition(action))
        elif isinstance(action, WaitForInput):
            self._wait_until(lambda: self._reading_fresh(action.after_prompt))
        elif isinstance(action, HangUp):
            self._later(action.after, self._caller_hangs_up)

    def _type(self, digits: str, index: int, pace: KeyPace) -> None:
        if index >= len(digits):
            self._next_action()
            return

        def key_ends() -> None:
            if self._dead or self._done:
                return
            self._key(digits[index])
            self._later(pace.gap, self._type, digits, index + 1, pace)  # each key: tone + gap

        self._later(pace.tone, key_ends)

    def _key(self, key: str) -> None:
        running = self._running
        if running is not None and running.accepts(key):
            self._log("key", key, f"read by {running.name}")
            running.key(key)
        else:
            self._log("key", key, "lost")
        self._poke()

    def _wait_until(self, condition: Callable[[], bool]) -> None:
        if condition():
            self._later(0, self._next_action)
        else:
            self._waiting_for = condition

    def _poke(self) -> None:
        """Something changed: resume a script waiting for it."""
        condition = self._waiting_for
        if condition is not None and condition():
            self._waiting_for = None
            self._later(0, self._next_action)

    def _prompt_condition(self, action: WaitForPrompt) -> Callable[[], bool]:
        mark = len(self._prompt_events)
        wanted = "end" if action.ended else "start"

        def matches(sound: str) -> bool:
            return action.sound is None or action.sound in (sound, sound.rsplit("/", 1)[-1])

        def condition() -> bool:
            if not action.ended and self._playing is not None and matches(self._playing):
                return True
            return any(
                kind == wanted and matches(sound) for kind, sound in self._prompt_events[mark:]
            )

        return condition

    def _reading_fresh(self, after_prompt: bool) -> bool:
        running = self._running
        return (
            running is not None
            and running.reads_keys
            and running.keys_received == 0
            and (running.prompt_finished or not after_prompt)
        )

    def _caller_hangs_up(self, by: str = "caller") -> None:
        if self._dead or self._done or self._closing:
            return
        self._log("caller", "hangs up" if by == "caller" else f"hung up ({by})")
        running, self._running = self._running, None
        if running is not None:
            self._reply(running.hung_up())
        self._channel_dies(by, notice_delay=self.call.hangup_notice_delay if running else 0.0)

    def _ring_timeout(self) -> None:
        if self._answered_at is None and not self._dead:
            self._note(f"not answered within {self.call.ring_timeout:g} s")
            self._caller_hangs_up()

    def _absolute_timeout(self) -> None:
        if not self._dead:
            self._caller_hangs_up(by="timeout")

    # -- channel state ------------------------------------------------------------------------

    def _channel_dies(self, by: str, notice_delay: float | None = None) -> None:
        self._dead = True
        self._hung_up_by = by
        self._hung_up_at = self._now()
        self._waiting_for = None
        delay = self.call.hangup_notice_delay if notice_delay is None else notice_delay
        if self._sighup() or self._exit_on_hangup():
            if delay > 0:
                self._later(delay, self._hangup_notices)
            else:
                self._hangup_notices()
        self._later(self.call.max_linger_after_hangup, self._give_up_on_server)

    def _hangup_notices(self) -> None:
        if self._closing or self._done:
            return
        if self._sighup():
            self._write_notice()
        if self._exit_on_hangup():
            if self._sighup():
                self._write_notice()
            self._note("AGIEXITONHANGUP: Asterisk closes the session")
            self._close()

    def _give_up_on_server(self) -> None:
        if not (self._closing or self._done):
            self._note(
                f"the server left the session open {self.call.max_linger_after_hangup:g} s "
                "after the hang-up; the simulator closes it"
            )
            self._close()

    def _sighup(self) -> bool:
        return self._variables.get("AGISIGHUP", "yes").strip().lower() != "no"

    def _exit_on_hangup(self) -> bool:
        return _is_true(self._variables.get("AGIEXITONHANGUP"))

    def _environment(self) -> list[tuple[str, str | bytes]]:
        call = self.call
        number = call.caller or ""
        if number:
            callerid, presentation = number, ("35" if call.withheld else "0")
        else:
            callerid, presentation = "unknown", "67"
        network: list[tuple[str, str | bytes]] = [
            ("agi_network", "yes"),
            ("agi_network_script", call.network_script),
        ]
        return [
            *(network if call.network else []),
            ("agi_request", self._request),
            ("agi_channel", self.channel_name),
            ("agi_language", call.language),
            ("agi_type", "Local"),
            ("agi_uniqueid", self.uniqueid),
            ("agi_version", ASTERISK_VERSION),
            ("agi_callerid", callerid),
            ("agi_calleridname", call.caller_name or "unknown"),
            ("agi_callingpres", presentation),
            ("agi_callingani2", "0"),
            ("agi_callington", "0"),
            ("agi_callingtns", "0"),
            ("agi_dnid", call.called),
            ("agi_rdnis", "unknown"),
            ("agi_context", "telegestion-inbound"),
            ("agi_extension", call.called),
            ("agi_priority", "1"),
            ("agi_enhanced", "0.0"),
            ("agi_accountcode", ""),
            ("agi_threadid", "140308715464384"),
            ("agi_arg_1", call.called),
            ("agi_arg_2", number),
        ]

    def _lookup(self, name: str) -> str | None:
        """A variable or one of the few dialplan functions a call flow asks for."""
        upper = name.upper()
        call = self.call
        number = call.caller or ""
        if upper.startswith("CALLERID(") and upper.endswith(")"):
            presentation = "prohib" if call.withheld else "allowed_not_screened"
            return {
                "NUM": number,
                "NAME": _text(call.caller_name or ""),
                "DNID": call.called,
                "NUM-PRES": presentation,
                "NAME-PRES": presentation,
                "PRES": presentation,
                "NUM-VALID": "1" if number else "0",
            }.get(upper[len("CALLERID(") : -1], "")
        if upper == "CHANNEL(LANGUAGE)":
            return self._language
        if upper == "CHANNEL(STATE)":
            return "Up" if self._answered_at is not None and not self._dead else "Down"
        if upper == "UNIQUEID":
            return self.uniqueid
        return self._variables.get(name)

    def _expand(self, expression: str) -> str:
        pattern = re.compile(r"\$\{([^${}]*)\}")
        for _ in range(32):
            expanded = pattern.sub(lambda m: self._lookup(m.group(1)) or "", expression)
            if expanded == expression:
                break
            expression = expanded
        return expression

    def _exists(self, sound: str) -> bool:
        known = self.call.known_sounds
        return known is None or sound in known or sound.rsplit("/", 1)[-1] in known

    def _duration(self, sound: str) -> float:
        durations = self.call.durations
        if sound in durations:
            return durations[sound]
        return durations.get(sound.rsplit("/", 1)[-1], self.call.default_duration)

    # -- running commands ---------------------------------------------------------------------

    def _start(self, running: _Running) -> None:
        self._running = running
        self._poke()

    def _finished(self, running: _Running, reply: str) -> None:
        if self._running is running:
            self._running = None
        self._reply(reply)
        self._poke()

    def _prompt_started(self, sound: str, detail: str) -> None:
        self._playing = sound
        self._prompt_events.append(("start", sound))
        self._log("prompt", sound, detail)
        self._poke()

    def _prompt_ended(self, sound: str) -> None:
        self._playing = None
        self._prompt_events.append(("end", sound))
        self._poke()

    # -- plumbing -----------------------------------------------------------------------------

    def _now(self) -> float:
        return self.clock.seconds() - self._t0

    def _later(self, delay: float, function: Callable[..., object], *args: object) -> IDelayedCall:
        holder: list[IDelayedCall] = []

        def fire() -> None:
            self._timers.discard(holder[0])
            function(*args)

        delayed = self.clock.callLater(max(0.0, delay), fire)
        holder.append(delayed)
        self._timers.add(delayed)
        return delayed

    def _cancel(self, delayed: IDelayedCall | None) -> None:
        if delayed is not None and delayed.active():
            delayed.cancel()
        self._timers.discard(delayed)  # type: ignore[arg-type]

    def _log(self, kind: str, text: str, detail: str = "") -> None:
        self._dialogue.append(DialogueEntry(round(self._now(), 6), kind, text, detail))

    def _note(self, text: str) -> None:
        self._log("note", text)

    def _reply(self, text: str) -> None:
        self._reply_lines([text])

    def _reply_lines(self, lines: Sequence[str]) -> None:
        if self._closing or self._done:
            return
        for line in lines:
            self._log("reply", line)
        self.transport.write("".join(f"{line}\n" for line in lines).encode("utf-8"))

    def _write_notice(self) -> None:
        """Tell the script the channel is gone: a HANGUP line, or SIGHUP to a classic script."""
        if not self.call.network:
            if not self._done:
                self._log("signal", "SIGHUP")
                if self.on_sighup is not None:
                    self.on_sighup()
            return
        if self._closing or self._done:
            return
        self._log("notice", HANGUP_LINE)
        self.transport.write(b"HANGUP\n")

    def _close(self) -> None:
        if self._closing or self._done:
            return
        self._closing = True
        self.transport.loseConnection()

    def _finish(self) -> None:
        if self._done:
            return
        self._done = True
        for delayed in list(self._timers):
            if delayed.active():
                delayed.cancel()
        self._timers.clear()
        if not self._ever_connected or self._failed:
            agistatus = "FAILURE"
        elif self._dead:
            agistatus = "HANGUP"
        elif not self.call.network and self._exit_status not in (None, 0):
            agistatus = "FAILURE"  # res_agi: a non-zero exit of a script fails a live channel
        else:
            agistatus = "SUCCESS"
        record = CallRecord(
            call=self.call,
            uniqueid=self.uniqueid,
            connected=self._ever_connected,
            answered=self._answered_at is not None,
            agistatus=agistatus,
            hung_up_by=self._hung_up_by,
            server_closed=self._server_closed,
            dialogue=tuple(self._dialogue),
            variables=dict(self._variables),
            started_at=self._t0,
            answered_at=self._answered_at,
            hung_up_at=self._hung_up_at,
            ended_at=self._now(),
            error=self._error,
            exit_status=self._exit_status,
        )
        self.finished.callback(record)


# --------------------------------------------------------------------------------------------
# Placing calls over TCP, in real time
# --------------------------------------------------------------------------------------------


def place_call(
    reactor: IReactorTCP,
    host: str,
    port: int,
    call: SimulatedCall,
    *,
    clock: IReactorTime | None = None,
    connect_timeout: float = 2.0,
) -> Deferred[CallRecord]:
    """Place one call on the FastAGI server at ``host:port``; fires with its record.

    ``connect_timeout`` is Asterisk's (about 2 s per attempt). A refused or timed-out connection
    is a record with ``connected=False`` and AGISTATUS FAILURE, not an error.
    """
    sim = SimulatedAsterisk(call, clock if clock is not None else reactor)  # type: ignore[arg-type]
    endpoint = TCP4ClientEndpoint(reactor, host, port, timeout=connect_timeout)
    connectProtocol(endpoint, sim).addErrback(sim.connection_failed)
    return sim.finished


def place_calls(
    reactor: IReactorTCP,
    host: str,
    port: int,
    calls: Sequence[SimulatedCall],
    *,
    concurrency: int = 100,
    clock: IReactorTime | None = None,
    connect_timeout: float = 2.0,
) -> Deferred[list[CallRecord]]:
    """Place many calls, at most ``concurrency`` at once; records come back in ``calls`` order."""
    semaphore = DeferredSemaphore(concurrency)
    placed = [
        semaphore.run(
            place_call, reactor, host, port, call, clock=clock, connect_timeout=connect_timeout
        )
        for call in calls
    ]
    return gatherResults(placed)


# --------------------------------------------------------------------------------------------
# Running calls in memory, on a task.Clock (the fast mode for tests)
# --------------------------------------------------------------------------------------------

_SERVER_ADDRESS = IPv4Address("TCP", "127.0.0.1", 4573)


@implementer(ITransport)
class _MemoryTransport:
    """One end of an in-memory connection: writes wait in a buffer until the pump moves them."""

    def __init__(self, host: IAddress, peer: IAddress) -> None:
        self.buffer = bytearray()
        self.disconnecting = False
        self.aborted = False
        self._host = host
        self._peer = peer

    def write(self, data: bytes) -> None:
        if not self.disconnecting:
            self.buffer += data

    def writeSequence(self, data: Sequence[bytes]) -> None:
        self.write(b"".join(data))

    def loseConnection(self) -> None:
        self.disconnecting = True

    def abortConnection(self) -> None:
        self.aborted = True
        self.disconnecting = True
        self.buffer.clear()

    def getPeer(self) -> IAddress:
        return self._peer

    def getHost(self) -> IAddress:
        return self._host


class _MemoryLink:
    """A client and a server protocol joined by two memory transports."""

    def __init__(self, client: Protocol, server: Protocol, client_address: IAddress) -> None:
        self.client = client
        self.server = server
        self.closed = False
        self._to_server = _MemoryTransport(client_address, _SERVER_ADDRESS)
        self._to_client = _MemoryTransport(_SERVER_ADDRESS, client_address)
        server.makeConnection(self._to_client)
        client.makeConnection(self._to_server)

    def pump(self) -> bool:
        """Deliver what is buffered; close once a side asked to. True if anything moved."""
        if self.closed:
            return False
        moved = False
        if self._to_server.buffer:
            data = bytes(self._to_server.buffer)
            self._to_server.buffer.clear()
            self.server.dataReceived(data)
            moved = True
        if self._to_client.buffer:
            data = bytes(self._to_client.buffer)
            self._to_client.buffer.clear()
            self.client.dataReceived(data)
            moved = True
        ends = (self._to_server, self._to_client)
        if any(end.disconnecting for end in ends) and not any(end.buffer for end in ends):
            self.closed = True
            aborted = any(end.aborted for end in ends)
            reason = Failure(TCPConnectionLost() if aborted else ConnectionDone())
            self.server.connectionLost(reason)
            self.client.connectionLost(reason)
            moved = True
        return moved


def simulate_calls(
    factory: IProtocolFactory,
    calls: Sequence[SimulatedCall],
    clock: Clock,
    *,
    stagger: float = 0.0,
    max_virtual_seconds: float = 24 * 3600.0,
) -> list[CallRecord]:
    """Run calls against ``factory`` in memory, on ``clock``, and return their records.

    Virtual time jumps from one scheduled event to the next whenever no bytes are moving, so
    prompts, key pace and timeouts keep their meaning at no wall-clock cost. Give the server
    factory the same ``clock``. A handler that waits on threads (``deferToThread``) cannot finish
    here: use :func:`place_calls` with the real reactor for it. Calls start ``stagger`` seconds
    apart.
    """
    records: list[CallRecord | None] = [None] * len(calls)
    links: list[_MemoryLink] = []
    sims: list[SimulatedAsterisk] = []
    start = clock.seconds()

    def connect(index: int) -> None:
        sim = SimulatedAsterisk(calls[index], clock)
        sims.append(sim)
        sim.finished.addCallback(_store, records, index)
        client_address = IPv4Address("TCP", "127.0.0.1", 40000 + index % 20000)
        server = factory.buildProtocol(_SERVER_ADDRESS)
        if server is None:
            sim.connection_failed(Failure(ConnectionRefusedError("the factory refused the call")))
            return
        links.append(_MemoryLink(sim, server, client_address))

    for index in range(len(calls)):
        if stagger > 0 and index > 0:
            clock.callLater(index * stagger, connect, index)
        else:
            connect(index)

    while True:
        for _ in range(1_000_000):
            if not any([link.pump() for link in links]):
                break
        if all(record is not None for record in records):
            break
        pending = clock.getDelayedCalls()
        if not pending:
            break
        next_time = min(delayed.getTime() for delayed in pending)
        if next_time - start > max_virtual_seconds:
            break
        clock.advance(max(0.0, next_time - clock.seconds()))

    for link in links:
        if not link.closed:
            link.closed = True
            if isinstance(link.client, SimulatedAsterisk):
                link.client.abandon(
                    f"simulation stopped after {clock.seconds() - start:g} virtual seconds"
                )
            link.server.connectionLost(Failure(ConnectionDone()))
    for sim in sims:
        if not sim.finished.called:  # pragma: no cover - every connected sim closes above
            sim.connection_failed(Failure(RuntimeError("simulation stalled")))
    return [record for record in records if record is not None]


def _store(record: CallRecord, records: list[CallRecord | None], index: int) -> CallRecord:
    records[index] = record
    return record


def simulate_call(
    factory: IProtocolFactory, call: SimulatedCall, clock: Clock, **options: float
) -> CallRecord:
    """One call in memory: see :func:`simulate_calls`."""
    return simulate_calls(factory, [call], clock, **options)[0]
