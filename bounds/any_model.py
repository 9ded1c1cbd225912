"""The any-model bound: P parameters at p bits can hold an instance only if P p >= R log2(N!).

Counting: P parameters of p bits take at most 2^{P p} values, hence the model computes at most
2^{P p} functions. Distinct instances differ on some query, so a model exact on every instance
needs (N!)^R distinct functions; exact on a fraction >= delta of instances, delta (N!)^R.
"""

from __future__ import annotations

import mpmath
import sympy as sp

from georecall.bounds.information import INFORMATION_BITS_EXPR, information_bits
from georecall.bounds.numbers import ceil_div_exact, mp
from georecall.theory.checks import InputError, require_int

from georecall.bounds.symbols import delta as delta_, p as p_
ANY_MODEL_MIN_PARAMS_EXPR = sp.ceiling((INFORMATION_BITS_EXPR - sp.log(1 / delta_, 2)) / p_)


def any_model_min_bits(N: int, R: int, delta: float = 1.0) -> mpmath.mpf:
    """R log2(N!) - log2(1/delta): the least P p of any model exact with probability >= delta."""
    if not 0 < delta <= 1:
        raise InputError(f"delta must be in (0, 1], got {delta}")
    with mp():
        return information_bits(N, R) - mpmath.log(1 / mpmath.mpf(delta), 2)


def any_model_min_params(N: int, R: int, precision: int, delta: float = 1.0) -> int:
    """ceil((R log2(N!) - log2(1/delta)) / p): no model with fewer p-bit parameters suffices."""
    precision = require_int("precision", precision, minimum=1)
    with mp():
        return max(0, ceil_div_exact(any_model_min_bits(N, R, delta), precision))
