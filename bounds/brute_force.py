"""Brute-force counts for tiny sizes, to check the counting claims of bounds.generic.

Enumerates every R-tuple of permutations of [N] ((N!)^R instances) and collects the distinct
answer tuples of one subject over all chains.
"""

from __future__ import annotations

import itertools
import math

import numpy as np

from georecall.theory.checks import InputError
from georecall.theory.queries import chain_tuples

MAX_INSTANCES = 2_000_000


def count_realisable_tuples(N: int, R: int, k: int, chains: str = "exact", subject: int = 0) -> int:
    """|{(f_c(subject))_c : f_0..f_{R-1} permutations of [N]}| by enumeration."""
    if math.factorial(N) ** R > MAX_INSTANCES:
        raise InputError(f"(N!)^R = {math.factorial(N) ** R} instances exceed the enumeration limit {MAX_INSTANCES}")
    perms = np.array(list(itertools.permutations(range(N))), dtype=np.int64)  # [N!, N]
    seen = set()
    for choice in itertools.product(range(len(perms)), repeat=R):
        facts = perms[list(choice)]
        answers = []
        for chain in chain_tuples(R, k, chains):
            value = subject
            for r in chain:
                value = facts[r, value]
            answers.append(int(value))
        seen.add(tuple(answers))
    return len(seen)


def count_realisable_tuples_by_extension(N: int, R: int, k: int, chains: str = "exact", subject: int = 0) -> int:
    """The same count as :func:`count_realisable_tuples`, by enumerating partial injections.

    Walk the chain tree breadth first; a node reached from value v by relation r either has
    f_r(v) already fixed, or takes any value not yet in f_r's image. Every partial injection
    extends to a permutation, so the leaves reached are exactly the realisable tuples. Cost
    grows with N^(tree size) instead of (N!)^R; tests check both counts agree on tiny sizes.
    """
    order = [c for length in range(1, k + 1) for c in itertools.product(range(R), repeat=length)]
    answered = set(chain_tuples(R, k, chains))
    maps = [dict() for _ in range(R)]
    images = [set() for _ in range(R)]
    values = {(): subject}
    seen = set()

    def visit(position: int) -> None:
        if position == len(order):
            seen.add(tuple(values[c] for c in order if c in answered))
            return
        node = order[position]
        parent, relation = values[node[:-1]], node[-1]
        forced = maps[relation].get(parent)
        if forced is not None:
            values[node] = forced
            visit(position + 1)
            return
        for value in range(N):
            if value in images[relation]:
                continue
            maps[relation][parent] = value
            images[relation].add(value)
            values[node] = value
            visit(position + 1)
            del maps[relation][parent]
            images[relation].discard(value)

    visit(0)
    return len(seen)
