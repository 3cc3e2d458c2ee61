"""How keys pressed on a phone become a code, a choice or task codes (SPEC.md section 3, step 4).

Carers key on old landlines, often tired, often over the prompt. The rules here forgive what
they really do and refuse only what cannot be a code:

- ``#`` ends an entry early; a ``#`` before anything else or after the entry is ignored, so the
  ``#`` a carer adds out of habit after a complete code costs nothing.
- ``*`` starts the entry again: only what follows the last ``*`` counts. Asterisk's GET DATA
  counts ``*`` as one of its ``max_digits``, so a restart can fill the gather before the code is
  complete; the flow then keeps gathering the missing keys without replaying the prompt
  (:class:`EntryIncomplete`).
- Keys typed over the prompt count (the transport's type-ahead); nothing to do here.

Pure functions over strings: the flow, the call-back path and support tools share them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, TypeAlias

Ending: TypeAlias = Literal["max_digits", "hash", "timeout"]
"""How a gather ended: it got all the keys it asked for, the caller pressed ``#``, or waited."""

#: Why an entry is refused (journal detail ``reason``). The flow adds ``unknown_company_code``
#: and ``unknown_or_inactive_carer_code`` after a lookup, and ``empty`` when ``#`` alone is
#: pressed too often.
REASON_TIMEOUT = "timeout"
REASON_WRONG_LENGTH = "wrong_length"
REASON_NOT_DIGITS = "not_digits"
REASON_TOO_MANY_RESTARTS = "too_many_restarts"
REASON_EMPTY = "empty"


def keyed_text(digits: str) -> str:
    """The part of a gather reply that is entry: leading ``#`` dropped, cut at the next ``#``.

    GET DATA never returns ``#``, but a transport that passes it through (or a caller who
    presses ``#`` first, out of habit) must not change what the entry means.
    """
    text = digits.lstrip("#")
    end = text.find("#")
    return text if end < 0 else text[:end]


def ending_of(digits: str, timed_out: bool, max_digits: int) -> Ending:
    """Tell how a gather ended from its reply, as GET DATA and Twilio report it."""
    if timed_out:
        return "timeout"
    if len(keyed_text(digits)) >= max_digits:
        return "max_digits"
    return "hash"


@dataclass(frozen=True)
class EntryComplete:
    """A well-formed code of the expected length (not yet looked up)."""

    value: str
    restarted: bool


@dataclass(frozen=True)
class EntryIncomplete:
    """A ``*`` restart filled the gather: gather ``remaining`` more keys, without a prompt."""

    remaining: int


@dataclass(frozen=True)
class EntryEmpty:
    """Nothing but ``#`` (or ``*`` then ``#``): a stray key, not an attempt at a code."""


@dataclass(frozen=True)
class EntryInvalid:
    """Keys that cannot be the code; ``reason`` goes to the journal."""

    reason: str


CodeEntry: TypeAlias = EntryComplete | EntryIncomplete | EntryEmpty | EntryInvalid


def read_code(keyed: str, *, length: int, ending: Ending) -> CodeEntry:
    """Read a fixed-length numeric code (company: 3 digits, carer: 5) from all keys so far.

    ``keyed`` is the concatenation of every gather of this attempt, each passed through
    :func:`keyed_text`; ``ending`` is how the last one ended.
    """
    restarted = "*" in keyed
    tail = keyed.rsplit("*", 1)[-1]
    if not all(c.isascii() and c.isdigit() for c in tail):
        return EntryInvalid(REASON_NOT_DIGITS)
    if len(tail) == length:
        return EntryComplete(tail, restarted)
    if len(tail) > length:
        return EntryInvalid(REASON_WRONG_LENGTH)
    if ending == "max_digits":
        return EntryIncomplete(length - len(tail))
    if not tail:
        return EntryInvalid(REASON_TIMEOUT) if ending == "timeout" else EntryEmpty()
    return EntryInvalid(REASON_WRONG_LENGTH)


def read_choice(digits: str, allowed: str) -> str | None:
    """The menu key pressed, if it is one of ``allowed``; anything else is no choice."""
    text = keyed_text(digits)
    if text and text[0] in allowed:
        return text[0]
    return None


TASK_CODE_LENGTH = 2


@dataclass(frozen=True)
class TaskCodesEntry:
    """Task codes read from one entry; ``invalid`` lists the parts that are not task codes."""

    codes: tuple[str, ...]
    invalid: tuple[str, ...]

    @property
    def is_empty(self) -> bool:
        """Nothing keyed at all: the carer had no task code to give."""
        return not self.codes and not self.invalid


def read_task_codes(digits: str) -> TaskCodesEntry:
    """Read two-digit task codes separated by ``*`` (SPEC.md section 3, step 8).

    Forgiving where the meaning is certain: empty parts (``**``, a leading or trailing ``*``)
    are skipped, a run of digits of even length is read as consecutive codes (``1204`` is 12
    then 04, since every code has two digits), and a code keyed twice is kept once. A part of odd
    length or with another key is refused, and the whole entry with it, so that a carer never
    records half of what they meant.
    """
    codes: list[str] = []
    invalid: list[str] = []
    for part in keyed_text(digits).split("*"):
        if not part:
            continue
        if not all(c.isascii() and c.isdigit() for c in part) or len(part) % TASK_CODE_LENGTH:
            invalid.append(part)
            continue
        for start in range(0, len(part), TASK_CODE_LENGTH):
            code = part[start : start + TASK_CODE_LENGTH]
            if code not in codes:
                codes.append(code)
    return TaskCodesEntry(tuple(codes), tuple(invalid))
