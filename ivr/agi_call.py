"""One landline call spoken in AGI, for any AGI transport (FastAGI or a classic AGI script).

The flow (``ivr.flow``) decides what to say and do; this module turns its effects into AGI
channel operations and blocking database work, as a generator of :class:`ChannelOp` and
:class:`Blocking` requests. An executor carries them out — asynchronously over a Twisted
``AgiChannel`` (``ivr.fastagi_call``), or synchronously over pyst2 (``agi_scripts``) — and sends
back results or throws the channel's exceptions in. So the rules below exist once:

- a ``Gather`` plays every segment but the last with all keys as escape digits and the last with
  GET DATA, so a carer who types over any prompt loses no key (Asterisk buffers no DTMF between
  commands, ASTERISK-AGI-FACTS.md); once a key has cut a prompt short, the rest of the entry is
  read with WAIT FOR DIGIT;
- the channel's language follows the company's, so prompts come from the right sound folder;
- the outcome is set in ``TELEGESTION_STATUS`` before the server hangs up, so the dialplan reads it;
- every prompt played and every hang-up or error is journaled next to the flow's own events.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from collections.abc import Callable, Generator
from typing import TYPE_CHECKING, Any

from ivr import effects as fx
from ivr.agi_wire import (
    AgiCommandError,
    AgiEnvironment,
    ChannelHungUp,
    PlaybackFailed,
    ReplyTimeout,
)
from ivr.call_record import NOT_IN_MEMORY, CallRecord, utc_now
from ivr.flow import FlowSettings, run_call
from ivr.prompt_catalogue import sound_path

if TYPE_CHECKING:
    from ivr.call_store import CallStore

log = logging.getLogger(__name__)

ALL_KEYS = "0123456789*#"
STATUS_VARIABLE = "TELEGESTION_STATUS"


@dataclasses.dataclass(frozen=True)
class ChannelOp:
    """Call ``channel.<name>(*args)``; ``live`` ops are refused (ChannelHungUp) once hung up."""

    name: str
    args: tuple[Any, ...] = ()
    live: bool = True


@dataclasses.dataclass(frozen=True)
class Blocking:
    """Run ``fn(*args)`` where blocking is allowed (a worker thread, or inline in a script).

    ``offline`` work (the local spool) runs on threads of its own, never queued behind database
    threads that a frozen database may hold. An executor that bounds its wait for the database
    runs ``fallback`` instead when ``fn`` takes too long (``ivr.fastagi_call``).
    """

    fn: Callable[..., Any]
    args: tuple[Any, ...] = ()
    offline: bool = False
    fallback: Blocking | None = None


Op = ChannelOp | Blocking
AgiProgram = Generator[Op, Any, fx.CallSummary]


class _Collected(Exception):
    """A key cut a prompt short; carries what has been keyed so far."""

    def __init__(self, digits: str) -> None:
        super().__init__(digits)
        self.digits = digits


def call_numbers(env: AgiEnvironment) -> tuple[str, str]:
    """The called and caller numbers: AGI arguments first, the ``agi_*`` block as fallback."""
    called = env.arg(1).strip() or env.get("agi_dnid").strip()
    if called.lower() == "unknown":
        called = env.get("agi_extension").strip()
    caller = env.arg(2).strip()
    if not caller and len(env.args) < 2:
        caller = env.get("agi_callerid").strip()
    return called, caller


def new_call_record(
    env: AgiEnvironment, *, node: str, transport: str, region: str, now: dt.datetime
) -> CallRecord:
    called, caller = call_numbers(env)
    uniqueid = env.get("agi_uniqueid").strip()
    return CallRecord(
        origin=node,
        call_key=uniqueid or f"no-uniqueid-{now.timestamp():.6f}",
        transport=transport,
        called_raw=called,
        caller_raw=caller,
        caller_presentation=env.get("agi_callingpres") or None,
        started_at=now,
        default_region=region,
    )


def agi_call(
    env: AgiEnvironment,
    store: CallStore,
    *,
    node: str,
    transport: str,
    region: str = "FR",
    answer_first: bool = False,
    flow_settings: FlowSettings | None = None,
    clock: Callable[[], dt.datetime] = utc_now,
) -> AgiProgram:
    """The whole call; returns the flow's summary once the journal is written.

    ``answer_first`` answers before the flow's first lookup: a classic AGI script does, so the
    caller is connected while its database layer is still loading; the flow's own ``Answer``
    then costs nothing.
    """
    call = new_call_record(env, node=node, transport=transport, region=region, now=clock())
    language = env.language or "fr"
    flow = run_call(fx.CallStart(call.called_raw, call.caller_raw), flow_settings or FlowSettings())
    reply: fx.Reply = None
    throw: BaseException | None = None
    hangup_requested = False
    answered = False
    if answer_first:
        try:
            yield ChannelOp("answer")
            answered = True
        except ChannelHungUp as exc:
            call.add(clock(), "hangup", {"during": "Answer", "why": _why(exc)})
    while True:
        try:
            effect = flow.throw(throw) if throw is not None else flow.send(reply)
        except StopIteration as stop:
            summary: fx.CallSummary = stop.value
            break
        throw, reply = None, None
        if isinstance(effect, fx.Journal):
            call.add(clock(), effect.kind, dict(effect.detail))
            continue
        if not fx.is_channel_effect(effect):
            reply = yield from _world(store, effect, call, clock)
            continue
        if isinstance(effect, fx.Answer) and answered:
            continue
        if isinstance(effect, fx.Hangup):
            # Hang up once the outcome is known, so TELEGESTION_STATUS is set first.
            hangup_requested = True
            continue
        try:
            if (
                isinstance(effect, fx.Gather | fx.Play)
                and effect.language
                and effect.language != language
            ):
                yield ChannelOp("set_variable", ("CHANNEL(language)", effect.language))
                language = effect.language
            reply = yield from _channel(effect, call, clock)
        except ChannelHungUp as exc:
            call.add(clock(), "hangup", {"during": type(effect).__name__, "why": _why(exc)})
            throw = fx.CallerHungUp()
        except PlaybackFailed as exc:
            log.error(
                "missing prompt sound on the Asterisk server: %s (install asterisk_conf/sounds)",
                exc,
            )
            call.add(clock(), "error", {"error": "missing_prompt", "detail": str(exc)[:200]})
            reply = fx.Failure(f"missing prompt: {exc}")
        except AgiCommandError as exc:
            log.error("Asterisk refused a command: %s", exc)
            call.add(clock(), "error", {"error": "agi_command", "detail": str(exc)[:200]})
            reply = fx.Failure(f"agi: {exc}")
    yield from _end(store, call, summary, hangup_requested)
    return summary


def _world(
    store: CallStore, effect: fx.Effect, call: CallRecord, clock: Callable[[], dt.datetime]
) -> Generator[Op, Any, fx.Reply]:
    try:
        from_memory = getattr(store, "answer_from_memory", None)
        if from_memory is not None:
            reply = from_memory(effect, call)
            if reply is not NOT_IN_MEMORY:
                return reply
        return (yield _database_work(store, effect, call, "answer", (effect, call)))
    except Exception as exc:  # a bug or an unexpected database state: end the call politely
        log.exception("world effect %s failed for call %s", type(effect).__name__, call.call_key)
        call.add(clock(), "error", {"effect": type(effect).__name__, "error": str(exc)[:200]})
        return fx.Failure(f"{type(effect).__name__}: {type(exc).__name__}")


def _end(
    store: CallStore, call: CallRecord, summary: fx.CallSummary, hangup: bool
) -> Generator[Op, Any, None]:
    try:
        yield ChannelOp("set_variable", (STATUS_VARIABLE, summary.outcome), live=False)
        if hangup:
            yield ChannelOp("hangup")
    except (ChannelHungUp, AgiCommandError) as exc:
        log.info("call %s ended before its status was set: %s", call.call_key, exc)
    yield _database_work(store, None, call, "finish", (call, summary))
    reconcile = getattr(store, "reconcile_after_finish", None)
    if reconcile is not None and store.journaled_online(call):  # type: ignore[attr-defined]
        yield Blocking(reconcile, (call,))


def _database_work(
    store: CallStore, effect: fx.Effect | None, call: CallRecord, name: str, args: tuple[Any, ...]
) -> Blocking:
    """``store.<name>(*args)``, with the store's offline path when it has one
    (``ivr.resilient_store``): straight away when the database is known down, else as the
    fallback of a database wait that runs out."""
    offline = getattr(store, f"{name}_offline", None)
    if offline is None:
        return Blocking(getattr(store, name), args)
    if store.offline_first(effect, call):  # type: ignore[attr-defined]
        return Blocking(offline, args, offline=True)
    return Blocking(
        getattr(store, name), args, fallback=Blocking(offline, (*args, "timeout"), offline=True)
    )


def _channel(
    effect: fx.Effect, call: CallRecord, clock: Callable[[], dt.datetime]
) -> Generator[Op, Any, fx.Reply]:
    if isinstance(effect, fx.Answer):
        yield ChannelOp("answer")
        return None
    if isinstance(effect, fx.Play):
        for segment in effect.segments:
            yield from _segment(segment, "", call, clock)
        return None
    if isinstance(effect, fx.Gather):
        return (yield from _gather(effect, call, clock))
    raise TypeError(f"not a channel effect: {effect!r}")


def _segment(
    segment: fx.Segment, escape: str, call: CallRecord, clock: Callable[[], dt.datetime]
) -> Generator[Op, Any, str | None]:
    if isinstance(segment, fx.Prompt):
        call.add(clock(), "prompt", {"prompt": segment.prompt_id})
        result = yield ChannelOp("stream_file", (sound_path(segment.prompt_id), escape))
        return result.digit
    call.add(clock(), "prompt", {"say_time": f"{segment.hour:02d}:{segment.minute:02d}"})
    # An instant on 1 January 1970 UTC whose hour and minute are the ones to say: UTC on
    # purpose, the flow already converted the punch to the company's local time.
    epoch = segment.hour * 3600 + segment.minute * 60
    return (yield ChannelOp("say_datetime", (epoch, escape, "HM", "UTC")))


def _gather(
    effect: fx.Gather, call: CallRecord, clock: Callable[[], dt.datetime]
) -> Generator[Op, Any, fx.Keys]:
    timeout_ms = int(effect.timeout_s * 1000)
    try:
        for segment in effect.segments[:-1]:
            key = yield from _segment(segment, ALL_KEYS, call, clock)
            if key is not None:
                raise _Collected(key)
        last = effect.segments[-1] if effect.segments else None
        if isinstance(last, fx.Prompt):
            call.add(clock(), "prompt", {"prompt": last.prompt_id})
            got = yield ChannelOp(
                "get_data", (sound_path(last.prompt_id), timeout_ms, effect.max_digits)
            )
            return fx.Keys(got.digits, got.timed_out)
        if last is not None:
            key = yield from _segment(last, ALL_KEYS, call, clock)
            if key is not None:
                raise _Collected(key)
        digits = ""
    except _Collected as cut:
        digits = cut.digits
    return (yield from _more_keys(digits, effect.max_digits, timeout_ms))


def _more_keys(digits: str, max_digits: int, timeout_ms: int) -> Generator[Op, Any, fx.Keys]:
    """Finish an entry key by key, with GET DATA's rules: ``#`` ends, ``*`` counts."""
    if digits == "#":
        return fx.Keys("", False)
    while len(digits) < max_digits:
        key = yield ChannelOp("wait_for_digit", (timeout_ms,))
        if key is None:
            return fx.Keys(digits, True)
        if key == "#":
            return fx.Keys(digits, False)
        digits += key
    return fx.Keys(digits, False)


def _why(exc: ChannelHungUp) -> str:
    if isinstance(exc, ReplyTimeout):
        return "asterisk_timeout"
    return "caller_hung_up" if type(exc) is ChannelHungUp else "connection_lost"


def execute_sync(
    program: AgiProgram, channel: Any, run_blocking: Callable[..., Any] | None = None
) -> fx.CallSummary:
    """Drive an AGI call program over a blocking channel (a classic AGI script, a thread)."""
    run = run_blocking or (lambda fn, *args: fn(*args))
    result: Any = None
    error: BaseException | None = None
    while True:
        try:
            op = program.throw(error) if error is not None else program.send(result)
        except StopIteration as stop:
            return stop.value
        result, error = None, None
        try:
            if isinstance(op, Blocking):
                result = run(op.fn, *op.args)
            elif op.live and channel.hung_up:
                raise ChannelHungUp("the caller hung up")
            else:
                result = getattr(channel, op.name)(*op.args)
        except Exception as exc:
            error = exc
