"""Bounds for generic (fact-independent) shared weights: only subject embeddings see the facts.

With shared weights fixed, subject s's answers are a function of its embedding, which takes at
most 2^{d p} values (d coordinates of p bits). So d p >= log2 |T|, T the set of answer tuples
that one subject can have over all instances:

- single hop, and chain-of-thought at any depth (its first step is a single-hop query):
  T = [N]^R, so d p >= R log2 N; if the model is exact on a random instance with probability
  >= delta, d p >= R log2 N - log2(1/delta).
- k hops without CoT, chains of length exactly k: |T| >= (N - I)(N - I - 1)...(N - I - R^k + 1)
  with I = 1 + R + ... + R^{k-1} internal nodes of the depth-k R-ary tree (root included).
- chains of length <= k: |T| >= (N - 1)(N - 2)...(N - M) with M = R + R^2 + ... + R^k.
- |T| is monotone in R, so the bound takes the best falling factorial over R' <= R relations.
"""

from __future__ import annotations

import mpmath
import sympy as sp

from georecall.bounds.numbers import ceil_div_exact, log2_falling_factorial, mp
from georecall.theory.checks import InputError, require_int
from georecall.theory.queries import CHAIN_KINDS


from georecall.bounds.symbols import N as N_, R as R_, delta as delta_, k as k_, p as p_
INTERNAL_NODES_EXPR = (R_**k_ - 1) / (R_ - 1)
GENERIC_SINGLE_HOP_MIN_D_EXPR = sp.ceiling((R_ * sp.log(N_, 2) - sp.log(1 / delta_, 2)) / p_)
# log2 of the falling factorial (N - I)^(R^k), via Gamma functions
GENERIC_KHOP_EXACT_LOG2_EXPR = (sp.loggamma(N_ - INTERNAL_NODES_EXPR + 1) - sp.loggamma(N_ - INTERNAL_NODES_EXPR - R_**k_ + 1)) / sp.log(2)


def internal_nodes(R: int, k: int) -> int:
    """I = 1 + R + ... + R^{k-1}: the root and every node above the leaves of the depth-k tree."""
    return sum(R**j for j in range(k))


def answered_nodes(R: int, k: int, chains: str) -> int:
    """How many answers a subject has: R^k chains of length k, or R + ... + R^k of length <= k."""
    return R**k if chains == "exact" else sum(R**j for j in range(1, k + 1))


def _check(N, R, k, chains):
    N = require_int("N", N, minimum=2)
    R = require_int("R", R, minimum=1)
    k = require_int("hops", k, minimum=1)
    if chains not in CHAIN_KINDS:
        raise InputError(f"chains must be one of {', '.join(CHAIN_KINDS)}; got {chains!r}")
    return N, R, k


def realisable_tuples_lower(N: int, R: int, k: int, chains: str = "exact") -> int:
    """An exact integer lower bound on the number of realisable k-hop answer tuples of one subject.

    k = 1 is exact: N^R. For k >= 2 it is the largest of Lemma B4's falling factorials over the
    first R' <= R relations (dropping relations maps realisable tuples onto realisable tuples, so
    the count is monotone in R); 0 (vacuous) when N is too small for every R'.
    """
    N, R, k = _check(N, R, k, chains)
    if k == 1:
        return N**R
    return max(_falling_factorial(*_tree_factorial_args(N, fewer, k, chains)) for fewer in range(1, R + 1))


def _tree_factorial_args(N: int, R: int, k: int, chains: str) -> tuple[int, int]:
    """(start, length) of Lemma B4's falling factorial for exactly R relations."""
    return (N - internal_nodes(R, k), R**k) if chains == "exact" else (N - 1, answered_nodes(R, k, chains))


def _falling_factorial(start: int, length: int) -> int:
    if length > start:
        return 0
    product = 1
    for value in range(start - length + 1, start + 1):
        product *= value
    return product


def log2_realisable_tuples_lower(N: int, R: int, k: int, chains: str = "exact") -> mpmath.mpf:
    """log2 of :func:`realisable_tuples_lower`, by log-gamma (-inf when that bound is 0)."""
    N, R, k = _check(N, R, k, chains)
    with mp():
        if k == 1:
            return R * mpmath.log(N, 2)
        return max(log2_falling_factorial(*_tree_factorial_args(N, fewer, k, chains)) for fewer in range(1, R + 1))


def generic_min_bits(N: int, R: int, hops: int = 1, cot: bool = False, chains: str = "exact", delta: float = 1.0) -> mpmath.mpf:
    """The least d p (bits per subject embedding) that generic shared weights allow.

    ``delta`` < 1 (success probability on a random instance) applies to single hop and CoT only.
    """
    N, R, hops = _check(N, R, hops, chains)
    if not 0 < delta <= 1:
        raise InputError(f"delta must be in (0, 1], got {delta}")
    with mp():
        if hops == 1 or cot:
            return R * mpmath.log(N, 2) - mpmath.log(1 / mpmath.mpf(delta), 2)
        if delta != 1:
            raise InputError("delta < 1 is proved for single hop and chain-of-thought only; use delta = 1 for k-hop without CoT")
        return max(mpmath.mpf(0), log2_realisable_tuples_lower(N, R, hops, chains))


EXACT_INTEGER_MAX_BITS = 1 << 17  # below this size the answer-tuple count is formed as an integer


def generic_min_d(N: int, R: int, precision: int, hops: int = 1, cot: bool = False, chains: str = "exact", delta: float = 1.0) -> int:
    """ceil(generic_min_bits / p): no generic model has a subject embedding of fewer p-bit coordinates.

    With delta = 1 the count of answer tuples is an integer T, and d p >= log2 T iff
    d p >= ceil_log2(T) = (T - 1).bit_length(): exact integer arithmetic wherever T has at most
    EXACT_INTEGER_MAX_BITS bits. (The log-gamma value alone cannot tell log2(2^256 + 1) from 256.)
    """
    precision = require_int("precision", precision, minimum=1)
    bits = generic_min_bits(N, R, hops, cot, chains, delta)
    if delta == 1 and bits <= EXACT_INTEGER_MAX_BITS:
        count = N**R if hops == 1 or cot else realisable_tuples_lower(N, R, hops, chains)
        ceil_log2 = (count - 1).bit_length() if count > 0 else 0
        return -(-ceil_log2 // precision)
    return max(0, ceil_div_exact(bits, precision))
