"""What every command shares: the parser that fails in one line, argument types, the construction options."""

from __future__ import annotations

import argparse
import math
import re
import sys

from georecall.constructions.codebooks import CODEBOOKS
from georecall.constructions.registry import CONSTRUCTIONS

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_INTERNAL = 0, 1, 2, 3


class BadInput(Exception):
    """Raised for anything the user must fix; printed as one line, exit code 2."""


class Parser(argparse.ArgumentParser):
    def error(self, message):  # one line instead of usage + message
        # argparse writes "argument --N: --N must be ..."; our types already name the option, so say it once
        message = re.sub(r"^argument (\S+): \1 ", r"\1 ", message)
        raise BadInput(f"{self.prog}: {message}")


REMOVED_IN = "0.3"  # deprecated spellings keep working, with a warning, until this release


def warn_deprecated(old: str, new: str) -> None:
    """One spelling per option: an old one still works for a release, and says what replaces it."""
    print(f"georecall: warning: {old} is deprecated and will be removed in {REMOVED_IN}; use {new}", file=sys.stderr)


COUNT_LIMIT = 2**40  # no count any command takes reaches it; larger values are refused before any allocation


def positive_int(name: str, minimum: int = 0, maximum: int = COUNT_LIMIT):
    """An integer in [minimum, maximum]; anything else is refused naming the option and the range."""

    def parse(text):
        text = str(text).strip()
        if len(text) > len(str(maximum)) + 2:  # Python itself refuses to parse 4,300 digits: say so in one line, first
            raise argparse.ArgumentTypeError(f"{name} must be an integer in {minimum}..{_range_end(maximum)}, got {text[:24]}...")
        try:
            if not text.isascii():  # int() also reads other scripts' digits; a count on a command line is 0-9
                raise ValueError
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be an integer, got {text!r}") from None
        if not minimum <= value <= maximum:
            shown = f"{value:,}" if abs(value) < 10**24 else f"{str(value)[:24]}..."
            raise argparse.ArgumentTypeError(f"{name} must be in {minimum}..{_range_end(maximum)}, got {shown}")
        return value

    return parse


def _range_end(maximum: int) -> str:
    return f"{maximum:,}" if maximum < 10**24 else f"10^{len(str(maximum)) - 1}"


def real(name: str, minimum: float | None = None, maximum: float | None = None, above: float | None = None):
    """A finite number with value >= minimum (or > above) and <= maximum, named in every refusal."""

    def parse(text):
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be a number, got {text!r}") from None
        low = "" if minimum is None and above is None else (f">= {minimum:g}" if above is None else f"> {above:g}")
        high = "" if maximum is None else f"<= {maximum:g}"
        valid = " and ".join(part for part in (low, high) if part) or "finite"
        if not math.isfinite(value) or (minimum is not None and value < minimum) or (above is not None and value <= above) \
                or (maximum is not None and value > maximum):
            raise argparse.ArgumentTypeError(f"{name} must be a finite number {valid}, got {text!r}")
        return value

    return parse


def probability(name: str, allow_zero: bool = False):
    """A failure probability: in (0, 1), or [0, 1) with ``allow_zero``."""

    def parse(text):
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be a number, got {text!r}") from None
        if not ((0.0 <= value if allow_zero else 0.0 < value) and value < 1.0):
            raise argparse.ArgumentTypeError(f"{name} is a failure probability in {'[0' if allow_zero else '(0'}, 1), got {text!r}")
        return value

    return parse


# Options that only some constructions read; build refuses them elsewhere instead of ignoring them.
CONSTRUCTION_OPTION_DEFAULTS = {"precision": 1, "delta": 1e-3, "codebook_seed": 0, "d": None, "maps_seed": 0, "chains": "exact",
                                "cot_steps": None}


def add_construction_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--construction", choices=CONSTRUCTIONS, default="block", help="the construction (default block)")
    p.add_argument("--codebook", choices=CODEBOOKS, default="binary", help="the codebook (default binary)")
    p.add_argument("--N", type=positive_int("--N", minimum=2), default=256, help="number of subjects, >= 2 (default 256)")
    p.add_argument("--R", type=positive_int("--R", minimum=1), default=4, help="number of relations, >= 1 (default 4)")
    p.add_argument("--seed", type=positive_int("--seed"), default=0, help="seed of the random facts (default 0)")
    p.add_argument("--precision", type=positive_int("--precision", minimum=1, maximum=16), default=None, help="bits per coordinate p, 1..16; --codebook multilevel only (default 1)")
    p.add_argument("--delta", type=probability("--delta"), default=None, help="failure probability in (0, 1) of random codes or random maps; --codebook rademacher or --construction shared-space only (default 1e-3)")
    p.add_argument("--codebook-seed", type=positive_int("--codebook-seed"), default=None, help="seed of random codes; --codebook rademacher only (default 0)")
    p.add_argument("--d", type=positive_int("--d", minimum=1), default=None, help="shared-space dimension; --construction shared-space only (default: the proven sufficient d)")
    p.add_argument("--maps-seed", type=positive_int("--maps-seed"), default=None, help="seed of the maps M_r; --construction shared-space only (default 0)")
    p.add_argument("--hops", type=positive_int("--hops", minimum=1, maximum=64), default=1,
                   help="chain length k (the largest depth for --construction cot); k > 1 needs --construction chains, associative or cot")
    p.add_argument("--chains", choices=("exact", "up_to"), default=None, help="no-CoT chains: exact (length k) or up_to (1..k); --construction chains only (default exact)")
    p.add_argument("--cot", action="store_true", help=argparse.SUPPRESS)  # deprecated spelling of --construction cot
    p.add_argument("--cot-steps", type=positive_int("--cot-steps", minimum=1), default=None,
                   help="with --construction cot: emit T tokens of ceil(k/T) hops each (partial CoT)")


def refuse_inapplicable_options(args, name: str) -> None:
    """An option the chosen construction does not read is refused, naming it, never silently ignored."""
    readers = {
        "precision": args.codebook == "multilevel",
        "delta": args.codebook == "rademacher" or name == "shared-space",
        "codebook_seed": args.codebook == "rademacher",
        "d": name == "shared-space",
        "maps_seed": name == "shared-space",
        "chains": name == "chains",
    }
    for option, applies in readers.items():
        if getattr(args, option) is not None and not applies:
            flag = "--" + option.replace("_", "-")
            raise BadInput(f"{flag} does not apply to --construction {name} with --codebook {args.codebook}")
    for option, default in CONSTRUCTION_OPTION_DEFAULTS.items():
        if getattr(args, option) is None:
            setattr(args, option, default)


def construction_kwargs(args) -> dict:
    return dict(
        codebook=args.codebook,
        precision=args.precision,
        delta=args.delta,
        codebook_seed=args.codebook_seed,
        d=args.d,
        maps_seed=args.maps_seed,
        hops=args.hops,
        chains=args.chains,
        cot_steps=args.cot_steps,
    )
