"""Issue 14, deliverable 4: the threshold d* (least d_model training to 100%) against the MLP width.

d_mlp is either tied to d (``d`` or ``4d``: d_mlp = d or 4 d while d is bisected) or fixed
(64, 256). Protocol of the first round's d* sweep (init scale 1, no weight decay, 3,000 steps,
stop once every margin >= 1), so the d_mlp = 64 column is comparable with threshold_sweep/.
Writes <out>/dstar_vs_dmlp.csv and .json (with bits per coordinate R log2 N / d*), and every
training run to <out>/runs.csv as it finishes: a stopped run of the script resumes from it.

    python scripts/dstar_vs_dmlp.py --N 256 --R 2 --seeds 0 --out results/training/dstar_vs_dmlp/R2
    python scripts/dstar_vs_dmlp.py --N 4096 --R 2 4 --executor ray --address auto --out dstar_4096   # on a Ray cluster

Each bisection is a search of its own; the searches advance side by side, one training run per task
(experiments/executors.py), so a grid of G cells keeps up to G workers busy.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time

from georecall.experiments.config import TrainConfig
from georecall.experiments.executors import RUN_FIELDS, RUN_TYPES, add_executor_options, executor_from_args, row_key, run_searches
from georecall.experiments.records import RowAppender, read_rows, write_csv
from georecall.theory.search import smallest_passing_search

WIDTHS = ("d", "4d", "64", "256")


def width(rule: str, d: int) -> int:
    return {"d": d, "4d": 4 * d}.get(rule, None) or int(rule)


def write(rows: list[dict], base: TrainConfig, out: str) -> None:
    os.makedirs(out, exist_ok=True)
    write_csv(os.path.join(out, "dstar_vs_dmlp.csv"), rows)
    with open(os.path.join(out, "dstar_vs_dmlp.json"), "w") as handle:
        json.dump({"rows": rows, "protocol": base.to_json_dict(), "command": " ".join(sys.argv),
                   "machine": f"{platform.machine()}, {os.cpu_count()} cores"}, handle, indent=1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--N", type=int, nargs="+", default=[256])
    parser.add_argument("--R", type=int, nargs="+", default=[2, 4])
    parser.add_argument("--widths", nargs="+", default=list(WIDTHS), help=f"d_mlp rules: {', '.join(WIDTHS)} or an integer")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--d-max", type=int, default=64)
    parser.add_argument("--out", default="results/training/dstar_vs_dmlp")
    add_executor_options(parser)
    args = parser.parse_args()
    base = TrainConfig(N=2, R=1, d_model=1, d_mlp=1, steps=3000, embed_init_scale=1.0, weight_decay=0.0, stop_margin=1.0)
    os.makedirs(args.out, exist_ok=True)
    runs_csv = os.path.join(args.out, "runs.csv")
    cached = {row_key(row): row for row in read_rows(runs_csv, RUN_FIELDS, RUN_TYPES)}  # same protocol: the script fixes it
    cells = [(N, R, rule, seed) for N in args.N for R in args.R for rule in args.widths for seed in args.seeds]
    seconds = {cell: 0.0 for cell in cells}

    def make_config(N, R, rule, seed):
        return lambda d: base.replace(N=N, R=R, d_model=d, d_mlp=width(rule, d), seed=seed, instance_seed=seed)

    appender = RowAppender(runs_csv, RUN_FIELDS)

    def seen(config, row, from_cache):
        if not from_cache:
            appender.append(row)
        for cell in cells:  # a run can serve several cells (rule 64 at d = 64 is rule d there)
            N, R, rule, seed = cell
            if (config.N, config.R, config.seed, config.d_mlp) == (N, R, seed, width(rule, config.d_model)):
                seconds[cell] += float(row["elapsed_s"])
        print(f"N={config.N} R={config.R} d_mlp={config.d_mlp} seed={config.seed} d={config.d_model}: "
              f"{'exact' if row['exact'] else 'not exact'}{' (from runs.csv)' if from_cache else ''}", file=sys.stderr, flush=True)

    executor = executor_from_args(args)
    started = time.perf_counter()
    try:
        found = run_searches([(smallest_passing_search(args.d_max), make_config(*cell)) for cell in cells], executor, seen, cached)
    finally:
        appender.close()
        executor.close()
    rows = []
    for (N, R, rule, seed), (d_star, below) in zip(cells, found):
        rows.append({"N": N, "R": R, "d_mlp_rule": rule, "seed": seed, "d_star": d_star, "failing_d_below": below,
                     "d_mlp_at_d_star": None if d_star is None else width(rule, d_star),
                     "bits_per_coordinate": None if d_star is None else round(R * math.log2(N) / d_star, 3),
                     "seconds": round(seconds[(N, R, rule, seed)], 1)})
    write(rows, base, args.out)
    print(f"wrote {args.out}/dstar_vs_dmlp.csv and .json ({time.perf_counter() - started:.1f} s wall, executor {args.executor})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
