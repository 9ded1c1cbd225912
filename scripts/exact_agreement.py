"""`--path exact` against the default path on every `georecall check` case: the same class for every query.

    python scripts/exact_agreement.py --out results/exact_agreement.csv

For each case of georecall.cli.check.CHECK_CASES it builds the file, verifies it on the default path
and on the exact path (the oracle alone, docs/theorems/soundness.md Theorem S6), and writes one
row: the classes each path found, whether they agree query for query, and the seconds each took.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from georecall.cli.check import CHECK_CASES
from georecall.constructions import build_construction
from georecall.experiments.records import write_csv
import georecall.verify.run as verify_module

from georecall.theory import Instance
from georecall.verify.run import verify_model

COLUMNS = ["construction", "codebook", "precision", "N", "R", "options", "queries", "default_path", "default_classes", "exact_classes",
           "agree", "default_s", "exact_s"]


def classes(report) -> tuple:
    return report.robust, report.fragile, report.unproven, report.failures


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="results/exact_agreement.csv", help="CSV to write (default results/exact_agreement.csv)")
    args = parser.parse_args(argv)
    verify_module.EXACT_PATH_WORK_LIMIT = 10**13  # this script is the long run: hours are accepted
    rows = []
    for construction, codebook, precision, N, R, options in CHECK_CASES:
        instance = Instance.random(N, R, seed=0)
        weights = build_construction(construction, instance, codebook=codebook, precision=precision, **options).weights
        started = time.perf_counter()
        default = verify_model(weights, instance, max_listed=10**9)
        middle = time.perf_counter()
        exact = verify_model(weights, instance, path="exact", max_listed=10**9)
        done = time.perf_counter()
        listed = lambda r: sorted((o["query"], o.get("step", 0), cls) for cls, key in (("fragile", "first_fragile"), ("unproven", "first_unproven"),  # noqa: E731
                                                                                   ("failure", "first_failures")) for o in getattr(r, key))
        agree = classes(default) == classes(exact) and listed(default) == listed(exact)
        rows.append({"construction": construction, "codebook": codebook, "precision": precision, "N": N, "R": R, "options": options,
                     "queries": exact.queries, "default_path": default.details.get("path"), "default_classes": classes(default),
                     "exact_classes": classes(exact), "agree": agree, "default_s": round(middle - started, 2), "exact_s": round(done - middle, 1)})
        print(rows[-1], file=sys.stderr, flush=True)
        write_csv(args.out, rows, COLUMNS)
    print(f"{sum(r['agree'] for r in rows)} of {len(rows)} cases agree query for query; {sum(r['queries'] for r in rows):,} queries; "
          f"{sum(r['exact_s'] for r in rows):.0f} s on the exact path")
    return 0 if all(r["agree"] for r in rows) else 1


if __name__ == "__main__":
    np.seterr(all="ignore")
    sys.exit(main())
