"""Issue 14, deliverable 3: the selector side by side, closed form against trained.

Per-unit relation tuning and the block share of each active unit's input (experiments/mechanism.py)
for the closed-form construction K1 (where gating must show), and trained models at N = 256, R = 4:
a single-instance and a multi-instance model at d = 32, d_mlp = 64, init scale 0.1, weight decay
0.1 (the first protocol); the `georecall train` default regime (d_mlp = 256, weight decay 0.5); and
the tied-attributes regime at d = 128 trained on M instances, where embedding-only re-training is
fastest (results/training/retrain_speed/).
Writes results/training/mechanism/{mechanism.png, mechanism.json}.

    python scripts/mechanism_plot.py [--quick]        # M = 8
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from georecall.constructions import build_construction
from georecall.experiments.config import TrainConfig
from georecall.experiments.mechanism import mechanism, plot_mechanisms
from georecall.experiments.multi_instance import train_multi_instance
from georecall.experiments.train import train
from georecall.theory import Instance


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--N", type=int, default=256)
    parser.add_argument("--R", type=int, default=4)
    parser.add_argument("--M", type=int, default=8)
    parser.add_argument("--quick", action="store_true", help="N = 64, M = 2")
    parser.add_argument("--out", default="results/training/mechanism")
    args = parser.parse_args()
    if args.quick:
        args.N, args.M = 64, 2
    config = TrainConfig(N=args.N, R=args.R, d_model=32, d_mlp=64, steps=3000, seed=0, embed_init_scale=0.1, weight_decay=0.1)
    instance = Instance.random(args.N, args.R, config.data_seed)
    single = train(config, instance)
    multi = train_multi_instance(config, M=args.M)
    default = train(config.replace(d_mlp=256, weight_decay=0.5), instance)
    tied = train_multi_instance(config.replace(d_model=128, d_mlp=256, weight_decay=0.5, tie_unembed=True), M=args.M)
    results = {
        "K1 closed form": mechanism(build_construction("block", instance).weights, instance),
        "trained, 1 instance": mechanism(single.weights, instance),
        f"trained, {args.M} instances": mechanism(multi.weights(0), multi.instances[0]),
        "train default (d_mlp 256, wd 0.5)": mechanism(default.weights, instance),
        f"tied, d 128, {args.M} instances": mechanism(tied.weights(0), tied.instances[0]),
    }
    os.makedirs(args.out, exist_ok=True)
    plot_mechanisms(results, os.path.join(args.out, "mechanism.png"))
    summary = {name: {k: v for k, v in r.items() if k not in ("tuning", "top_relation", "active", "block_share_of_top_relation")}
               for name, r in results.items()}
    with open(os.path.join(args.out, "mechanism.json"), "w") as handle:
        json.dump({"config": config.to_json_dict(), "instances_multi": args.M, "summary": summary, "full": results,
                   "train_accuracy": {"single": single.train_accuracy, "multi": multi.accuracy,
                                      "default": default.train_accuracy, "tied": tied.accuracy}}, handle)
    for name, r in summary.items():
        print(f"{name}: {r['active_units']}/{r['units']} active, {r['fraction_single_relation']:.2f} single-relation, "
              f"{r['fraction_one_block']:.2f} read one block")
    return 0


if __name__ == "__main__":
    sys.exit(main())
