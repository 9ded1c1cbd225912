"""The information in an instance: H = R log2(N!) bits, and Robbins' two-sided Stirling bounds.

An instance is R independent uniform permutations of [N]: (N!)^R equally likely outcomes.
Robbins (1955): for n >= 1,
    sqrt(2 pi n) (n/e)^n e^{1/(12n+1)} < n! < sqrt(2 pi n) (n/e)^n e^{1/(12n)}.
"""

from __future__ import annotations

import mpmath
import sympy as sp

from georecall.bounds.numbers import mp
from georecall.theory.checks import require_int

from georecall.bounds.symbols import N as N_, R as R_

INFORMATION_BITS_EXPR = R_ * sp.log(sp.factorial(N_), 2)
STIRLING_LOG2_EXPR = sp.log(sp.sqrt(2 * sp.pi * N_) * (N_ / sp.E) ** N_, 2)
ROBBINS_LOWER_EXPR = STIRLING_LOG2_EXPR + 1 / ((12 * N_ + 1) * sp.log(2))
ROBBINS_UPPER_EXPR = STIRLING_LOG2_EXPR + 1 / (12 * N_ * sp.log(2))


def log2_factorial(N: int) -> mpmath.mpf:
    """log2(N!) by log-gamma at 60 significant digits."""
    N = require_int("N", N, minimum=0)
    with mp():
        return mpmath.loggamma(N + 1) / mpmath.log(2)


def information_bits(N: int, R: int) -> mpmath.mpf:
    """H(N, R) = R log2(N!): bits needed to name one instance (closed form INFORMATION_BITS_EXPR)."""
    N = require_int("N", N, minimum=2)
    R = require_int("R", R, minimum=1)
    with mp():
        return R * log2_factorial(N)


def stirling_log2(N: int) -> mpmath.mpf:
    """log2(sqrt(2 pi N) (N/e)^N)."""
    with mp():
        return (mpmath.log(2 * mpmath.pi * N) / 2 + N * (mpmath.log(N) - 1)) / mpmath.log(2)


def robbins_log2_factorial_bounds(N: int) -> tuple[mpmath.mpf, mpmath.mpf]:
    """(lower, upper) with lower < log2(N!) < upper; upper - lower = 1/((12N)(12N+1) ln 2)."""
    N = require_int("N", N, minimum=1)
    with mp():
        base, ln2 = stirling_log2(N), mpmath.log(2)
        return base + 1 / ((12 * N + 1) * ln2), base + 1 / (12 * N * ln2)
