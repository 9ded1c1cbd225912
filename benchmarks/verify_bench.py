"""Verification benchmark: plain reference vs fast brute force vs certificate, on the same inputs.

Prints a table and writes CSV (with the machine description) to benchmarks/results/.
Ratios are against the plain reference path measured in the same run. Not a test.

    python benchmarks/verify_bench.py --sizes 12 16 [--R 8] [--skip-plain-above 16]
"""

import argparse
import csv
import os
import platform
import resource
import time

import numpy as np

from constructions import build_construction
from theory import Instance, verify_single_hop
from theory.certify import certify_single_hop
from theory.fast import verify_single_hop_fast


def machine() -> str:
    return f"{platform.machine()} {platform.processor() or ''} {os.cpu_count()} cores, numpy {np.__version__}, {platform.platform()}".strip()


def timed(fn, *args, **kwargs):
    started = time.perf_counter()
    report = fn(*args, **kwargs)
    return report, time.perf_counter() - started


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[12, 16], help="log2 N values")
    parser.add_argument("--R", type=int, default=8)
    parser.add_argument("--skip-plain-above", type=int, default=16, help="log2 N above which the plain path is not run")
    parser.add_argument("--out", default="benchmarks/results/verify_bench.csv")
    args = parser.parse_args()
    rows = []
    for log_n in args.sizes:
        instance = Instance.random(2**log_n, args.R, seed=0)
        for name, options in (("block", {"codebook": "binary"}), ("shared-space", {"d": 400})):
            if name == "shared-space" and log_n > 12:
                continue  # its attention matrices are d x d; one size shows the declining certificate
            model = build_construction(name, instance, **options)
            plain_time = None
            paths = [("certify", certify_single_hop), ("fast_brute_force", verify_single_hop_fast)]
            if log_n <= args.skip_plain_above:
                paths.insert(0, ("plain", verify_single_hop))
            for path, fn in paths:
                report, seconds = timed(fn, model.weights, instance)
                plain_time = seconds if path == "plain" else plain_time
                rows.append({
                    "construction": model.spec.name, "N": 2**log_n, "R": args.R, "path": path, "seconds": round(seconds, 3),
                    "speedup_vs_plain": "" if plain_time is None else round(plain_time / seconds, 2),
                    "exact": report.exact_recall, "failures": report.failures, "min_margin": report.min_margin,
                    "peak_rss_mb_so_far": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
                    "machine": machine(),
                })
                print({k: v for k, v in rows[-1].items() if k != "machine"}, flush=True)
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w", newline="") as handle:
        writer = csv.DictWriter(handle, list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    print(f"machine: {machine()}\nwrote {args.out}")


if __name__ == "__main__":
    main()
