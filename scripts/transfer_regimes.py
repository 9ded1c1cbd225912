"""Issue 7, transfer as research: does longer training, weight decay or a wider MLP make the
trained network a generic selector? Each regime trains one model for its whole step budget
(no early stop), then runs the three re-initialisations with a 2,000-step embedding-only budget.

    python scripts/transfer_regimes.py [--out results/training/transfer_regimes] [--executor ray [--address auto]]

Regimes are independent cells: with --executor ray each is one Ray task (experiments/executors.py),
and rows are written to the CSV, in the table's order, as they finish.
"""

import argparse
import json
import os
import sys
import time

from georecall.experiments.analysis import superposition_fit
from georecall.experiments.config import TrainConfig
from georecall.experiments.executors import add_executor_options, executor_from_args, map_unordered
from georecall.experiments.records import write_csv
from georecall.experiments.train import train
from georecall.experiments.transfer import reinit_columns, transfer_experiment

REGIMES = [
    # name, N, d_mlp, init scale, weight decay, steps
    ("early stop (as the map)", 256, 64, 0.1, 0.0, None),
    ("1k steps", 256, 64, 0.1, 0.0, 1000),
    ("1k steps, wd 0.1", 256, 64, 0.1, 0.1, 1000),
    ("3k steps, wd 0.1", 256, 64, 0.1, 0.1, 3000),
    ("1k steps, wd 0.1, d_mlp 256", 256, 256, 0.1, 0.1, 1000),
    ("1k steps, wd 0.3", 256, 64, 0.1, 0.3, 1000),
    ("1k steps, wd 0.1, N 1024", 1024, 64, 0.1, 0.1, 1000),
]


def regime_row(regime, transfer_steps: int, seed: int) -> dict:
    """One regime: train, fit, transfer; its CSV row (a task of its own)."""
    name, N, d_mlp, scale, wd, steps = regime
    started = time.perf_counter()
    config = TrainConfig(N=N, R=2, d_model=32, d_mlp=d_mlp, embed_init_scale=scale, weight_decay=wd, seed=seed,
                         steps=3000 if steps is None else steps, stop_margin=1.0 if steps is None else 0.0)
    run = train(config)
    weights = run.weights  # one float64 conversion for the fit and the transfer
    fit = superposition_fit(weights, run.instance, seed=seed)
    result = transfer_experiment(weights, run.instance, config, steps=transfer_steps, seed=seed, fit=fit)
    row = {"regime": name, "N": N, "d_mlp": d_mlp, "embed_init_scale": scale, "weight_decay": wd, "train_steps": run.steps_run,
           "train_min_margin": round(run.min_margin, 3), "superposition_r2": round(fit["r2_cv"], 4), "chance": result["chance"]}
    row.update(reinit_columns(result))
    row["seconds"] = round(time.perf_counter() - started, 1)
    return row


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default="results/training/transfer_regimes")
    parser.add_argument("--transfer-steps", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    add_executor_options(parser)
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    executor = executor_from_args(args)
    done = {}
    try:
        for index, row in map_unordered(executor, regime_row, [(regime, args.transfer_steps, args.seed) for regime in REGIMES]):
            done[index] = row
            print(json.dumps(row), file=sys.stderr, flush=True)
            write_csv(os.path.join(args.out, "transfer_regimes.csv"), [done[i] for i in sorted(done)])
    finally:
        executor.close()
    with open(os.path.join(args.out, "config.json"), "w") as handle:
        json.dump({"regimes": REGIMES, "d_model": 32, "R": 2, "lr": 0.01,
                   **{k: v for k, v in vars(args).items() if k in ("out", "transfer_steps", "seed")}}, handle, indent=2)


if __name__ == "__main__":
    main()
