"""The exact assignment: checked against brute force on small random graphs."""

from __future__ import annotations

from itertools import combinations

from hypothesis import given, settings
from hypothesis import strategies as st

from reconciliation.assignment import Candidate, best_matching


def brute_force(cands: list[Candidate]) -> list[Candidate]:
    """Every set of pairs sharing no side, scored as the module docstring says."""
    edges = len(cands)
    best: tuple[int, int, int, int] | None = None
    best_set: tuple[int, ...] = ()
    for size in range(edges + 1):
        for chosen in combinations(range(edges), size):
            lefts = [cands[i].left for i in chosen]
            rights = [cands[i].right for i in chosen]
            if len(set(lefts)) < size or len(set(rights)) < size:
                continue
            score = (
                sum(cands[i].gain for i in chosen),
                size,
                -sum(cands[i].penalty for i in chosen),
                sum(1 << (edges - 1 - i) for i in chosen),
            )
            if best is None or score > best:
                best, best_set = score, chosen
    return [cands[i] for i in best_set]


candidate_lists = st.lists(
    st.builds(
        Candidate,
        left=st.integers(0, 3),
        right=st.integers(0, 3),
        gain=st.sampled_from([0, 0, 10, 20, 30]),
        penalty=st.integers(0, 3),
    ),
    max_size=9,
    unique_by=lambda c: (c.left, c.right),
)


@settings(max_examples=150, deadline=None)
@given(candidate_lists)
def test_best_matching_equals_brute_force(cands: list[Candidate]) -> None:
    """The Hungarian result is the unique lexicographic optimum found by enumeration."""
    assert best_matching(cands) == brute_force(cands)


def test_greedy_trap_is_avoided() -> None:
    """Left 0 prefers right 1 (gain 45) but 40 + 30 from 0-0 and 1-1 is better than 45 + 0."""
    cands = [
        Candidate(0, 0, 40, 0),
        Candidate(0, 1, 45, 0),
        Candidate(1, 0, 0, 0),
        Candidate(1, 1, 30, 0),
    ]
    assert best_matching(cands) == [cands[0], cands[3]]


def test_more_pairs_beat_fewer_at_equal_gain() -> None:
    """With no overlap anywhere, two window-only pairs beat one."""
    cands = [Candidate(0, 0, 0, 5), Candidate(0, 1, 0, 0), Candidate(1, 1, 0, 9)]
    assert best_matching(cands) == [cands[0], cands[2]]


larger_candidate_lists = st.lists(
    st.builds(
        Candidate,
        left=st.integers(0, 4),
        right=st.integers(0, 4),
        gain=st.sampled_from([0, 0, 10, 20, 30]),
        penalty=st.integers(0, 3),
    ),
    min_size=9,
    max_size=12,
    unique_by=lambda c: (c.left, c.right),
)


@settings(max_examples=60, deadline=None)
@given(larger_candidate_lists)
def test_best_matching_past_the_small_search_equals_brute_force(cands: list[Candidate]) -> None:
    """Graphs too large for the small search go through Hungarian and still give the optimum."""
    assert best_matching(cands) == brute_force(cands)


def test_plain_best_pairs_are_taken_without_search() -> None:
    """Each visit's strictly best, distinct pair wins even when the window allows every pair."""
    cands = [
        Candidate(0, 0, 50, 9),
        Candidate(0, 1, 10, 0),
        Candidate(1, 0, 0, 0),
        Candidate(1, 1, 40, 9),
    ]
    assert best_matching(cands) == [cands[0], cands[3]] == brute_force(cands)
