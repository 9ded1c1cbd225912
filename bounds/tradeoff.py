"""Capacity-depth tradeoff: the largest N the generic bound allows at a given d, p, R and k.

With CoT (or k = 1) the bound is R log2 N <= d p, so N_max = floor(2^{d p / R}), computed as an
exact integer root. Without CoT, N_max is the largest N with
log2 realisable_tuples_lower(N, R, k) <= d p; the condition is monotone in N.
"""

from __future__ import annotations

import sympy as sp

from georecall.bounds.generic import _check, log2_realisable_tuples_lower, realisable_tuples_lower
from georecall.bounds.numbers import mp
from georecall.theory.checks import require_int
from georecall.theory.search import bisect_boundary

EXACT_CHECK_MAX_BITS = 200_000  # above this, skip the integer cross-check of the boundary


def max_N(d: int, precision: int, R: int, hops: int = 1, cot: bool = False, chains: str = "exact") -> int:
    """Largest N (>= 1) that the generic lower bound does not rule out at subject dimension d."""
    d = require_int("d", d, minimum=1)
    precision = require_int("precision", precision, minimum=1)
    _check(2, R, hops, chains)
    budget = d * precision
    if hops == 1 or cot:
        return int(sp.integer_nthroot(2**budget, R)[0])

    def allowed(N: int) -> bool:
        if budget <= EXACT_CHECK_MAX_BITS:  # integers: the log-gamma value cannot resolve huge N
            return realisable_tuples_lower(N, R, hops, chains) <= 2**budget
        with mp():
            return log2_realisable_tuples_lower(N, R, hops, chains) <= budget

    low = 2
    if not allowed(low):
        return 1
    high = 4
    while allowed(high):
        low, high = high, high * 2
    _, low = bisect_boundary(lambda N: not allowed(N), low, high)  # the last allowed N
    if budget <= EXACT_CHECK_MAX_BITS:
        # The mpmath comparison decided the boundary; confirm it with integers.
        assert realisable_tuples_lower(low, R, hops, chains) <= 2**budget < realisable_tuples_lower(low + 1, R, hops, chains)
    return low
