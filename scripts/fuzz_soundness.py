"""Differential fuzzing of every verification path against the exact oracle, for as long as you like.

    python scripts/fuzz_soundness.py --minutes 30 --out results/fuzz_soundness.json

Draws files from georecall.strategies.edge_models (every array at its own scale anywhere in the
float64 range, one or two layers, single or two-hop queries, maybe W_pos) and
edge_rescaled_constructions (K1 and K1' moved by powers of two that keep the exact function), runs
every path and the exact path on every query, and fails on the first query a path is more
confident about than the oracle (tests/edge_checks.py). Prints and writes the counts: files drawn,
queries checked, the oracle's classes, how often the paths agreed class for class, and the time.
The CI share of this check is tests/test_edges.py; this script is the long run.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import sys
import time

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests"))
from edge_checks import NAMES, assert_no_path_beats_the_oracle, classes_by_path  # noqa: E402

from georecall.strategies import edge_models, edge_rescaled_constructions  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=5.0, help="how long to draw files (default 5)")
    parser.add_argument("--seed", type=int, default=0, help="Hypothesis seed (default 0)")
    parser.add_argument("--out", default=None, help="write the counts as JSON here")
    parser.add_argument("--chains", action="store_true",
                        help="only one-layer files with chains of 2 or 3 hops (the fast sequence path, verify/sequence.py)")
    args = parser.parse_args(argv)
    if not args.minutes > 0:
        parser.error(f"--minutes must be > 0, got {args.minutes}")
    stop = time.monotonic() + 60.0 * args.minutes
    counts = {"files": 0, "queries": 0, "oracle_classes": collections.Counter(), "paths_agreed": 0, "by_generator": collections.Counter()}
    started = time.monotonic()

    if args.chains:
        drawn_files = edge_models(max_layers=1, max_hops=3).filter(lambda m: "multi_hop" in m[0].meta.query_kinds).map(lambda m: ("chains", m))
    else:
        drawn_files = st.one_of(edge_models().map(lambda m: ("edge_models", m)), edge_rescaled_constructions().map(lambda m: ("rescaled", m)))

    def round_of(seed_value: int):
        @settings(max_examples=100, deadline=None, database=None, suppress_health_check=list(HealthCheck))
        @given(drawn_files)
        def check(drawn):
            generator, (weights, instance) = drawn
            with np.errstate(all="ignore"):
                classes = classes_by_path(weights, instance)
            assert_no_path_beats_the_oracle(weights, instance, classes, seed=seed_value)
            counts["files"] += 1
            counts["by_generator"][generator] += 1
            counts["queries"] += len(classes["exact"])
            counts["oracle_classes"].update(NAMES[int(c)] for c in classes["exact"])
            counts["paths_agreed"] += len({tuple(v) for v in classes.values()}) == 1

        return seed(seed_value)(check)

    from hypothesis import seed

    rounds = 0
    while time.monotonic() < stop:  # rounds of 100 files, each from its own seed, until the time is up
        try:
            round_of(args.seed + rounds)()
        except Exception:
            print(f"a path was more confident than the oracle after {counts['files']:,} files (round seed {args.seed + rounds})", file=sys.stderr)
            raise
        rounds += 1
        print(f"{counts['files']:,} files, {counts['queries']:,} queries, {time.monotonic() - started:.0f} s", file=sys.stderr, flush=True)
    result = {**counts, "oracle_classes": dict(counts["oracle_classes"]), "by_generator": dict(counts["by_generator"]),
              "seconds": round(time.monotonic() - started, 1), "violations": 0}
    print(json.dumps(result))
    if args.out:
        with open(args.out, "w") as handle:
            json.dump(result, handle, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
