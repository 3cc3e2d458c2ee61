"""Reading keyed digits: codes with # and *, menu choices and task codes (ivr.entry)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ivr.entry import (
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


def test_complete_code_is_read() -> None:
    """Five digits filling the gather are a carer code."""
    assert read_code("01234", length=5, ending="max_digits") == EntryComplete("01234", False)


def test_hash_ends_entry_early_as_wrong_length() -> None:
    """`#` after too few digits ends the entry, and it is refused as too short."""
    assert read_code("12", length=3, ending="hash") == EntryInvalid("wrong_length")


def test_only_keys_after_last_star_count() -> None:
    """`*` starts the entry again: what was keyed before the last `*` is forgotten."""
    assert read_code("98*7*123", length=3, ending="max_digits") == EntryComplete("123", True)


def test_restart_that_fills_the_gather_asks_for_the_missing_keys() -> None:
    """A `*` counted in GET DATA's max digits leaves the code short: gather what is missing."""
    assert read_code("1*234", length=5, ending="max_digits") == EntryIncomplete(2)


def test_star_as_last_key_asks_for_a_whole_code() -> None:
    """`12*` on a 3-digit gather means the caller starts over: three keys still to come."""
    assert read_code("12*", length=3, ending="max_digits") == EntryIncomplete(3)


def test_restart_then_timeout_is_wrong_length() -> None:
    """A restart followed by too few digits and silence is refused as too short."""
    assert read_code("12*3", length=3, ending="timeout") == EntryInvalid("wrong_length")


def test_nothing_keyed_before_timeout_is_a_timeout() -> None:
    """Silence is its own reason, so the journal tells a silent caller from a wrong code."""
    assert read_code("", length=5, ending="timeout") == EntryInvalid("timeout")


@pytest.mark.parametrize("keyed", ["", "12*"])
def test_hash_alone_is_an_empty_entry(keyed: str) -> None:
    """`#` with nothing before it (or nothing since the last `*`) is a stray key, not a code."""
    assert read_code(keyed, length=3, ending="hash") == EntryEmpty()


def test_letters_are_not_digits() -> None:
    """DTMF A-D keys cannot be part of a code."""
    assert read_code("12A", length=3, ending="max_digits") == EntryInvalid("not_digits")


def test_too_many_digits_from_a_lenient_transport_is_wrong_length() -> None:
    """A transport that returns more keys than asked still cannot make a longer code valid."""
    assert read_code("123456", length=5, ending="hash") == EntryInvalid("wrong_length")


@pytest.mark.parametrize(
    ("digits", "expected"), [("#12#", "12"), ("##123", "123"), ("12#34", "12"), ("###", "")]
)
def test_keyed_text_ignores_leading_hash_and_stops_at_the_next(digits: str, expected: str) -> None:
    """A `#` passed through by a transport neither adds to nor extends an entry."""
    assert keyed_text(digits) == expected


@pytest.mark.parametrize(
    ("digits", "timed_out", "max_digits", "expected"),
    [
        ("123", False, 3, "max_digits"),
        ("12", False, 3, "hash"),
        ("", False, 3, "hash"),
        ("12", True, 3, "timeout"),
        ("123#", False, 3, "max_digits"),
    ],
)
def test_ending_is_told_from_the_reply(
    digits: str, timed_out: bool, max_digits: int, expected: str
) -> None:
    """GET DATA's reply says how the gather ended: full, cut by `#`, or timed out."""
    assert ending_of(digits, timed_out, max_digits) == expected


@given(st.text(alphabet="0123456789*#ABCD", max_size=12), st.sampled_from([3, 5]))
def test_any_keys_give_a_verdict_consistent_with_the_last_star(keyed: str, length: int) -> None:
    """Whatever is keyed, a complete code is exactly the digits after the last `*`."""
    text = keyed_text(keyed)
    for ending in ("max_digits", "hash", "timeout"):
        entry = read_code(text, length=length, ending=ending)
        if isinstance(entry, EntryComplete):
            assert entry.value == text.rsplit("*", 1)[-1]
            assert len(entry.value) == length and entry.value.isdigit()
        if isinstance(entry, EntryIncomplete):
            assert ending == "max_digits" and 0 < entry.remaining <= length


@pytest.mark.parametrize(("digits", "expected"), [("2", "2"), ("#9", "9"), ("2#", "2")])
def test_choice_is_the_first_allowed_key(digits: str, expected: str) -> None:
    """A menu key counts even with a `#` before or after it."""
    assert read_choice(digits, "29") == expected


@pytest.mark.parametrize("digits", ["", "#", "5", "*2"])
def test_other_keys_are_no_choice(digits: str) -> None:
    """Keys outside the menu choose nothing."""
    assert read_choice(digits, "29") is None


def test_task_codes_are_split_on_star() -> None:
    """Two-digit codes separated by `*` are read in order."""
    entry = read_task_codes("12*04*33")
    assert entry.codes == ("12", "04", "33") and entry.invalid == ()


def test_task_codes_forgive_doubled_and_edge_stars() -> None:
    """Empty parts from `**` or a leading/trailing `*` are skipped, not refused."""
    assert read_task_codes("*12**34*").codes == ("12", "34")


def test_task_codes_keyed_without_star_are_read_in_pairs() -> None:
    """Every code has two digits, so `1204` can only mean 12 then 04."""
    assert read_task_codes("1204").codes == ("12", "04")


def test_task_code_keyed_twice_is_kept_once() -> None:
    """A repeated code records the task once."""
    assert read_task_codes("12*12").codes == ("12",)


@pytest.mark.parametrize("digits", ["1*23", "123", "12*3A"])
def test_odd_length_task_code_is_invalid(digits: str) -> None:
    """A part that cannot be split into two-digit codes is refused."""
    assert read_task_codes(digits).invalid


def test_no_task_code_is_empty() -> None:
    """Nothing but `#` means the carer has no task to give."""
    assert read_task_codes("#").is_empty
