"""The landline call flow of SPEC.md section 3, written once for every transport.

:func:`run_call` is a generator: it yields effects (``ivr.effects``), the transport carries each
one out and ``send()``s the reply back, and the generator's return value is the
:class:`~ivr.effects.CallSummary`. The flow reads no clock, draws no random number and keeps
no state outside the generator, so the same replies always give the same effects: a stateless
transport resumes a call by replaying the replies it stored.

The method :meth:`CallSteps.landline` follows the numbered steps of the spec; everything else in
this module is plumbing for it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass
from typing import Literal, TypeVar

from ivr import prompt_ids as p
from ivr.effects import (
    Answer,
    CalledNumber,
    CallerHungUp,
    CallStart,
    CallSummary,
    CarerInfo,
    CheckLockout,
    ClientInfo,
    CompanyInfo,
    CorrectPunch,
    Effect,
    Failure,
    Gather,
    Hangup,
    Journal,
    JournalKind,
    Keys,
    LookupCalledNumber,
    LookupCarer,
    LookupClient,
    LookupCompany,
    Outcome,
    Play,
    Prompt,
    PunchRecorded,
    RecordCodeFailure,
    RecordPunch,
    RecordTaskCodes,
    Reply,
    ReportClientAbsent,
    SayTime,
    Segment,
    Step,
)
from ivr.entry import (
    REASON_EMPTY,
    REASON_TOO_MANY_RESTARTS,
    CodeEntry,
    EntryComplete,
    EntryEmpty,
    EntryIncomplete,
    EntryInvalid,
    ending_of,
    keyed_text,
    read_choice,
    read_code,
    read_task_codes,
)
from telegestion.phones import is_withheld

T = TypeVar("T")
CodeField = Literal["company_code", "carer_code"]
Flow = Generator[Effect, Reply, T]

LANDLINE_KINDS = ("shared", "dedicated")
UNKNOWN_COMPANY_CODE = "unknown_company_code"
UNKNOWN_CARER_CODE = "unknown_or_inactive_carer_code"
RESTARTED_WITH_STAR = "restarted_with_star"


@dataclass(frozen=True)
class FlowSettings:
    """Lengths, limits and timings of the landline flow.

    The defaults keep a punch short for a carer who waits for every prompt (SPEC.md: under 20 s
    on a dedicated number, 25 s on a shared one, with prompts of 1.5-3 s) and forgiving for one
    who keys slowly: a timeout only costs time when nobody keys, and a carer keys a digit every
    300-600 ms. Every ``*_s`` value is the wait *after* the gather's prompts have played, and
    also the longest pause allowed between two keys.
    """

    default_language: str = "fr"
    """Language of the prompts played before the company is known (shared number)."""
    company_code_length: int = 3
    carer_code_length: int = 5
    max_attempts: int = 3
    """Failed entries of one code before ``too-many-attempts``."""
    code_timeout_s: float = 6.0
    """Wait for the first key of a code, and between keys: room to find the code on a card."""
    max_restarts: int = 3
    """``*`` restarts within one attempt; beyond, the attempt fails (a stuck key ends)."""
    max_ignored_empty: int = 2
    """Entries of ``#`` alone that are asked again for free, per code; beyond, they count."""
    departure_readback_wait_s: float = 3.0
    """Wait after a departure's ``press-2-to-correct``. The key works during the prompt too, so
    the carer has the prompt plus this, over the spec's 4 s even with a 1.5 s prompt."""
    arrival_readback_wait_s: float = 1.5
    """Wait after an arrival's ``press-9-if-absent``. It follows ``press-2-to-correct`` in the
    same gather and 2 still works during it, so 2 stays possible for both prompts plus this
    (over 4 s), and 9 for its prompt plus this. Short: most carers press nothing here."""
    max_corrections: int = 2
    """Corrections per call: one, and one more to undo a slip of the finger."""
    max_readback_replays: int = 1
    """Readbacks replayed when a stray key (``#`` after the carer code) cut them."""
    task_codes_timeout_s: float = 5.0
    max_task_codes: int = 6
    """Sizes the task-code gather: each code takes 3 keys with its ``*``."""
    max_task_code_attempts: int = 3


@dataclass(frozen=True)
class CallEnd:
    """How the call ends: its outcome and the last words the caller hears."""

    outcome: Outcome
    closing: tuple[Segment, ...]


class EndCall(Exception):
    """Leave the flow early with a decided end (too many attempts, lock-out)."""

    def __init__(self, end: CallEnd) -> None:
        super().__init__(end.outcome)
        self.end = end


class EffectFailed(Exception):
    """An effect got a :class:`Failure` (or a reply of the wrong type) instead of its answer."""

    def __init__(self, effect: Effect, reason: str) -> None:
        super().__init__(reason)
        self.effect = effect
        self.reason = reason


def run_call(start: CallStart, settings: FlowSettings | None = None) -> Flow[CallSummary]:
    """Run one landline call (SPEC.md section 3); see the module docstring for the protocol."""
    call = CallSteps(start, settings or FlowSettings())
    return (yield from run_steps(call, call.landline))


def run_steps(call: CallSteps, steps: Callable[[], Flow[CallEnd]]) -> Flow[CallSummary]:
    """Run a call's steps and end it the same way whatever the transport or the flow.

    The landline flow and the call-back flow (``ivr.callback_flow``) differ only in how they
    find the carer and the client; hang-ups, failures and the last words are handled here once.
    """
    try:
        try:
            end = yield from steps()
        except EndCall as ended:
            end = ended.end
        except EffectFailed as failure:
            yield from call.journal(
                "error",
                step=call.step,
                effect=type(failure.effect).__name__,
                reason=failure.reason,
            )
            if call.punch is not None:
                # The time is stored: the carer hears a normal end, support reads the journal.
                end = CallEnd("punch_recorded", (Prompt(p.GOODBYE),))
            else:
                end = CallEnd("error", (Prompt(p.TECHNICAL_PROBLEM), Prompt(p.GOODBYE)))
    except CallerHungUp:
        # A carer who hangs up during the readback has punched: that is the common case.
        yield from call.journal_quietly("hangup", {"step": call.step})
        outcome: Outcome = "punch_recorded" if call.punch is not None else "caller_hung_up"
        return call.summary(outcome, hangup_step=call.step)
    return (yield from call.finish(end))


class CallSteps:
    """The state of one call while the flow runs; lives only inside the generator.

    The steps shared by every flow are methods here (codes, punch, readback, task codes, end);
    a flow is a method that calls them in its order (:meth:`landline`, or
    ``ivr.callback_flow``), run by :func:`run_steps`.
    """

    def __init__(self, start: CallStart, settings: FlowSettings) -> None:
        self.start = start
        self.settings = settings
        self.step: Step = "called_number"
        self.language = settings.default_language
        self.answered = False
        self.withheld = is_withheld(start.caller_raw)
        self.company: CompanyInfo | None = None
        self.carer: CarerInfo | None = None
        self.client: ClientInfo | None = None
        self.punch: PunchRecorded | None = None
        self.company_code_keyed: str | None = None
        self.carer_code_keyed: str | None = None

    # --- SPEC.md section 3, top to bottom ---------------------------------------------------------

    def landline(self) -> Flow[CallEnd]:
        s = self.settings

        # 1. Look up the called number.
        called = yield from self.world(
            LookupCalledNumber(self.start.called_raw), CalledNumber, allow_none=True
        )
        service = called if called is not None and called.kind in LANDLINE_KINDS else None
        yield from self.journal(
            "lookup",
            what="called_number",
            called_raw=self.start.called_raw,
            found=service is not None,
            number_kind=called.kind if called is not None else None,
        )
        if service is None:
            return CallEnd("unknown_called_number", (Prompt(p.NUMBER_NOT_IN_SERVICE),))
        if service.kind == "dedicated":
            if service.company is None:
                raise EffectFailed(
                    LookupCalledNumber(self.start.called_raw), "dedicated number has no company"
                )
            self.use_company(service.company)

        # Lock-out: a number that guessed codes hears nothing else for the hour.
        if not self.withheld:
            locked = yield from self.world(CheckLockout(self.start.caller_raw), bool)
            yield from self.journal("lookup", what="lockout", locked=locked)
            if locked:
                return CallEnd("locked_out", (Prompt(p.SERVICE_UNAVAILABLE),))

        # 2. Answer, welcome. The welcome shares a gather with the first code prompt, so a carer
        # who knows the codes keys them over it.
        self.step = "welcome"
        yield from self.channel(Answer())
        greeting: tuple[Segment, ...] = (Prompt(p.WELCOME),)

        # 3. Shared number only: the company code.
        if self.company is None:
            company = yield from self.ask_code(
                "company_code",
                s.company_code_length,
                greeting,
                p.ENTER_COMPANY_CODE,
                p.INVALID_COMPANY_CODE,
                self.find_company,
            )
            self.use_company(company)
            greeting = ()
        company = self.company
        assert company is not None

        # 4. The carer code: an active carer of that company.
        self.carer = yield from self.ask_code(
            "carer_code",
            s.carer_code_length,
            greeting,
            p.ENTER_CARER_CODE,
            p.INVALID_CARER_CODE,
            self.find_carer,
        )

        # 5. The client: the landline that calls. Unknown or withheld: punch anyway.
        self.step = "client_lookup"
        if self.withheld:
            yield from self.journal("lookup", what="client", found=False, reason="caller_withheld")
        else:
            self.client = yield from self.world(
                LookupClient(company.company_id, self.start.caller_raw),
                ClientInfo,
                allow_none=True,
            )
            yield from self.journal(
                "lookup",
                what="client",
                found=self.client is not None,
                client_id=self.client.client_id if self.client is not None else None,
            )

        # 6 to 10. The punch, its readback and correction, task codes, goodbye.
        return (yield from self.punch_and_confirm())

    # --- Punch to goodbye (steps 6 to 10), shared with the call-back ---------------------------

    def punch_and_confirm(self) -> Flow[CallEnd]:
        """Record the punch of ``self.carer`` at ``self.client`` and confirm it to the carer."""
        company = self.company
        carer = self.carer
        assert company is not None and carer is not None

        # 6. The punch; the database layer decides arrival or departure (ivr.punch_rules) and
        # stores it before anything is read back.
        self.step = "punch"
        self.punch = yield from self.world(
            RecordPunch(
                company.company_id,
                carer.carer_id,
                self.client.client_id if self.client is not None else None,
                self.start.caller_raw,
            ),
            PunchRecorded,
        )
        yield from self.journal_punch("recorded", self.punch)

        # 7 and 9. Readback, with the correction (2) and, at an arrival, the absence (9) offered
        # in one gather.
        yield from self.readback()

        # 8. Task codes, at a departure, when the company uses them.
        if self.punch.kind == "departure" and company.task_codes_enabled:
            yield from self.ask_task_codes()

        # 10. Goodbye.
        return CallEnd("punch_recorded", (Prompt(p.GOODBYE),))

    # --- Codes (steps 3 and 4) --------------------------------------------------------------------

    def ask_code(
        self,
        field: CodeField,
        length: int,
        greeting: tuple[Segment, ...],
        prompt_id: str,
        invalid_prompt_id: str,
        find: Callable[[str], Flow[T | None]],
    ) -> Flow[T]:
        """Ask a code until it is found, the attempts run out or the caller is locked out."""
        s = self.settings
        segments: tuple[Segment, ...] = (*greeting, Prompt(prompt_id))
        attempts = 0
        ignored_empty = 0
        self.step = "welcome" if greeting else field
        while True:
            raw, entry = yield from self.gather_code(field, length, segments)
            self.step = field
            self.keep_keyed(field, raw)
            if isinstance(entry, EntryEmpty) and ignored_empty < s.max_ignored_empty:
                # A stray # (after the previous code, or out of habit) cut the prompt: ask again.
                ignored_empty += 1
                yield from self.journal_input(field, raw, valid=False, reason=REASON_EMPTY)
                segments = (Prompt(prompt_id),)
                continue
            attempts += 1
            found: T | None = None
            value: str | None = None
            if isinstance(entry, EntryComplete):
                value = entry.value
                found = yield from find(value)
                reason = UNKNOWN_COMPANY_CODE if field == "company_code" else UNKNOWN_CARER_CODE
            else:
                reason = entry.reason if isinstance(entry, EntryInvalid) else REASON_EMPTY
            yield from self.journal_input(
                field,
                raw,
                valid=found is not None,
                reason=None if found is not None else reason,
                value=value,
                attempt=attempts,
            )
            if found is not None:
                return found
            locked = yield from self.world(
                RecordCodeFailure(self.start.caller_raw, field, reason), bool
            )
            if locked and not self.withheld:
                raise EndCall(CallEnd("locked_out", (Prompt(p.SERVICE_UNAVAILABLE),)))
            if attempts >= s.max_attempts:
                outcome: Outcome = (
                    "company_code_failed" if field == "company_code" else "carer_code_failed"
                )
                raise EndCall(CallEnd(outcome, (Prompt(p.TOO_MANY_ATTEMPTS), Prompt(p.GOODBYE))))
            segments = (Prompt(invalid_prompt_id), Prompt(prompt_id))

    def gather_code(
        self, field: CodeField, length: int, segments: tuple[Segment, ...]
    ) -> Flow[tuple[str, CodeEntry]]:
        """One attempt at a code: gather, and after a ``*`` that filled the gather, gather the
        missing keys silently (Asterisk counts ``*`` as one of GET DATA's digits)."""
        raw = ""
        keyed = ""
        max_digits = length
        restarts = 0
        while True:
            keys = yield from self.gather(segments, max_digits, self.settings.code_timeout_s, field)
            raw += keys.digits
            keyed += keyed_text(keys.digits)
            entry = read_code(
                keyed, length=length, ending=ending_of(keys.digits, keys.timed_out, max_digits)
            )
            if not isinstance(entry, EntryIncomplete):
                return raw, entry
            restarts += 1
            yield from self.journal_input(field, raw, valid=False, reason=RESTARTED_WITH_STAR)
            if restarts > self.settings.max_restarts:
                return raw, EntryInvalid(REASON_TOO_MANY_RESTARTS)
            segments = ()
            max_digits = entry.remaining

    def find_company(self, code: str) -> Flow[CompanyInfo | None]:
        company = yield from self.world(LookupCompany(code), CompanyInfo, allow_none=True)
        yield from self.journal(
            "lookup",
            what="company",
            code=code,
            found=company is not None,
            company_id=company.company_id if company is not None else None,
        )
        return company

    def find_carer(self, code: str) -> Flow[CarerInfo | None]:
        company = self.company
        assert company is not None
        carer = yield from self.world(
            LookupCarer(company.company_id, code), CarerInfo, allow_none=True
        )
        yield from self.journal(
            "lookup",
            what="carer",
            code=code,
            found=carer is not None,
            carer_id=carer.carer_id if carer is not None else None,
        )
        return carer

    # --- Readback, correction, absence (steps 7 and 9) ------------------------------------------

    def readback(self) -> Flow[None]:
        """Read the punch back and offer 2 (correct) and, at an arrival, 9 (client absent) in
        one gather, so a carer who presses nothing waits once, not twice."""
        s = self.settings
        punch = self.punch
        assert punch is not None
        self.step = "readback"
        intro: tuple[Segment, ...] = _readback(punch)
        corrections = 0
        replays = 0
        while True:
            offers: list[Segment] = []
            allowed = ""
            if corrections < s.max_corrections:
                offers.append(Prompt(p.PRESS_2_TO_CORRECT))
                allowed += "2"
            if punch.kind == "arrival":
                offers.append(Prompt(p.PRESS_9_IF_ABSENT))
                allowed += "9"
            if not offers:
                yield from self.play(*intro)
                return
            timeout = (
                s.arrival_readback_wait_s
                if punch.kind == "arrival"
                else s.departure_readback_wait_s
            )
            keys = yield from self.gather((*intro, *offers), 1, timeout, "readback")
            choice = read_choice(keys.digits, allowed)
            if choice == "2":
                self.step = "correction"
                yield from self.journal_input("correction", keys.digits, valid=True)
                corrected = yield from self.world(CorrectPunch(punch.punch_id), PunchRecorded)
                yield from self.journal_punch("corrected", corrected, was=punch.kind)
                self.punch = punch = corrected
                corrections += 1
                intro = (Prompt(p.CORRECTION_RECORDED), *_readback(punch))
                continue
            if choice == "9":
                self.step = "absence"
                yield from self.journal_input("absence", keys.digits, valid=True)
                yield from self.world(ReportClientAbsent(punch.punch_id), object, allow_none=True)
                yield from self.journal_punch("client_absent", punch)
                yield from self.play(Prompt(p.ABSENCE_RECORDED))
                return
            if keys.timed_out and not keyed_text(keys.digits):
                yield from self.journal_input("readback", keys.digits, valid=True, reason="timeout")
                return
            # Another key, or the # a carer adds after the carer code, cut the readback short.
            yield from self.journal_input("readback", keys.digits, valid=False, reason="stray_key")
            if replays >= s.max_readback_replays:
                return
            replays += 1

    # --- Task codes (step 8) ----------------------------------------------------------------------

    def ask_task_codes(self) -> Flow[None]:
        """Ask the departure's task codes; the punch stands whatever happens here."""
        s = self.settings
        punch = self.punch
        assert punch is not None
        self.step = "task_codes"
        segments: tuple[Segment, ...] = (Prompt(p.ENTER_TASK_CODES),)
        for attempt in range(1, s.max_task_code_attempts + 1):
            keys = yield from self.gather(
                segments, 3 * s.max_task_codes, s.task_codes_timeout_s, "task_codes"
            )
            entry = read_task_codes(keys.digits)
            if entry.is_empty:
                yield from self.journal_input(
                    "task_codes", keys.digits, valid=True, reason="none_given", attempt=attempt
                )
                return
            if not entry.invalid:
                yield from self.journal_input(
                    "task_codes", keys.digits, valid=True, codes=list(entry.codes), attempt=attempt
                )
                yield from self.world(
                    RecordTaskCodes(punch.punch_id, entry.codes), object, allow_none=True
                )
                yield from self.play(Prompt(p.TASK_CODES_RECORDED))
                return
            yield from self.journal_input(
                "task_codes",
                keys.digits,
                valid=False,
                reason="not_two_digits",
                invalid=list(entry.invalid),
                attempt=attempt,
            )
            segments = (Prompt(p.INVALID_TASK_CODE), Prompt(p.ENTER_TASK_CODES))

    # --- The end (step 10 and every early end) ---------------------------------------------------

    def finish(self, end: CallEnd) -> Flow[CallSummary]:
        """Say the last words and hang up; the outcome is decided and a hang-up cannot change it."""
        if Prompt(p.GOODBYE) in end.closing:
            self.step = "goodbye"
        effects: list[Answer | Play | Hangup] = []
        if not self.answered:
            effects.append(Answer())  # Asterisk plays nothing on an unanswered channel
        if end.closing:
            effects.append(Play(end.closing, self.language))
        effects.append(Hangup())
        try:
            for effect in effects:
                try:
                    yield from self.channel(effect)
                except EffectFailed as failure:
                    yield from self.journal(
                        "error",
                        step=self.step,
                        effect=type(effect).__name__,
                        reason=failure.reason,
                    )
        except CallerHungUp:
            yield from self.journal_quietly("hangup", {"step": self.step})
            return self.summary(end.outcome, hangup_step=self.step)
        return self.summary(end.outcome, hangup_step=None)

    def summary(self, outcome: Outcome, hangup_step: Step | None) -> CallSummary:
        return CallSummary(
            outcome=outcome,
            hangup_step=hangup_step,
            company_id=self.company.company_id if self.company is not None else None,
            carer_id=self.carer.carer_id if self.carer is not None else None,
            client_id=self.client.client_id if self.client is not None else None,
            punch_id=self.punch.punch_id if self.punch is not None else None,
            company_code_keyed=self.company_code_keyed,
            carer_code_keyed=self.carer_code_keyed,
        )

    # --- Plumbing ------------------------------------------------------------------------------

    def use_company(self, company: CompanyInfo) -> None:
        self.company = company
        self.language = company.language

    def keep_keyed(self, field: CodeField, raw: str) -> None:
        if field == "company_code":
            self.company_code_keyed = raw
        else:
            self.carer_code_keyed = raw

    def channel(self, effect: Answer | Gather | Play | Hangup) -> Flow[Reply]:
        reply = yield effect
        if isinstance(reply, Failure):
            raise EffectFailed(effect, reply.reason)
        if isinstance(effect, Answer):
            self.answered = True
        return reply

    def gather(
        self, segments: tuple[Segment, ...], max_digits: int, timeout_s: float, purpose: str
    ) -> Flow[Keys]:
        effect = Gather(segments, max_digits, timeout_s, purpose, self.language)
        reply = yield from self.channel(effect)
        if not isinstance(reply, Keys):
            raise EffectFailed(effect, f"unexpected reply {type(reply).__name__}")
        return reply

    def play(self, *segments: Segment) -> Flow[None]:
        yield from self.channel(Play(segments, self.language))

    def world(self, effect: Effect, expected: type[T], allow_none: bool = False) -> Flow[T]:
        """Ask the database layer; a Failure or a reply of the wrong type ends the call."""
        reply = yield effect
        if isinstance(reply, Failure):
            raise EffectFailed(effect, reply.reason)
        if (reply is None and allow_none) or isinstance(reply, expected):
            return reply  # type: ignore[return-value]
        raise EffectFailed(effect, f"unexpected reply {type(reply).__name__}")

    def journal(self, kind: JournalKind, **detail: object) -> Flow[None]:
        yield Journal(kind, detail)

    def journal_quietly(self, kind: JournalKind, detail: Mapping[str, object]) -> Flow[None]:
        """Journal after a hang-up or a failure: a second hang-up notice changes nothing."""
        with contextlib.suppress(CallerHungUp):
            yield Journal(kind, dict(detail))

    def journal_input(
        self, field: str, raw: str, *, valid: bool, reason: str | None = None, **more: object
    ) -> Flow[None]:
        yield from self.journal("input", field=field, raw=raw, valid=valid, reason=reason, **more)

    def journal_punch(self, action: str, punch: PunchRecorded, **more: object) -> Flow[None]:
        yield from self.journal(
            "punch",
            action=action,
            punch_id=punch.punch_id,
            punch_kind=punch.kind,
            local_time=f"{punch.local_hour:02d}:{punch.local_minute:02d}",
            **more,
        )


def _readback(punch: PunchRecorded) -> tuple[Segment, ...]:
    """The kind and the company-local time; never the client's name (a shared line)."""
    kind_prompt = p.ARRIVAL_RECORDED if punch.kind == "arrival" else p.DEPARTURE_RECORDED
    return (Prompt(kind_prompt), SayTime(punch.local_hour, punch.local_minute))
