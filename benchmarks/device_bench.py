"""One run, whatever the device: brute force in torch float64, the certificate, and training steps.

On a machine with a GPU this gives the accelerator's numbers in one command; on a CPU-only
machine the same rows come from the CPU (the ``device`` column says which). Every verdict is
checked against the CPU certificate's in the same run, so a device that disagrees shows up as
``same_verdict: False``. Prints a table and writes CSV with the machine description. Not a test.

    python benchmarks/device_bench.py [--N 4096 16384] [--R 8] [--train-N 1024] [--out results/benchmarks/device_bench.csv]
"""

from __future__ import annotations

import argparse
import time

import torch

from georecall.constructions import build_construction
from georecall.experiments.config import TrainConfig
from georecall.experiments.train import train
from georecall.theory import Instance
from georecall.verify.certify import certify_single_hop
from georecall.verify.run import verify_model
from georecall.verify.torch_path import TorchForward
from verify_bench import machine, write_rows


def timed(function):
    started = time.perf_counter()
    result = function()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return result, time.perf_counter() - started


def classes(report) -> tuple:
    return report.exact_recall, report.robust, report.fragile, report.unproven, report.failures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--N", type=int, nargs="+", default=[4096, 16384])
    parser.add_argument("--R", type=int, default=8)
    parser.add_argument("--train-N", type=int, default=1024)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--out", default="results/benchmarks/device_bench.csv")
    args = parser.parse_args()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    rows = []
    for N in args.N:
        instance = Instance.random(N, args.R, seed=0)
        weights = build_construction("block", instance).weights
        certified, seconds = timed(lambda: certify_single_hop(weights, instance))
        rows.append({"measure": "certificate (CPU)", "N": N, "R": args.R, "device": "cpu", "seconds": round(seconds, 3),
                     "queries_per_s": round(certified.queries / seconds), "same_verdict": True})
        forward = TorchForward(weights, device)
        brute, seconds = timed(lambda: verify_model(weights, instance, path="torch", forward=forward))
        rows.append({"measure": "brute force, torch float64", "N": N, "R": args.R, "device": device, "seconds": round(seconds, 3),
                     "queries_per_s": round(brute.queries / seconds), "same_verdict": classes(brute) == classes(certified)})
    for dtype in ("float64", "float32"):
        config = TrainConfig(N=args.train_N, R=4, d_model=64, d_mlp=256, steps=args.steps, stop_margin=0, eval_every=args.steps,
                             dtype=dtype, device=device)
        train(config.replace(steps=2))  # warm-up: allocator and kernels
        _, seconds = timed(lambda: train(config))
        rows.append({"measure": f"training steps, {dtype}", "N": args.train_N, "R": 4, "device": device, "seconds": round(seconds, 3),
                     "steps_per_s": round(args.steps / seconds, 2), "same_verdict": None})
    for row in rows:
        row["machine"] = machine()
        rate = f"{row['queries_per_s']:,} queries/s" if "queries_per_s" in row else f"{row['steps_per_s']} steps/s"
        print(f"{row['measure']:>28}  N={row['N']:>7,}  {row['device']:>4}  {row['seconds']:>8} s  {rate}"
              + ("" if row["same_verdict"] is None else f"  same verdict: {row['same_verdict']}"))
    write_rows([{key: row.get(key) for key in ("measure", "N", "R", "device", "seconds", "queries_per_s", "steps_per_s",
                                               "same_verdict", "machine")} for row in rows], args.out)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
