"""How the call-back menu may name a client: a title and one initial, never the name.

The call-back menu has to tell two visits apart ("the 9:00 visit at Mrs D.") on a phone that
may be on speaker in another client's home, so it says as little as still tells them apart:
the title and the initial of the family name. Names arrive as agencies type them in their
client files ("Mme Jeanne Dubois", "M. et Mme Bernard", "DUBOIS Jeanne", "Léo Garnier (garde
d'enfant)"), so the rules below read those forms and fall back to the last word.

Pure: the database layer calls :func:`client_label` on the stored name and only the label
ever reaches the flow or the journal.
"""

from __future__ import annotations

import re

from ivr.effects import ClientLabel

#: Titles as French and English client files write them, lower case, without the final dot.
_TITLES: dict[str, str] = {
    "m": "mr",
    "mr": "mr",
    "monsieur": "mr",
    "mme": "mrs",
    "madame": "mrs",
    "mrs": "mrs",
    "mlle": "miss",
    "mademoiselle": "miss",
    "miss": "miss",
    "ms": "ms",
}
_JOINERS = frozenset({"et", "and", "&"})
_ASIDE = re.compile(r"\([^)]*\)|\[[^\]]*\]")


def client_label(name: str) -> ClientLabel:
    """The title and family-name initial of a client's name as typed in a client file.

    The family name is the word written in capitals when there is one ("DUBOIS Jeanne"),
    else the last word; asides in brackets are ignored. "M. et Mme Bernard" gives the title
    ``mr_and_mrs``.
    """
    words = _ASIDE.sub(" ", name).split()
    titles: list[str] = []
    while words:
        token = words[0].rstrip(".").lower()
        if token in _TITLES:
            titles.append(_TITLES[token])
        elif not (token in _JOINERS and titles):
            break
        words.pop(0)
    title: str | None = None
    if "mr" in titles and ("mrs" in titles or "miss" in titles):
        title = "mr_and_mrs"
    elif titles:
        title = titles[0]
    family = next((w for w in words if _is_capitalised_name(w)), words[-1] if words else "")
    letter = next((c for c in family if c.isalpha()), "")
    return ClientLabel(title, _one_capital(letter))


def _one_capital(letter: str) -> str:
    """The letter in capitals, when that is still one letter ("ß" would give "SS")."""
    upper = letter.upper()
    return upper if len(upper) == 1 else letter


def _is_capitalised_name(word: str) -> bool:
    letters = [c for c in word if c.isalpha()]
    return len(letters) > 1 and all(c.isupper() for c in letters)
