"""The least float margin of a query set whose members carry proven margin bounds (the certificate's):
brute force only those whose bound could still be below the least margin found (docs/theorems/certificate.md)."""

from __future__ import annotations

import numpy as np

MARGIN_TOLERANCE = 1e-6  # relative: the reported minimum margin is the float64 one to within 1e-6 max(1, |margin|)


def search_min_margin(lower: np.ndarray, certified: np.ndarray, best: float, margins_of, chunk: int, checked: np.ndarray,
                      budget: int | None = None, lowest: int | None = None) -> float:
    """The least float margin: certified items (a mask; ``lower`` their proven bounds) whose bound could
    still be below the best margin found are brute forced (``margins_of(sorted items)`` records and
    returns their margins), lowest bound first, ``chunk`` at a time, to within MARGIN_TOLERANCE; at
    most ``budget`` items when given (``checked`` then says which were). ``lowest``: the first certified
    item of least bound, when the caller kept track of it (else it is found here)."""
    done = 0
    if not np.isfinite(best) and certified.any():  # the lowest bound first, alone: usually it settles the search at once
        first = np.array([_lowest_certified(lower, certified) if lowest is None else lowest])
        checked[first] = True
        done, best = 1, min(best, float(margins_of(first).min()))
    while budget is None or done < budget:
        tolerance = MARGIN_TOLERANCE * max(1.0, abs(best)) if np.isfinite(best) else 0.0
        open_ = in_blocks(len(lower), lambda b, e: certified[b:e] & (lower[b:e] < best - tolerance) & ~checked[b:e])
        if not len(open_):
            return best
        if len(open_) > chunk:
            open_ = open_[np.argpartition(lower[open_], chunk - 1)[:chunk]]
        indices = np.sort(open_)
        checked[indices] = True
        done += len(indices)
        best = min(best, float(margins_of(indices).min()))
    return best


SEARCH_BLOCK = 1 << 22  # items masked at a time: whole-length temporaries would cost 1 GB at 134 million queries


def in_blocks(n: int, mask) -> np.ndarray:
    """np.flatnonzero of the boolean ``mask(begin, end)`` over [0, n), a block at a time."""
    found = [begin + np.flatnonzero(mask(begin, min(begin + SEARCH_BLOCK, n))) for begin in range(0, n, SEARCH_BLOCK)]
    return np.concatenate(found) if found else np.zeros(0, dtype=np.int64)


def _lowest_certified(lower: np.ndarray, certified: np.ndarray) -> int:
    """The first item of least bound among the certified ones (some must be), a block at a time."""
    best, where = np.inf, -1
    for begin in range(0, len(lower), SEARCH_BLOCK):
        part = np.where(certified[begin : begin + SEARCH_BLOCK], lower[begin : begin + SEARCH_BLOCK], np.inf)
        low = int(np.argmin(part))
        if where < 0 or part[low] < best:
            best, where = part[low], begin + low
    return where
