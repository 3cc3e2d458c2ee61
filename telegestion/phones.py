"""Phone numbers as people type them and as networks deliver them.

Imports are strict (a typo in a client's landline would silently orphan every punch from that
home), calls are lenient (a caller's number is evidence to keep even when it does not parse).
Both parse in the company's region, so ``0262 12 34 56`` is a Réunion number for a company in
region ``RE`` and ``0033 1 45…`` works wherever ``00`` is the international prefix.
"""

from __future__ import annotations

import functools

import phonenumbers

WITHHELD_PLACEHOLDERS = frozenset({"anonymous", "unknown", "restricted", "private", "unavailable"})


class PhoneNumberError(ValueError):
    """The text is not a phone number that can be dialled in the given region."""


def is_withheld(raw: str | None) -> bool:
    """True when the network gave no usable caller number (SPEC.md section 3)."""
    if raw is None:
        return True
    text = raw.strip()
    return text == "" or text.lower() in WITHHELD_PLACEHOLDERS


def is_supported_region(region: str) -> bool:
    return region.upper() in phonenumbers.SUPPORTED_REGIONS


def _format(number: phonenumbers.PhoneNumber) -> str:
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def parse_strict(raw: str, region: str) -> str:
    """E.164 of a number typed in a file, or PhoneNumberError saying why not."""
    text = raw.strip()
    if not text:
        raise PhoneNumberError("empty phone number")
    try:
        number = phonenumbers.parse(text, region.upper())
    except phonenumbers.NumberParseException as exc:
        raise PhoneNumberError(f"{text!r} is not a phone number ({exc._msg})") from None
    if not phonenumbers.is_valid_number(number):
        raise PhoneNumberError(f"{text!r} is not a valid phone number in region {region.upper()}")
    return _format(number)


@functools.lru_cache(maxsize=65536)
def to_e164(raw: str | None, region: str) -> str | None:
    """E.164 of a number delivered by the network, or None when there is none to be had.

    Cached: the same landlines and toll-free numbers come back call after call, and parsing
    costs more than everything else a lookup does.

    Trunks deliver national (``0145678912``), international (``+33…``, ``0033…``) or bare
    country-code forms (``33145678912``); all of them name the same line.
    """
    if is_withheld(raw):
        return None
    assert raw is not None
    text = raw.strip()
    candidates = [text]
    digits = "".join(ch for ch in text if ch.isdigit())
    if digits and not text.startswith(("+", "0")):
        candidates.append("+" + digits)
    for candidate in candidates:
        try:
            number = phonenumbers.parse(candidate, region.upper())
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_valid_number(number):
            return _format(number)
    try:
        number = phonenumbers.parse(text, region.upper())
    except phonenumbers.NumberParseException:
        return None
    return _format(number) if phonenumbers.is_possible_number(number) else None
