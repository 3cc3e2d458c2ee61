"""Run the call flow against a scripted world: a caller's keys and a dict-backed directory.

Tests and the call-length check need whole calls without Asterisk, Twilio or a database. This
module plays every part of the transport in memory: it answers world effects from plain
mappings (deciding punch kinds with the real ``ivr.punch_rules``), answers each gather with the
next scripted caller action, throws :class:`~ivr.effects.CallerHungUp` where the script hangs up,
and returns everything that was said and replied. :func:`replay_call` feeds a stored reply list
back, as a stateless transport (Twilio webhooks) does to resume a call; :func:`resume_flow` is
the same with the generator kept, for a transport that goes on with the call.

Every function takes the landline flow by default and any other flow (``ivr.callback_flow``)
through its ``flow`` argument: a fresh generator, not yet started.
"""

from __future__ import annotations

from collections.abc import Generator, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TypeVar

from ivr.effects import (
    Answer,
    CalledNumber,
    CallerHungUp,
    CallStart,
    CallSummary,
    CarerInfo,
    CarerMatch,
    CarerMatches,
    CheckLockout,
    ClientInfo,
    CompanyInfo,
    CorrectPunch,
    Effect,
    Failure,
    FindCarerByMobile,
    Gather,
    Hangup,
    Journal,
    Keys,
    ListVisitChoices,
    LookupCalledNumber,
    LookupCarer,
    LookupClient,
    LookupCompany,
    Play,
    Prompt,
    PunchKind,
    PunchRecorded,
    RecordCodeFailure,
    RecordPunch,
    RecordTaskCodes,
    Reply,
    ReportClientAbsent,
    SayTime,
    SayVisitChoice,
    Segment,
    VisitChoice,
    VisitChoices,
    is_channel_effect,
)
from ivr.flow import FlowSettings, run_call
from ivr.punch_rules import LatestPunch, flipped_kind, punch_kind, punch_scope

E = TypeVar("E")
AnyFlow = Generator[Effect, Reply, CallSummary]


@dataclass(frozen=True)
class HangUp:
    """Script action: the caller hangs up during the next channel effect."""


CallerAction = Keys | HangUp
ScriptedReply = Reply | HangUp
"""One entry of a transcript's replies: what was sent back, or :class:`HangUp` when thrown."""

#: Convenience actions for scripts.
SILENCE = Keys("", timed_out=True)
HANG_UP = HangUp()


def keys(digits: str) -> Keys:
    """A script action: the caller keys ``digits`` and the gather ends on them (or on ``#``)."""
    return Keys(digits, timed_out=False)


@dataclass(frozen=True)
class ScriptedPunch:
    """A punch held by the scripted world, enough to apply the real punch-kind rule."""

    punch_id: int
    company_id: int
    carer_id: int
    client_id: int | None
    caller_raw: str
    kind: PunchKind
    at: datetime
    client_absent: bool = False
    task_codes: tuple[str, ...] = ()


@dataclass(frozen=True)
class ScriptedWorld:
    """The directory and database a scripted call sees.

    ``carers`` holds active carers only (an inactive carer is simply absent), keyed by
    (company id, carer code); ``clients`` by (company id, caller number). ``now`` is the
    database clock in company-local time: it is read back as the punch time as is.
    ``lockout_after_failures`` makes ``RecordCodeFailure`` answer True from that many failures in
    this call on; ``failing_world_effects`` lists which world effects (1 = the first of the call)
    get a :class:`Failure` instead of their answer. For the call-back flow, ``mobile_carers``
    holds the carers found by (mobile, carer code) and ``visit_choices`` each carer's menu.
    """

    called_numbers: Mapping[str, CalledNumber] = field(default_factory=dict)
    companies: Mapping[str, CompanyInfo] = field(default_factory=dict)
    carers: Mapping[tuple[int, str], CarerInfo] = field(default_factory=dict)
    clients: Mapping[tuple[int, str], ClientInfo] = field(default_factory=dict)
    locked_callers: frozenset[str] = frozenset()
    lockout_after_failures: int | None = None
    now: datetime = datetime(2025, 3, 14, 9, 41)
    punches: tuple[ScriptedPunch, ...] = ()
    failing_world_effects: frozenset[int] = frozenset()
    mobile_carers: Mapping[tuple[str, str], tuple[CarerMatch, ...]] = field(default_factory=dict)
    visit_choices: Mapping[int, tuple[VisitChoice, ...]] = field(default_factory=dict)

    def at(self, now: datetime) -> ScriptedWorld:
        """The same world later, e.g. for a second call."""
        return replace(self, now=now)

    def with_punches(self, punches: Iterable[ScriptedPunch]) -> ScriptedWorld:
        """The same world holding these punches, e.g. those a first call recorded."""
        return replace(self, punches=tuple(punches))


@dataclass(frozen=True)
class CallTranscript:
    """Everything a call yielded, what each effect got back, and how it ended.

    ``replies[i]`` answers ``effects[i]``; it is :data:`HANG_UP` where a hang-up was thrown.
    ``punches`` is the world's punches after the call.
    """

    effects: tuple[Effect, ...]
    replies: tuple[ScriptedReply, ...]
    summary: CallSummary
    punches: tuple[ScriptedPunch, ...] = ()
    unused_actions: tuple[CallerAction, ...] = ()

    @property
    def hung_up_at(self) -> int | None:
        """Index of the effect during which the caller hung up first, if they did."""
        for index, reply in enumerate(self.replies):
            if isinstance(reply, HangUp):
                return index
        return None

    def channel_effects(self) -> list[Effect]:
        return [e for e in self.effects if is_channel_effect(e)]

    def of_type(self, kind: type[E]) -> list[E]:
        """The effects of one type, in order (``transcript.of_type(RecordPunch)``)."""
        return [e for e in self.effects if isinstance(e, kind)]

    def spoken(self) -> list[str]:
        """What the caller heard, in order: prompt ids, and ``time HH:MM`` for a spoken time."""
        heard: list[str] = []
        for effect in self.effects:
            if isinstance(effect, Gather | Play):
                heard.extend(_segment_text(s) for s in effect.segments)
        return heard

    def journal(self, kind: str | None = None) -> list[Mapping[str, object]]:
        """The details of the journal effects, of one kind or all."""
        return [
            e.detail
            for e in self.effects
            if isinstance(e, Journal) and (kind is None or e.kind == kind)
        ]


def _segment_text(segment: Segment) -> str:
    if isinstance(segment, Prompt):
        return segment.prompt_id
    if isinstance(segment, SayVisitChoice):
        c = segment.choice
        when = f"{c.local_hour:02d}:{c.local_minute:02d}"
        return f"choice {segment.key} {c.kind} {when} client {c.client_id}"
    return f"time {segment.hour:02d}:{segment.minute:02d}"


class _WorldState:
    """The scripted database during one call."""

    def __init__(self, world: ScriptedWorld) -> None:
        self.world = world
        self.punches = list(world.punches)
        self.code_failures = 0
        self.world_effects = 0

    def answer(self, effect: Effect) -> Reply:
        w = self.world
        self.world_effects += 1
        if self.world_effects in w.failing_world_effects:
            return Failure(f"scripted failure of {type(effect).__name__}")
        match effect:
            case LookupCalledNumber(called_raw=called):
                return w.called_numbers.get(called)
            case LookupCompany(code=code):
                return w.companies.get(code)
            case LookupCarer(company_id=company_id, carer_code=code):
                return w.carers.get((company_id, code))
            case LookupClient(company_id=company_id, caller_raw=caller):
                return w.clients.get((company_id, caller))
            case FindCarerByMobile(mobile_raw=mobile, carer_code=code, company_id=only):
                found = w.mobile_carers.get((mobile, code), ())
                return CarerMatches(
                    tuple(m for m in found if only is None or m.company.company_id == only)
                )
            case ListVisitChoices(carer_id=carer_id):
                return VisitChoices(w.visit_choices.get(carer_id, ()))
            case CheckLockout(caller_raw=caller):
                return caller in w.locked_callers
            case RecordCodeFailure():
                self.code_failures += 1
                limit = w.lockout_after_failures
                return limit is not None and self.code_failures >= limit
            case RecordPunch():
                return self.record_punch(effect)
            case CorrectPunch(punch_id=punch_id):
                return self.update(punch_id, flip=True)
            case ReportClientAbsent(punch_id=punch_id):
                self.update(punch_id, absent=True)
                return None
            case RecordTaskCodes(punch_id=punch_id, codes=codes):
                self.update(punch_id, task_codes=codes)
                return None
        raise AssertionError(f"not a world effect: {effect!r}")

    def record_punch(self, effect: RecordPunch) -> PunchRecorded:
        scope = punch_scope(effect.carer_id, effect.client_id, effect.caller_raw)
        in_scope = [q for q in self.punches if scope.matches(q.carer_id, q.client_id, q.caller_raw)]
        latest = (
            LatestPunch(in_scope[-1].kind, in_scope[-1].at, in_scope[-1].client_absent)
            if in_scope
            else None
        )
        now = self.world.now
        punch = ScriptedPunch(
            punch_id=len(self.punches) + 1,
            company_id=effect.company_id,
            carer_id=effect.carer_id,
            client_id=effect.client_id,
            caller_raw=effect.caller_raw,
            kind=punch_kind(latest, now),
            at=now,
        )
        self.punches.append(punch)
        return PunchRecorded(punch.punch_id, punch.kind, now.hour, now.minute)

    def update(
        self,
        punch_id: int,
        *,
        flip: bool = False,
        absent: bool = False,
        task_codes: tuple[str, ...] = (),
    ) -> PunchRecorded:
        index = next(i for i, q in enumerate(self.punches) if q.punch_id == punch_id)
        punch = self.punches[index]
        punch = replace(
            punch,
            kind=flipped_kind(punch.kind) if flip else punch.kind,
            client_absent=punch.client_absent or absent,
            task_codes=task_codes or punch.task_codes,
        )
        self.punches[index] = punch
        return PunchRecorded(punch.punch_id, punch.kind, punch.at.hour, punch.at.minute)


def run_scripted_call(
    start: CallStart,
    world: ScriptedWorld,
    actions: Sequence[CallerAction],
    settings: FlowSettings | None = None,
    *,
    hang_up_at: int | None = None,
    max_effects: int = 500,
    flow: AnyFlow | None = None,
) -> CallTranscript:
    """Drive one call; the caller answers each gather with the next action in ``actions``.

    A :data:`HANG_UP` action is taken at the next channel effect (a gather, a play, even the
    answer). ``hang_up_at`` throws the hang-up at that effect index whatever the effect, to check
    the flow against a careless transport. When the actions run out the caller stays silent
    (each gather times out). After a hang-up every channel effect is thrown another hang-up, as
    a dead channel would answer, so a flow that keeps talking is caught in the transcript rather
    than hidden.
    """
    state = _WorldState(world)
    pending = list(actions)
    effects: list[Effect] = []
    replies: list[ScriptedReply] = []
    flow = flow if flow is not None else run_call(start, settings)
    hung_up = False
    try:
        effect = next(flow)
        while True:
            if len(effects) >= max_effects:
                raise RuntimeError(f"the flow yielded more than {max_effects} effects")
            effects.append(effect)
            scripted = pending and pending[0] == HANG_UP
            if len(effects) - 1 == hang_up_at or (
                is_channel_effect(effect) and (hung_up or scripted)
            ):
                if scripted and not hung_up and is_channel_effect(effect):
                    pending.pop(0)
                hung_up = True
                replies.append(HANG_UP)
                effect = flow.throw(CallerHungUp())
                continue
            reply: Reply
            if isinstance(effect, Gather):
                action = pending.pop(0) if pending else SILENCE
                assert isinstance(action, Keys)
                reply = action
            elif isinstance(effect, Answer | Play | Hangup | Journal):
                reply = None
            else:
                reply = state.answer(effect)
            replies.append(reply)
            effect = flow.send(reply)
    except StopIteration as stop:
        summary = stop.value
    return CallTranscript(
        effects=tuple(effects),
        replies=tuple(replies),
        summary=summary,
        punches=tuple(state.punches),
        unused_actions=tuple(pending),
    )


@dataclass(frozen=True)
class Replayed:
    """Where a replayed call stands: the effects so far and either the next effect to carry out
    (the call goes on) or the summary (the call is over)."""

    effects: tuple[Effect, ...]
    next_effect: Effect | None
    summary: CallSummary | None


def replay_call(
    start: CallStart,
    replies: Sequence[ScriptedReply],
    settings: FlowSettings | None = None,
    *,
    flow: AnyFlow | None = None,
) -> Replayed:
    """Feed stored replies to a fresh flow, as a stateless transport does to resume a call.

    Raises ``ValueError`` if there are more replies than the call has effects: the stored list
    does not belong to this call (or the flow changed under it).
    """
    resumed = resume_flow(flow if flow is not None else run_call(start, settings), replies)
    return resumed.replayed


@dataclass(frozen=True)
class Resumed:
    """A flow fed its stored replies: the live generator, waiting on ``replayed.next_effect``
    (send it that effect's reply to go on), or finished when ``replayed.summary`` is set."""

    flow: AnyFlow
    replayed: Replayed


def resume_flow(flow: AnyFlow, replies: Sequence[ScriptedReply]) -> Resumed:
    """Feed stored replies to a fresh flow and keep it, positioned at its next effect.

    Raises ``ValueError`` if there are more replies than the call has effects.
    """
    effects: list[Effect] = []
    try:
        effect = next(flow)
        for reply in replies:
            effects.append(effect)
            effect = flow.throw(CallerHungUp()) if isinstance(reply, HangUp) else flow.send(reply)
    except StopIteration as stop:
        if len(effects) < len(replies):
            raise ValueError("more replies than the call has effects") from None
        return Resumed(flow, Replayed(tuple(effects), None, stop.value))
    return Resumed(flow, Replayed(tuple(effects), effect, None))


# --- Call length --------------------------------------------------------------------------------


@dataclass(frozen=True)
class CallerTiming:
    """How long things take on the line, to estimate a call's length from its transcript.

    ``prompt_s`` gives each prompt id its length (``default_prompt_s`` for the others). The
    caller waits for the end of every prompt, then keys: ``first_key_s`` to react, then one key
    every ``key_interval_s``.
    """

    prompt_s: Mapping[str, float] = field(default_factory=dict)
    default_prompt_s: float = 2.0
    say_time_s: float = 1.5
    first_key_s: float = 0.8
    key_interval_s: float = 0.45

    def segment_s(self, segment: Segment) -> float:
        if isinstance(segment, SayTime):
            return self.say_time_s
        if isinstance(segment, SayVisitChoice):
            return self.default_prompt_s + self.say_time_s
        return self.prompt_s.get(segment.prompt_id, self.default_prompt_s)


def estimate_call_seconds(transcript: CallTranscript, timing: CallerTiming) -> float:
    """Seconds from the answer to the hang-up for a caller who waits for every prompt.

    World effects and journal writes are taken as instant; a gather lasts its prompts, then the
    keys (a ``#`` that ended it counts as a key), then its timeout if it timed out.
    """
    total = 0.0
    answered = False
    for effect, reply in zip(transcript.effects, transcript.replies, strict=False):
        if isinstance(effect, Answer):
            answered = True
        if not answered:
            continue
        if isinstance(effect, Play):
            total += sum(timing.segment_s(s) for s in effect.segments)
        elif isinstance(effect, Gather):
            total += sum(timing.segment_s(s) for s in effect.segments)
            if isinstance(reply, Keys):
                presses = len(reply.digits)
                if not reply.timed_out and presses < effect.max_digits:
                    presses += 1  # the # that ended it
                if presses:
                    total += timing.first_key_s + (presses - 1) * timing.key_interval_s
                if reply.timed_out:
                    total += effect.timeout_s
        if isinstance(effect, Hangup):
            break
    return total


# --- A small sample directory, for tests and demonstrations ---------------------------------------

SAMPLE_SHARED_NUMBER = "0800100100"
SAMPLE_DEDICATED_NUMBER = "0800200200"
SAMPLE_CALLBACK_NUMBER = "0800300300"
#: A French company reached through the shared number, without task codes.
SAMPLE_COMPANY_FR = CompanyInfo(1, "123", "fr", "Europe/Paris", task_codes_enabled=False)
#: An English-speaking company with its own dedicated number, using task codes.
SAMPLE_COMPANY_EN = CompanyInfo(2, "456", "en", "Europe/London", task_codes_enabled=True)
SAMPLE_CARER_FR_CODE = "12345"
SAMPLE_CARER_EN_CODE = "54321"
#: A code that belonged to a carer who left: not in the directory of active carers.
SAMPLE_INACTIVE_CARER_CODE = "99999"
SAMPLE_CLIENT_FR_LANDLINE = "0145678912"
SAMPLE_CLIENT_EN_LANDLINE = "0298765432"
SAMPLE_UNKNOWN_LANDLINE = "0387654321"


def sample_world() -> ScriptedWorld:
    """Two companies, one active carer and one client each, a shared, a dedicated and a
    call-back number (the last is not a landline service)."""
    return ScriptedWorld(
        called_numbers={
            SAMPLE_SHARED_NUMBER: CalledNumber("shared", None),
            SAMPLE_DEDICATED_NUMBER: CalledNumber("dedicated", SAMPLE_COMPANY_EN),
            SAMPLE_CALLBACK_NUMBER: CalledNumber("callback", SAMPLE_COMPANY_FR),
        },
        companies={c.code: c for c in (SAMPLE_COMPANY_FR, SAMPLE_COMPANY_EN)},
        carers={
            (SAMPLE_COMPANY_FR.company_id, SAMPLE_CARER_FR_CODE): CarerInfo(11),
            (SAMPLE_COMPANY_EN.company_id, SAMPLE_CARER_EN_CODE): CarerInfo(21),
        },
        clients={
            (SAMPLE_COMPANY_FR.company_id, SAMPLE_CLIENT_FR_LANDLINE): ClientInfo(101),
            (SAMPLE_COMPANY_EN.company_id, SAMPLE_CLIENT_EN_LANDLINE): ClientInfo(201),
        },
    )
