"""The ``georecall`` command line: one module per command, the shared argument types in args.py.

Exit codes: 0 success/exact, 1 a check failed (not exact), 2 bad input, 3 internal error; 130 SIGINT,
141 the reader of stdout went away (a closed pipe), 143 SIGTERM (staged output removed in each case).
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading

from georecall.cli import bounds, build, check, compare, export, report, sizes, threshold, tradeoff, train, verify
from georecall.cli.progress import warn_if_progress_flag
from georecall.cli.args import EXIT_BAD_INPUT, EXIT_INTERNAL, BadInput, Parser
from georecall.theory.checks import InputError, MissingExtra

MODULES = (build, verify, export, check, bounds, compare, tradeoff, sizes, threshold, report, train)
COMMANDS = {name: command for module in MODULES for name, command in module.COMMANDS.items()}


def version() -> str:
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed_version

    try:
        return installed_version("geometric-recall")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown (not installed)"


def make_parser() -> Parser:
    parser = Parser(prog="georecall", description="Build and verify geometric factual-recall constructions.")
    parser.add_argument("--version", action="version", version=f"georecall {version()}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    for module in MODULES:
        module.add_parsers(sub)
    return parser


class Stopped(BaseException):
    """SIGTERM or SIGINT, raised where the process is, so that staged folders and partial files are removed.

    Why not KeyboardInterrupt for SIGINT: CPython re-kills itself with SIGINT when a KeyboardInterrupt
    escapes ``runpy``, and a library that swallows and re-raises one during exit turns our 130 into -2.
    """

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


def _stop(signum, frame):
    raise Stopped(signum)


STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


@contextlib.contextmanager
def thread_limit(threads: int | None):
    """Threads for the whole command (verify/threads.py): --threads caps the engine's chunk threads
    and torch; BLAS keeps one thread per caller. Every BLAS call here is a chunk's small product,
    and the chunks themselves run side by side: a BLAS pool sized to the machine only spins. Four
    small verifies side by side on 2 cores took 1.62x their fair share with it, 1.09x without."""
    from threadpoolctl import threadpool_limits

    from georecall.verify.threads import set_thread_limit

    set_thread_limit(threads)
    try:
        with threadpool_limits(limits=1, user_api="blas"):
            yield
    finally:
        set_thread_limit(None)


def _ignore_stop_signals() -> None:
    for sig in STOP_SIGNALS:
        signal.signal(sig, signal.SIG_IGN)


def main(argv: list[str] | None = None) -> int:
    on_main_thread = threading.current_thread() is threading.main_thread()
    previous = {sig: signal.signal(sig, _stop) for sig in STOP_SIGNALS} if on_main_thread else {}
    try:
        args = make_parser().parse_args(argv)
        warn_if_progress_flag(args)
        with thread_limit(getattr(args, "threads", None)):
            return COMMANDS[args.command](args)
    except Stopped as stop:
        _ignore_stop_signals()  # a second Ctrl-C during the message must not undo the clean exit
        print("georecall: " + ("interrupted" if stop.signum == signal.SIGINT else "terminated"), file=sys.stderr)
        return 128 + stop.signum
    except BrokenPipeError:  # `georecall sizes | head`: the reader left; say nothing, as Unix tools do
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # so the exit flush fails silently too
        except (OSError, ValueError):
            pass
        return 141
    except (BadInput, InputError, OSError, MissingExtra) as exc:
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
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
