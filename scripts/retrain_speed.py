"""Issue 14, stretch goal: is embedding-only re-training on frozen shared weights faster than training from scratch?

A control separates what the trained shared weights contribute: the same embedding-only training
on untrained (randomly initialised, frozen) shared weights.

For each model setting: train shared weights on M instances (experiments.multi_instance), draw a
fresh instance, and re-train only its subject table (every shared weight frozen) from the random
and the fitted-map re-initialisations; separately, train a fresh model from scratch on a fresh
instance. Both are run at every learning rate in --lrs, evaluated every --eval-every steps, and
compared best against best, so neither side wins by a learning rate tuned for it alone.

Writes <out>/runs.csv (one row per setting and learning rate), <out>/summary.csv (best against
best per setting), <out>/config.json and <out>/retrain_speed.png.

    OMP_NUM_THREADS=1 python scripts/retrain_speed.py --settings '{"d_model": 128, "M": 8}' '{"d_model": 128, "M": 1}'
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import sys
import time

from georecall.experiments.analysis import superposition_fit
from georecall.experiments.config import TrainConfig
from georecall.experiments.multi_instance import train_multi_instance
from georecall.experiments.records import write_csv
from georecall.experiments.train import train
from georecall.experiments.transfer import transfer_experiment
from georecall.verify.run import verify_single_hop

BASE = TrainConfig(N=256, R=4, d_model=32, d_mlp=256, steps=3000, embed_init_scale=0.1, weight_decay=0.5, stop_margin=1.0)
SCRATCH_INSTANCE = 1000  # instance_seed of the from-scratch baseline: fresh facts, like the transfer test's


def measure(setting: dict, lrs: list[float], budget: int, eval_every: int) -> list[dict]:
    setting = dict(setting)
    M = setting.pop("M", 1)
    config = BASE.replace(**setting)
    started = time.perf_counter()
    run = train_multi_instance(config, M=M)
    weights, instance = run.weights(0), run.instances[0]
    exact = all(verify_single_hop(run.weights(m), run.instances[m]).exact_recall for m in range(M))
    fit = superposition_fit(weights, instance)
    probe = config.replace(eval_every=eval_every)
    rows = []
    for lr in lrs:
        transfer = transfer_experiment(weights, instance, probe, steps=budget, fit=fit, reinits=("fitted_map", "random"), lr=lr)
        scratch = train(probe.replace(steps=budget, lr=lr, instance_seed=SCRATCH_INSTANCE + config.seed))
        # The control: the same embedding-only training on untrained (randomly initialised) shared weights.
        untrained = train(probe.replace(steps=budget, lr=lr, weight_decay=0.0, instance_seed=SCRATCH_INSTANCE + config.seed,
                                        freeze=config.embedding_only_freeze()))
        row = {"setting": json.dumps({**setting, "M": M}, sort_keys=True), "M": M, "d_model": config.d_model, "d_mlp": config.d_mlp,
               "tie_unembed": config.tie_unembed, "frozen": "+".join(config.freeze), "all_instances_exact": exact,
               "superposition_r2": round(fit["r2_cv"], 4), "lr": lr, "budget": budget, "eval_every": eval_every,
               "scratch_steps_to_exact": scratch.steps_to_exact, "untrained_shared_steps_to_exact": untrained.steps_to_exact,
               "untrained_shared_final_accuracy": round(untrained.train_accuracy, 4)}
        for name, result in transfer["reinits"].items():
            row[f"{name}_zero_shot"] = round(result["zero_shot_accuracy"], 4)
            row[f"{name}_steps_to_exact"] = result["steps_to_exact"]
            row[f"{name}_final_accuracy"] = round(result["final_accuracy"], 4)
        row["seconds"] = round(time.perf_counter() - started, 1)
        rows.append(row)
        sys.stderr.write(f"{row['setting']} lr={lr}: embedding-only {row['fitted_map_steps_to_exact']} (fitted map), "
                         f"{row['random_steps_to_exact']} (random); scratch {row['scratch_steps_to_exact']}; "
                         f"untrained shared weights {row['untrained_shared_steps_to_exact']}\n")
    return rows


def best(rows: list[dict], key: str):
    steps = [(r[key], r["lr"]) for r in rows if r[key] is not None]
    return min(steps) if steps else (None, None)


def faster(steps, baseline) -> bool:
    """Reached 100%, and sooner than the baseline (a baseline that never did counts as slower)."""
    return steps is not None and (baseline is None or steps < baseline)


def summarise(rows: list[dict]) -> list[dict]:
    out = []
    for setting in dict.fromkeys(r["setting"] for r in rows):
        part = [r for r in rows if r["setting"] == setting]
        embed_fit, lr_fit = best(part, "fitted_map_steps_to_exact")
        embed_rand, lr_rand = best(part, "random_steps_to_exact")
        scratch, lr_scratch = best(part, "scratch_steps_to_exact")
        untrained, lr_untrained = best(part, "untrained_shared_steps_to_exact")
        embed = min((s for s in (embed_fit, embed_rand) if s is not None), default=None)
        out.append({"setting": setting, "superposition_r2": part[0]["superposition_r2"],
                    "best_fitted_map_steps": embed_fit, "at_lr": lr_fit, "best_random_steps": embed_rand, "at_lr_random": lr_rand,
                    "best_scratch_steps": scratch, "at_lr_scratch": lr_scratch,
                    "best_untrained_shared_steps": untrained, "at_lr_untrained": lr_untrained,
                    "embedding_only_faster": faster(embed, scratch),
                    "faster_than_untrained_shared": faster(embed, untrained)})
    return out


def plot(rows: list[dict], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    settings = list(dict.fromkeys(r["setting"] for r in rows))
    columns = min(3, len(settings))
    lines = -(-len(settings) // columns)
    fig, axes = plt.subplots(lines, columns, figsize=(4.6 * columns, 3.8 * lines), squeeze=False)
    for ax in axes.flat[len(settings):]:
        ax.axis("off")
    for ax, setting in zip(axes.flat, settings):
        part = [r for r in rows if r["setting"] == setting]
        budget = int(part[0]["budget"])
        lrs = [float(r["lr"]) for r in part]
        for key, style, label in (("fitted_map_steps_to_exact", "o-", "embedding-only, fitted map"),
                                  ("random_steps_to_exact", "s--", "embedding-only, random"),
                                  ("scratch_steps_to_exact", "k^:", "from scratch"),
                                  ("untrained_shared_steps_to_exact", "rv-.", "embedding-only, untrained shared weights")):
            ax.plot(lrs, [int(r[key]) if r[key] not in (None, "") else budget for r in part], style, label=label)
        ax.axhline(budget, color="grey", lw=0.6)
        ax.set(xscale="log", xlabel="learning rate", ylabel="steps to 100% (budget line: never)", title=setting)
        ax.set_xticks(lrs, [f"{lr:g}" for lr in lrs])
        ax.minorticks_off()
        ax.title.set_fontsize(8)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--settings", nargs="+", default=['{"d_model": 128, "M": 8}', '{"d_model": 128, "M": 1}'],
                        help="JSON objects: M and TrainConfig fields over the base (N 256, R 4, d 32, d_mlp 256, init 0.1, wd 0.5)")
    parser.add_argument("--lrs", type=float, nargs="+", default=[0.003, 0.01, 0.03])
    parser.add_argument("--budget", type=int, default=500)
    parser.add_argument("--eval-every", type=int, default=5)
    parser.add_argument("--out", default="results/training/retrain_speed")
    parser.add_argument("--replot", action="store_true", help="redraw the plot from <out>/runs.csv without training")
    args = parser.parse_args()
    if args.replot:
        with open(os.path.join(args.out, "runs.csv")) as handle:
            plot(list(csv.DictReader(handle)), os.path.join(args.out, "retrain_speed.png"))
        return 0
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "config.json"), "w") as handle:
        json.dump({"base": BASE.to_json_dict(), "settings": args.settings, "lrs": args.lrs, "budget": args.budget,
                   "eval_every": args.eval_every, "command": " ".join(sys.argv),
                   "machine": f"{platform.machine()}, {os.cpu_count()} cores"}, handle, indent=1)
    rows = []
    for setting in args.settings:
        rows += measure(json.loads(setting), args.lrs, args.budget, args.eval_every)
        write_csv(os.path.join(args.out, "runs.csv"), rows)  # after every setting: a stopped run keeps what it measured
        write_csv(os.path.join(args.out, "summary.csv"), summarise(rows))
    plot(rows, os.path.join(args.out, "retrain_speed.png"))
    print(f"wrote {args.out}/runs.csv, summary.csv, config.json, retrain_speed.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
