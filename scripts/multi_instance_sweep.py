"""Issue 14, deliverables 1 and 2: shared weights trained on M instances, then a fresh instance, per regime.

Regimes: ``shared_unembed`` (W_U trained), ``frozen_unembed`` (W_U frozen at random codes, a fixed
codebook), ``tied_unembed`` (W_U = W_E[:N]^T: the attribute of an answer is that entity's own
embedding, so each instance reads answers against its own table). Crossed with the embedding
width ``--d`` and the MLP width ``--d-mlp`` (``2RlogN`` stands for 2 R ceil(log2 N), the size of the
paper's selector).

For each regime, width and M: train on M instances (experiments.multi_instance), check every
instance's model with the verifier, measure superposition R^2 (cross-validated, with its shuffled
null) and gating on instance 0, then draw a fresh instance and measure zero-shot accuracy for each
re-initialisation and the embedding-only steps to 100% (shared weights frozen), against the steps
a fresh model needs from scratch on the same instance.

Writes results/training/multi_instance/{runs.csv, sweep.json, config.json, multi_instance.png}.

    OMP_NUM_THREADS=1 python scripts/multi_instance_sweep.py [--quick]
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import platform
import sys
import time

import numpy as np

from georecall.experiments.analysis import gating_selectivity, superposition_fit
from georecall.experiments.config import TrainConfig
from georecall.experiments.mechanism import mechanism
from georecall.experiments.multi_instance import train_multi_instance
from georecall.experiments.records import write_csv
from georecall.experiments.train import train
from georecall.experiments.transfer import transfer_experiment
from georecall.verify.run import verify_single_hop

REGIMES = {"shared_unembed": {}, "frozen_unembed": {"freeze": ("unembed",)}, "tied_unembed": {"tie_unembed": True}}


def mlp_width(rule: str, N: int, R: int) -> int:
    return 2 * R * math.ceil(math.log2(N)) if rule == "2RlogN" else int(rule)


def one(config: TrainConfig, M: int, transfer_steps: int) -> dict:
    started = time.perf_counter()
    run = train_multi_instance(config, M=M)
    exact = [verify_single_hop(run.weights(m), run.instances[m]).exact_recall for m in range(M)]
    weights, instance = run.weights(0), run.instances[0]
    fit = superposition_fit(weights, instance)
    transfer = transfer_experiment(weights, instance, config, steps=transfer_steps, fit=fit)
    new_seed = 1000 + config.seed
    scratch = train(config.replace(steps=transfer_steps, instance_seed=new_seed))  # a fresh model, a fresh instance
    row = {"M": M, "train_accuracy_min": min(run.accuracy), "all_verified_exact": all(exact), "steps_run": run.steps_run,
           "superposition_r2": fit["r2_cv"], "superposition_r2_null": fit["r2_null_cv"],
           "gating_selectivity": gating_selectivity(weights, instance)["gating_selectivity"],
           "one_block_units": mechanism(weights, instance)["fraction_one_block"],
           "scratch_steps_to_exact": scratch.steps_to_exact, "seconds": round(time.perf_counter() - started, 1)}
    for name, result in transfer["reinits"].items():
        row[f"{name}_zero_shot"] = result["zero_shot_accuracy"]
        row[f"{name}_steps_to_exact"] = result["steps_to_exact"]
    return row


def plot(rows: list[dict], path: str) -> None:
    """One group of bars per cell (regime, d, d_mlp), one bar per M: structure, transfer, re-training."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cells = list(dict.fromkeys((r["regime"], int(r["d_model"]), int(r["d_mlp"])) for r in rows))
    Ms = sorted({int(r["M"]) for r in rows})
    width = 0.8 / len(Ms)

    def value(row, key):
        v = row[key]
        return float(v) if v not in (None, "") else float("nan")

    def steps(row, key):
        v = row[key]
        return float(v) if v not in (None, "") else float(row["transfer_steps"])  # never exact: the budget

    def ratio(row):
        never = all(row[k] in (None, "") for k in ("random_steps_to_exact", "scratch_steps_to_exact"))
        return float("nan") if never else steps(row, "random_steps_to_exact") / steps(row, "scratch_steps_to_exact")

    panels = [("superposition R² (cross-validated)", lambda r: value(r, "superposition_r2")),
              ("zero-shot accuracy, fitted map", lambda r: value(r, "fitted_map_zero_shot")),
              ("embedding-only steps to 100% (random init)\n÷ from scratch (budget if never;\nno bar: neither got there)",
               ratio)]
    fig, axes = plt.subplots(len(panels), 1, figsize=(max(8, 0.9 * len(cells)), 9), sharex=True)
    for ax, (label, get) in zip(axes, panels):
        for k, M in enumerate(Ms):
            heights = []
            for cell in cells:
                match = [r for r in rows if (r["regime"], int(r["d_model"]), int(r["d_mlp"])) == cell and int(r["M"]) == M]
                heights.append(get(match[0]) if match else float("nan"))
            ax.bar([i + (k - (len(Ms) - 1) / 2) * width for i in range(len(cells))], heights, width, label=f"M = {M}")
        ax.set_ylabel(label, fontsize=8)
        ax.grid(True, axis="y", alpha=0.3)
        ax.legend(fontsize=7)
    axes[2].axhline(1.0, color="k", lw=0.8)
    axes[-1].set_xticks(range(len(cells)))
    axes[-1].set_xticklabels([f"{c[0].replace('_unembed', '')}\nd={c[1]}\nd_mlp={c[2]}" for c in cells], fontsize=7)
    fig.suptitle("W_U shared, frozen at random codes, or tied to the subject table (bars: M instances)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_rows(rows: list[dict], out: str, machine: str) -> None:
    write_csv(os.path.join(out, "runs.csv"), rows)
    with open(os.path.join(out, "sweep.json"), "w") as handle:
        json.dump({"rows": rows, "machine": machine}, handle, indent=1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--N", type=int, default=256)
    parser.add_argument("--R", type=int, default=4)
    parser.add_argument("--d", type=int, nargs="+", default=[32], help="embedding widths d_model")
    parser.add_argument("--d-mlp", nargs="+", default=["64"], help="MLP widths: integers or 2RlogN")
    parser.add_argument("--regimes", nargs="+", default=list(REGIMES), choices=list(REGIMES))
    parser.add_argument("--weight-decay", type=float, default=0.1)
    parser.add_argument("--M", type=int, nargs="+", default=[1, 2, 4, 8, 16])
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--transfer-steps", type=int, default=1000)
    parser.add_argument("--quick", action="store_true", help="N = 64, M in {1, 2}, 500 steps")
    parser.add_argument("--out", default="results/training/multi_instance")
    parser.add_argument("--replot", action="store_true", help="redraw the plot from <out>/runs.csv without training")
    args = parser.parse_args()
    if args.replot:
        with open(os.path.join(args.out, "config.json")) as handle:
            base_config = json.load(handle)["base"]  # sweeps older than the width axes kept d and d_mlp here only
        with open(os.path.join(args.out, "runs.csv")) as handle:
            rows = [{"d_model": base_config["d_model"], "d_mlp": base_config["d_mlp"], **r} for r in csv.DictReader(handle)]
        plot(rows, os.path.join(args.out, "multi_instance.png"))
        return 0
    if args.quick:
        args.N, args.M, args.steps, args.transfer_steps = 64, [1, 2], 500, 200
    base = TrainConfig(N=args.N, R=args.R, d_model=args.d[0], d_mlp=64, steps=args.steps, seed=0,
                       embed_init_scale=0.1, weight_decay=args.weight_decay, stop_margin=1.0)
    rows = []
    cells = [(regime, d, rule, M) for regime in args.regimes for d in args.d for rule in args.d_mlp for M in args.M]
    machine = f"{platform.machine()}, {os.cpu_count()} cores, numpy {np.__version__}"
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "config.json"), "w") as handle:
        regimes = {k: {f: list(v) if isinstance(v, tuple) else v for f, v in REGIMES[k].items()} for k in args.regimes}
        json.dump({"base": base.to_json_dict(), "regimes": regimes, "d_model": args.d, "d_mlp": args.d_mlp, "M": args.M,
                   "transfer_steps": args.transfer_steps, "machine": machine, "command": " ".join(sys.argv)}, handle, indent=1)
    for index, (regime, d, rule, M) in enumerate(cells, 1):
        config = base.replace(d_model=d, d_mlp=mlp_width(rule, args.N, args.R), **REGIMES[regime])
        row = {"regime": regime, "d_model": d, "d_mlp_rule": rule, "d_mlp": config.d_mlp, "transfer_steps": args.transfer_steps,
               **one(config, M, args.transfer_steps)}
        rows.append(row)
        sys.stderr.write(f"[{index}/{len(cells)}] {regime} d={d} d_mlp={config.d_mlp} M={M}: R2 {row['superposition_r2']:.3f}, "
                         f"zero-shot fitted {row['fitted_map_zero_shot']:.3f}, steps {row['fitted_map_steps_to_exact']} "
                         f"vs scratch {row['scratch_steps_to_exact']} ({row['seconds']} s)\n")
        write_rows(rows, args.out, machine)  # after every cell: a stopped sweep keeps what it measured
    plot(rows, os.path.join(args.out, "multi_instance.png"))
    print(f"wrote {args.out}/runs.csv, sweep.json, config.json, multi_instance.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
