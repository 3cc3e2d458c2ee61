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
Because the optimum is unique, cheaper ways to the same answer come first, each exact: when no
two candidates share a side, all of them; when every left has one best pair no other left
wants, those pairs (see :func:`_dominant`); up to :data:`SMALL` candidates, a search of every
set of pairs. These are the usual groups of a day (a client's two visits and two interventions).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

#: Up to this many candidates, the optimum is found by searching every set of pairs sharing no
#: side (a handful for the usual two visits and two interventions of a client's day), which
#: costs less than setting up the Hungarian algorithm.
SMALL = 8


@dataclass(frozen=True, slots=True)
class Candidate:
    """A pair the rules allow. ``gain`` is maximised, ``penalty`` minimised (both >= 0)."""

    left: int
    right: int
    gain: int
    penalty: int


def best_matching(candidates: Sequence[Candidate]) -> list[Candidate]:
    """The optimal set of pairs; ``candidates`` are listed from most to least preferred."""
    count = len(candidates)
    if count <= 1:
        return list(candidates)
    lefts = {c.left for c in candidates}
    rights = {c.right for c in candidates}
    if len(lefts) == count and len(rights) == count:
        # No two candidates share a side: every candidate is a component of its own.
        return list(candidates)
    dominant = _dominant(candidates)
    if dominant is not None:
        return [candidates[i] for i in dominant]
    if count <= SMALL:
        return [candidates[i] for i in _search(candidates)]
    # Union-find over the sides, a left ``x`` as node 2x and a right ``y`` as node 2y + 1.
    parent: dict[int, int] = {}

    def find(node: int) -> int:
        root = node
        while parent.setdefault(root, root) != root:
            root = parent[root]
        while parent[node] != root:
            parent[node], node = root, parent[node]
        return root

    for cand in candidates:
        a, b = find(2 * cand.left), find(2 * cand.right + 1)
        if a != b:
            parent[a] = b
    components: dict[int, list[int]] = defaultdict(list)
    for index, cand in enumerate(candidates):
        components[find(2 * cand.left)].append(index)
    chosen: list[int] = []
    for indexes in components.values():
        if len(indexes) == 1:
            chosen.append(indexes[0])
        else:
            chosen.extend(_solve_component([candidates[i] for i in indexes], indexes))
    return [candidates[i] for i in sorted(chosen)]


def _dominant(cands: Sequence[Candidate]) -> list[int] | None:
    """The optimum when it is plain: every left's best pair has a positive gain strictly above
    its other pairs, and no two of those best pairs share a right.

    Then every other set of pairs has a smaller total gain (some left has less or nothing), so
    this set wins on the first level already. Otherwise None.
    """
    best: dict[int, tuple[int, int, bool]] = {}
    for index, cand in enumerate(cands):
        known = best.get(cand.left)
        if known is None or cand.gain > known[0]:
            best[cand.left] = (cand.gain, index, True)
        elif cand.gain == known[0]:
            best[cand.left] = (known[0], known[1], False)
    rights = set()
    for gain, index, alone in best.values():
        if gain <= 0 or not alone:
            return None
        rights.add(cands[index].right)
    if len(rights) < len(best):
        return None
    return sorted(index for _, index, _ in best.values())


def _search(cands: Sequence[Candidate]) -> tuple[int, ...]:
    """Indexes of the best set of pairs, scored level by level as the module docstring says
    (the k-th preferred pair weighs 2^(E-1-k) on the last level), by depth-first search."""
    edges = len(cands)
    best: list[tuple[tuple[int, int, int, int], tuple[int, ...]]] = []

    def search(
        k: int, lefts: frozenset[int], rights: frozenset[int], score: tuple[int, int, int, int],
        chosen: tuple[int, ...],
    ) -> None:  # fmt: skip
        if k == edges:
            if not best or score > best[0][0]:
                best[:] = [(score, chosen)]
            return
        cand = cands[k]
        if cand.left not in lefts and cand.right not in rights:
            gain, size, penalty, bits = score
            search(
                k + 1, lefts | {cand.left}, rights | {cand.right},
                (gain + cand.gain, size + 1, penalty - cand.penalty, bits + (1 << (edges - 1 - k))),
                (*chosen, k),
            )  # fmt: skip
        search(k + 1, lefts, rights, score, chosen)

    search(0, frozenset(), frozenset(), (0, 0, 0, 0), ())
    return best[0][1]


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
