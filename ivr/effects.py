"""The words the call flow and its transports use to talk to each other.

The flow (``ivr.flow``) never touches a socket, a database or a clock: it *yields* one effect at
a time and a transport (FastAGI, classic AGI, Twilio webhooks) carries it out and sends back the
reply. Everything here is a small frozen dataclass of plain values so that:

- three transports can drive one flow without the flow knowing which one it talks to;
- a stateless transport (Twilio webhooks) can store the replies of a call as data and replay the
  flow to resume it, because the flow is a pure function of its replies;
- tests can script a whole call as a list of replies.

Conventions every transport follows:

- Channel effects (:data:`CHANNEL_EFFECTS`) touch the caller. When the caller hangs up during one,
  the transport calls ``flow.throw(CallerHungUp())`` instead of sending a reply. After that the
  flow yields only :class:`Journal` effects and returns. World effects (database) should be
  completed and answered even when a hang-up is noticed meanwhile; throw at the next channel
  effect.
- Any effect may be answered with :class:`Failure` (database down, missing sound file, command
  refused): the flow then ends the call politely with outcome ``error``.
- :class:`Journal` effects are answered with ``None``; the transport writes them to the call
  journal next to the prompts played and the raw replies, which it journals itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal, TypeAlias

PunchKind: TypeAlias = Literal["arrival", "departure"]
Language: TypeAlias = str
"""A company prompt language (``fr`` or ``en``, SPEC.md section 1); the transport picks the
sound folder or the ``<Say>`` voice from it."""

Outcome: TypeAlias = Literal[
    "punch_recorded",
    "unknown_called_number",
    "company_code_failed",
    "carer_code_failed",
    "caller_hung_up",
    "locked_out",
    "error",
]
OUTCOMES: tuple[Outcome, ...] = (
    "punch_recorded",
    "unknown_called_number",
    "company_code_failed",
    "carer_code_failed",
    "caller_hung_up",
    "locked_out",
    "error",
)

Step: TypeAlias = Literal[
    "called_number",
    "welcome",
    "company_code",
    "carer_code",
    "client_lookup",
    "visit_menu",
    "punch",
    "readback",
    "correction",
    "task_codes",
    "absence",
    "goodbye",
]
STEPS: tuple[Step, ...] = (
    "called_number",
    "welcome",
    "company_code",
    "carer_code",
    "client_lookup",
    "visit_menu",
    "punch",
    "readback",
    "correction",
    "task_codes",
    "absence",
    "goodbye",
)

JournalKind: TypeAlias = Literal["input", "lookup", "punch", "error", "hangup"]


class CallerHungUp(Exception):
    """Thrown into the flow by the transport when the caller hangs up during a channel effect."""


# --- What the transport knows when the call arrives ---------------------------------------------


@dataclass(frozen=True)
class CallStart:
    """The two numbers of a new call, raw as the network gave them.

    ``caller_raw`` is ``""`` or a placeholder (``anonymous``, ``unknown``…) when the number is
    withheld; the flow recognises those itself, so transports pass what they received.
    """

    called_raw: str
    caller_raw: str


@dataclass(frozen=True)
class CallbackStart:
    """A call-back call (SPEC.md section 4): the server calls a carer's registered mobile.

    ``mobile_raw`` is the number dialled (the carer's mobile), ``callback_number_raw`` the
    call-back number the carer called first and that the server calls from. ``language`` was
    chosen when the call-back was requested (the carer is not known yet when the call starts);
    ``company_id`` is set when the call-back number belongs to one company, and then only that
    company's carers can punch through it.
    """

    mobile_raw: str
    callback_number_raw: str
    language: Language
    company_id: int | None = None


# --- Segments: what a prompt is made of ---------------------------------------------------------


@dataclass(frozen=True)
class Prompt:
    """A recorded prompt, by id (``ivr.prompt_ids``)."""

    prompt_id: str


@dataclass(frozen=True)
class SayTime:
    """A time of day spoken in the company's language; hour 0-23, minute 0-59, company local."""

    hour: int
    minute: int


@dataclass(frozen=True)
class ClientLabel:
    """What may be said of a client: a title and the initial of the family name ("Mrs D.").

    Never the full name: the carer's phone may be on speaker in someone else's home.
    ``title`` is ``mr``, ``mrs``, ``miss``, ``ms``, ``mr_and_mrs`` or ``None``; ``initial`` is
    one upper-case letter, or ``""`` when the name gave none.
    """

    title: str | None
    initial: str


@dataclass(frozen=True)
class VisitChoice:
    """One line of the call-back menu: a planned intervention around now, or an open visit.

    ``kind`` is ``planned`` (the time is the planned start) or ``open`` (an arrival not yet
    closed; the time is the arrival). Times are company-local.
    """

    client_id: int
    kind: Literal["planned", "open"]
    local_hour: int
    local_minute: int
    client: ClientLabel


@dataclass(frozen=True)
class SayVisitChoice:
    """One menu line spoken as a sentence ("for the 9:00 visit at Mrs D., press 1").

    Only the call-back (Twilio ``<Say>``) speaks it: there is no recorded sound for it.
    """

    key: str
    choice: VisitChoice


Segment: TypeAlias = Prompt | SayTime | SayVisitChoice


# --- Channel effects ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    """Answer the call; reply ``None``. Asterisk cannot play anything before it."""


@dataclass(frozen=True)
class Gather:
    """Play ``segments`` in order and collect keys; reply :class:`Keys`.

    The first key stops the playing and counts as input (type-ahead: a carer who knows the
    codes keys them over the prompt). ``segments`` may be empty: then only wait for keys (the
    flow does this to finish an entry restarted with ``*`` without replaying the prompt).
    Gathering ends after ``max_digits`` keys (``*`` counts as a key, as in Asterisk's GET DATA),
    on ``#`` (not returned), or after ``timeout_s`` without a key once the segments have played
    (the same limit applies between keys). ``purpose`` names the field being asked
    (``company_code``, ``carer_code``, ``readback``, ``task_codes``) for logs and for
    transports that want it (Twilio's ``action`` URL).
    """

    segments: tuple[Segment, ...]
    max_digits: int
    timeout_s: float
    purpose: str
    language: Language


@dataclass(frozen=True)
class Play:
    """Play ``segments`` with no input after them; reply ``None``."""

    segments: tuple[Segment, ...]
    language: Language


@dataclass(frozen=True)
class Hangup:
    """Hang up the call; reply ``None``. Always the last channel effect of a call."""


ChannelEffect: TypeAlias = Answer | Gather | Play | Hangup


# --- World effects (the database layer answers them) --------------------------------------------


@dataclass(frozen=True)
class LookupCalledNumber:
    """Which landline service the dialled number is; reply :class:`CalledNumber` or ``None``."""

    called_raw: str


@dataclass(frozen=True)
class LookupCompany:
    """Find a company by its 3-digit code; reply :class:`CompanyInfo` or ``None``."""

    code: str


@dataclass(frozen=True)
class LookupCarer:
    """Find an *active* carer of the company by carer code; reply :class:`CarerInfo` or ``None``."""

    company_id: int
    carer_code: str


@dataclass(frozen=True)
class LookupClient:
    """Find the client whose landline is the caller number; reply :class:`ClientInfo` or ``None``.

    Never asked for a withheld caller: there is nothing to match.
    """

    company_id: int
    caller_raw: str


@dataclass(frozen=True)
class CheckLockout:
    """Is this caller number locked out (``ivr.punch_rules.is_locked_out``)? Reply ``bool``.

    Never asked for a withheld caller: a withheld number is never locked out by number.
    """

    caller_raw: str


@dataclass(frozen=True)
class FindCarerByMobile:
    """The active carers who own this mobile and this carer code; reply :class:`CarerMatches`.

    The call-back's PIN: the mobile names the carer, the code proves it is them. Several
    matches happen when one person works for two companies under the same code; ``company_id``
    (a call-back number of one company) keeps only that company's carer.
    """

    mobile_raw: str
    carer_code: str
    company_id: int | None


@dataclass(frozen=True)
class ListVisitChoices:
    """The call-back menu: the carer's open visits and planned interventions around now, in
    the order to offer them; reply :class:`VisitChoices`."""

    company_id: int
    carer_id: int


@dataclass(frozen=True)
class RecordPunch:
    """Store a punch now; reply :class:`PunchRecorded`.

    In one transaction the database layer reads the latest punch in scope
    (``ivr.punch_rules.punch_scope``), decides the kind (``ivr.punch_rules.punch_kind``), takes
    the time from its own clock and stores the punch, before anything is read back to the carer.
    ``client_id`` is ``None`` when the caller number is unknown or withheld; ``caller_raw`` is
    passed so that scope can be the caller number.
    """

    company_id: int
    carer_id: int
    client_id: int | None
    caller_raw: str


@dataclass(frozen=True)
class CorrectPunch:
    """Flip a punch of this call (arrival <-> departure); reply :class:`PunchRecorded`."""

    punch_id: int


@dataclass(frozen=True)
class ReportClientAbsent:
    """Make an arrival a ``client_absent`` report, alert (``CLIENT_ABSENT``); reply ``None``."""

    punch_id: int


@dataclass(frozen=True)
class RecordTaskCodes:
    """Attach task codes (two digits each) to a departure; reply ``None``."""

    punch_id: int
    codes: tuple[str, ...]


@dataclass(frozen=True)
class RecordCodeFailure:
    """Count one failed code entry from this caller; reply ``bool``: locked out from now on.

    ``what`` is the field (``company_code`` or ``carer_code``), ``reason`` why it failed (see
    ``ivr.entry``); ``ivr.punch_rules`` decides which reasons count toward a lock-out. The
    database layer raises ``CODE_BRUTE_FORCE`` when this failure starts a lock-out.
    """

    caller_raw: str
    what: str
    reason: str


WorldEffect: TypeAlias = (
    LookupCalledNumber
    | LookupCompany
    | LookupCarer
    | LookupClient
    | FindCarerByMobile
    | ListVisitChoices
    | CheckLockout
    | RecordPunch
    | CorrectPunch
    | ReportClientAbsent
    | RecordTaskCodes
    | RecordCodeFailure
)


# --- Journal ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Journal:
    """A call-journal event that only the flow can know (why an entry was refused, a lookup's
    result, a punch decision); reply ``None``. ``detail`` holds plain JSON-ready values."""

    kind: JournalKind
    detail: Mapping[str, object] = field(default_factory=dict)


Effect: TypeAlias = ChannelEffect | WorldEffect | Journal

CHANNEL_EFFECTS: tuple[type, ...] = (Answer, Gather, Play, Hangup)
WORLD_EFFECTS: tuple[type, ...] = (
    LookupCalledNumber,
    LookupCompany,
    LookupCarer,
    LookupClient,
    FindCarerByMobile,
    ListVisitChoices,
    CheckLockout,
    RecordPunch,
    CorrectPunch,
    ReportClientAbsent,
    RecordTaskCodes,
    RecordCodeFailure,
)


def is_channel_effect(effect: object) -> bool:
    """Whether a hang-up may be thrown at this effect (and whether one may follow a hang-up)."""
    return isinstance(effect, CHANNEL_EFFECTS)


# --- Replies --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Keys:
    """What the caller keyed during a :class:`Gather`.

    ``digits`` as keyed, ``*`` included, without the ``#`` that ended the entry (Asterisk's
    GET DATA and Twilio's ``finishOnKey`` both drop it; a transport that keeps it is tolerated).
    ``timed_out`` is true when the gather ended on its timeout, with or without digits.
    """

    digits: str
    timed_out: bool


@dataclass(frozen=True)
class CompanyInfo:
    """A company (structure) as the flow needs it."""

    company_id: int
    code: str
    language: Language
    timezone: str
    task_codes_enabled: bool


@dataclass(frozen=True)
class CalledNumber:
    """A dialled number: ``shared`` (carers key the company code) or ``dedicated`` to one company.

    Any other kind (a call-back number) is not a landline service and is treated as unknown.
    """

    kind: str
    company: CompanyInfo | None


@dataclass(frozen=True)
class CarerInfo:
    """An active carer (intervenant)."""

    carer_id: int


@dataclass(frozen=True)
class CarerMatch:
    """A carer found by mobile and code, with the company the call then belongs to."""

    carer_id: int
    company: CompanyInfo


@dataclass(frozen=True)
class CarerMatches:
    """Every carer found by :class:`FindCarerByMobile`, ordered by company code."""

    matches: tuple[CarerMatch, ...]


@dataclass(frozen=True)
class VisitChoices:
    """The call-back menu (:class:`ListVisitChoices`), in the order to offer it."""

    choices: tuple[VisitChoice, ...]


@dataclass(frozen=True)
class ClientInfo:
    """A client (bénéficiaire). Only the id: nothing about a client is ever spoken."""

    client_id: int


@dataclass(frozen=True)
class PunchRecorded:
    """A stored punch and the company-local time to read back."""

    punch_id: int
    kind: PunchKind
    local_hour: int
    local_minute: int


@dataclass(frozen=True)
class Failure:
    """An effect could not be carried out; ``reason`` is for the journal and support."""

    reason: str


Reply: TypeAlias = (
    Keys
    | CalledNumber
    | CompanyInfo
    | CarerInfo
    | CarerMatches
    | ClientInfo
    | VisitChoices
    | PunchRecorded
    | Failure
    | bool
    | None
)


# --- The end of a call --------------------------------------------------------------------------


@dataclass(frozen=True)
class CallSummary:
    """What the call-journal row needs once the flow is over (the generator's return value).

    ``hangup_step`` is the step the caller hung up at, ``None`` when the server hung up.
    ``*_keyed`` are the raw keys of the last entry of that field (``*`` included), ``""`` when
    it timed out empty, ``None`` when the field was never asked: support reads them in tickets.
    """

    outcome: Outcome
    hangup_step: Step | None
    company_id: int | None
    carer_id: int | None
    client_id: int | None
    punch_id: int | None
    company_code_keyed: str | None
    carer_code_keyed: str | None
