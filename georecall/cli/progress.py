"""Progress on long commands, through tqdm: a bar on a terminal, and otherwise a plain line every
LINE_EVERY_S seconds (done, total, percentage, time left and rate), so that a log file or a CI job
shows a long run moving. Runs shorter than the first interval print nothing; ``--quiet`` prints nothing.
"""

from __future__ import annotations

import argparse
import sys

LINE_EVERY_S = 5.0  # non-terminal output: at most one line this often, none before the first interval
BAR_DELAY_S = 0.5  # terminal: no bar for commands that finish at once

LINE_FORMAT = "{desc}: {n_fmt}/{total_fmt}{unit} ({percentage:.0f}%), {elapsed} elapsed, {remaining} left, {rate_fmt}"


class _Lines:
    """A stream for tqdm that turns its carriage-return redraws into whole lines."""

    def __init__(self, stream):
        self.stream = stream

    def write(self, text: str) -> None:
        text = text.replace("\r", "").replace("\x1b[A", "").rstrip()  # redraws and cursor moves mean nothing in a file
        if text:
            self.stream.write(text + "\n")

    def flush(self) -> None:
        self.stream.flush()


def progress_bar(label: str, total: int, unit: str, quiet: bool = False, stream=None):
    """A tqdm bar counting ``unit`` up to ``total``, or None when ``quiet``."""
    if quiet:
        return None
    from tqdm import tqdm

    stream = sys.stderr if stream is None else stream
    if stream.isatty():
        return tqdm(total=total, desc=label, unit=f" {unit}", file=stream, delay=BAR_DELAY_S, leave=True,
                    dynamic_ncols=True)
    return tqdm(total=total, desc=label, unit=f" {unit}", file=_Lines(stream), delay=LINE_EVERY_S,
                mininterval=LINE_EVERY_S, maxinterval=LINE_EVERY_S, bar_format=LINE_FORMAT, ascii=True)


def counter(label: str, unit: str, quiet: bool = False, stream=None):
    """A ``progress(done, total)`` callback for the engine and the training loop, or None when ``quiet``.

    ``done`` going back starts a new bar (a second phase, such as brute force after the
    certificate); a smaller ``total`` ends the bar early (training that stopped at its margin
    calls ``progress(step, step)``)."""
    if quiet:
        return None
    state = {"bar": None}

    def update(done: int, total: int) -> None:
        bar = state["bar"]
        if bar is None or done < bar.n:
            if bar is not None:
                bar.close()
            bar = state["bar"] = progress_bar(label, total, unit, stream=stream)
        bar.total = total
        bar.update(done - bar.n)
        if done >= total:
            bar.close()

    return update


def phases(label: str, count: int, quiet: bool = False, stream=None):
    """A ``done()`` callback for a command made of ``count`` long steps with nothing to count inside
    them (read, build, write): call it as each step ends."""
    update = counter(label, "steps", quiet, stream)
    finished = [0]
    if update is not None:
        update(0, count)  # the clock starts now, so a long first step still shows

    def done() -> None:
        finished[0] += 1
        if update is not None:
            update(finished[0], count)

    return done


def say(quiet: bool, stream=None):
    """A ``progress(message)`` callback: one line per event (a sweep's runs, a report's stages)."""
    if quiet:
        return None

    def show(message: str) -> None:
        target = sys.stderr if stream is None else stream
        print(message, file=target, flush=True)

    return show


def add_quiet_option(p) -> None:
    """--quiet and --threads: the options of every command that can run long."""
    p.add_argument("--quiet", action="store_true", help="no progress output (default: a bar on a terminal, else a line every "
                                                        f"{LINE_EVERY_S:g} s on runs that take longer)")
    from georecall.cli.args import positive_int

    p.add_argument("--threads", type=positive_int("--threads", minimum=1, maximum=1024), default=None,
                   help="the most threads to use, 1..1024 (default: OMP_NUM_THREADS, else every core; small work uses one)")
    p.add_argument("--progress", action="store_true", help=argparse.SUPPRESS)  # deprecated: progress is now the default


def warn_if_progress_flag(args) -> None:
    if getattr(args, "progress", False):
        from georecall.cli.args import warn_deprecated

        warn_deprecated("--progress", "nothing (progress is shown by default; --quiet turns it off)")
