"""What every command shares: the parser that fails in one line, argument types, the construction options, progress."""

from __future__ import annotations

import argparse
import sys
import time

from georecall.constructions.codebooks import CODEBOOKS
from georecall.constructions.registry import CONSTRUCTIONS

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_INTERNAL = 0, 1, 2, 3


class BadInput(Exception):
    """Raised for anything the user must fix; printed as one line, exit code 2."""


class Parser(argparse.ArgumentParser):
    def error(self, message):  # one line instead of usage + message
        raise BadInput(f"{self.prog}: {message}")


def positive_int(name, minimum=0):
    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be an integer, got {text!r}") from None
        if minimum is not None and value < minimum:
            raise argparse.ArgumentTypeError(f"{name} must be >= {minimum}, got {value}")
        return value

    return parse


# Options that only some constructions read; build refuses them elsewhere instead of ignoring them.
CONSTRUCTION_OPTION_DEFAULTS = {"precision": 1, "delta": 1e-3, "codebook_seed": 0, "d": None, "maps_seed": 0, "chains": "exact",
                                "cot_steps": None}


def add_construction_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--construction", choices=CONSTRUCTIONS, default="block", help="the construction (default block)")
    p.add_argument("--codebook", choices=CODEBOOKS, default="binary", help="the codebook (default binary)")
    p.add_argument("--N", type=positive_int("--N"), default=256, help="number of subjects, >= 2 (default 256)")
    p.add_argument("--R", type=positive_int("--R"), default=4, help="number of relations, >= 1 (default 4)")
    p.add_argument("--seed", type=positive_int("--seed"), default=0, help="seed of the random facts (default 0)")
    p.add_argument("--precision", type=positive_int("--precision", minimum=1), default=None, help="bits per coordinate p; --codebook multilevel only (default 1)")
    p.add_argument("--delta", type=float, default=None, help="failure probability in (0, 1) of random codes or random maps; --codebook rademacher or --construction shared-space only (default 1e-3)")
    p.add_argument("--codebook-seed", type=positive_int("--codebook-seed"), default=None, help="seed of random codes; --codebook rademacher only (default 0)")
    p.add_argument("--d", type=positive_int("--d", minimum=1), default=None, help="shared-space dimension; --construction shared-space only (default: the proven sufficient d)")
    p.add_argument("--maps-seed", type=positive_int("--maps-seed"), default=None, help="seed of the maps M_r; --construction shared-space only (default 0)")
    p.add_argument("--hops", type=positive_int("--hops", minimum=1), default=1, help="chain length k (max depth under --cot); k > 1 needs --construction chains or associative, or --cot")
    p.add_argument("--chains", choices=("exact", "up_to"), default=None, help="no-CoT chains: exact (length k) or up_to (1..k); --construction chains only (default exact)")
    p.add_argument("--cot", action="store_true", help="chain-of-thought construction answering every depth <= --hops")
    p.add_argument("--cot-steps", type=positive_int("--cot-steps", minimum=1), default=None, help="with --cot: emit T tokens of ceil(k/T) hops each (partial CoT)")


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


def progress_printer(label: str, force: bool):
    if not (force or sys.stderr.isatty()):
        return None
    last = [0.0]

    def show(done: int, total: int) -> None:
        now = time.monotonic()
        if done < total and now - last[0] < 0.2:
            return
        last[0] = now
        filled = int(30 * done / max(total, 1))
        sys.stderr.write(f"\r{label} [{'#' * filled}{'.' * (30 - filled)}] {done:,}/{total:,} queries")
        if done >= total:
            sys.stderr.write("\n")
        sys.stderr.flush()

    return show


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
