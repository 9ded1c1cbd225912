"""What ``georecall train`` and ``georecall sweep`` run: glue between the CLI and the experiments."""

from __future__ import annotations

from experiments.sweep import SweepResult, run_sweep, write_sweep


def run_and_write_sweep(points, base, seeds, d_max, out, progress) -> SweepResult:
    result = run_sweep(points, base, seeds, d_max, progress)
    write_sweep(result, out, base, seeds, d_max)
    return result
