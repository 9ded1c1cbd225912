"""Arithmetic shared by every bound: 60-digit mpmath for printed values, and exact ceilings and signs
decided in ball arithmetic (python-flint arb), never by a rounding tolerance."""

from __future__ import annotations

import mpmath

WORKING_DIGITS = 60


def mp():
    """A context manager fixing mpmath's precision for a computation (callers use ``with mp():``)."""
    return mpmath.workdps(WORKING_DIGITS)


# ----- exact ceilings: ball arithmetic (python-flint's arb), no snapping -----

MAX_PRECISION_BITS = 1 << 20


class flint_precision:
    """``with flint_precision(bits):`` sets python-flint's working precision and restores it."""

    def __init__(self, bits: int):
        self.bits = bits

    def __enter__(self):
        import flint

        self.old, flint.ctx.prec = flint.ctx.prec, self.bits

    def __exit__(self, *exc):
        import flint

        flint.ctx.prec = self.old


def refine(ball_at, decide, what: str):
    """``decide(ball)`` at 128, 512, 2048, ... bits until it returns an answer (not None); a real x
    given as ``ball_at(prec)`` shrinks to a point as the precision grows, so a decision that holds
    for x itself is reached unless x sits exactly on the boundary, which callers rule out first."""
    prec = 128
    while prec <= MAX_PRECISION_BITS:
        with flint_precision(prec):
            answer = decide(ball_at(prec))
        if answer is not None:
            return answer
        prec *= 4
    raise ArithmeticError(f"could not {what} at {MAX_PRECISION_BITS} bits")


def ceil_exact(ball_at, integer: int | None = None) -> int:
    """ceil(x) for a real x given as ``ball_at(prec)``, an arb ball containing x at ``prec`` bits.

    ``integer`` is x's value when x is known to be an integer, else None: then x is not an integer
    (the caller proves it), and raising the precision shrinks the ball until every point in it has
    the same ceiling. Exact at any size, unlike a rounding tolerance (log2 N^R at N = 2^1310 + 1 is
    within 2^-1303 of an integer).
    """

    def decide(x):
        if integer is not None and x.contains(integer):
            return int(integer)
        ceiling = x.ceil().unique_fmpz()  # not None once every point of the ball has one ceiling
        return None if ceiling is None else int(ceiling)

    return refine(ball_at, decide, "separate the value from an integer")


def sign_exact(ball_at, zero: bool) -> int:
    """-1, 0 or 1: the sign of x given as ``ball_at(prec)``; ``zero`` says whether x is exactly 0."""
    if zero:
        return 0
    return refine(ball_at, lambda x: 1 if x > 0 else (-1 if x < 0 else None), "decide the sign")


def power_of_two_exponent(value: int) -> int | None:
    """e when value = 2^e (value a positive integer), else None."""
    return value.bit_length() - 1 if value > 0 and value & (value - 1) == 0 else None


def arb_to_mpf(x) -> mpmath.mpf:
    """The ball's midpoint as an mpmath number (for printing and float conversion only)."""
    with mp():
        return mpmath.mpf(x.mid().str(70, radius=False))


def exact_fraction(value):
    """A probability given as a float, int, Fraction, sympy Rational or mpmath number, exactly."""
    from fractions import Fraction

    if isinstance(value, mpmath.mpf):
        mantissa, exponent = value.man_exp
        return Fraction(mantissa) * Fraction(2) ** exponent
    try:
        return Fraction(value)
    except TypeError:
        return Fraction(str(value))


def log2_ball_of_fraction(value):
    """log2 of a positive Fraction as an arb ball at the current precision."""
    import flint

    return flint.arb(flint.fmpq(value.numerator, value.denominator)).log() / flint.arb(2).log()


def power_of_two_exponent_of_fraction(value) -> int | None:
    """e when the positive Fraction value = 2^e exactly, else None."""
    if value.numerator == 1 and power_of_two_exponent(value.denominator) is not None:
        return -power_of_two_exponent(value.denominator)
    if value.denominator == 1:
        return power_of_two_exponent(value.numerator)
    return None
