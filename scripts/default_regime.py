"""Issue 14, deliverable 5: which training regime `georecall train` should default to.

Trains the default problem (N = 1024, R = 4, d = 32) under each listed variant of init scale,
weight decay, MLP width, learning rate and stopping rule, and records training accuracy and the
cross-validated superposition R^2 (with its in-sample value and shuffled null). Variants are
JSON objects of TrainConfig fields over the base below.

Writes <out>/runs.csv and <out>/config.json.

    OMP_NUM_THREADS=1 python scripts/default_regime.py            # the variants in VARIANTS (~15 CPU-minutes)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time

from georecall.experiments.analysis import superposition_fit
from georecall.experiments.config import TrainConfig
from georecall.experiments.records import write_csv
from georecall.experiments.train import train

BASE = TrainConfig(N=1024, R=4, d_model=32, d_mlp=64, steps=3000, embed_init_scale=0.1, weight_decay=0.1, stop_margin=1.0)
VARIANTS = [
    {"embed_init_scale": 1.0, "weight_decay": 0.0},
    {},
    {"d_mlp": 80},
    {"d_mlp": 256},
    {"d_mlp": 512},
    {"d_mlp": 256, "lr": 0.003},
    {"d_mlp": 256, "embed_init_scale": 0.01},
    {"d_mlp": 256, "stop_margin": 3.0},
    {"d_mlp": 256, "weight_decay": 0.3},
    {"d_mlp": 256, "weight_decay": 0.3, "seed": 1},
    {"d_mlp": 256, "weight_decay": 0.3, "seed": 2},
    {"d_mlp": 256, "weight_decay": 0.5},
    {"d_mlp": 256, "weight_decay": 0.5, "seed": 1},
    {"d_mlp": 256, "weight_decay": 0.5, "seed": 2},
    {"d_mlp": 80, "weight_decay": 0.5},
    {"d_mlp": 256, "weight_decay": 1.0},
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", nargs="*", default=None, help="JSON objects of TrainConfig fields (default: VARIANTS)")
    parser.add_argument("--out", default="results/training/default_regime")
    args = parser.parse_args()
    variants = VARIANTS if args.variants is None else [json.loads(v) for v in args.variants]
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "config.json"), "w") as handle:
        json.dump({"base": BASE.to_json_dict(), "variants": variants, "command": " ".join(sys.argv),
                   "machine": f"{platform.machine()}, {os.cpu_count()} cores"}, handle, indent=1)
    rows = []
    for index, variant in enumerate(variants, 1):
        started = time.perf_counter()
        config = BASE.replace(**variant)
        run = train(config)
        fit = superposition_fit(run.weights, run.instance)
        rows.append({"variant": json.dumps(variant, sort_keys=True), "seed": config.seed, "embed_init_scale": config.embed_init_scale,
                     "weight_decay": config.weight_decay, "d_mlp": config.d_mlp, "lr": config.lr, "stop_margin": config.stop_margin,
                     "train_accuracy": run.train_accuracy, "exact": run.exact, "steps_run": run.steps_run,
                     "superposition_r2_cv": round(fit["r2_cv"], 4), "superposition_r2_in_sample": round(fit["r2_in_sample"], 4),
                     "superposition_r2_null_cv": round(fit["r2_null_cv"], 4), "seconds": round(time.perf_counter() - started, 1)})
        sys.stderr.write(f"[{index}/{len(variants)}] {variant}: R2 {rows[-1]['superposition_r2_cv']} ({rows[-1]['seconds']} s)\n")
        write_csv(os.path.join(args.out, "runs.csv"), rows)  # after every run: a stopped search keeps its rows
    print(f"wrote {args.out}/runs.csv and config.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
