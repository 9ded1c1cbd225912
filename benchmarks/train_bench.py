"""Training throughput of the gradient-descent model: full-batch AdamW steps per second.

float32 (the default) against float64 (the reference precision) on the same model and facts,
measured in the same run. Prints a table and writes CSV with the machine description. Not a test.

    python benchmarks/train_bench.py [--N 256 1024 4096] [--R 4] [--d 64] [--d-mlp 256] [--steps 30]
"""

import argparse
import time


from georecall.experiments.config import TrainConfig
from georecall.experiments.train import train
from verify_bench import machine, write_rows


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--N", type=int, nargs="+", default=[256, 1024, 4096])
    parser.add_argument("--R", type=int, default=4)
    parser.add_argument("--d", type=int, default=64)
    parser.add_argument("--d-mlp", type=int, default=256)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", default="results/benchmarks/train_bench.csv")
    args = parser.parse_args()
    rows = []
    for N in args.N:
        baseline = None
        for dtype in ("float64", "float32"):
            config = TrainConfig(N=N, R=args.R, d_model=args.d, d_mlp=args.d_mlp, steps=args.steps, stop_margin=0,
                                 eval_every=args.steps, dtype=dtype, device=args.device)
            train(config.replace(steps=2))  # warm-up: allocator and kernels
            started = time.perf_counter()
            train(config)
            rate = args.steps / (time.perf_counter() - started)
            baseline = rate if dtype == "float64" else baseline
            rows.append({"N": N, "R": args.R, "facts": N * args.R, "d_model": args.d, "d_mlp": args.d_mlp, "dtype": dtype,
                         "device": args.device, "steps_per_s": round(rate, 2), "ratio_vs_float64": round(rate / baseline, 2),
                         "machine": machine()})
            print({k: v for k, v in rows[-1].items() if k != "machine"}, flush=True)
    write_rows(rows, args.out)


if __name__ == "__main__":
    main()
