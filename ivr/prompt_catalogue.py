"""What the IVR says, in each language a company can choose, and where Asterisk finds it.

One table holds the words so that the recorded sounds (``ivr.make_sounds``), the Twilio
``<Say>`` texts and the support tools all speak the same sentences: a carer who hears a prompt on
the landline and reads it in a ticket must find the same words.

The wording is short on purpose (SPEC.md section 3: a punch takes under 20 s on a dedicated
number), polite, and plain enough for a carer with little French. No prompt ever names a client:
the line may be shared and the phone may be on speaker in the client's home.

This module stays free of Twisted, SQLAlchemy, pyst2 and twilio; reading WAV headers uses the
standard library only, so the start-up check can run anywhere.
"""

from __future__ import annotations

import os
import wave
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import NamedTuple

#: Languages a company can choose (SPEC.md section 1); the first is the default.
LANGUAGES: tuple[str, ...] = ("fr", "en")
DEFAULT_LANGUAGE = "fr"

#: Sub-folder of each Asterisk language folder that holds our sounds, so that our file names
#: can never shadow Asterisk's own prompts (``sounds/fr/goodbye.gsm`` exists in core sounds).
SOUND_SUBDIRECTORY = "telegestion"

#: File extensions Asterisk can play a prompt from. A site may convert our WAV files to a codec
#: of its trunk (``gsm``, ``ulaw``…) to save transcoding; any one of them counts as installed.
ASTERISK_SOUND_EXTENSIONS: tuple[str, ...] = (
    "wav",
    "WAV",
    "wav16",
    "gsm",
    "ulaw",
    "ul",
    "mu",
    "pcm",
    "alaw",
    "al",
    "sln",
    "raw",
    "sln16",
    "g722",
    "g729",
)

# Kept literally here (not imported from ivr.prompt_ids) so that this catalogue can be read on
# its own; a test checks both lists agree.
PROMPT_IDS: tuple[str, ...] = (
    "number-not-in-service",
    "welcome",
    "enter-company-code",
    "invalid-company-code",
    "enter-carer-code",
    "invalid-carer-code",
    "too-many-attempts",
    "goodbye",
    "arrival-recorded",
    "departure-recorded",
    "press-2-to-correct",
    "correction-recorded",
    "enter-task-codes",
    "invalid-task-code",
    "task-codes-recorded",
    "press-9-if-absent",
    "absence-recorded",
    "service-unavailable",
    "technical-problem",
)

# "arrival-recorded" and "departure-recorded" end on "à" / "at": the flow follows them at once
# with the spoken time (``time_phrase``), so the pair reads as one sentence.
_TEXTS: Mapping[str, Mapping[str, str]] = {
    "number-not-in-service": {
        "fr": "Ce numéro n'est pas en service.",
        "en": "This number is not in service.",
    },
    "welcome": {
        "fr": "Télégestion, bonjour.",
        "en": "Hello, visit recording.",
    },
    "enter-company-code": {
        "fr": "Tapez le code de votre structure.",
        "en": "Enter your agency code.",
    },
    "invalid-company-code": {
        "fr": "Code structure incorrect.",
        "en": "Wrong agency code.",
    },
    "enter-carer-code": {
        "fr": "Tapez votre code intervenant.",
        "en": "Enter your carer code.",
    },
    "invalid-carer-code": {
        "fr": "Code intervenant incorrect.",
        "en": "Wrong carer code.",
    },
    "too-many-attempts": {
        "fr": "Trop d'erreurs. Appelez votre structure.",
        "en": "Too many errors, please call your agency.",
    },
    "goodbye": {
        "fr": "Au revoir.",
        "en": "Goodbye.",
    },
    "arrival-recorded": {
        "fr": "Arrivée enregistrée à",
        "en": "Arrival recorded at",
    },
    "departure-recorded": {
        "fr": "Départ enregistré à",
        "en": "Departure recorded at",
    },
    "press-2-to-correct": {
        "fr": "Pour corriger, tapez 2.",
        "en": "To correct, press 2.",
    },
    "correction-recorded": {
        "fr": "Correction enregistrée.",
        "en": "Correction recorded.",
    },
    "enter-task-codes": {
        "fr": "Codes tâches séparés par étoile, puis dièse.",
        "en": "Task codes, star between each, then hash.",
    },
    "invalid-task-code": {
        "fr": "Code tâche incorrect.",
        "en": "Wrong task code.",
    },
    "task-codes-recorded": {
        "fr": "Tâches enregistrées.",
        "en": "Tasks recorded.",
    },
    "press-9-if-absent": {
        "fr": "Client absent, tapez 9.",
        "en": "Client absent, press 9.",
    },
    "absence-recorded": {
        "fr": "Absence signalée à votre structure.",
        "en": "Absence reported to your agency.",
    },
    "service-unavailable": {
        "fr": "Service indisponible sur cette ligne pour l'instant.",
        "en": "Service unavailable from this line for now.",
    },
    "technical-problem": {
        "fr": "Problème technique, merci de rappeler dans quelques minutes.",
        "en": "Technical problem, please call back in a few minutes.",
    },
}


class MissingPrompt(NamedTuple):
    """A prompt Asterisk would fail to play: ``expected`` is where its WAV file should be."""

    language: str
    prompt_id: str
    expected: Path


def normalise_language(language: str | None) -> str:
    """Map a company's language setting to a catalogue language.

    Accepts what configurations and Twilio carry (``"FR"``, ``"fr-FR"``, ``"en_GB"``) so a
    regional tag never silently falls back to French; an empty setting is the default language.
    Raises ``ValueError`` for a language we have no prompts for.
    """
    if language is None or not language.strip():
        return DEFAULT_LANGUAGE
    base = language.strip().replace("_", "-").split("-", 1)[0].lower()
    if base not in LANGUAGES:
        supported = ", ".join(LANGUAGES)
        raise ValueError(f"no prompts in language {language!r} (supported: {supported})")
    return base


def _check_prompt_id(prompt_id: str) -> None:
    if prompt_id not in _TEXTS:
        raise ValueError(f"unknown prompt id {prompt_id!r}")


def prompt_text(prompt_id: str, language: str | None = DEFAULT_LANGUAGE) -> str:
    """The sentence of a prompt, as recorded in its sound file and as Twilio should say it.

    Raises ``ValueError`` for an unknown prompt id or language: a typo must fail loudly in
    tests, not make a carer hear silence.
    """
    _check_prompt_id(prompt_id)
    return _TEXTS[prompt_id][normalise_language(language)]


def sound_path(prompt_id: str) -> str:
    """The Asterisk sound name of a prompt (``STREAM FILE`` / ``Playback`` argument).

    No extension and no language: Asterisk picks the format it can play and looks in the
    folder of the channel's language.
    """
    _check_prompt_id(prompt_id)
    return f"{SOUND_SUBDIRECTORY}/{prompt_id}"


def sound_file(
    sounds_root: str | os.PathLike[str], language: str, prompt_id: str, extension: str = "wav"
) -> Path:
    """Where the file of a prompt lives under a sounds tree laid out like Asterisk's."""
    return Path(sounds_root) / normalise_language(language) / f"{sound_path(prompt_id)}.{extension}"


def missing_prompts(
    sounds_root: str | os.PathLike[str], languages: Iterable[str] = LANGUAGES
) -> list[MissingPrompt]:
    """The prompts that have no playable file under ``sounds_root``, in catalogue order.

    A missing sound looks exactly like a caller hanging up on the wire (GET DATA answers
    ``200 result=-1``, transcript g), so it must be found at start-up instead. An empty file
    counts as missing: Asterisk would play nothing.
    """
    missing: list[MissingPrompt] = []
    for language in languages:
        lang = normalise_language(language)
        for prompt_id in PROMPT_IDS:
            candidates = (
                sound_file(sounds_root, lang, prompt_id, extension)
                for extension in ASTERISK_SOUND_EXTENSIONS
            )
            if not any(path.is_file() and path.stat().st_size > 0 for path in candidates):
                missing.append(
                    MissingPrompt(lang, prompt_id, sound_file(sounds_root, lang, prompt_id))
                )
    return missing


def wav_duration(path: str | os.PathLike[str]) -> float:
    """Length in seconds of a WAV file, read from its header only.

    Raises ``FileNotFoundError`` if it is absent and ``ValueError`` if it is not a PCM WAV.
    """
    try:
        with wave.open(os.fspath(path), "rb") as wav:
            frames = wav.getnframes()
            rate = wav.getframerate()
    except (wave.Error, EOFError) as exc:
        raise ValueError(f"{path}: not a readable PCM WAV file ({exc})") from exc
    if rate <= 0:
        raise ValueError(f"{path}: WAV header has a sample rate of {rate}")
    return frames / rate


def prompt_durations(sounds_root: str | os.PathLike[str], language: str) -> dict[str, float]:
    """Seconds each prompt lasts in ``language``, keyed by prompt id in catalogue order.

    The call-length budget of SPEC.md section 3 is checked with prompts at their real length;
    this gives those lengths. Every prompt must have its WAV file: call ``missing_prompts`` first
    (a missing one raises ``FileNotFoundError``).
    """
    lang = normalise_language(language)
    return {
        prompt_id: wav_duration(sound_file(sounds_root, lang, prompt_id))
        for prompt_id in PROMPT_IDS
    }


# --- spoken times -------------------------------------------------------------------------

_FR_UNITS = (
    "zéro",
    "un",
    "deux",
    "trois",
    "quatre",
    "cinq",
    "six",
    "sept",
    "huit",
    "neuf",
    "dix",
    "onze",
    "douze",
    "treize",
    "quatorze",
    "quinze",
    "seize",
    "dix-sept",
    "dix-huit",
    "dix-neuf",
)
_FR_TENS = {2: "vingt", 3: "trente", 4: "quarante", 5: "cinquante"}

_EN_UNITS = (
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
)
_EN_TENS = {2: "twenty", 3: "thirty", 4: "forty", 5: "fifty"}


def _french_number(n: int) -> str:
    """0–59 in words, feminine: both "heure" and "minute" are, so 1 is "une", 21 "vingt et une"."""
    if n == 1:
        return "une"
    if n < 20:
        return _FR_UNITS[n]
    tens, unit = divmod(n, 10)
    if unit == 0:
        return _FR_TENS[tens]
    if unit == 1:
        return f"{_FR_TENS[tens]} et une"
    return f"{_FR_TENS[tens]}-{_FR_UNITS[unit]}"


def _english_number(n: int) -> str:
    if n < 20:
        return _EN_UNITS[n]
    tens, unit = divmod(n, 10)
    return _EN_TENS[tens] if unit == 0 else f"{_EN_TENS[tens]}-{_EN_UNITS[unit]}"


def _french_time(hour: int, minute: int) -> str:
    # The 24-hour clock is how French speakers read a time; "midi" and "minuit" are clearer
    # to a tired ear than "douze heures" and "zéro heure".
    if hour == 0:
        spoken_hour = "minuit"
    elif hour == 12:
        spoken_hour = "midi"
    else:
        spoken_hour = f"{_french_number(hour)} heure{'s' if hour > 1 else ''}"
    return spoken_hour if minute == 0 else f"{spoken_hour} {_french_number(minute)}"


def _english_time(hour: int, minute: int) -> str:
    # English speakers read the 12-hour clock; a.m./p.m. removes the ambiguity a night-shift
    # carer would otherwise hear.
    if minute == 0 and hour == 0:
        return "midnight"
    if minute == 0 and hour == 12:
        return "noon"
    suffix = "a.m." if hour < 12 else "p.m."
    spoken_hour = _english_number(hour % 12 or 12)
    if minute == 0:
        return f"{spoken_hour} {suffix}"
    spoken_minute = _english_number(minute) if minute >= 10 else f"oh {_english_number(minute)}"
    return f"{spoken_hour} {spoken_minute} {suffix}"


def time_phrase(hour: int, minute: int, language: str | None = DEFAULT_LANGUAGE) -> str:
    """A clock time written the way a voice should read it after "Arrivée enregistrée à".

    Numbers are spelt out in words so that any text-to-speech engine (Twilio ``<Say>``,
    espeak) reads "10:32" as a time and "1 h" with the right gender: ``time_phrase(10, 32,
    "fr")`` is "dix heures trente-deux", ``time_phrase(14, 5, "en")`` is "two oh five p.m.".
    Raises ``ValueError`` outside 0–23 h / 0–59 min.
    """
    if not 0 <= hour <= 23:
        raise ValueError(f"hour must be 0–23, not {hour}")
    if not 0 <= minute <= 59:
        raise ValueError(f"minute must be 0–59, not {minute}")
    if normalise_language(language) == "fr":
        return _french_time(hour, minute)
    return _english_time(hour, minute)
