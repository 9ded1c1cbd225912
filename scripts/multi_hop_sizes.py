"""Issue 4's table: d_model and parameter counts at N = 4096, R = 4, k = 1..4, per construction,
with the wall time of an exact-recall check (sampled above --max-queries, as the report says).

    python scripts/multi_hop_sizes.py [--max-queries 200000] [--out results/multi_hop_sizes.csv]
"""

import argparse
import csv
import os
import time

from georecall.constructions import build_construction
from georecall.theory import Instance

CASES = [("chains", {}), ("associative", {}), ("cot", {}), ("cot", {"cot_steps": 2})]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--N", type=int, default=4096)
    parser.add_argument("--R", type=int, default=4)
    parser.add_argument("--max-queries", type=int, default=200_000)
    parser.add_argument("--out", default="results/multi_hop_sizes.csv")
    args = parser.parse_args()
    instance = Instance.random(args.N, args.R, seed=0)
    rows = []
    for k in (1, 2, 3, 4):
        for name, options in CASES:
            if options.get("cot_steps", 1) > k:
                continue
            started = time.perf_counter()
            model = build_construction(name, instance, hops=k, **options)
            built = time.perf_counter() - started
            report = model.verify(hops=k, max_queries=args.max_queries) if name == "cot" else model.verify(max_queries=args.max_queries)
            s = model.spec
            rows.append({"construction": s.name + ("(T=2)" if options else ""), "k": k, "d_model": s.d_model, "d_mlp": s.d_mlp,
                         "n_layers": s.n_layers, "subject_params": s.subject_params, "shared_params": s.shared_params,
                         "shared_nonzero": s.shared_params_nonzero, "exact": report.exact_recall, "min_margin": report.min_margin,
                         "queries_checked": report.queries, "total_queries": report.total_queries, "exhaustive": report.exhaustive,
                         "build_s": round(built, 2), "verify_s": round(report.elapsed_s, 2)})
            print(rows[-1], flush=True)
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    with open(args.out, "w", newline="") as handle:
        writer = csv.DictWriter(handle, list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


if __name__ == "__main__":
    main()
