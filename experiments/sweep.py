"""Threshold sweep: d* = the smallest d_model that reaches 100% training accuracy in the step budget.

For each grid point (N, R) and seed, d is doubled from 1 until a run is exact, then bisected
between the last failure and the first success (bisection assumes success is monotone in d; every
run is kept in runs.csv, so a non-monotone point is visible). d* is reported per seed and as the
median over seeds, fitted against log2 N at fixed R and against R at fixed N, and set beside the
generic lower bound R log2 N / p and the block construction's subject dimension.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from georecall.bounds.generic import generic_min_d
from georecall.formats.files import write_atomically
from georecall.experiments.config import TrainConfig
from georecall.experiments.executors import LocalExecutor, run_searches
from georecall.experiments.records import write_csv
from georecall.experiments.train import train
from georecall.theory.search import drive, smallest_passing_search

THRESHOLD_FIELDS = ["N", "R", "seed", "d_star", "failing_d_below", "bits_per_coordinate_implied",
                    "generic_bound_d_p32", "block_binary_subject_dim"]


@dataclass
class SweepResult:
    runs: list = field(default_factory=list)
    thresholds: list = field(default_factory=list)
    fits: dict = field(default_factory=dict)

    def medians(self) -> list[dict]:
        """One row per (N, R): the median d* over seeds (None if any seed found no d* <= d_max)."""
        rows = []
        for key in sorted({(t["N"], t["R"]) for t in self.thresholds}):
            values = [t["d_star"] for t in self.thresholds if (t["N"], t["R"]) == key]
            ok = all(v is not None for v in values)
            rows.append({"N": key[0], "R": key[1], "seeds": len(values),
                         "d_star_median": float(np.median(values)) if ok else None,
                         "d_star_min": min(values) if ok else None, "d_star_max": max(values) if ok else None})
        return rows

    def to_json_dict(self) -> dict:
        return {"thresholds": self.thresholds, "medians": self.medians(), "fits": self.fits}

    def __repr__(self) -> str:
        points = ", ".join(f"(N={m['N']}, R={m['R']}): d*={m['d_star_median']}" for m in self.medians())
        return f"SweepResult({len(self.runs)} runs; median d* {points})"


def block_binary_subject_dim(N: int, R: int) -> int:
    """Subject dimension of the block construction with binary codes: R * ceil(log2 N)."""
    return R * max(1, math.ceil(math.log2(N)))


def smallest_passing(passes, maximum: int) -> tuple[int | None, int]:
    """(least v in 1..maximum with passes(v), largest failing v below it): ``smallest_passing_search``
    with the values tested one by one."""
    return drive(smallest_passing_search(maximum), passes)


def threshold_for_seed(base: TrainConfig, seed: int, d_max: int, on_run=None, field: str = "d_model") -> tuple[int | None, int]:
    """(least ``field`` value that trains to 100%, largest failing value below it) for one seed."""
    def exact(value: int) -> bool:
        config = base.replace(**{field: value}, seed=seed, instance_seed=seed)
        run = train(config)
        if on_run is not None:
            on_run(config, run)
        return run.exact

    return smallest_passing(exact, d_max)


def run_sweep(points, base: TrainConfig, seeds, d_max: int = 256, progress=None, executor=None, cached: dict | None = None,
              on_row=None) -> SweepResult:
    """Thresholds at every (N, R) in ``points`` for every seed; ``progress(message)`` after each run.

    Every (N, R, seed) bisection is a search of its own; ``executor`` (experiments/executors.py,
    default: here, one run after another) runs their training runs, side by side where it can.
    ``cached`` maps ``run_key`` to rows of an earlier, stopped sweep under the same protocol; those
    runs are not trained again. ``on_row(row)`` sees each new row as it finishes (runs.csv grows)."""
    executor = LocalExecutor() if executor is None else executor
    result = SweepResult()
    cells = [(N, R, seed) for N, R in points for seed in seeds]

    def make_config(N, R, seed):
        return lambda d: base.replace(N=N, R=R, d_model=d, seed=seed, instance_seed=seed)

    def seen(config, row, from_cache):
        result.runs.append(row)
        if on_row is not None and not from_cache:
            on_row(row)
        if progress is not None:
            source = "from runs.csv" if from_cache else f"{row['elapsed_s']:.1f} s"
            progress(f"N={config.N} R={config.R} seed={config.seed} d={config.d_model}: "
                     f"{'exact' if row['exact'] else 'not exact'} (acc {float(row['train_accuracy']):.4f}, {source})")

    found = run_searches([(smallest_passing_search(d_max), make_config(*cell)) for cell in cells], executor, seen, cached)
    for (N, R, seed), (d_star, below) in zip(cells, found):
        result.thresholds.append({
            "N": N, "R": R, "seed": seed, "d_star": d_star, "failing_d_below": below,
            "bits_per_coordinate_implied": None if d_star is None else R * math.log2(N) / d_star,
            "generic_bound_d_p32": generic_min_d(N, R, 32),
            "block_binary_subject_dim": block_binary_subject_dim(N, R),
        })
    result.fits = fit_thresholds(result.medians())
    return result


def linear_fit(x, y) -> dict:
    """Least-squares y = slope * x + intercept, with R^2."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    slope, intercept = np.polyfit(x, y, 1)
    residual = y - (slope * x + intercept)
    total = np.sum((y - y.mean()) ** 2)
    return {"slope": float(slope), "intercept": float(intercept),
            "r2": float(1 - np.sum(residual**2) / total) if total > 0 else float("nan"), "points": len(x)}


def fit_thresholds(medians: list[dict]) -> dict:
    """d* against log2 N for each R with >= 3 N values, and against R for each N with >= 3 R values."""
    fits = {}
    rows = [m for m in medians if m["d_star_median"] is not None]
    for R in sorted({m["R"] for m in rows}):
        pts = [m for m in rows if m["R"] == R]
        if len(pts) >= 3:
            fits[f"d_star_vs_log2N_at_R={R}"] = linear_fit([math.log2(m["N"]) for m in pts], [m["d_star_median"] for m in pts])
    for N in sorted({m["N"] for m in rows}):
        pts = [m for m in rows if m["N"] == N]
        if len(pts) >= 3:
            fits[f"d_star_vs_R_at_N={N}"] = linear_fit([m["R"] for m in pts], [m["d_star_median"] for m in pts])
    return fits


def write_sweep_config(folder, base: TrainConfig, seeds, d_max: int) -> None:
    """config.json (atomically): the training protocol a resumed sweep must share, the seeds and d_max."""
    config = {"base_config": base.to_json_dict(), "seeds": list(seeds), "d_max": d_max,
              "varied": ["N", "R", "d_model", "seed (= instance_seed)"]}
    write_atomically(Path(folder) / "config.json", lambda handle: handle.write(json.dumps(config, indent=2).encode()))


def write_sweep_summary(result: SweepResult, folder) -> None:
    """thresholds.csv, sweep.json (medians and fits) and thresholds.png, each atomically."""
    folder = Path(folder)
    write_csv(folder / "thresholds.csv", result.thresholds, THRESHOLD_FIELDS)
    write_atomically(folder / "sweep.json", lambda handle: handle.write(json.dumps(result.to_json_dict(), indent=2).encode()))
    write_atomically(folder / "thresholds.png", lambda handle: plot_thresholds(result, handle))


def plot_thresholds(result: SweepResult, path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    medians = [m for m in result.medians() if m["d_star_median"] is not None]
    by_R = {R: [m for m in medians if m["R"] == R] for R in sorted({m["R"] for m in medians})}
    by_N = {N: [m for m in medians if m["N"] == N] for N in sorted({m["N"] for m in medians})}
    panels = [("log2 N", R, pts, lambda m: math.log2(m["N"])) for R, pts in by_R.items() if len(pts) >= 2]
    panels += [("R", N, pts, lambda m: m["R"]) for N, pts in by_N.items() if len(pts) >= 2]
    if not panels:
        panels = [("log2 N", None, medians, lambda m: math.log2(m["N"]))]
    fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 4.2), squeeze=False)
    for ax, (label, fixed, pts, x_of) in zip(axes[0], panels):
        pts = sorted(pts, key=x_of)
        xs = [x_of(m) for m in pts]
        ax.errorbar(xs, [m["d_star_median"] for m in pts],
                    yerr=[[m["d_star_median"] - m["d_star_min"] for m in pts], [m["d_star_max"] - m["d_star_median"] for m in pts]],
                    marker="o", capsize=3, label="trained d* (median, min-max over seeds)")
        ax.plot(xs, [block_binary_subject_dim(m["N"], m["R"]) for m in pts], "s--", label="block construction, binary: R ceil(log2 N)")
        ax.plot(xs, [generic_min_d(m["N"], m["R"], 32) for m in pts], "v:", label="generic lower bound, p = 32")
        ax.plot(xs, [generic_min_d(m["N"], m["R"], 8) for m in pts], "^:", label="generic lower bound, p = 8")
        ax.set_xlabel(label)
        ax.set_ylabel("d_model")
        ax.set_title(f"threshold vs {label}" + ("" if fixed is None else f" ({'R' if label != 'R' else 'N'} = {fixed})"))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120, format="png")
    plt.close(fig)

