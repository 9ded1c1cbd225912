"""The ``georecall`` command line: one module per command, the shared argument types in args.py.

Exit codes: 0 success/exact, 1 a check failed (not exact), 2 bad input, 3 internal error.
"""

from __future__ import annotations

import sys

from georecall.cli import bounds, build, check, compare, export, report, sizes, threshold, tradeoff, train, verify
from georecall.cli.args import EXIT_BAD_INPUT, EXIT_INTERNAL, BadInput, Parser
from georecall.theory.checks import InputError

MODULES = (build, verify, export, check, bounds, compare, tradeoff, sizes, threshold, report, train)
COMMANDS = {name: command for module in MODULES for name, command in module.COMMANDS.items()}


def make_parser() -> Parser:
    parser = Parser(prog="georecall", description="Build and verify geometric factual-recall constructions.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    for module in MODULES:
        module.add_parsers(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        args = make_parser().parse_args(argv)
        return COMMANDS[args.command](args)
    except (BadInput, InputError, OSError, train.NeedsTorch) as exc:
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        print(f"georecall: error: {message}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("georecall: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug, not a verdict: never exit 0 or 1 for it
        print(f"georecall: internal error ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}); "
              f"please report it with the command that caused it", file=sys.stderr)
        return EXIT_INTERNAL
