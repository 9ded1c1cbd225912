"""Issue 14, deliverable 4: the threshold d* (least d_model training to 100%) against the MLP width.

d_mlp is either tied to d (``d`` or ``4d``: d_mlp = d or 4 d while d is bisected) or fixed
(64, 256). Protocol of the first round's d* sweep (init scale 1, no weight decay, 3,000 steps,
stop once every margin >= 1), so the d_mlp = 64 column is comparable with threshold_sweep/.
Writes <out>/dstar_vs_dmlp.csv and .json (with bits per coordinate R log2 N / d*).

    OMP_NUM_THREADS=1 python scripts/dstar_vs_dmlp.py --N 256 --R 2 --seeds 0 --out results/training/dstar_vs_dmlp/R2
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
from georecall.experiments.records import write_csv
from georecall.experiments.sweep import smallest_passing
from georecall.experiments.train import train

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
    args = parser.parse_args()
    base = TrainConfig(N=2, R=1, d_model=1, d_mlp=1, steps=3000, embed_init_scale=1.0, weight_decay=0.0, stop_margin=1.0)
    rows = []
    for N in args.N:
        for R in args.R:
            for rule in args.widths:
                for seed in args.seeds:
                    started = time.perf_counter()

                    def exact(d: int) -> bool:
                        return train(base.replace(N=N, R=R, d_model=d, d_mlp=width(rule, d), seed=seed, instance_seed=seed)).exact

                    d_star, below = smallest_passing(exact, args.d_max)
                    rows.append({"N": N, "R": R, "d_mlp_rule": rule, "seed": seed, "d_star": d_star, "failing_d_below": below,
                                 "d_mlp_at_d_star": None if d_star is None else width(rule, d_star),
                                 "bits_per_coordinate": None if d_star is None else round(R * math.log2(N) / d_star, 3),
                                 "seconds": round(time.perf_counter() - started, 1)})
                    sys.stderr.write(f"N={N} R={R} d_mlp={rule} seed={seed}: d* = {d_star} ({rows[-1]['seconds']} s)\n")
                    write(rows, base, args.out)  # after every bisection: a stopped sweep keeps what it measured
    print(f"wrote {args.out}/dstar_vs_dmlp.csv and .json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
