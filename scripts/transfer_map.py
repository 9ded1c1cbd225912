"""Issue 7's transfer map: where does the trained MLP act as a generic selector?

One factor at a time around a base point, each point one trained model followed by the three
re-initialisations of experiments.transfer (zero-shot accuracy, embedding-only steps to 100%).
Writes CSV + JSON + PNG with the configs used.

    python scripts/transfer_map.py [--out results/training/transfer_map] [--quick] [--executor ray [--address auto]]

Points are independent cells: with --executor ray each is one Ray task (experiments/executors.py),
and the CSV/JSON are rewritten, in the grid's order, as each finishes.
"""

import argparse
import json
import os
import platform
import sys
import time

import torch

from georecall.experiments.analysis import superposition_fit
from georecall.experiments.config import TrainConfig
from georecall.experiments.executors import add_executor_options, executor_from_args, map_unordered
from georecall.experiments.records import write_csv
from georecall.experiments.train import train
from georecall.experiments.transfer import REINITS, reinit_columns, transfer_experiment

BASE = dict(N=256, R=2, d_model=32, d_mlp=64, embed_init_scale=0.1, weight_decay=0.0, steps=3000)
FACTORS = {"N": [256, 1024, 4096], "d_mlp": [16, 64, 256], "embed_init_scale": [0.01, 0.1, 1.0], "weight_decay": [0.0, 0.01, 0.1]}
QUICK_FACTORS = {"N": [64, 128], "d_mlp": [16, 64]}


def points(factors):
    seen = []
    for factor, values in factors.items():
        for value in values:
            point = {**BASE, factor: value}
            if point not in seen:
                seen.append(point)
                yield factor, point


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default="results/training/transfer_map")
    parser.add_argument("--transfer-steps", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="two small factors only (a smoke run)")
    parser.add_argument("--plot-only", action="store_true", help="redraw transfer_map.png from transfer_map.json")
    parser.add_argument("--factors", nargs="+", default=list(FACTORS), help=f"which factors to vary (default all: {' '.join(FACTORS)})")
    add_executor_options(parser)
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    if args.plot_only:
        with open(os.path.join(args.out, "transfer_map.json")) as handle:
            return plot(json.load(handle)["rows"], os.path.join(args.out, "transfer_map.png"))
    factors = QUICK_FACTORS if args.quick else {name: FACTORS[name] for name in args.factors}
    grid = list(points(factors))
    executor = executor_from_args(args)
    done = {}
    try:
        for index, row in map_unordered(executor, point_row, [(factor, point, args.transfer_steps, args.seed) for factor, point in grid]):
            done[index] = row
            print(json.dumps(row), file=sys.stderr, flush=True)
            write([done[i] for i in sorted(done)], args)
    finally:
        executor.close()
    plot([done[i] for i in sorted(done)], os.path.join(args.out, "transfer_map.png"))


def point_row(factor: str, point: dict, transfer_steps: int, seed: int) -> dict:
    """One point of the map: train, fit, transfer; its row (a task of its own)."""
    started = time.perf_counter()
    config = TrainConfig(**point, seed=seed)
    run = train(config)
    weights = run.weights  # one float64 conversion for the fit and the transfer
    fit = superposition_fit(weights, run.instance, seed=seed)
    result = transfer_experiment(weights, run.instance, config, steps=transfer_steps, seed=seed, fit=fit)
    row = {"varied": factor, **{k: point[k] for k in ("N", "R", "d_model", "d_mlp", "embed_init_scale", "weight_decay")},
           "train_exact": run.exact, "train_steps": run.steps_run, "superposition_r2": fit["r2_cv"], "chance": result["chance"]}
    row.update(reinit_columns(result))
    row["seconds"] = round(time.perf_counter() - started, 1)
    return row


def write(rows, args):
    write_csv(os.path.join(args.out, "transfer_map.csv"), rows)
    with open(os.path.join(args.out, "transfer_map.json"), "w") as handle:
        json.dump({"base": BASE, "transfer_steps": args.transfer_steps, "seed": args.seed, "rows": rows,
                   "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}"},
                  handle, indent=2)


def plot(rows, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    factors = list(dict.fromkeys(r["varied"] for r in rows))
    fig, axes = plt.subplots(1, len(factors), figsize=(4.2 * len(factors), 3.6), squeeze=False)
    for ax, factor in zip(axes[0], factors):
        is_base = lambda r: all(r[k] == BASE[k] for k in FACTORS)  # noqa: E731 (the base point belongs to every panel)
        pts = sorted((r for r in rows if r["varied"] == factor or is_base(r)), key=lambda r: r[factor])
        xs = [r[factor] for r in pts]
        for name in REINITS:
            ax.plot(xs, [r[f"{name}_zero_shot"] for r in pts], marker="o", label=f"{name} (zero-shot)")
        ax.plot(xs, [r["chance"] for r in pts], "k:", label="chance 1/N")
        if factor != "weight_decay":
            ax.set_xscale("log")
        ax.set_xlabel(factor)
        ax.set_ylim(-0.02, 1.02)
        ax.set_title(f"zero-shot transfer vs {factor}")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("accuracy on new bijections")
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    main()
