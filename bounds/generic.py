"""Bounds for generic (fact-independent) shared weights: only subject embeddings see the facts.

With shared weights fixed, subject s's answers are a function of its embedding, which takes at
most 2^{d p} values (d coordinates of p bits). So d p >= log2 |T|, T the set of answer tuples
that one subject can have over all instances (docs/theorems/bounds.md, B3-B5):

- single hop, and full chain-of-thought at any depth (its first step is a single-hop query):
  T = [N]^R, so d p >= R log2 N; if the model is exact on a random instance with probability
  >= success, d p >= R log2 N - log2(1/success).
- k hops without CoT, chains of length exactly k (Lemma B4): with J = 1 + R + ... + R^{k-2} and
  L = R^{k-1}, |T| >= [(N - J)_L]^R, the falling factorial (N - J)(N - J - 1)...(N - J - L + 1)
  raised to the R-th power; non-vacuous exactly when N >= I = 1 + R + ... + R^{k-1}.
- chains of length <= k: |T| >= (N - 1)_{I - 1} [(N - J)_L]^R, non-vacuous when N >= I.
- partial chain-of-thought, h hops per emitted token: the first token answers every chain of
  length <= h, so the count for chains <= min(h, K) applies (Lemma B5').
- |T| is monotone in R (drop relations), so the bound may use any R' <= R; it takes the best of
  the largest non-vacuous R' and the 63 below it.

Every count is a product of powers of falling factorials (``TupleCount``); its log2 is evaluated
in ball arithmetic and its ceiling decided exactly (bounds.numbers.ceil_exact).
"""

from __future__ import annotations

from dataclasses import dataclass

import math

import flint
import mpmath
import sympy as sp

from georecall.bounds.numbers import (arb_to_mpf, ceil_exact, flint_precision, exact_fraction, log2_ball_of_fraction, power_of_two_exponent,
                                      power_of_two_exponent_of_fraction)
from georecall.bounds.symbols import N as N_, R as R_, success as success_, k as k_, p as p_
from georecall.theory.checks import InputError, require_int
from georecall.theory.queries import CHAIN_KINDS

INTERNAL_NODES_EXPR = (R_**k_ - 1) / (R_ - 1)
LEAF_PARENTS_EXPR = (R_ ** (k_ - 1) - 1) / (R_ - 1)  # J: internal nodes of the depth-(k-1) tree
GENERIC_SINGLE_HOP_MIN_D_EXPR = sp.ceiling((R_ * sp.log(N_, 2) - sp.log(1 / success_, 2)) / p_)
# log2 of [(N - J)_{R^{k-1}}]^R, via Gamma functions
GENERIC_KHOP_EXACT_LOG2_EXPR = R_ * (sp.loggamma(N_ - LEAF_PARENTS_EXPR + 1) - sp.loggamma(N_ - LEAF_PARENTS_EXPR - R_ ** (k_ - 1) + 1)) / sp.log(2)

R_SCAN = 64  # relation counts R' tried below the largest non-vacuous one
EXACT_INTEGER_MAX_BITS = 1 << 20  # realisable_tuples_lower forms the integer only up to this size


def internal_nodes(R: int, k: int) -> int:
    """I = 1 + R + ... + R^{k-1}: the root and every node above the leaves of the depth-k tree."""
    return k if R == 1 else (R**k - 1) // (R - 1)


def _check(N, R, k, chains):
    N = require_int("N", N, minimum=2)
    R = require_int("R", R, minimum=1)
    k = require_int("hops", k, minimum=1)
    if chains not in CHAIN_KINDS:
        raise InputError(f"chains must be one of {', '.join(CHAIN_KINDS)}; got {chains!r}")
    return N, R, k


@dataclass(frozen=True)
class TupleCount:
    """A lower bound on |T| as prod (start)_length ^ exponent over ``factors``; ``relations`` is
    the R' it uses. No factors and vacuous=True means the bound is 0 (says nothing)."""

    factors: tuple  # ((start, length, exponent), ...)
    relations: int
    vacuous: bool = False
    uniform: bool = False  # N^R: one subject's answers are uniform on [N]^R in a random instance

    def log2_ball(self, prec: int = 128):
        """log2 of the count as an arb ball (at the current flint precision); -inf is never asked for."""
        total = flint.arb(0)
        for start, length, exponent in self.factors:
            if length:
                total += exponent * (flint.arb(start + 1).lgamma() - flint.arb(start - length + 1).lgamma())
        return total / flint.arb(2).log()

    def log2_if_integer(self) -> int | None:
        """log2 of the count when it is a power of two (then log2 is an integer), else None.

        (start)_length is a power of two only if length = 0, or length = 1 and start is one, or
        start = length = 2 (2 * 1): any two consecutive factors above 2 include an odd one > 1.
        A product of positive integers is a power of two exactly when every factor is."""
        total = 0
        for start, length, exponent in self.factors:
            if length == 0:
                continue
            if length == 1 and power_of_two_exponent(start) is not None:
                total += exponent * power_of_two_exponent(start)
            elif (start, length) == (2, 2):
                total += exponent
            else:
                return None
        return total

    def log2(self) -> mpmath.mpf:
        if self.vacuous:
            return mpmath.mpf("-inf")
        with flint_precision(2 * max(start for start, _, _ in self.factors).bit_length() + 256):
            return arb_to_mpf(self.log2_ball())

    def integer(self) -> int:
        """The count as an exact integer (0 when vacuous); refused above EXACT_INTEGER_MAX_BITS bits."""
        if self.vacuous:
            return 0
        if self.log2() > EXACT_INTEGER_MAX_BITS:
            raise InputError(f"the count has about {float(self.log2()):.4g} bits; exact integers stop at {EXACT_INTEGER_MAX_BITS:,}")
        value = 1
        for start, length, exponent in self.factors:
            value *= falling_factorial(start, length) ** exponent
        return value


def falling_factorial(start: int, length: int) -> int:
    """start (start - 1) ... (start - length + 1); 0 when length > start."""
    return math.perm(start, length) if start >= 0 else 0


def _tree_count(N: int, R: int, k: int, chains: str) -> TupleCount:
    """Lemma B4's count for exactly R relations (vacuous when N < I)."""
    if k == 1:
        return TupleCount(((N, 1, R),), R, uniform=True)
    internal = internal_nodes(R, k)
    if N < internal:
        return TupleCount((), R, vacuous=True)
    J, L = internal_nodes(R, k - 1), R ** (k - 1)
    leaves = (N - J, L, R)
    return TupleCount(((N - 1, internal - 1, 1), leaves) if chains == "up_to" else (leaves,), R)


def _largest_relations(N: int, R: int, k: int) -> int:
    """The largest R' <= R with 1 + R' + ... + R'^{k-1} <= N (0 when even R' = 1 is too many)."""
    if k == 1:
        return R
    if internal_nodes(1, k) > N:
        return 0
    high = min(R, int(sp.integer_nthroot(N, k - 1)[0]))  # R'^{k-1} <= I <= N
    while high > 1 and internal_nodes(high, k) > N:
        high -= 1
    return high


def tuple_count(N: int, R: int, k: int = 1, chains: str = "exact") -> TupleCount:
    """The best Lemma B4 count over R' <= R relations (the k-hop answer tuples of one subject)."""
    N, R, k = _check(N, R, k, chains)
    if k == 1:
        return _tree_count(N, R, 1, chains)
    top = _largest_relations(N, R, k)
    if top == 0:
        return TupleCount((), 1, vacuous=True)
    candidates = [_tree_count(N, r, k, chains) for r in range(max(1, top - R_SCAN + 1), top + 1)]
    with flint_precision(2 * N.bit_length() + 64):  # lgamma(N) has ~ log2 N + log2 log N leading bits that cancel
        return max(candidates, key=lambda c: c.log2_ball().mid())


def first_token_count(N: int, R: int, max_hops: int, hops_per_step: int) -> TupleCount:
    """Chain-of-thought: the first emitted token answers every chain of length <= min(h, K)
    (Lemma B5'); with h = 1 that is the single-hop count N^R."""
    depth = min(hops_per_step, max_hops)
    return tuple_count(N, R, 1) if depth == 1 else tuple_count(N, R, depth, "up_to")


def generic_count(N: int, R: int, hops: int = 1, cot: bool = False, chains: str = "exact", hops_per_step: int = 1) -> TupleCount:
    N, R, hops = _check(N, R, hops, chains)
    if cot:
        hops_per_step = require_int("hops_per_step", hops_per_step, minimum=1)
        return first_token_count(N, R, hops, hops_per_step)
    return tuple_count(N, R, hops, chains)


def realisable_tuples_lower(N: int, R: int, k: int, chains: str = "exact") -> int:
    """An exact integer lower bound on the number of realisable k-hop answer tuples of one subject
    (N^R at k = 1, exact); 0 (vacuous) when N < I for every R' <= R."""
    return tuple_count(N, R, k, chains).integer()


def log2_realisable_tuples_lower(N: int, R: int, k: int, chains: str = "exact") -> mpmath.mpf:
    """log2 of :func:`realisable_tuples_lower` (-inf when that bound is 0)."""
    return tuple_count(N, R, k, chains).log2()


def _success_check(success: float, count: TupleCount) -> None:
    if not 0 < success <= 1:
        raise InputError(f"success must be in (0, 1], got {success}")
    if success != 1 and not count.uniform:
        raise InputError("success < 1 is proved where one subject's answers are uniform on [N]^R (single hop, full chain-of-thought); "
                         "use success = 1 for k-hop chains and partial chain-of-thought")


def generic_min_bits(N: int, R: int, hops: int = 1, cot: bool = False, chains: str = "exact", success: float = 1.0,
                     hops_per_step: int = 1) -> mpmath.mpf:
    """The least d p (bits per subject embedding) that generic shared weights allow; 0 when the
    count is vacuous. ``success`` < 1 (success probability on a random instance): single hop and full CoT."""
    count = generic_count(N, R, hops, cot, chains, hops_per_step)
    _success_check(success, count)
    if count.vacuous:
        return mpmath.mpf(0)
    with mpmath.workdps(60):
        return max(mpmath.mpf(0), count.log2() - mpmath.log(1 / mpmath.mpf(success), 2))


def generic_min_d(N: int, R: int, precision: int, hops: int = 1, cot: bool = False, chains: str = "exact", success: float = 1.0,
                  hops_per_step: int = 1) -> int:
    """ceil(log2(|T| success) / p): no generic model has a subject embedding of fewer p-bit coordinates.

    Exact at every size: d p >= x iff d p >= ceil(x), and ceil(x) is decided in ball arithmetic
    (bounds.numbers.ceil_exact); x = log2(|T| success) is an integer exactly when |T| and success are
    both powers of two, and then it is known in closed form."""
    precision = require_int("precision", precision, minimum=1)
    count = generic_count(N, R, hops, cot, chains, hops_per_step)
    _success_check(success, count)
    if count.vacuous:
        return 0
    fraction = exact_fraction(success)
    log2_delta = power_of_two_exponent_of_fraction(fraction)
    exact = count.log2_if_integer()
    integer = None if exact is None or log2_delta is None else exact + log2_delta
    bits = ceil_exact(lambda prec: count.log2_ball() + log2_ball_of_fraction(fraction), integer)
    return max(0, -(-bits // precision))
