"""The two decisions the database layer makes inside its transaction during a call.

- Punch kind (SPEC.md section 3, step 6): is this call an arrival or a departure?
- Lock-out (SPEC.md section 3, "Lock-out"): may this caller number still key codes?

Both are pure functions over plain data so that every worker, every backend (SQLite, PostgreSQL)
and the tests agree on them; the database layer only fetches the rows they need, calls them and
stores the result in the same transaction. Datetimes must all be aware (UTC) or all naive.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from ivr.effects import PunchKind
from telegestion.phones import is_withheld

# --- Punch kind -----------------------------------------------------------------------------------

#: An arrival older than this is no longer open: the next punch is a new arrival. Long enough for
#: a day shift with a late departure, short enough that a forgotten departure does not turn the
#: next morning's arrival into a departure.
OPEN_ARRIVAL_WINDOW = timedelta(hours=14)


@dataclass(frozen=True)
class LatestPunch:
    """The carer's latest punch in scope (see :func:`punch_scope`), as stored.

    ``client_absent`` is true once the carer pressed 9 at that arrival: an absence report closes
    nothing and opens nothing, the carer never went in.
    """

    kind: PunchKind
    at: datetime
    client_absent: bool = False


def punch_kind(latest: LatestPunch | None, now: datetime) -> PunchKind:
    """Departure when the latest punch in scope is an open arrival of the last 14 hours.

    An arrival that is the latest punch is not closed by definition: its departure would be
    later. A latest punch in the future (another worker's clock slightly ahead) is recent.
    """
    if latest is None or latest.kind != "arrival" or latest.client_absent:
        return "arrival"
    if now - latest.at > OPEN_ARRIVAL_WINDOW:
        return "arrival"
    return "departure"


def flipped_kind(kind: PunchKind) -> PunchKind:
    """The kind a correction (key 2 at the readback) turns a punch into."""
    return "departure" if kind == "arrival" else "arrival"


@dataclass(frozen=True)
class PunchScope:
    """Which earlier punches count as "this carer at this client" for :func:`punch_kind`.

    With a known client: the carer's punches at that client, whatever phone they came from (a
    client may have two landlines). With an unknown client: the carer's punches with no client
    made from the same caller number, so that an arrival and a departure from one unregistered
    landline pair up as a visit, and a punch from another unknown phone starts a new one. A
    withheld number (``caller_number`` ``None``) pairs with the carer's other withheld,
    client-less punches: the carer can only be in one place at a time, and reconciliation
    raises ``CALLER_ID_WITHHELD`` on both anyway.
    """

    carer_id: int
    client_id: int | None
    caller_number: str | None

    def matches(self, carer_id: int, client_id: int | None, caller_number: str | None) -> bool:
        """Whether a stored punch (its carer, client and caller number) is in this scope."""
        if carer_id != self.carer_id or client_id != self.client_id:
            return False
        if self.client_id is not None:
            return True
        return _stored_number(caller_number) == self.caller_number


def punch_scope(carer_id: int, client_id: int | None, caller_number: str | None) -> PunchScope:
    """The scope of a new punch; ``caller_number`` as the punch stores it (E.164 when it could be
    parsed, else raw), any withheld placeholder included."""
    return PunchScope(
        carer_id, client_id, None if client_id is not None else _stored_number(caller_number)
    )


def _stored_number(caller_number: str | None) -> str | None:
    if caller_number is None or is_withheld(caller_number):
        return None
    return caller_number.strip()


# --- Lock-out -------------------------------------------------------------------------------------

#: More than this many failed code entries ...
LOCKOUT_THRESHOLD = 5
#: ... from one caller number within this window ...
LOCKOUT_WINDOW = timedelta(hours=1)
#: ... lock that number out for this long from the failure that crossed the threshold.
LOCKOUT_DURATION = timedelta(hours=1)

#: Failure reasons that are not a guessed code: a carer who says nothing (or only ``#``) three
#: times is struggling, not attacking, and locking out a client's landline would stop every carer
#: of that client from punching for an hour.
NOT_GUESSES = frozenset({"timeout", "empty"})


@dataclass(frozen=True)
class CodeFailure:
    """One failed code entry from a caller number (``RecordCodeFailure``), as stored."""

    at: datetime
    reason: str


def counts_toward_lockout(reason: str) -> bool:
    """Whether a failed entry is a guess at a code (see :data:`NOT_GUESSES`)."""
    return reason not in NOT_GUESSES


def locked_until(failures: Iterable[CodeFailure], now: datetime) -> datetime | None:
    """When the lock-out running at ``now`` ends, or ``None`` if the number is not locked.

    A lock-out starts at each failure that is more than :data:`LOCKOUT_THRESHOLD` counted failures
    within :data:`LOCKOUT_WINDOW` (itself included) and lasts :data:`LOCKOUT_DURATION`; failures
    after ``now`` are ignored, so the answer never depends on rows written later.
    """
    times = sorted(f.at for f in failures if counts_toward_lockout(f.reason) and f.at <= now)
    end: datetime | None = None
    first = 0
    for index, at in enumerate(times):
        while times[first] <= at - LOCKOUT_WINDOW:
            first += 1
        if index - first + 1 > LOCKOUT_THRESHOLD:
            end = at + LOCKOUT_DURATION
    if end is None or end <= now:
        return None
    return end


def is_locked_out(caller_raw: str | None, failures: Iterable[CodeFailure], now: datetime) -> bool:
    """The answer to ``CheckLockout`` and to ``RecordCodeFailure`` (with the new failure in
    ``failures``). A withheld number is never locked out by number: it is shared by every
    caller who withholds theirs."""
    if is_withheld(caller_raw):
        return False
    return locked_until(failures, now) is not None


def failure_starts_lockout(
    caller_raw: str | None, earlier: Iterable[CodeFailure], new: CodeFailure
) -> bool:
    """Whether recording ``new`` starts a lock-out: raise ``CODE_BRUTE_FORCE`` once, then."""
    earlier = tuple(earlier)
    return not is_locked_out(caller_raw, earlier, new.at) and is_locked_out(
        caller_raw, (*earlier, new), new.at
    )
