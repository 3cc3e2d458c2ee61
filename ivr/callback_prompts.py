"""The words only the call-back says: the visit menu (SPEC.md section 4, step 3).

Everything else the call-back says is a landline prompt (``ivr.prompt_catalogue``), so a carer
hears the same sentences on both. These few exist only as text for Twilio's ``<Say>``: a menu
line names a time and a client's initial, which no recording can hold. They are kept apart
from ``ivr.prompt_ids.ALL_PROMPT_IDS`` on purpose, since Asterisk never plays them and needs
no sound file for them.
"""

from __future__ import annotations

from collections.abc import Mapping

from ivr.effects import ClientLabel, VisitChoice
from ivr.prompt_catalogue import normalise_language, time_phrase

VISIT_NOT_LISTED = "visit-not-listed"
INVALID_CHOICE = "invalid-choice"

CALLBACK_PROMPT_IDS: tuple[str, ...] = (VISIT_NOT_LISTED, INVALID_CHOICE)

_TEXTS: Mapping[str, Mapping[str, str]] = {
    VISIT_NOT_LISTED: {
        "fr": "Si votre visite n'est pas dans la liste, tapez 0.",
        "en": "If your visit is not listed, press 0.",
    },
    INVALID_CHOICE: {
        "fr": "Choix incorrect.",
        "en": "Wrong choice.",
    },
}

_TITLES: Mapping[str, Mapping[str, str]] = {
    "fr": {
        "mr": "Monsieur",
        "mrs": "Madame",
        "ms": "Madame",
        "miss": "Mademoiselle",
        "mr_and_mrs": "Monsieur et Madame",
    },
    "en": {
        "mr": "Mr",
        "mrs": "Mrs",
        "ms": "Ms",
        "miss": "Miss",
        "mr_and_mrs": "Mr and Mrs",
    },
}


def is_callback_prompt(prompt_id: str) -> bool:
    """Whether a prompt id is one of the call-back's own (text only, no sound file)."""
    return prompt_id in _TEXTS


def callback_prompt_text(prompt_id: str, language: str | None) -> str:
    """The sentence of a call-back prompt; ``ValueError`` for an unknown id or language."""
    if prompt_id not in _TEXTS:
        raise ValueError(f"unknown call-back prompt id {prompt_id!r}")
    return _TEXTS[prompt_id][normalise_language(language)]


def spoken_client(label: ClientLabel, language: str | None) -> str:
    """ "Mrs D." / "Madame D.": a title and an initial, nothing more."""
    lang = normalise_language(language)
    initial = f"{label.initial}." if label.initial else ""
    title = _TITLES[lang].get(label.title or "", "")
    return " ".join(part for part in (title, initial) if part)


def visit_choice_text(key: str, choice: VisitChoice, language: str | None) -> str:
    """One menu line as a sentence, the key last so the carer hears what it is for first."""
    lang = normalise_language(language)
    when = time_phrase(choice.local_hour, choice.local_minute, lang)
    who = spoken_client(choice.client, lang)
    if lang == "fr":
        where = f" chez {who}" if who else ""
        if choice.kind == "open":
            return f"Pour terminer la visite commencée à {when}{where}, tapez {key}."
        return f"Pour la visite de {when}{where}, tapez {key}."
    where = f" at {who}" if who else ""
    if choice.kind == "open":
        return f"To end the visit started at {when}{where}, press {key}."
    return f"For the {when} visit{where}, press {key}."
