"""Capacity-depth tradeoff (docs/theorems/bounds.md B6): the largest N the generic bound allows.

With full CoT (or k = 1) the bound is R log2 N <= d p, so N_max = floor(2^{d p / R}), an exact
integer root. Otherwise N_max is the largest N with log2 |T(N)| <= d p, |T| the count of
bounds.generic (non-decreasing in N), decided exactly in ball arithmetic. Theorem B6: when
N_max >= I = 1 + R + ... + R^{k-1} (the count then uses all R relations),
2^{dp/M} - 1 < N_max <= 2^{dp/M} + I - 1 with M = R^k answered chains (R + ... + R^k for chains
of every length), which the search uses as its window.
"""

from __future__ import annotations

import sympy as sp

from georecall.bounds.generic import _check, generic_count, internal_nodes
from georecall.bounds.numbers import sign_exact
from georecall.theory.checks import InputError, require_int
from georecall.theory.search import bisect_boundary

MAX_BUDGET_BITS = 1 << 20  # d p above this: N_max would have over a million bits
MAX_SEARCH_BITS = 1 << 14  # k hops: the search costs up to one exact count per bit of N_max


def check_budget(d: int, precision: int, R: int, needs_search: bool) -> int:
    """d p, refused (before any work) where N_max is out of reach; the message gives the estimate."""
    budget = d * precision
    limit = MAX_SEARCH_BITS if needs_search else MAX_BUDGET_BITS
    if budget > limit:
        raise InputError(f"d * precision = {budget:,} bits is beyond {limit:,}: N_max would have about "
                         f"{budget / R:.3g} bits (k = 1)" + (" and the k-hop search one exact count per bit" if needs_search else ""))
    return budget


def count_exceeds(N: int, budget: int, R: int, hops: int, cot: bool, chains: str, hops_per_step: int) -> bool:
    """log2 |T(N)| > budget, decided exactly (False when the count is vacuous)."""
    count = generic_count(N, R, hops, cot, chains, hops_per_step)
    if count.vacuous:
        return False
    exact = count.log2_if_integer()
    return sign_exact(lambda prec: count.log2_ball() - budget, exact == budget) > 0


def max_N(d: int, precision: int, R: int, hops: int = 1, cot: bool = False, chains: str = "exact", hops_per_step: int = 1) -> int:
    """Largest N (>= 1) that the generic lower bound does not rule out at subject dimension d."""
    d = require_int("d", d, minimum=1)
    precision = require_int("precision", precision, minimum=1)
    _check(2, R, hops, chains)
    single = hops == 1 or cot and min(hops_per_step, hops) == 1
    budget = check_budget(d, precision, R, needs_search=not single)
    if single:
        return max(1, int(sp.integer_nthroot(2**budget, R)[0]) if R <= budget else 1)
    depth, kind = (min(hops_per_step, hops), "up_to") if cot else (hops, chains)

    def too_many(N: int) -> bool:
        return count_exceeds(N, budget, R, depth, False, kind, 1)

    if too_many(2):
        return 1
    full = internal_nodes(R, depth)  # from N = I on, the count uses all R relations
    if not too_many(full):
        # M answered chains: R^k of length k, or R + ... + R^k of length <= k; M log2(N - I + 1) <= log2|T| <= M log2 N
        answers = R**depth if kind == "exact" else internal_nodes(R, depth + 1) - 1
        root = int(sp.integer_nthroot(2**budget, answers)[0]) if answers <= budget else 1  # floor(2^{dp/M})
        low, high = max(2, full, root - 1), root + full  # Theorem B6's window, widened by one
        if too_many(low):
            raise ArithmeticError(f"Theorem B6's window [{low}, {high}] does not hold N_max")
        return _last_allowed(too_many, low, high)
    # N_max < I: R' = 1 alone needs log2(N - k + 1) bits, so N_max < 2^{dp} + k
    return _last_allowed(too_many, 2, min(full, 2**budget + depth))


def _last_allowed(too_many, low: int, high: int) -> int:
    """N with too_many(N) false and too_many(N + 1) true, N in [low, high], given too_many(low) false.

    Sound for the cap: too_many(N + 1) says the count at N + 1 exceeds dp, and the bound it is a
    lower estimate of is non-decreasing in N, so every larger N is ruled out too."""
    if not too_many(high):
        raise ArithmeticError(f"the search range [{low}, {high}] does not hold N_max")
    _, last = bisect_boundary(too_many, low, high)
    return last
