"""High-precision arithmetic shared by every bound: log2 via mpmath log-gamma, exact ceilings."""

from __future__ import annotations

import mpmath
from georecall.theory.checks import InputError

WORKING_DIGITS = 60


def mp():
    """A context manager fixing mpmath's precision for a computation (callers use ``with mp():``)."""
    return mpmath.workdps(WORKING_DIGITS)


def log2_falling_factorial(n: int, m: int) -> mpmath.mpf:
    """log2(n (n-1) ... (n-m+1)) = (lnGamma(n+1) - lnGamma(n-m+1)) / ln 2; -inf when m > n."""
    if m < 0:
        raise InputError(f"m must be >= 0, got {m}")
    if m > n:
        return mpmath.mpf("-inf")
    # lnGamma(n+1) ~ n ln n: the difference cancels about log10(n ln n) leading digits, so add them.
    with mpmath.workdps(WORKING_DIGITS + 2 * len(str(n))):
        value = (mpmath.loggamma(n + 1) - mpmath.loggamma(n - m + 1)) / mpmath.log(2)
    with mp():
        return +value  # rounded to the working precision


def ceil_div_exact(value: mpmath.mpf, divisor: int) -> int:
    """ceil(value / divisor) for a high-precision value, guarding against a last-digit error.

    A value within 1e-40 of an integer multiple is treated as that multiple (a log2 of an
    integer power of 2 is computed to ~60 digits, never exactly).
    """
    with mp():
        q = mpmath.mpf(value) / divisor
        nearest = mpmath.nint(q)
        if abs(q - nearest) < mpmath.mpf("1e-40"):
            return int(nearest)
        return int(mpmath.ceil(q))
