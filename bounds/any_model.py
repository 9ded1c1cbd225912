"""The any-model bound: P parameters at p bits can hold every instance only if 2^{P p} is at
least the number of distinct answer functions the instances define (docs/theorems/bounds.md B2).

- Single hop, chains of every length 1..k, and chain-of-thought (its prompts include the
  single-hop ones): distinct instances differ on some query, so (N!)^R functions and
  P p >= R log2(N!); exact on a random instance with probability >= success: R log2(N!) - log2(1/success).
- Chains of length exactly k >= 2 (Lemma B2'): distinct instances may agree on every length-k
  chain (N = 3, R = 1, k = 2: 6 instances, 3 functions), so B2 does not apply. Instances with
  f_0 = id give f_{(r, 0, ..., 0)} = f_r, so (N!)^{R-1} distinct functions; and one subject's
  realisable tuples (Lemma B4) are distinct functions too. P p >= max((R-1) log2(N!), log2 |T_k|).
"""

from __future__ import annotations

import flint
import mpmath
import sympy as sp

from georecall.bounds.information import INFORMATION_BITS_EXPR, information_bits
from georecall.bounds.numbers import ceil_exact, exact_fraction, log2_ball_of_fraction, mp, power_of_two_exponent_of_fraction
from georecall.bounds.symbols import success as success_, p as p_
from georecall.theory.checks import InputError, require_int

ANY_MODEL_MIN_PARAMS_EXPR = sp.ceiling((INFORMATION_BITS_EXPR - sp.log(1 / success_, 2)) / p_)


def _exact_chains(hops: int, chains: str, cot: bool) -> bool:
    return hops >= 2 and chains == "exact" and not cot


def any_model_min_bits(N: int, R: int, success: float = 1.0, hops: int = 1, chains: str = "exact", cot: bool = False) -> mpmath.mpf:
    """The least P p of any model exact on every instance (or with probability >= success, where proved)."""
    if not 0 < success <= 1:
        raise InputError(f"success must be in (0, 1], got {success}")
    with mp():
        if _exact_chains(hops, chains, cot):
            if success != 1:
                raise InputError("success < 1 is not proved for chains of length exactly k >= 2; use success = 1")
            from georecall.bounds.generic import log2_realisable_tuples_lower

            return max((R - 1) * information_bits(N, 1), log2_realisable_tuples_lower(N, R, hops, "exact"), mpmath.mpf(0))
        return information_bits(N, R) - mpmath.log(1 / mpmath.mpf(success), 2)


def any_model_min_params(N: int, R: int, precision: int, success: float = 1.0, hops: int = 1, chains: str = "exact", cot: bool = False) -> int:
    """ceil(any_model_min_bits / p), decided exactly: no model with fewer p-bit parameters suffices.

    R log2(N!) + log2(success) is an integer only when (N!)^R success is a power of two, which needs
    N = 2 (N! has the factor 3 from N = 3 on) and success a power of two."""
    precision = require_int("precision", precision, minimum=1)
    if _exact_chains(hops, chains, cot):
        any_model_min_bits(N, R, success, hops, chains, cot)  # validates
        from georecall.bounds.generic import tuple_count

        count = tuple_count(N, R, hops, "exact")
        # ceil(max(A, B)) = max(ceil A, ceil B); log2 N! is an integer only for N = 2 or R = 1
        functions = ceil_exact(lambda prec: (R - 1) * flint.arb(N + 1).lgamma() / flint.arb(2).log(),
                               (R - 1) if N == 2 or R == 1 else None) if R > 1 else 0
        tuples = 0 if count.vacuous else ceil_exact(lambda prec: count.log2_ball(), count.log2_if_integer())
        return max(0, -(-max(functions, tuples) // precision))
    any_model_min_bits(N, R, success)  # validates
    fraction = exact_fraction(success)
    log2_delta = power_of_two_exponent_of_fraction(fraction)
    integer = R + log2_delta if N == 2 and log2_delta is not None else None

    def ball(prec):
        return R * flint.arb(N + 1).lgamma() / flint.arb(2).log() + log2_ball_of_fraction(fraction)

    return max(0, -(-ceil_exact(ball, integer) // precision))

