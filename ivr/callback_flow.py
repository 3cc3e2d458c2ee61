"""The call-back call flow of SPEC.md section 4, written once, in the landline flow's words.

The server calls a carer back on their registered mobile (``callback/`` places the call and
carries the effects over Twilio webhooks). The mobile says who the carer probably is; the
carer code, asked as a PIN, proves it. With no landline to name the client, the carer picks
the visit from a short menu of their open visits and planned interventions around now; ``0``
(not listed) punches with the client unknown, as a withheld landline does, and reconciliation
raises the anomaly. From the punch on, the call is the landline's: the same punch-kind rule,
readback, correction, absence and task codes (``ivr.flow.CallSteps.punch_and_confirm``).

A mobile shared by carers of several companies (one person working for two agencies): the
code usually tells them apart, since each company gives its own; when the same code matches
in two companies, the carer is asked the company code as well. A call-back number that
belongs to one company only ever finds that company's carers.

Like :func:`ivr.flow.run_call`, :func:`run_callback` is a pure generator of effects, so a
stateless transport resumes it by replaying the replies it stored.
"""

from __future__ import annotations

from dataclasses import dataclass

from ivr import prompt_ids as p
from ivr.callback_prompts import INVALID_CHOICE, VISIT_NOT_LISTED
from ivr.effects import (
    Answer,
    CallbackStart,
    CallStart,
    CallSummary,
    CarerInfo,
    CarerMatch,
    CarerMatches,
    CheckLockout,
    ClientInfo,
    FindCarerByMobile,
    ListVisitChoices,
    Prompt,
    SayVisitChoice,
    Segment,
    VisitChoices,
)
from ivr.entry import keyed_text, read_choice
from ivr.flow import CallEnd, CallSteps, Flow, FlowSettings, run_steps
from ivr.visit_menu import MAX_CHOICES

NOT_LISTED_KEY = "0"


@dataclass(frozen=True)
class CallbackSettings(FlowSettings):
    """The landline flow's settings plus the visit menu's."""

    menu_timeout_s: float = 5.0
    """Wait after the menu's last line; a key works during the lines too."""
    max_menu_attempts: int = 2
    """Menus heard before the punch is recorded with the client unknown."""


def run_callback(
    start: CallbackStart, settings: CallbackSettings | None = None
) -> Flow[CallSummary]:
    """Run one call-back call (SPEC.md section 4); same protocol as :func:`ivr.flow.run_call`."""
    call = _CallbackSteps(start, settings or CallbackSettings())
    return (yield from run_steps(call, call.callback))


class _CallbackSteps(CallSteps):
    def __init__(self, start: CallbackStart, settings: CallbackSettings) -> None:
        # For the shared steps the carer's mobile is the caller: it is what lock-outs count and
        # what pairs the punches of visits at an unknown client.
        super().__init__(CallStart(start.callback_number_raw, start.mobile_raw), settings)
        self.callback_start = start
        self.callback_settings = settings
        self.language = start.language

    def callback(self) -> Flow[CallEnd]:
        s = self.settings
        mobile = self.callback_start.mobile_raw

        # A mobile that guessed codes is locked out like a landline (SPEC.md section 3).
        locked = yield from self.world(CheckLockout(mobile), bool)
        yield from self.journal("lookup", what="lockout", locked=locked)
        if locked:
            return CallEnd("locked_out", (Prompt(p.SERVICE_UNAVAILABLE),))

        # The carer answered (Twilio calls the flow once the call is up).
        self.step = "welcome"
        yield from self.channel(Answer())

        # 3. The carer code as a PIN, among the carers who own this mobile.
        matches = yield from self.ask_code(
            "carer_code",
            s.carer_code_length,
            (Prompt(p.WELCOME),),
            p.ENTER_CARER_CODE,
            p.INVALID_CARER_CODE,
            self.find_by_mobile,
        )
        match = matches.matches[0]
        if len(matches.matches) > 1:
            match = yield from self.ask_code(
                "company_code",
                s.company_code_length,
                (),
                p.ENTER_COMPANY_CODE,
                p.INVALID_COMPANY_CODE,
                lambda code: self.pick_company(matches, code),
            )
        self.use_company(match.company)
        self.carer = CarerInfo(match.carer_id)

        # 3. The visit, from the menu; 0 or no choice: the client is unknown.
        self.client = yield from self.choose_visit()

        # 4 (source, location) is the database layer's; then the landline's steps 6 to 10.
        return (yield from self.punch_and_confirm())

    def find_by_mobile(self, code: str) -> Flow[CarerMatches | None]:
        start = self.callback_start
        found = yield from self.world(
            FindCarerByMobile(start.mobile_raw, code, start.company_id), CarerMatches
        )
        yield from self.journal(
            "lookup",
            what="carer",
            code=code,
            found=bool(found.matches),
            carer_ids=[m.carer_id for m in found.matches],
        )
        return found if found.matches else None

    def pick_company(self, matches: CarerMatches, code: str) -> Flow[CarerMatch | None]:
        match = next((m for m in matches.matches if m.company.code == code), None)
        yield from self.journal(
            "lookup",
            what="company",
            code=code,
            found=match is not None,
            company_id=match.company.company_id if match is not None else None,
        )
        return match

    def choose_visit(self) -> Flow[ClientInfo | None]:
        """Offer the menu until a key picks a line or ``0``, or the attempts run out."""
        company, carer = self.company, self.carer
        assert company is not None and carer is not None
        settings = self.callback_settings
        self.step = "visit_menu"
        menu = yield from self.world(
            ListVisitChoices(company.company_id, carer.carer_id), VisitChoices
        )
        choices = menu.choices[:MAX_CHOICES]
        yield from self.journal(
            "lookup",
            what="visit_choices",
            offered=[
                {"key": str(key), "client_id": c.client_id, "kind": c.kind}
                for key, c in enumerate(choices, 1)
            ],
        )
        if not choices:
            # Nothing planned around now: the punch is recorded for reconciliation to place.
            return None
        menu_lines: tuple[Segment, ...] = (
            *(SayVisitChoice(str(key), c) for key, c in enumerate(choices, 1)),
            Prompt(VISIT_NOT_LISTED),
        )
        allowed = NOT_LISTED_KEY + "".join(str(key) for key in range(1, len(choices) + 1))
        segments = menu_lines
        for attempt in range(1, settings.max_menu_attempts + 1):
            keys = yield from self.gather(segments, 1, settings.menu_timeout_s, "visit_menu")
            key = read_choice(keys.digits, allowed)
            if key == NOT_LISTED_KEY:
                yield from self.journal_input(
                    "visit_menu", keys.digits, valid=True, reason="not_listed", attempt=attempt
                )
                return None
            if key is not None:
                chosen = choices[int(key) - 1]
                yield from self.journal_input(
                    "visit_menu",
                    keys.digits,
                    valid=True,
                    client_id=chosen.client_id,
                    visit_kind=chosen.kind,
                    attempt=attempt,
                )
                return ClientInfo(chosen.client_id)
            silent = keys.timed_out and not keyed_text(keys.digits)
            yield from self.journal_input(
                "visit_menu",
                keys.digits,
                valid=False,
                reason="timeout" if silent else "not_a_choice",
                attempt=attempt,
            )
            segments = (Prompt(INVALID_CHOICE), *menu_lines)
        yield from self.journal("lookup", what="client", found=False, reason="no_menu_choice")
        return None
