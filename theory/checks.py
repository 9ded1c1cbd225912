"""Argument checks shared by every module: each error names the argument and its valid range."""

from __future__ import annotations

import numbers


class MissingExtra(Exception):
    """An optional dependency is not installed; the message names the extra and the one line that
    installs it. The command line exits 2 for it, as for bad input: the user has something to fix."""


class InputError(ValueError):
    """Bad input: an argument, array, key or file the caller must fix. Its message names it and
    the valid range. The command line turns exactly this (and its own argument errors) into
    exit 2; any other exception is a bug and exits 3. A ValueError subclass, so library callers
    that catch ValueError keep working."""


def require_int(name: str, value, *, minimum: int | None = None, maximum: int | None = None) -> int:
    """Return ``value`` as an int, or raise ValueError naming ``name`` and the valid range."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise InputError(f"{name} must be an integer, got {value!r}")
    value = int(value)
    if minimum is not None and value < minimum:
        raise InputError(f"{name} must be >= {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise InputError(f"{name} must be <= {maximum}, got {value}")
    return value


def require_probability(name: str, value) -> float:
    """Return ``value`` as a float in the open interval (0, 1), or raise ValueError."""
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{name} must be a number in (0, 1), got {value!r}") from None
    if not 0.0 < value < 1.0:
        raise InputError(f"{name} must be in the open interval (0, 1), got {value}")
    return value
