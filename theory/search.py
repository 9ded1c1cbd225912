"""Integer bisection for a monotone predicate: the one search behind every measured threshold."""

from __future__ import annotations

from typing import Callable
from georecall.theory.checks import InputError


def bisect_boundary(passes: Callable[[int], bool], failing: int, passing: int) -> tuple[int, int]:
    """(least passing value, greatest failing value) between ``failing`` < ``passing``.

    Needs passes(passing) true and ``failing`` known to fail (or to lie below the range);
    assumes passing is monotone in between, and evaluates only values strictly inside.
    """
    if failing >= passing:
        raise InputError(f"failing ({failing}) must be below passing ({passing})")
    while passing - failing > 1:
        mid = (failing + passing) // 2
        if passes(mid):
            passing = mid
        else:
            failing = mid
    return passing, failing
