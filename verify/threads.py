"""How many threads a piece of work gets: one rule for the engine's chunk threads, BLAS and torch.

A thread pays only where the work per call is large enough: on small products the threads of a
pool sized to the machine mostly wait on each other, and on a shared machine they wait on threads
the scheduler has parked (four small trainings side by side on 2 cores took 27.5 s where their
fair share was 9.3 s). So the count is the work divided by what one thread must have to be worth
starting, capped by what the user allows: ``--threads`` (``set_thread_limit``), else
``OMP_NUM_THREADS``, else the cores this process may run on.
"""

from __future__ import annotations

import os

_LIMIT: int | None = None  # --threads, for the whole process


def set_thread_limit(threads: int | None) -> None:
    """The most threads any work may use from now on (None: back to OMP_NUM_THREADS or the cores)."""
    global _LIMIT
    if threads is not None and threads < 1:
        raise ValueError(f"threads must be >= 1, got {threads}")
    _LIMIT = threads


def allowed_threads() -> int:
    """--threads, else a valid OMP_NUM_THREADS, else the cores this process may run on."""
    if _LIMIT is not None:
        return _LIMIT
    text = os.environ.get("OMP_NUM_THREADS", "").split(",")[0].strip()
    if text.isdigit() and int(text) >= 1:
        return int(text)
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def threads_for(work: float, per_thread: float, most: int | None = None) -> int:
    """Threads for ``work`` units when one thread needs ``per_thread`` units to pay: 1 for small work."""
    cap = allowed_threads() if most is None else min(most, allowed_threads())
    if not work > 0 or not per_thread > 0:
        return 1
    return max(1, min(cap, int(work // per_thread)))
