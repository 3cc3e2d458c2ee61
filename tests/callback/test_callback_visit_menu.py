"""The call-back menu: which visits are offered, in which order, and how clients are named."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ivr.callback_prompts import spoken_client, visit_choice_text
from ivr.client_label import client_label
from ivr.effects import ClientLabel, VisitChoice
from ivr.punch_rules import LatestPunch
from ivr.visit_menu import LatestAtClient, PlannedVisit, visit_choices

NOW = dt.datetime(2026, 11, 24, 8, 5, tzinfo=dt.UTC)  # 09:05 in Paris
D = ClientLabel("mrs", "D")
M = ClientLabel("mr", "M")
L = ClientLabel("mrs", "L")


def at(hour: int, minute: int = 0) -> dt.datetime:
    return NOW.replace(hour=hour, minute=minute)


def planned(
    client_id: int, start: dt.datetime, hours: float = 1, label: ClientLabel = D
) -> PlannedVisit:
    return PlannedVisit(client_id, start, start + dt.timedelta(hours=hours), label)


@pytest.mark.parametrize(
    ("name", "label"),
    [
        ("Mme Jeanne Dubois", ClientLabel("mrs", "D")),
        ("M. René Martin", ClientLabel("mr", "M")),
        ("M. et Mme Bernard", ClientLabel("mr_and_mrs", "B")),
        ("Mrs Ada Whitfield", ClientLabel("mrs", "W")),
        ("Mlle Odile Écuyer", ClientLabel("miss", "É")),
        ("DUBOIS Jeanne", ClientLabel(None, "D")),
        ("Madame LEFÈVRE Simone", ClientLabel("mrs", "L")),
        ("Léo Garnier (garde d'enfant)", ClientLabel(None, "G")),
        ("", ClientLabel(None, "")),
    ],
)
def test_client_label_keeps_title_and_family_initial(name: str, label: ClientLabel) -> None:
    """Names as agencies type them give a title and the initial of the family name."""
    assert client_label(name) == label


@given(st.text(alphabet=st.characters(categories=("L", "Zs")), max_size=40))
def test_spoken_client_never_says_more_than_one_letter_of_the_name(name: str) -> None:
    """Whatever the name, what is spoken of it is a title and at most one letter."""
    label = client_label(name)
    assert len(label.initial) <= 1
    for language in ("fr", "en"):
        spoken = spoken_client(label, language)
        title_words = {"Monsieur", "Madame", "Mademoiselle", "et", "Mr", "Mrs", "Ms", "Miss", "and"}
        rest = [w for w in spoken.split() if w not in title_words]
        assert all(len(w.rstrip(".")) <= 1 for w in rest)


def test_menu_lines_in_both_languages() -> None:
    """A line says what the key is for, the time, the client's initial, then the key."""
    choice = VisitChoice(1, "planned", 9, 30, ClientLabel("mrs", "D"))
    assert visit_choice_text("1", choice, "fr") == (
        "Pour la visite de neuf heures trente chez Madame D., tapez 1."
    )
    assert (
        visit_choice_text("3", choice, "en") == "For the nine thirty a.m. visit at Mrs D., press 3."
    )
    opened = VisitChoice(1, "open", 14, 5, ClientLabel(None, ""))
    assert (
        visit_choice_text("2", opened, "en")
        == "To end the visit started at two oh five p.m., press 2."
    )


def test_planned_visits_around_now_in_start_order() -> None:
    """Planned interventions overlapping now ± 2 h are offered by start; the others are not."""
    menu = visit_choices(
        [planned(3, at(10, 0), label=M), planned(1, at(8, 0)), planned(9, at(14, 0), label=L)],
        [],
        NOW,
        "Europe/Paris",
    )
    assert [(c.client_id, c.kind, c.local_hour, c.local_minute) for c in menu] == [
        (1, "planned", 9, 0),
        (3, "planned", 11, 0),
    ]


def test_open_visits_come_first_and_hide_their_planned_line() -> None:
    """An arrival still open is offered first (to close it), once per client."""
    open_at_m = LatestAtClient(3, LatestPunch("arrival", at(7, 40)), M)
    menu = visit_choices(
        [planned(1, at(8, 0)), planned(3, at(7, 30), label=M)], [open_at_m], NOW, "Europe/Paris"
    )
    assert [(c.client_id, c.kind, c.local_hour, c.local_minute) for c in menu] == [
        (3, "open", 8, 40),
        (1, "planned", 9, 0),
    ]


def test_a_closed_visit_is_not_offered_again() -> None:
    """A planned intervention whose visit was closed (latest punch a departure) is left out."""
    done = LatestAtClient(1, LatestPunch("departure", at(7, 55)), D)
    menu = visit_choices([planned(1, at(7, 0)), planned(3, at(9, 0), label=M)], [done], NOW, "UTC")
    assert [c.client_id for c in menu] == [3]


def test_absence_report_or_old_arrival_is_not_an_open_visit() -> None:
    """An arrival reported absent, or older than 14 h, is not offered as a visit to close."""
    absent = LatestAtClient(1, LatestPunch("arrival", at(7, 50), client_absent=True), D)
    stale = LatestAtClient(3, LatestPunch("arrival", NOW - dt.timedelta(hours=15)), M)
    assert visit_choices([], [absent, stale], NOW, "UTC") == ()


def test_menu_is_at_most_nine_lines() -> None:
    """Keys 1 to 9 only: a tenth visit is not offered."""
    many = [planned(i, at(7, 0) + dt.timedelta(minutes=10 * i)) for i in range(1, 13)]
    menu = visit_choices(many, [], NOW, "UTC")
    assert [c.client_id for c in menu] == list(range(1, 10))
