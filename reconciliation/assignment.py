"""Exact best one-to-one assignment between visits and planned interventions.

The per-day problem is a maximum-weight bipartite matching: visits on one side, planned
interventions on the other, an edge where the match rule allows the pair. The objective is
lexicographic: first the total overlap, then the number of pairs (a match with no overlap, made
by the time window, is still better than none), then the smallest total distance between starts,
then a fixed preference order of the candidate pairs (earlier visit, earlier intervention).

The four levels are folded into one integer weight per edge, each level scaled above the
largest possible total of the levels below it; the last level gives the k-th preferred edge the
weight 2^(E-1-k), so that two different sets of edges never weigh the same. The optimum is
therefore unique: the answer does not depend on input order or on the algorithm's internals.

The graph is first cut into connected components (almost always one visit and one intervention,
solved without any arithmetic); a larger component is solved by the Hungarian algorithm
(Kuhn-Munkres with potentials, O(n²·m)) on Python integers, which are exact at any size.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Candidate:
    """A pair the rules allow. ``gain`` is maximised, ``penalty`` minimised (both >= 0)."""

    left: int
    right: int
    gain: int
    penalty: int


def best_matching(candidates: Sequence[Candidate]) -> list[Candidate]:
    """The optimal set of pairs; ``candidates`` are listed from most to least preferred."""
    if len(candidates) <= 1:
        return list(candidates)
    parent: dict[tuple[str, int], tuple[str, int]] = {}

    def find(node: tuple[str, int]) -> tuple[str, int]:
        root = node
        while parent.setdefault(root, root) != root:
            root = parent[root]
        while parent[node] != root:
            parent[node], node = root, parent[node]
        return root

    for cand in candidates:
        a, b = find(("l", cand.left)), find(("r", cand.right))
        if a != b:
            parent[a] = b
    components: dict[tuple[str, int], list[int]] = defaultdict(list)
    for index, cand in enumerate(candidates):
        components[find(("l", cand.left))].append(index)
    chosen: list[int] = []
    for indexes in components.values():
        if len(indexes) == 1:
            chosen.append(indexes[0])
        else:
            chosen.extend(_solve_component([candidates[i] for i in indexes], indexes))
    return [candidates[i] for i in sorted(chosen)]


def _solve_component(cands: list[Candidate], indexes: list[int]) -> list[int]:
    lefts = sorted({c.left for c in cands})
    rights = sorted({c.right for c in cands})
    pairs = min(len(lefts), len(rights))
    level2 = pairs * (max(c.penalty for c in cands) + 1) + 1
    level1 = pairs * level2 + 1
    level0 = 1 << len(cands)
    weight: dict[tuple[int, int], tuple[int, int]] = {}
    for rank, (cand, index) in enumerate(zip(cands, indexes, strict=True)):
        value = (cand.gain * level1 + level2 - cand.penalty) * level0 + (
            1 << (len(cands) - 1 - rank)
        )
        weight[(cand.left, cand.right)] = (value, index)
    transpose = len(lefts) > len(rights)
    rows, cols = (rights, lefts) if transpose else (lefts, rights)
    matrix = [[weight.get((c, r) if transpose else (r, c), (0, -1))[0] for c in cols] for r in rows]
    assignment = _hungarian_max(matrix)
    result = []
    for row, col in enumerate(assignment):
        key = (cols[col], rows[row]) if transpose else (rows[row], cols[col])
        if key in weight:
            result.append(weight[key][1])
    return result


def _hungarian_max(weights: list[list[int]]) -> list[int]:
    """Column for each row maximising the total weight; needs rows <= columns."""
    n, m = len(weights), len(weights[0])
    cost = [[-w for w in row] for row in weights]
    inf = math.inf
    u: list[int] = [0] * (n + 1)
    v: list[int] = [0] * (m + 1)
    owner = [0] * (m + 1)
    way = [0] * (m + 1)
    for i in range(1, n + 1):
        owner[0] = i
        j0 = 0
        minv: list[float | int] = [inf] * (m + 1)
        used = [False] * (m + 1)
        while True:
            used[j0] = True
            i0 = owner[j0]
            delta: float | int = inf
            j1 = 0
            row = cost[i0 - 1]
            for j in range(1, m + 1):
                if not used[j]:
                    cur = row[j - 1] - u[i0] - v[j]
                    if cur < minv[j]:
                        minv[j] = cur
                        way[j] = j0
                    if minv[j] < delta:
                        delta = minv[j]
                        j1 = j
            for j in range(m + 1):
                if used[j]:
                    u[owner[j]] += delta
                    v[j] -= delta
                else:
                    minv[j] -= delta
            j0 = j1
            if owner[j0] == 0:
                break
        while True:
            j1 = way[j0]
            owner[j0] = owner[j1]
            j0 = j1
            if j0 == 0:
                break
    result = [0] * n
    for j in range(1, m + 1):
        if owner[j]:
            result[owner[j] - 1] = j - 1
    return result
