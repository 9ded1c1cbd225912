"""Issue 7's frozen-embedding control and associative baseline: least d_mlp reaching 100% as N grows.

    python scripts/frozen_controls.py [--N 64 128 256 512] [--d 16] [--out results/training/frozen_controls]
"""

import argparse
import csv
import json
import os
import sys

from georecall.experiments.config import TrainConfig
from georecall.experiments.controls import VARIANTS, width_thresholds


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--N", type=int, nargs="+", default=[64, 128, 256, 512])
    parser.add_argument("--R", type=int, default=2)
    parser.add_argument("--d", type=int, default=16)
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--width-max", type=int, default=2048)
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS))
    parser.add_argument("--out", default="results/training/frozen_controls")
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    base = TrainConfig(N=args.N[0], R=args.R, d_model=args.d, d_mlp=1, steps=args.steps, embed_init_scale=1.0)
    rows = width_thresholds(args.N, base, args.variants, width_max=args.width_max,
                            progress=lambda m: print(m, file=sys.stderr, flush=True))
    with open(os.path.join(args.out, "frozen_controls.csv"), "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    with open(os.path.join(args.out, "frozen_controls.json"), "w") as handle:
        json.dump({"base_config": base.to_json_dict(), "width_max": args.width_max, "rows": rows}, handle, indent=2)
    plot(rows, os.path.join(args.out, "frozen_controls.png"))


def plot(rows, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8))
    for name in dict.fromkeys(r["variant"] for r in rows):
        pts = [r for r in rows if r["variant"] == name and r["d_mlp_star"] is not None]
        left.plot([r["N"] for r in pts], [r["d_mlp_star"] for r in pts], marker="o", label=name)
        right.plot([r["facts"] for r in pts], [r["trainable_params"] for r in pts], marker="o", label=name)
    left.set(xscale="log", yscale="log", xlabel="N", ylabel="least d_mlp reaching 100%", title="MLP width needed")
    right.set(xscale="log", yscale="log", xlabel="facts N R", ylabel="trainable parameters", title="parameters against facts")
    for ax in (left, right):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    main()
