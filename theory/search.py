"""Integer bisection for a monotone predicate: the one search behind every measured threshold."""

from __future__ import annotations

from typing import Callable, Generator

from georecall.theory.checks import InputError

# A search is a generator: it yields the value to try next and is sent whether it passed, so one
# rule serves a caller that tests values one by one (``drive``) and a scheduler that advances many
# searches at once, each test a task on another machine (experiments/executors.py).
Search = Generator[int, bool, tuple]


def bisect_search(failing: int, passing: int) -> Search:
    """(least passing value, greatest failing value) between ``failing`` < ``passing``.

    Needs passes(passing) true and ``failing`` known to fail (or to lie below the range);
    assumes passing is monotone in between, and tries only values strictly inside.
    """
    if failing >= passing:
        raise InputError(f"failing ({failing}) must be below passing ({passing})")
    while passing - failing > 1:
        mid = (failing + passing) // 2
        if (yield mid):
            passing = mid
        else:
            failing = mid
    return passing, failing


def smallest_passing_search(maximum: int) -> Search:
    """(least v in 1..maximum that passes, largest failing v below it), by doubling then bisection.

    Assumes passing is monotone in v; (None, maximum) when even ``maximum`` fails.
    """
    fail, v = 0, 1
    while v <= maximum and not (yield v):
        fail, v = v, 2 * v
    if v > maximum:
        if fail < maximum and (yield maximum):
            v = maximum
        else:
            return None, maximum
    return (yield from bisect_search(fail, v))


def drive(search: Search, passes: Callable[[int], bool]) -> tuple:
    """Run ``search`` to its end, testing each value it asks for with ``passes``."""
    try:
        value = next(search)
        while True:
            value = search.send(bool(passes(value)))
    except StopIteration as stop:
        return stop.value


def bisect_boundary(passes: Callable[[int], bool], failing: int, passing: int) -> tuple[int, int]:
    """``bisect_search`` with the values tested one by one."""
    return drive(bisect_search(failing, passing), passes)
