"""Verification benchmark: every path against the plain (bounded reference) path on the same inputs, in one run.

Each (case, path) runs in a fresh child process, so its peak RSS is its own. Ratios are against
the plain reference path of the same case measured in the same run; where the plain path would
take too long it runs on a leading slice of the subjects and its time is scaled up, and the row
says so (``plain_extrapolated``). Prints a table, writes CSV with the machine description.
Not a test.

    python benchmarks/verify_bench.py [--sizes 12 16] [--R 8] [--cases single shared multi] [--out ...]
"""

import argparse
import csv
import multiprocessing as mp
import os
import platform
import resource
import time

import numpy as np

from georecall.constructions import build_construction
from georecall.theory import Instance
from georecall.verify.certify import certify_single_hop
from georecall.verify.fast import verify_single_hop_fast
from georecall.theory.queries import MultiHopQueries, SingleHopQueries
from georecall.verify.run import verify_queries
from georecall.verify.run import verify_model

PLAIN_SLICE_ABOVE = 2**14 * 8  # more single-hop queries than this: plain runs on a slice


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        import torch

        extra = f", torch {torch.__version__} ({torch.get_num_threads()} threads)"
    except ImportError:
        extra = ""
    return f"{cpu}, {os.cpu_count()} cores, numpy {np.__version__}{extra}, {platform.platform()}"


def write_rows(rows: list[dict], path: str) -> None:
    """CSV with a header from the first row; prints the machine and the path."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    print(f"machine: {machine()}\nwrote {path}")


def build(case):
    kind, N, R, options = case
    instance = Instance.random(N, R, seed=0)
    name = {"single": "block", "shared": "shared-space", "multi": "chains"}[kind]
    return instance, build_construction(name, instance, **options)


def run_path(case, path, queue):
    instance, model = build(case)
    weights = model.weights
    started = time.perf_counter()
    scale = 1.0
    if path == "plain":
        queries = SingleHopQueries(instance) if case[0] != "multi" else MultiHopQueries(instance, case[3]["hops"])
        indices = None
        if case[0] != "multi" and queries.total > PLAIN_SLICE_ABOVE:
            indices = np.arange(PLAIN_SLICE_ABOVE)
            scale = queries.total / PLAIN_SLICE_ABOVE
        report = verify_queries(weights, queries, indices=indices)
    elif path == "auto":  # what `georecall verify FILE` runs
        report = verify_model(weights, instance, max_queries=None)
    elif path == "certify":
        report = certify_single_hop(weights, instance)
    elif path == "fast_brute_force":
        report = verify_single_hop_fast(weights, instance)
    elif path == "torch_cpu":
        from georecall.verify.torch_path import verify_model_torch

        report = verify_model_torch(weights, instance, max_queries=None)
    else:
        raise ValueError(path)
    seconds = (time.perf_counter() - started) * scale
    queue.put({"seconds": seconds, "scaled": scale != 1.0, "exact": report.exact_recall, "failures": report.failures,
               "robust": report.robust, "fragile": report.fragile, "unproven": report.unproven,
               "queries": report.queries, "min_margin": report.min_margin,
               "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)})


def measure(case, path):
    queue = mp.get_context("fork").Queue()
    child = mp.get_context("fork").Process(target=run_path, args=(case, path, queue))
    child.start()
    result = queue.get()
    child.join()
    return result


def cases(args):
    for log_n in args.sizes:
        if "single" in args.cases:
            # The torch path multiplies the dense W_U (d_model x N); on CPU it pays off only below 2^13.
            yield ("single", 2**log_n, args.R, {"codebook": "binary"}), ["plain", "auto", "certify", "fast_brute_force"] + (["torch_cpu"] if log_n <= 12 else [])
        if "shared" in args.cases:
            # Above 2^12 the certificate declines nearly every query of this under-sized d (its fallback
            # is brute force) and the torch path multiplies the dense W_U: only plain and fast run.
            small = log_n <= 12
            yield ("shared", 2**log_n, args.R, {"d": 400}), ["plain", "fast_brute_force"] + (["certify", "torch_cpu"] if small else [])
    if "multi" in args.cases:
        for hops in (1, 2, 3):
            yield ("multi", args.multi_N, args.multi_R, {"hops": hops}), ["plain", "torch_cpu"]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[12, 16], help="log2 N values for single and shared")
    parser.add_argument("--R", type=int, default=8)
    parser.add_argument("--multi-N", type=int, default=1024)
    parser.add_argument("--multi-R", type=int, default=4)
    parser.add_argument("--cases", nargs="+", default=["single", "shared", "multi"])
    parser.add_argument("--out", default="results/benchmarks/verify_bench.csv")
    args = parser.parse_args()
    rows = []
    for case, paths in cases(args):
        plain = None
        for path in paths:
            result = measure(case, path)
            if path == "plain":
                plain = result["seconds"]
            kind, N, R, options = case
            rows.append({
                "case": kind, "N": N, "R": R, "options": " ".join(f"{k}={v}" for k, v in options.items()),
                "path": "plain_extrapolated" if result["scaled"] else path, "seconds": round(result["seconds"], 3),
                "ratio_vs_plain": round(plain / result["seconds"], 2), "peak_rss_mb": result["peak_rss_mb"],
                "exact": result["exact"], "robust": result["robust"], "fragile": result["fragile"], "unproven": result["unproven"],
                "failures": result["failures"], "queries_checked": result["queries"],
                "min_margin": result["min_margin"], "machine": machine(),
            })
            print({k: v for k, v in rows[-1].items() if k != "machine"}, flush=True)
    write_rows(rows, args.out)


if __name__ == "__main__":
    main()
